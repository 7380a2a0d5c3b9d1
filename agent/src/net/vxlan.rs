//! The VXLAN segment transport: each segment's bridge reaches the other
//! hosts through a VXLAN device on the uplink instead of an 802.1Q VLAN
//! device — for fabrics whose switch ports cannot carry a VLAN trunk and
//! for kernels without 802.1Q, the way Proxmox SDN's VXLAN zones and
//! OpenStack's VXLAN networks do it.
//!
//! Mapping: a tagged segment `vid` is VNI `vid` (so VLAN 10 on one host is
//! VNI 10 everywhere), on device `hyx<vid>`. The untagged segment is VNI
//! [`UNTAGGED_VNI`] (4096, just past the last VLAN id, so it can never be
//! a tagged segment's VNI) on device `hyxu`; unlike the VLAN transport it
//! does not enslave the uplink, which carries the underlay and keeps its
//! address. Every host of a fabric must use the same group and port.
//!
//! Broadcast, unknown-unicast and multicast frames of a segment go to the
//! multicast group (all VNIs share one group: each host receives and drops
//! the others' VNIs; a fabric that wants less flooding gives hosts
//! different groups per rack, not per VNI); learned MAC addresses go to
//! the learned host directly. The underlay therefore needs IPv4 multicast
//! (IGMP snooping on the switches, or flooding) and an address on the
//! uplink.
//!
//! MTU: VXLAN adds [`OVERHEAD`] bytes (outer Ethernet, IPv4, UDP, VXLAN
//! headers), and the kernel gives the device the uplink's MTU minus that.
//! Guests send 1500-byte frames, so the underlay needs an MTU of at least
//! [`MIN_UNDERLAY_MTU`]; with less, large frames are dropped without a
//! word, and the agent warns when it creates a device on such an uplink.

use std::net::Ipv4Addr;

use super::{Link, PREFIX};

/// VNI of the untagged segment: outside 1–4094, so no tagged segment maps
/// onto it.
pub const UNTAGGED_VNI: u32 = 4096;

/// Bytes VXLAN adds to each frame on an IPv4 underlay.
pub const OVERHEAD: u32 = 50;

/// The underlay MTU at which guests' 1500-byte frames fit.
pub const MIN_UNDERLAY_MTU: u32 = 1500 + OVERHEAD;

/// The default multicast group (in 239.0.0.0/8, the organisation-local
/// scope, which never leaves the site).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

/// The IANA-assigned VXLAN UDP port.
pub const DEFAULT_PORT: u16 = 4789;

/// Where a host's VXLAN segments meet the other hosts'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan {
    /// The IPv4 multicast group flooded frames go to.
    pub group: Ipv4Addr,
    /// The UDP port of the tunnel.
    pub port: u16,
}

impl Default for Vxlan {
    fn default() -> Self {
        Vxlan {
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
        }
    }
}

impl Vxlan {
    /// Checks the group and port; the error names the value and the rule.
    pub fn new(group: Ipv4Addr, port: u16) -> Result<Vxlan, String> {
        check_group(group)?;
        if port == 0 {
            return Err("VXLAN port 0 is not a port (1–65535; VXLAN's own is 4789)".into());
        }
        Ok(Vxlan { group, port })
    }
}

/// The multicast group must be an IPv4 multicast address that routers may
/// carry (not 224.0.0.0/24, link-local control traffic such as OSPF's).
pub fn check_group(group: Ipv4Addr) -> Result<(), String> {
    if !group.is_multicast() {
        return Err(format!(
            "{group} is not an IPv4 multicast address (224.0.0.0/4; e.g. {DEFAULT_GROUP})"
        ));
    }
    if group.octets()[..3] == [224, 0, 0] {
        return Err(format!(
            "{group} is in 224.0.0.0/24, reserved for link-local protocols (use e.g. {DEFAULT_GROUP})"
        ));
    }
    Ok(())
}

/// The VNI of a segment (`None` = untagged).
pub fn vni(vlan: Option<u16>) -> u32 {
    match vlan {
        Some(vid) => u32::from(vid),
        None => UNTAGGED_VNI,
    }
}

/// The VXLAN device of a segment.
pub fn device_name(vlan: Option<u16>) -> String {
    match vlan {
        Some(vid) => format!("{PREFIX}x{vid}"),
        None => format!("{PREFIX}xu"),
    }
}

/// `ip link add …` arguments for the segment's device on `uplink`.
pub fn add_args(vlan: Option<u16>, uplink: &str, vxlan: &Vxlan) -> Vec<String> {
    [
        "link",
        "add",
        &device_name(vlan),
        "type",
        "vxlan",
        "id",
        &vni(vlan).to_string(),
        "group",
        &vxlan.group.to_string(),
        "dev",
        uplink,
        "dstport",
        &vxlan.port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// How an existing device differs from the one the segment needs (`None`:
/// it is the right one).
pub fn mismatch(link: &Link, vlan: Option<u16>, uplink: &str, vxlan: &Vxlan) -> Option<String> {
    if link.kind() != "vxlan" {
        return Some(format!("a {:?}, not a VXLAN device", link.kind()));
    }
    let data = link.linkinfo.as_ref().and_then(|i| i.info_data.as_ref());
    let field = |k: &str| data.and_then(|d| d.get(k));
    let want_vni = vni(vlan);
    let mut wrong = Vec::new();
    if field("id").and_then(|v| v.as_u64()) != Some(u64::from(want_vni)) {
        wrong.push(format!("VNI {:?} (wanted {want_vni})", field("id")));
    }
    if field("group").and_then(|v| v.as_str()) != Some(vxlan.group.to_string().as_str()) {
        wrong.push(format!(
            "group {:?} (wanted {})",
            field("group"),
            vxlan.group
        ));
    }
    if field("port").and_then(|v| v.as_u64()) != Some(u64::from(vxlan.port)) {
        wrong.push(format!("port {:?} (wanted {})", field("port"), vxlan.port));
    }
    if field("link").and_then(|v| v.as_str()) != Some(uplink) {
        wrong.push(format!("on {:?} (wanted {uplink})", field("link")));
    }
    (!wrong.is_empty()).then(|| wrong.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(json: serde_json::Value) -> Link {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn vnis_and_names() {
        assert_eq!(vni(Some(10)), 10);
        assert_eq!(vni(Some(4094)), 4094);
        assert_eq!(vni(None), UNTAGGED_VNI);
        assert!(!(1..=4094).contains(&UNTAGGED_VNI));
        assert_eq!(device_name(Some(10)), "hyx10");
        assert_eq!(device_name(None), "hyxu");
        for name in [device_name(Some(4094)), device_name(None)] {
            assert!(name.len() <= 15 && name.starts_with(PREFIX), "{name}");
        }
    }

    #[test]
    fn add_args_name_vni_group_uplink_and_port() {
        let v = Vxlan::new(Ipv4Addr::new(239, 9, 9, 9), 8472).unwrap();
        assert_eq!(
            add_args(Some(20), "up0", &v).join(" "),
            "link add hyx20 type vxlan id 20 group 239.9.9.9 dev up0 dstport 8472"
        );
        assert_eq!(
            add_args(None, "eth1", &Vxlan::default()).join(" "),
            "link add hyxu type vxlan id 4096 group 239.1.1.1 dev eth1 dstport 4789"
        );
    }

    #[test]
    fn groups_and_ports_are_checked() {
        assert!(Vxlan::new(DEFAULT_GROUP, DEFAULT_PORT).is_ok());
        let e = Vxlan::new(Ipv4Addr::new(10, 0, 0, 1), 4789).unwrap_err();
        assert!(e.contains("10.0.0.1") && e.contains("224.0.0.0/4"), "{e}");
        let e = Vxlan::new(Ipv4Addr::new(224, 0, 0, 5), 4789).unwrap_err();
        assert!(e.contains("224.0.0.5") && e.contains("link-local"), "{e}");
        let e = Vxlan::new(DEFAULT_GROUP, 0).unwrap_err();
        assert!(e.contains("port 0"), "{e}");
    }

    #[test]
    fn an_existing_device_is_checked_field_by_field() {
        let good = serde_json::json!({
            "ifname": "hyx10",
            "linkinfo": { "info_kind": "vxlan", "info_data": {
                "id": 10, "group": "239.1.1.1", "link": "up0", "port": 4789
            }}
        });
        let v = Vxlan::default();
        assert_eq!(mismatch(&link(good.clone()), Some(10), "up0", &v), None);
        let m = mismatch(&link(good.clone()), Some(11), "up1", &v).unwrap();
        assert!(m.contains("wanted 11") && m.contains("wanted up1"), "{m}");
        let other = Vxlan::new(Ipv4Addr::new(239, 2, 2, 2), 4789).unwrap();
        let m = mismatch(&link(good), Some(10), "up0", &other).unwrap();
        assert!(m.contains("wanted 239.2.2.2"), "{m}");
        let bridge =
            serde_json::json!({ "ifname": "hyx10", "linkinfo": { "info_kind": "bridge" } });
        let m = mismatch(&link(bridge), Some(10), "up0", &v).unwrap();
        assert!(m.contains("not a VXLAN device"), "{m}");
    }
}
