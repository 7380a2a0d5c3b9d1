//! Host networking for VMs: one Linux bridge per VLAN segment, attached to
//! the agent's uplink, and one tap per VM — all through iproute2 (`ip`),
//! run as child processes so that errors are the tool's own words.
//!
//! Names (everything the agent creates carries the prefix `hy`, and Linux
//! caps interface names at 15 characters):
//!
//! | what | name |
//! |---|---|
//! | bridge of VLAN segment `vid` | `hyb<vid>` (untagged: `hybu`) |
//! | VLAN device on the uplink | `hyv<vid>` |
//! | VXLAN device on the uplink ([`Transport::Vxlan`]) | `hyx<vid>` (untagged: `hyxu`) |
//! | a VM's tap | `hyt<12 hex digits of the VM name's hash>` |
//!
//! Why one bridge per VLAN *segment* and not per vnet: two vnets on the same
//! VLAN are one layer-2 segment on the wire (their frames carry the same
//! tag), so a bridge each would need two VLAN devices with the same tag on
//! one uplink, which Linux refuses, and would split one broadcast domain in
//! two on this host. The bridge needs no VLAN filtering either: the VLAN
//! device `hyv<vid>` strips and adds the tag, so everything on `hyb<vid>`
//! is untagged and belongs to that one VLAN. An untagged segment enslaves
//! the uplink itself to `hybu` (an address on the uplink then stops
//! working for the host: give the host its management address on another
//! interface or on the bridge's own network). Without an uplink the bridges
//! stand alone (one host, VMs talk only to each other).
//!
//! Tagged segments on an uplink need the kernel's 802.1Q support
//! (`CONFIG_VLAN_8021Q`, module `8021q`); without it [`Net::ensure_segment`]
//! says so rather than bridging the VLAN's VMs onto the untagged wire.
//!
//! Where 802.1Q trunks are not available (a fabric whose switch ports
//! cannot carry the VLANs, or a kernel without 802.1Q), the segments can
//! ride VXLAN instead: see [`vxlan`] for the VNI mapping, the multicast
//! group and the underlay's MTU.
//!
//! Gateways, routing and DHCP on the segments belong to the datacenter, not
//! to the agent: it never puts an address on a bridge.
//!
//! With [`Net::netns`] set, every command runs in that network namespace
//! (`ip -n NS …`): that is how tests (and a try-it run of `hybrid-agent`)
//! keep the machine's root namespace untouched.

use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

pub mod vxlan;

pub use vxlan::Vxlan;

/// Prefix of every interface the agent creates.
pub const PREFIX: &str = "hy";

/// How long one `ip` invocation may take before it counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a network step failed: the command and what it said.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("`{command}` could not run: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {}s", COMMAND_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("`{command}` printed JSON we could not read: {source}")]
    Parse {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The bridge of a VLAN segment (`None` = untagged).
pub fn bridge_name(vlan: Option<u16>) -> String {
    match vlan {
        Some(vid) => format!("{PREFIX}b{vid}"),
        None => format!("{PREFIX}bu"),
    }
}

/// The VLAN device on the uplink that carries segment `vid`.
pub fn vlan_device_name(vid: u16) -> String {
    format!("{PREFIX}v{vid}")
}

/// A VM's tap: a hash rather than the name itself, because VM names are
/// longer than the 15 characters an interface name may have.
pub fn tap_name(vm: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms (std's hasher is
    // not), and 48 of its bits make collisions between one host's VMs
    // practically impossible.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in vm.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{PREFIX}t{:012x}", h >> 16)
}

/// One interface as `ip -j -d link show` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub ifname: String,
    /// The bridge it is enslaved to.
    #[serde(default)]
    pub master: Option<String>,
    /// `UP` … (administrative flags).
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub linkinfo: Option<LinkInfo>,
    /// For a VLAN device: the interface it sits on.
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// `linkinfo` of `ip -d`.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkInfo {
    /// `bridge`, `vlan`, `tun`, `veth` …
    #[serde(default)]
    pub info_kind: Option<String>,
    #[serde(default)]
    pub info_data: Option<serde_json::Value>,
}

impl Link {
    /// `bridge`, `vlan`, `tun` … (empty when the kernel says nothing).
    pub fn kind(&self) -> &str {
        self.linkinfo
            .as_ref()
            .and_then(|i| i.info_kind.as_deref())
            .unwrap_or("")
    }

    /// The VLAN id of a VLAN device.
    pub fn vlan_id(&self) -> Option<u16> {
        let id = self.linkinfo.as_ref()?.info_data.as_ref()?.get("id")?;
        id.as_u64().and_then(|v| u16::try_from(v).ok())
    }

    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

/// How a segment's bridge reaches the other hosts over the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// 802.1Q: a VLAN device per tagged segment; the untagged segment
    /// enslaves the uplink itself. The switch port carries a trunk.
    #[default]
    Vlan,
    /// VXLAN: a VXLAN device per segment (VNI = VLAN id), the uplink
    /// carrying the underlay.
    Vxlan(Vxlan),
}

/// The host's VM networking, in one network namespace.
#[derive(Debug, Clone, Default)]
pub struct Net {
    /// Where the bridges and taps live (`None`: the agent's own namespace).
    pub netns: Option<String>,
    /// The interface VLAN segments attach to.
    pub uplink: Option<String>,
    /// How segments travel on the uplink.
    pub transport: Transport,
}

impl Net {
    /// Segments as 802.1Q VLANs on `uplink` (see [`Net::with_transport`]).
    pub fn new(netns: Option<String>, uplink: Option<String>) -> Net {
        Net {
            netns,
            uplink,
            transport: Transport::Vlan,
        }
    }

    /// The same host networking with segments carried by `transport`.
    pub fn with_transport(self, transport: Transport) -> Net {
        Net { transport, ..self }
    }

    /// Every interface in the namespace.
    pub async fn links(&self) -> Result<Vec<Link>, NetError> {
        let out = self.ip(&["-j", "-d", "link", "show"]).await?;
        serde_json::from_str(&out).map_err(|source| NetError::Parse {
            command: self.describe(&["-j", "-d", "link", "show"]),
            source,
        })
    }

    /// One interface, if it exists.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetError> {
        Ok(self.links().await?.into_iter().find(|l| l.ifname == name))
    }

    /// Makes sure the segment's bridge exists, is up and (with an uplink)
    /// is attached to it; creates only what is missing. Returns the bridge.
    pub async fn ensure_segment(&self, vlan: Option<u16>) -> Result<String, NetError> {
        if let Some(vid) = vlan
            && !(1..=4094).contains(&vid)
        {
            return Err(NetError::Invalid(format!(
                "VLAN id {vid} is outside 1–4094 (0 and 4095 are reserved; an untagged segment has no VLAN id)"
            )));
        }
        let bridge = bridge_name(vlan);
        let links = self.links().await?;
        let find = |n: &str| links.iter().find(|l| l.ifname == n);
        match find(&bridge) {
            Some(l) if l.kind() != "bridge" => {
                return Err(NetError::Invalid(format!(
                    "interface {bridge} exists but is a {:?}, not the bridge the agent expects",
                    l.kind()
                )));
            }
            Some(_) => {}
            None => {
                // STP stays off (the kernel's default): ports forward at
                // once, and loops are the datacenter switch's business.
                self.ip(&["link", "add", "name", &bridge, "type", "bridge"])
                    .await?;
            }
        }
        if !find(&bridge).is_some_and(Link::is_up) {
            self.ip(&["link", "set", "dev", &bridge, "up"]).await?;
        }
        let Some(uplink) = self.uplink.as_deref() else {
            return Ok(bridge);
        };
        if find(uplink).is_none() {
            return Err(NetError::Invalid(format!(
                "uplink {uplink} does not exist{}",
                self.where_()
            )));
        }
        let port = match self.transport {
            Transport::Vlan => self.vlan_port(vlan, uplink, &bridge, &links).await?,
            Transport::Vxlan(vx) => self.vxlan_port(vlan, uplink, &vx, &links).await?,
        };
        let port_link = find(&port);
        if port_link.and_then(|l| l.master.as_deref()) != Some(bridge.as_str()) {
            self.ip(&["link", "set", "dev", &port, "master", &bridge])
                .await?;
        }
        if !port_link.is_some_and(Link::is_up) {
            self.ip(&["link", "set", "dev", &port, "up"]).await?;
        }
        Ok(bridge)
    }

    /// The 802.1Q port of a segment: the VLAN device `hyv<vid>` on the
    /// uplink (created if missing), or the uplink itself when untagged.
    async fn vlan_port(
        &self,
        vlan: Option<u16>,
        uplink: &str,
        bridge: &str,
        links: &[Link],
    ) -> Result<String, NetError> {
        let find = |n: &str| links.iter().find(|l| l.ifname == n);
        // The other transport's device on this bridge would join two
        // fabrics into one segment: refuse rather than guess.
        let other = vxlan::device_name(vlan);
        if find(&other).is_some_and(|l| l.master.as_deref() == Some(bridge)) {
            return Err(NetError::Invalid(format!(
                "{other}, a VXLAN device, is on {bridge} but the agent carries segments as 802.1Q VLANs (--segment-transport vlan): delete {other} or run with --segment-transport vxlan"
            )));
        }
        Ok(match vlan {
            Some(vid) => {
                let dev = vlan_device_name(vid);
                match find(&dev) {
                    Some(l) if l.kind() != "vlan" || l.vlan_id() != Some(vid) => {
                        return Err(NetError::Invalid(format!(
                            "interface {dev} exists but is not VLAN {vid} on {uplink}"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        let id = vid.to_string();
                        let add = [
                            "link", "add", "link", uplink, "name", &dev, "type", "vlan", "id", &id,
                        ];
                        match self.ip(&add).await {
                            Err(NetError::Command { command, stderr })
                                if stderr.contains("Unknown device type") =>
                            {
                                return Err(NetError::Invalid(format!(
                                    "this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q, module 8021q), so VLAN {vid} cannot be carried on uplink {uplink}: `{command}` said {stderr:?}"
                                )));
                            }
                            r => r?,
                        };
                    }
                }
                dev
            }
            None => uplink.to_string(),
        })
    }

    /// The VXLAN port of a segment: `hyx<vid>` (or `hyxu`) on the uplink,
    /// created if missing; an existing one must match VNI, group, port and
    /// uplink.
    async fn vxlan_port(
        &self,
        vlan: Option<u16>,
        uplink: &str,
        vx: &Vxlan,
        links: &[Link],
    ) -> Result<String, NetError> {
        let find = |n: &str| links.iter().find(|l| l.ifname == n);
        let bridge = bridge_name(vlan);
        let other = match vlan {
            Some(vid) => vlan_device_name(vid),
            None => uplink.to_string(),
        };
        if find(&other).is_some_and(|l| l.master.as_deref() == Some(bridge.as_str())) {
            return Err(NetError::Invalid(format!(
                "{other} is on {bridge} as the 802.1Q transport's port but the agent carries segments as VXLAN (--segment-transport vxlan): release it (`ip link set {other} nomaster`, or delete a hyv device) or run with --segment-transport vlan"
            )));
        }
        let dev = vxlan::device_name(vlan);
        match find(&dev) {
            Some(l) => {
                if let Some(why) = vxlan::mismatch(l, vlan, uplink, vx) {
                    return Err(NetError::Invalid(format!(
                        "interface {dev} exists but is not the VXLAN device segment {} needs: {why}",
                        vxlan::vni(vlan)
                    )));
                }
            }
            None => {
                let mtu = find(uplink).and_then(|l| l.mtu);
                if let Some(mtu) = mtu.filter(|m| *m < vxlan::MIN_UNDERLAY_MTU) {
                    // Not an error: a fabric may give its guests a smaller
                    // MTU. But the kernel drops oversized frames silently,
                    // so say it once, where the device is made.
                    tracing::warn!(
                        uplink,
                        mtu,
                        device = %dev,
                        "the uplink's MTU {mtu} leaves {} for VXLAN segments: guests' 1500-byte frames are dropped unless the underlay MTU is at least {} or the guests' MTU at most {}",
                        mtu.saturating_sub(vxlan::OVERHEAD),
                        vxlan::MIN_UNDERLAY_MTU,
                        mtu.saturating_sub(vxlan::OVERHEAD),
                    );
                }
                // Also not an error (DHCP may give it one later), but
                // without an IPv4 address on the uplink the tunnel has no
                // source and nothing reaches the other hosts.
                if !self.has_ipv4(uplink).await? {
                    tracing::warn!(
                        uplink,
                        device = %dev,
                        "the uplink has no IPv4 address: VXLAN segments need the host's underlay address on it to reach other hosts"
                    );
                }
                let args = vxlan::add_args(vlan, uplink, vx);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                match self.ip(&args).await {
                    Err(NetError::Command { command, stderr })
                        if stderr.contains("Unknown device type") =>
                    {
                        return Err(NetError::Invalid(format!(
                            "this kernel has no VXLAN support (CONFIG_VXLAN, module vxlan), so segment {} cannot be carried on uplink {uplink}: `{command}` said {stderr:?}",
                            vxlan::vni(vlan)
                        )));
                    }
                    r => r?,
                };
            }
        }
        Ok(dev)
    }

    /// Whether `dev` has an IPv4 address.
    async fn has_ipv4(&self, dev: &str) -> Result<bool, NetError> {
        #[derive(Deserialize)]
        struct Addrs {
            #[serde(default)]
            addr_info: Vec<serde_json::Value>,
        }
        let args = ["-j", "-4", "addr", "show", "dev", dev];
        let out = self.ip(&args).await?;
        let parsed: Vec<Addrs> = serde_json::from_str(&out).map_err(|source| NetError::Parse {
            command: self.describe(&args),
            source,
        })?;
        Ok(parsed.iter().any(|a| !a.addr_info.is_empty()))
    }

    /// Removes the segment's bridge and its VLAN or VXLAN device (both
    /// names are looked for, so a leftover of the other transport goes
    /// too); an untagged uplink is only released, never deleted. Missing
    /// pieces are fine.
    pub async fn remove_segment(&self, vlan: Option<u16>) -> Result<(), NetError> {
        let bridge = bridge_name(vlan);
        let links = self.links().await?;
        let exists = |n: &str| links.iter().any(|l| l.ifname == n);
        let mut devices = vec![vxlan::device_name(vlan)];
        devices.extend(vlan.map(vlan_device_name));
        for dev in devices.iter().filter(|d| exists(d)) {
            self.ip(&["link", "del", "dev", dev]).await?;
        }
        if let Some(uplink) = self.uplink.as_deref()
            && links
                .iter()
                .any(|l| l.ifname == uplink && l.master.as_deref() == Some(&bridge))
        {
            self.ip(&["link", "set", "dev", uplink, "nomaster"]).await?;
        }
        if exists(&bridge) {
            self.ip(&["link", "del", "dev", &bridge]).await?;
        }
        Ok(())
    }

    /// Makes sure the VM's tap exists (a persistent tap QEMU opens by
    /// name), is on `bridge` and is up. Returns the tap's name.
    pub async fn ensure_tap(&self, vm: &str, bridge: &str) -> Result<String, NetError> {
        let tap = tap_name(vm);
        let existing = self.link(&tap).await?;
        match &existing {
            Some(l) if l.kind() != "tun" => {
                return Err(NetError::Invalid(format!(
                    "interface {tap} (VM {vm}'s tap) exists but is a {:?}, not a tap",
                    l.kind()
                )));
            }
            Some(_) => {}
            None => {
                self.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"])
                    .await?;
            }
        }
        if existing.as_ref().and_then(|l| l.master.as_deref()) != Some(bridge) {
            self.ip(&["link", "set", "dev", &tap, "master", bridge])
                .await?;
        }
        if !existing.as_ref().is_some_and(Link::is_up) {
            self.ip(&["link", "set", "dev", &tap, "up"]).await?;
        }
        Ok(tap)
    }

    /// Removes the VM's tap; a missing tap is fine.
    pub async fn remove_tap(&self, vm: &str) -> Result<(), NetError> {
        let tap = tap_name(vm);
        if self.link(&tap).await?.is_some() {
            self.ip(&["link", "del", "dev", &tap]).await?;
        }
        Ok(())
    }

    /// Removes every interface whose name starts with the agent's prefix
    /// (taps and VLAN devices first, bridges last) and releases an uplink
    /// from our bridges. For cleaning up after a crashed run; the engine
    /// itself removes exactly what it created.
    pub async fn cleanup_prefix(&self) -> Result<Vec<String>, NetError> {
        let links = self.links().await?;
        let mut removed = Vec::new();
        if let Some(uplink) = self.uplink.as_deref()
            && let Some(l) = links.iter().find(|l| l.ifname == uplink)
            && l.master.as_deref().is_some_and(|m| m.starts_with(PREFIX))
        {
            self.ip(&["link", "set", "dev", uplink, "nomaster"]).await?;
        }
        let ours = |l: &&Link| l.ifname.starts_with(PREFIX);
        let (bridges, ports): (Vec<&Link>, Vec<&Link>) = links
            .iter()
            .filter(ours)
            .partition(|l| l.kind() == "bridge");
        for l in ports.into_iter().chain(bridges) {
            self.ip(&["link", "del", "dev", &l.ifname]).await?;
            removed.push(l.ifname.clone());
        }
        Ok(removed)
    }

    /// Runs `ip [-n NS] ARGS…` and returns its stdout.
    pub async fn ip(&self, args: &[&str]) -> Result<String, NetError> {
        let mut cmd = Command::new("ip");
        if let Some(ns) = &self.netns {
            cmd.args(["-n", ns]);
        }
        cmd.args(args);
        let command = self.describe(args);
        let run = cmd.kill_on_drop(true).output();
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, run).await {
            Err(_) => return Err(NetError::Timeout { command }),
            Ok(Err(source)) => return Err(NetError::Spawn { command, source }),
            Ok(Ok(out)) => out,
        };
        if !out.status.success() {
            return Err(NetError::Command {
                command,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn describe(&self, args: &[&str]) -> String {
        let ns = match &self.netns {
            Some(ns) => format!("-n {ns} "),
            None => String::new(),
        };
        format!("ip {ns}{}", args.join(" "))
    }

    fn where_(&self) -> String {
        match &self.netns {
            Some(ns) => format!(" in network namespace {ns}"),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_and_carry_the_prefix() {
        for name in [
            bridge_name(Some(4094)),
            bridge_name(None),
            vlan_device_name(4094),
            vxlan::device_name(Some(4094)),
            vxlan::device_name(None),
            tap_name("a-very-long-cluster-name-np-linux-0123456789"),
        ] {
            assert!(name.len() <= 15, "{name} is longer than IFNAMSIZ-1");
            assert!(name.starts_with(PREFIX), "{name}");
        }
        assert_eq!(bridge_name(Some(42)), "hyb42");
        assert_eq!(bridge_name(None), "hybu");
        assert_eq!(vlan_device_name(42), "hyv42");
        assert_eq!(tap_name("a").len(), 15);
        assert_eq!(tap_name("a"), tap_name("a"));
        assert_ne!(tap_name("a-0"), tap_name("a-1"));
    }
}
