//! Which address ranges may share a network: the rule that keeps one
//! address from being handed out twice.
//!
//! Two vnets are on the same L2 segment when they have the same VLAN, or
//! are both untagged; on one segment their prefixes must not overlap, or
//! clusters on both would be given the same node addresses and VIPs. A
//! cluster's pod and service CIDRs are routed inside the cluster, so they
//! must not overlap the vnet its nodes sit on either. The service checks
//! both at admission (and so at plan time, through its dry run).

use std::net::Ipv4Addr;

use crate::validate::{FieldError, Prefix, parse_cidr};

/// The L2 segment a vnet is on: its VLAN, or 0 for untagged. VLAN id 0 is
/// 802.1Q's "no VLAN" (a priority tag only), so it is the untagged segment.
pub fn segment(vlan_id: Option<u16>) -> u16 {
    vlan_id.unwrap_or(0)
}

/// The first and last address of a stored `a.b.c.d/len`, leniently: any
/// length 0–32, host bits ignored. For data stored before today's rules;
/// `None` when it is not a CIDR at all.
pub fn span(cidr: &str) -> Option<(u32, u32)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr = u32::from(addr.parse::<Ipv4Addr>().ok()?);
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Some((addr & mask, (addr & mask) | !mask))
}

/// The network addresses of every shorter prefix that contains `first`
/// (lengths 0 to 31; equal values where lengths share one). A CIDR block
/// that starts before `first` and overlaps `[first, last]` contains
/// `first`, so it starts at one of these: with the blocks that start inside
/// `[first, last]`, that is every block overlapping it, found by equality
/// and one range rather than by reading every block.
pub fn enclosing_networks(first: u32) -> [u32; 32] {
    std::array::from_fn(|len| first & u32::MAX.checked_shl(32 - len as u32).unwrap_or(0))
}

/// True when the two prefixes share at least one address.
pub fn overlaps(a: &Prefix, b: &Prefix) -> bool {
    a.network <= b.broadcast() && b.network <= a.broadcast()
}

/// The cluster CIDRs (`network.pod_cidr`, `network.service_cidr`) that
/// overlap the address prefix of their vnet `vnet` — one error each, at
/// that field. CIDRs that do not parse are left to the spec's own rules.
pub fn cluster_cidrs_on_vnet(
    pod_cidr: &str,
    service_cidr: &str,
    vnet: &str,
    vnet_prefix: &str,
) -> Vec<FieldError> {
    let Ok(on) = parse_cidr("address_prefix", vnet_prefix) else {
        return Vec::new();
    };
    [
        ("network.pod_cidr", pod_cidr, "pod"),
        ("network.service_cidr", service_cidr, "service"),
    ]
    .into_iter()
    .filter(|(field, value, _)| parse_cidr(field, value).is_ok_and(|p| overlaps(&p, &on)))
    .map(|(field, value, what)| {
        FieldError::new(
            field,
            format!(
                "{field} {value:?} overlaps address_prefix {vnet_prefix} of vnet {vnet}, which the cluster's nodes are on; \
                 {what} addresses are routed inside the cluster, so they must not overlap the vnet: choose a CIDR outside {vnet_prefix}"
            ),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        parse_cidr("f", s).unwrap()
    }

    #[test]
    fn equal_subset_and_superset_overlap_neighbours_do_not() {
        let base = p("10.0.0.0/24");
        assert!(overlaps(&base, &p("10.0.0.0/24")));
        assert!(overlaps(&base, &p("10.0.0.128/25")));
        assert!(overlaps(&base, &p("10.0.0.0/16")));
        assert!(overlaps(&p("10.0.0.0/16"), &base));
        assert!(!overlaps(&base, &p("10.0.1.0/24")));
        assert!(!overlaps(&base, &p("9.255.255.0/24")));
    }

    #[test]
    fn untagged_and_vlan_zero_are_one_segment() {
        assert_eq!(segment(None), segment(Some(0)));
        assert_ne!(segment(None), segment(Some(100)));
    }

    #[test]
    fn span_is_lenient_about_old_data() {
        assert_eq!(span("10.0.0.0/24"), Some((0x0a00_0000, 0x0a00_00ff)));
        assert_eq!(span("10.0.0.5/24"), Some((0x0a00_0000, 0x0a00_00ff)));
        assert_eq!(span("0.0.0.0/0"), Some((0, u32::MAX)));
        assert_eq!(span("10.0.0.1/32"), Some((0x0a00_0001, 0x0a00_0001)));
        assert_eq!(span("10.0.0.0"), None);
        assert_eq!(span("10.0.0.0/33"), None);
    }

    #[test]
    fn every_enclosing_block_starts_at_one_of_the_enclosing_networks() {
        let (first, _) = span("10.1.2.128/25").unwrap();
        let starts = enclosing_networks(first);
        for outer in ["10.1.2.0/24", "10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"] {
            let (start, _) = span(outer).unwrap();
            assert!(starts.contains(&start), "{outer}");
        }
        assert!(starts.iter().all(|s| *s <= first));
    }

    #[test]
    fn cluster_cidrs_on_their_vnet_are_named_with_the_vnet() {
        let e = cluster_cidrs_on_vnet("10.0.0.0/16", "10.96.0.0/12", "lan", "10.0.5.0/24");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].target, "network.pod_cidr");
        assert!(
            e[0].message.contains(
                "network.pod_cidr \"10.0.0.0/16\" overlaps address_prefix 10.0.5.0/24 of vnet lan"
            ),
            "{}",
            e[0].message
        );
        let e = cluster_cidrs_on_vnet("10.244.0.0/16", "10.96.0.0/12", "lan", "10.100.0.0/24");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].target, "network.service_cidr");
        assert!(
            cluster_cidrs_on_vnet("10.244.0.0/16", "10.96.0.0/12", "lan", "10.0.0.0/24").is_empty()
        );
    }
}
