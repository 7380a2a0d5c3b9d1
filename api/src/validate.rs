//! Admission rules shared by the service and the provider.
//!
//! The provider runs these at plan time so users see mistakes before any
//! work starts; the service runs the same code at admission so nothing that
//! slips past the provider (or comes from another client) gets stored.
//! Every message names the field, the value and the rule.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::limits::{self, abbreviate};
use crate::{IpAllocationMethod, IpPool, VnetSpec};

/// One rule violation at a field path (`vm_ip_pool.start`, `dns_servers[1]`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target}: {message}")]
pub struct FieldError {
    /// Field path, same syntax as `ApiError.target`.
    pub target: String,
    /// What is wrong: field, value and rule.
    pub message: String,
}

impl FieldError {
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            target: target.into(),
            message: message.into(),
        }
    }

    /// `field` of a `kind` cannot change from `from` to `to`.
    pub fn immutable(
        kind: &str,
        field: &str,
        from: &dyn std::fmt::Debug,
        to: &dyn std::fmt::Debug,
    ) -> Self {
        FieldError::new(
            field,
            format!(
                "{field} is immutable: cannot change it from {from:?} to {to:?}; create a new {kind} instead"
            ),
        )
    }
}

/// Checks a vnet name: a DNS label, `^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`.
pub fn vnet_name(name: &str) -> Result<(), FieldError> {
    dns_label("name", name)
}

/// Checks `value` is a DNS label (1–63 of `a-z0-9-`, alphanumeric at both ends).
pub fn dns_label(field: &str, value: &str) -> Result<(), FieldError> {
    let rule = "must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit";
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum);
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{field} {} {rule}", abbreviate(value)),
        ))
    }
}

/// Rewrites JSON numbers written with a zero fraction (`300.0`) as the
/// integers they are (`300`), at any depth. JSON Schema (and so OpenAPI
/// 3.1) calls `300.0` an integer; serde's integer types refuse it, so a
/// body is normalised before it is read.
pub fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                // Only what an i64 holds exactly (|f| < 2^63).
                let bound = 2f64.powi(63);
                if (0.0..bound).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-bound..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// A parsed IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Network address as an integer.
    pub network: u32,
    /// Prefix length.
    pub len: u8,
}

impl Prefix {
    /// Broadcast (last) address as an integer.
    pub fn broadcast(&self) -> u32 {
        self.network | (u32::MAX >> self.len)
    }

    /// True if `addr` is inside the network.
    pub fn contains(&self, addr: u32) -> bool {
        addr >= self.network && addr <= self.broadcast()
    }

    fn display(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.len)
    }
}

/// Parses an IPv4 CIDR as a vnet address prefix (length 8..=30, host bits zero).
pub fn parse_prefix(value: &str) -> Result<Prefix, FieldError> {
    parse_cidr("address_prefix", value)
}

/// Parses an IPv4 CIDR (length 8..=30, host bits zero), naming `field` on failure.
pub fn parse_cidr(field: &str, value: &str) -> Result<Prefix, FieldError> {
    let bad = || {
        FieldError::new(
            field,
            format!(
                "{field} {} is not an IPv4 CIDR (expected a.b.c.d/len, e.g. 10.0.0.0/24)",
                abbreviate(value)
            ),
        )
    };
    let (addr, len) = value.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 2 {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&len) {
        return Err(FieldError::new(
            field,
            format!("{field} {value:?} has prefix length {len}; it must be between 8 and 30"),
        ));
    }
    let addr = u32::from(addr);
    let mask = u32::MAX << (32 - len);
    let prefix = Prefix {
        network: addr & mask,
        len,
    };
    if addr & !mask != 0 {
        return Err(FieldError::new(
            field,
            format!(
                "{field} {value:?} has host bits set; the network address must be used, did you mean {}?",
                prefix.display()
            ),
        ));
    }
    Ok(prefix)
}

/// Parses a dotted-quad IPv4 address, naming `field` on failure.
pub fn parse_ipv4(field: &str, value: &str) -> Result<u32, FieldError> {
    value.parse::<Ipv4Addr>().map(u32::from).map_err(|_| {
        FieldError::new(
            field,
            format!(
                "{field} {} is not a valid IPv4 address (expected a.b.c.d)",
                abbreviate(value)
            ),
        )
    })
}

/// Number of addresses in a pool, if both ends parse and start <= end.
pub fn pool_size(pool: &IpPool) -> Option<u64> {
    let s = pool.start.parse::<Ipv4Addr>().ok().map(u32::from)?;
    let e = pool.end.parse::<Ipv4Addr>().ok().map(u32::from)?;
    (s <= e).then(|| u64::from(e - s) + 1)
}

/// Parsed pool bounds (inclusive), if both ends parse.
pub fn pool_range(pool: &IpPool) -> Option<(u32, u32)> {
    let s = pool.start.parse::<Ipv4Addr>().ok().map(u32::from)?;
    let e = pool.end.parse::<Ipv4Addr>().ok().map(u32::from)?;
    Some((s, e))
}

/// Checks an address is a usable host address of `prefix`.
fn host_in_prefix(field: &str, value: &str, addr: u32, prefix: &Prefix) -> Option<FieldError> {
    let p = prefix.display();
    if !prefix.contains(addr) {
        Some(FieldError::new(
            field,
            format!("{field} {value:?} is outside address_prefix {p}"),
        ))
    } else if addr == prefix.network {
        Some(FieldError::new(
            field,
            format!("{field} {value:?} is the network address of {p}; use a host address"),
        ))
    } else if addr == prefix.broadcast() {
        Some(FieldError::new(
            field,
            format!("{field} {value:?} is the broadcast address of {p}; use a host address"),
        ))
    } else {
        None
    }
}

/// Checks one pool; returns its bounds when they are usable for cross-checks.
fn check_pool(
    field: &str,
    pool: &IpPool,
    prefix: Option<&Prefix>,
    errors: &mut Vec<FieldError>,
) -> Option<(u32, u32)> {
    let mut ends = [None, None];
    for (i, (name, value)) in [("start", &pool.start), ("end", &pool.end)]
        .into_iter()
        .enumerate()
    {
        let target = format!("{field}.{name}");
        match parse_ipv4(&target, value) {
            Ok(addr) => {
                if let Some(e) = prefix.and_then(|p| host_in_prefix(&target, value, addr, p)) {
                    errors.push(e);
                } else {
                    ends[i] = Some(addr);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let (s, e) = (ends[0]?, ends[1]?);
    if s > e {
        errors.push(FieldError::new(
            field,
            format!(
                "{field} start {:?} is after end {:?}; start must be <= end",
                pool.start, pool.end
            ),
        ));
        return None;
    }
    Some((s, e))
}

/// All rule violations of a vnet spec (empty = valid).
pub fn vnet_spec(spec: &VnetSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let prefix = match parse_prefix(&spec.address_prefix) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(e);
            None
        }
    };

    let mut gateway = None;
    if let Some(gw) = &spec.gateway {
        match parse_ipv4("gateway", gw) {
            Ok(addr) => match prefix
                .as_ref()
                .and_then(|p| host_in_prefix("gateway", gw, addr, p))
            {
                Some(e) => errors.push(e),
                None => gateway = Some(addr),
            },
            Err(e) => errors.push(e),
        }
    }

    if let Err(e) = limits::check_count(
        "dns_servers",
        spec.dns_servers.len(),
        limits::MAX_DNS_SERVERS,
    ) {
        errors.push(e);
    }
    for (i, dns) in spec.dns_servers.iter().enumerate() {
        if let Err(e) = parse_ipv4(&format!("dns_servers[{i}]"), dns) {
            errors.push(e);
        }
    }

    if let Some(vlan) = spec.vlan_id
        && vlan > 4094
    {
        errors.push(FieldError::new(
            "vlan_id",
            format!("vlan_id {vlan} is out of range; it must be between 0 and 4094"),
        ));
    }

    match (spec.ip_allocation_method, &spec.vm_ip_pool) {
        (IpAllocationMethod::Static, None) => errors.push(FieldError::new(
            "vm_ip_pool",
            "vm_ip_pool is required when ip_allocation_method is \"static\" (node VMs get their addresses from it)",
        )),
        (IpAllocationMethod::Dhcp, Some(p)) => errors.push(FieldError::new(
            "vm_ip_pool",
            format!(
                "vm_ip_pool {}-{} must not be set when ip_allocation_method is \"dhcp\" (node addresses come from DHCP leases)",
                p.start, p.end
            ),
        )),
        _ => {}
    }

    limits::check_tags("tags", &spec.tags, &mut errors);

    let vm = spec
        .vm_ip_pool
        .as_ref()
        .and_then(|p| check_pool("vm_ip_pool", p, prefix.as_ref(), &mut errors));
    let vip = spec
        .vip_pool
        .as_ref()
        .and_then(|p| check_pool("vip_pool", p, prefix.as_ref(), &mut errors));

    if let (Some((vs, ve)), Some((ps, pe)), Some(a), Some(b)) =
        (vm, vip, &spec.vm_ip_pool, &spec.vip_pool)
        && vs <= pe
        && ps <= ve
    {
        errors.push(FieldError::new(
            "vip_pool",
            format!(
                "vip_pool {}-{} overlaps vm_ip_pool {}-{}; the pools must not share addresses",
                b.start, b.end, a.start, a.end
            ),
        ));
    }

    if let (Some(gw), Some(gw_str)) = (gateway, &spec.gateway) {
        for (field, range, pool) in [
            ("vm_ip_pool", vm, &spec.vm_ip_pool),
            ("vip_pool", vip, &spec.vip_pool),
        ] {
            if let (Some((s, e)), Some(p)) = (range, pool)
                && (s..=e).contains(&gw)
            {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "{field} {}-{} contains the gateway {gw_str:?}; the gateway must not be in a pool",
                        p.start, p.end
                    ),
                ));
            }
        }
    }
    errors
}

/// Changes to fields that cannot change after creation (empty = none).
pub fn immutable_changes(old: &VnetSpec, new: &VnetSpec) -> Vec<FieldError> {
    fn opt<T: std::fmt::Debug>(v: &Option<T>) -> String {
        match v {
            Some(v) => format!("{v:?}"),
            None => "null".to_string(),
        }
    }
    let mut errors = Vec::new();
    let mut check = |field: &str, changed: bool, from: String, to: String| {
        if changed {
            errors.push(FieldError::new(
                field,
                format!(
                    "{field} is immutable: cannot change it from {from} to {to}; create a new vnet instead"
                ),
            ));
        }
    };
    check(
        "address_prefix",
        old.address_prefix != new.address_prefix,
        format!("{:?}", old.address_prefix),
        format!("{:?}", new.address_prefix),
    );
    check(
        "ip_allocation_method",
        old.ip_allocation_method != new.ip_allocation_method,
        format!("{:?}", old.ip_allocation_method.as_str()),
        format!("{:?}", new.ip_allocation_method.as_str()),
    );
    check(
        "gateway",
        old.gateway != new.gateway,
        opt(&old.gateway),
        opt(&new.gateway),
    );
    check(
        "dns_servers",
        old.dns_servers != new.dns_servers,
        format!("{:?}", old.dns_servers),
        format!("{:?}", new.dns_servers),
    );
    check(
        "vlan_id",
        old.vlan_id != new.vlan_id,
        opt(&old.vlan_id),
        opt(&new.vlan_id),
    );
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pool(s: &str, e: &str) -> Option<IpPool> {
        Some(IpPool {
            start: s.into(),
            end: e.into(),
        })
    }

    fn good() -> VnetSpec {
        VnetSpec {
            address_prefix: "10.0.0.0/24".into(),
            ip_allocation_method: IpAllocationMethod::Static,
            gateway: Some("10.0.0.1".into()),
            dns_servers: vec!["10.0.0.2".into(), "1.1.1.1".into()],
            vlan_id: Some(100),
            vm_ip_pool: pool("10.0.0.10", "10.0.0.99"),
            vip_pool: pool("10.0.0.200", "10.0.0.250"),
            tags: BTreeMap::new(),
        }
    }

    fn targets(spec: &VnetSpec) -> Vec<String> {
        vnet_spec(spec).into_iter().map(|e| e.target).collect()
    }

    fn only(spec: &VnetSpec, target: &str, needle: &str) {
        let errs = vnet_spec(spec);
        assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
        assert_eq!(errs[0].target, target);
        assert!(
            errs[0].message.contains(needle),
            "{:?} should contain {needle:?}",
            errs[0].message
        );
    }

    #[test]
    fn good_spec_is_valid() {
        assert_eq!(vnet_spec(&good()), vec![]);
        let mut dhcp = good();
        dhcp.ip_allocation_method = IpAllocationMethod::Dhcp;
        dhcp.vm_ip_pool = None;
        assert_eq!(vnet_spec(&dhcp), vec![]);
    }

    #[test]
    fn names() {
        for ok in ["a", "net-1", "0", &"a".repeat(63)] {
            assert!(vnet_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            let e = vnet_name(bad).unwrap_err();
            assert_eq!(e.target, "name");
            assert!(e.message.contains("DNS label"), "{}", e.message);
        }
    }

    #[test]
    fn prefix_rules() {
        let mut s = good();
        s.address_prefix = "10.0.0.0".into();
        let e = vnet_spec(&s);
        assert_eq!(e[0].target, "address_prefix");
        assert!(e[0].message.contains("not an IPv4 CIDR"));

        s.address_prefix = "10.0.0.0/31".into();
        assert!(vnet_spec(&s)[0].message.contains("between 8 and 30"));
        s.address_prefix = "10.0.0.0/7".into();
        assert!(vnet_spec(&s)[0].message.contains("between 8 and 30"));
        s.address_prefix = "10.0.0.5/24".into();
        let e = vnet_spec(&s);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.contains("did you mean 10.0.0.0/24?"),
            "{}",
            e[0].message
        );
        s.address_prefix = "300.0.0.0/24".into();
        assert_eq!(vnet_spec(&s)[0].target, "address_prefix");
    }

    #[test]
    fn gateway_rules() {
        let mut s = good();
        s.gateway = Some("10.0.1.1".into());
        only(&s, "gateway", "outside address_prefix 10.0.0.0/24");
        s.gateway = Some("10.0.0.0".into());
        only(&s, "gateway", "network address");
        s.gateway = Some("10.0.0.255".into());
        only(&s, "gateway", "broadcast address");
        s.gateway = Some("nope".into());
        only(&s, "gateway", "not a valid IPv4");
    }

    #[test]
    fn dns_rules() {
        let mut s = good();
        s.dns_servers[1] = "1.1.1".into();
        only(&s, "dns_servers[1]", "\"1.1.1\" is not a valid IPv4");
    }

    #[test]
    fn vlan_rules() {
        let mut s = good();
        s.vlan_id = Some(4094);
        assert!(vnet_spec(&s).is_empty());
        s.vlan_id = Some(5000);
        only(&s, "vlan_id", "5000 is out of range");
    }

    #[test]
    fn pool_bounds() {
        let mut s = good();
        s.vm_ip_pool = pool("192.168.1.10", "10.0.0.20");
        only(
            &s,
            "vm_ip_pool.start",
            "vm_ip_pool.start \"192.168.1.10\" is outside address_prefix 10.0.0.0/24",
        );
        s.vm_ip_pool = pool("10.0.0.10", "x");
        only(&s, "vm_ip_pool.end", "not a valid IPv4");
        s.vm_ip_pool = pool("10.0.0.0", "10.0.0.20");
        only(&s, "vm_ip_pool.start", "network address");
        s.vip_pool = pool("10.0.0.200", "10.0.0.255");
        s.vm_ip_pool = pool("10.0.0.10", "10.0.0.20");
        only(&s, "vip_pool.end", "broadcast address");
    }

    #[test]
    fn pool_order_overlap_gateway() {
        let mut s = good();
        s.vm_ip_pool = pool("10.0.0.99", "10.0.0.10");
        only(&s, "vm_ip_pool", "start must be <= end");

        let mut s = good();
        s.vip_pool = pool("10.0.0.50", "10.0.0.150");
        only(&s, "vip_pool", "overlaps vm_ip_pool 10.0.0.10-10.0.0.99");

        let mut s = good();
        s.gateway = Some("10.0.0.20".into());
        only(&s, "vm_ip_pool", "contains the gateway \"10.0.0.20\"");
        s.gateway = Some("10.0.0.210".into());
        only(&s, "vip_pool", "contains the gateway");
    }

    #[test]
    fn allocation_method_rules() {
        let mut s = good();
        s.vm_ip_pool = None;
        only(
            &s,
            "vm_ip_pool",
            "required when ip_allocation_method is \"static\"",
        );
        let mut s = good();
        s.ip_allocation_method = IpAllocationMethod::Dhcp;
        only(&s, "vm_ip_pool", "must not be set");
    }

    #[test]
    fn several_errors_are_all_reported() {
        let mut s = good();
        s.vlan_id = Some(9999);
        s.dns_servers = vec!["x".into()];
        assert_eq!(targets(&s), vec!["dns_servers[0]", "vlan_id"]);
    }

    #[test]
    fn immutability() {
        let a = good();
        let mut b = good();
        b.tags.insert("env".into(), "prod".into());
        b.vm_ip_pool = pool("10.0.0.10", "10.0.0.150");
        assert!(immutable_changes(&a, &b).is_empty());
        b.address_prefix = "10.0.0.0/16".into();
        b.gateway = None;
        b.vlan_id = Some(7);
        b.dns_servers.clear();
        b.ip_allocation_method = IpAllocationMethod::Dhcp;
        let errs = immutable_changes(&a, &b);
        let t: Vec<_> = errs.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(
            t,
            [
                "address_prefix",
                "ip_allocation_method",
                "gateway",
                "dns_servers",
                "vlan_id"
            ]
        );
        assert!(
            errs[0]
                .message
                .contains("\"10.0.0.0/24\" to \"10.0.0.0/16\"")
        );
        assert!(errs[2].message.contains("to null"));
    }

    #[test]
    fn integral_floats_become_integers() {
        let mut v = serde_json::json!({
            "ttl_seconds": 300.0, "x": [2.0, 2.5, -4.0, 1e300], "n": {"m": 0.0}, "s": "1.0"
        });
        integral_numbers(&mut v);
        assert_eq!(v["ttl_seconds"], serde_json::json!(300));
        assert!(v["ttl_seconds"].is_u64());
        assert_eq!(v["x"][0], serde_json::json!(2));
        assert_eq!(v["x"][1], serde_json::json!(2.5));
        assert!(v["x"][2].is_i64() && v["x"][2] == serde_json::json!(-4));
        assert!(
            v["x"][3].is_f64(),
            "too large for an integer type: left alone"
        );
        assert!(v["n"]["m"].is_u64());
        assert_eq!(v["s"], "1.0");
        let r: crate::kubeconfig::KubeconfigRequest =
            serde_json::from_value(serde_json::json!({"kind": "user", "ttl_seconds": 300}))
                .unwrap();
        assert_eq!(r.ttl_seconds, Some(300));
    }

    #[test]
    fn pool_size_counts_inclusive() {
        assert_eq!(pool_size(&pool("10.0.0.1", "10.0.0.1").unwrap()), Some(1));
        assert_eq!(pool_size(&pool("10.0.0.1", "10.0.1.0").unwrap()), Some(256));
        assert_eq!(pool_size(&pool("10.0.0.2", "10.0.0.1").unwrap()), None);
    }
}
