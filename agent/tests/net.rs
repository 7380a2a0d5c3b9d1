//! Bridges, VLAN and VXLAN devices and taps (agent/src/net) on real
//! interfaces inside network namespaces the tests create: a "host"
//! namespace with an uplink veth to a "datacenter" namespace (for VXLAN:
//! two hosts on a switch bridge). No QEMU: a veth into a further namespace
//! plays the VM where traffic is checked.

mod common;

use common::{NS_PREFIX, our_links};
use hybrid_acceptance_tests::netns::{self, Netns};
use hybrid_agent::net::{Net, Transport, Vxlan, tap_name};

/// A host namespace whose uplink `up0` is cabled to `sw0` in a datacenter
/// namespace.
fn host_and_dc() -> (Netns, Netns, Net) {
    let host = Netns::create(NS_PREFIX).unwrap();
    let dc = Netns::create(NS_PREFIX).unwrap();
    host.veth("up0", &dc, "sw0").unwrap();
    let net = Net::new(Some(host.name().to_string()), Some("up0".into()));
    (host, dc, net)
}

#[tokio::test]
async fn segments_and_taps_are_created_once_and_removed() {
    const T: &str = "segments_and_taps_are_created_once_and_removed";
    if !common::can_use_netns(T) {
        return;
    }
    let (host, _dc, net) = host_and_dc();
    // Tagged segments without an uplink are plain bridges.
    let lone = Net::new(Some(host.name().to_string()), None);
    assert_eq!(lone.ensure_segment(Some(7)).await.unwrap(), "hyb7");
    let bridge = net.link("hyb7").await.unwrap().unwrap();
    assert_eq!(bridge.kind(), "bridge");
    assert!(bridge.is_up());
    assert!(net.link("hyv7").await.unwrap().is_none());

    // With the uplink: a VLAN device on it joins the bridge.
    if common::vlans_supported() {
        assert_eq!(net.ensure_segment(Some(7)).await.unwrap(), "hyb7");
        let vlan = net.link("hyv7").await.unwrap().unwrap();
        assert_eq!(vlan.kind(), "vlan");
        assert_eq!(vlan.vlan_id(), Some(7));
        assert_eq!(vlan.link.as_deref(), Some("up0"));
        assert_eq!(vlan.master.as_deref(), Some("hyb7"));
    } else {
        common::note_no_vlans(T);
        let err = net.ensure_segment(Some(7)).await.unwrap_err().to_string();
        assert!(err.contains("802.1Q") && err.contains("up0"), "{err}");
    }

    // Idempotent: nothing is created twice.
    let before = net.ip(&["-j", "link", "show"]).await.unwrap();
    assert_eq!(lone.ensure_segment(Some(7)).await.unwrap(), "hyb7");
    assert_eq!(net.ip(&["-j", "link", "show"]).await.unwrap(), before);

    let tap = net.ensure_tap("vm-a", "hyb7").await.unwrap();
    assert_eq!(tap, tap_name("vm-a"));
    let link = net.link(&tap).await.unwrap().unwrap();
    assert_eq!((link.kind(), link.master.as_deref()), ("tun", Some("hyb7")));
    assert_eq!(net.ensure_tap("vm-a", "hyb7").await.unwrap(), tap);

    // Untagged: the uplink itself joins hybu.
    assert_eq!(net.ensure_segment(None).await.unwrap(), "hybu");
    let up = net.link("up0").await.unwrap().unwrap();
    assert_eq!(up.master.as_deref(), Some("hybu"));
    let before = net.ip(&["-j", "link", "show"]).await.unwrap();
    assert_eq!(net.ensure_segment(None).await.unwrap(), "hybu");
    assert_eq!(net.ip(&["-j", "link", "show"]).await.unwrap(), before);

    // An out-of-range VLAN is refused before anything runs.
    let err = net
        .ensure_segment(Some(4095))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("4095"), "{err}");

    net.remove_tap("vm-a").await.unwrap();
    net.remove_tap("vm-a").await.unwrap();
    net.remove_segment(Some(7)).await.unwrap();
    net.remove_segment(None).await.unwrap();
    net.remove_segment(None).await.unwrap();
    assert_eq!(our_links(&host), Vec::<String>::new());
    let up = net
        .link("up0")
        .await
        .unwrap()
        .expect("the uplink is never deleted");
    assert_eq!(up.master, None);
}

/// A veth plays the VM's tap: one end on the segment's bridge, the other in
/// a "guest" namespace with the VM's address.
fn plug_guest(host: &Netns, bridge: &str, address: &str) -> Netns {
    let guest = Netns::create(NS_PREFIX).unwrap();
    host.veth("vm0", &guest, "eth0").unwrap();
    host.ip(&["link", "set", "vm0", "master", bridge]).unwrap();
    guest.ip(&["addr", "add", address, "dev", "eth0"]).unwrap();
    guest
}

#[tokio::test]
async fn frames_cross_an_untagged_segment() {
    if !common::can_use_netns("frames_cross_an_untagged_segment") {
        return;
    }
    let (host, dc, net) = host_and_dc();
    let bridge = net.ensure_segment(None).await.unwrap();
    let _guest = plug_guest(&host, &bridge, "10.30.0.10/24");
    dc.ip(&["addr", "add", "10.30.0.1/24", "dev", "sw0"])
        .unwrap();
    dc.exec(&["ping", "-c", "2", "-W", "2", "10.30.0.10"])
        .unwrap();
}

#[tokio::test]
async fn frames_cross_the_vlan_and_only_it() {
    const T: &str = "frames_cross_the_vlan_and_only_it";
    if !common::can_use_netns(T) {
        return;
    }
    if !common::vlans_supported() {
        common::note_no_vlans(T);
        return;
    }
    let (host, dc, net) = host_and_dc();
    let bridge = net.ensure_segment(Some(30)).await.unwrap();
    let guest = plug_guest(&host, &bridge, "10.30.0.10/24");
    dc.ip(&[
        "link", "add", "link", "sw0", "name", "sw0.30", "type", "vlan", "id", "30",
    ])
    .unwrap();
    dc.ip(&["addr", "add", "10.30.0.1/24", "dev", "sw0.30"])
        .unwrap();
    dc.ip(&["link", "set", "sw0.30", "up"]).unwrap();

    dc.exec(&["ping", "-c", "2", "-W", "2", "10.30.0.10"])
        .unwrap();

    // Untagged frames on the uplink do not reach VLAN 30's bridge.
    dc.ip(&["addr", "add", "10.31.0.1/24", "dev", "sw0"])
        .unwrap();
    guest
        .ip(&["addr", "add", "10.31.0.10/24", "dev", "eth0"])
        .unwrap();
    let out = dc
        .exec_output(&["ping", "-c", "1", "-W", "1", "10.31.0.10"])
        .unwrap();
    assert!(
        !out.status.success(),
        "untagged traffic leaked into VLAN 30"
    );
}

#[tokio::test]
async fn cleanup_prefix_removes_every_leftover() {
    if !common::can_use_netns("cleanup_prefix_removes_every_leftover") {
        return;
    }
    let (host, _dc, net) = host_and_dc();
    let lone = Net::new(Some(host.name().to_string()), None);
    let mut expected = vec![
        "hyb11".to_string(),
        "hybu".to_string(),
        tap_name("vm-b"),
        tap_name("vm-c"),
    ];
    lone.ensure_segment(Some(11)).await.unwrap();
    if common::vlans_supported() {
        net.ensure_segment(Some(11)).await.unwrap();
        expected.push("hyv11".to_string());
    }
    net.ensure_segment(None).await.unwrap();
    net.ensure_tap("vm-b", "hyb11").await.unwrap();
    net.ensure_tap("vm-c", "hybu").await.unwrap();
    let mut removed = net.cleanup_prefix().await.unwrap();
    removed.sort();
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(our_links(&host), Vec::<String>::new());
    assert_eq!(net.link("up0").await.unwrap().unwrap().master, None);
    assert!(net.cleanup_prefix().await.unwrap().is_empty());
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed() {
    if !common::can_use_netns("stale_namespaces_of_dead_runs_are_removed") {
        return;
    }
    // pid 4194305 is above Linux's largest pid_max: never a live process.
    let stale = "hytstale-4194305-0";
    std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .status()
        .unwrap();
    let live = Netns::create("hytstale").unwrap();
    let list = || {
        String::from_utf8_lossy(
            &std::process::Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(
        !list().contains(stale),
        "Netns::create cleans stale namespaces of its prefix"
    );
    assert!(list().contains(live.name()));
    assert!(
        netns::cleanup_stale("hytstale").unwrap().is_empty(),
        "a live run's namespace stays"
    );
    let name = live.name().to_string();
    drop(live);
    assert!(!list().contains(&name));
}

/// Two hosts whose uplinks meet on a bridge in a switch namespace (the
/// underlay, MTU 1550 so that 1500-byte guest frames fit in VXLAN), each
/// with an underlay address and a [`Net`] carrying segments as VXLAN.
fn vxlan_fabric() -> (Netns, Vec<(Netns, Net)>) {
    let switch = Netns::create(NS_PREFIX).unwrap();
    switch.ip(&["link", "add", "sw", "type", "bridge"]).unwrap();
    switch.ip(&["link", "set", "sw", "up"]).unwrap();
    let mut hosts = Vec::new();
    for i in 1..=2 {
        let host = Netns::create(NS_PREFIX).unwrap();
        let port = format!("p{i}");
        host.veth("up0", &switch, &port).unwrap();
        switch
            .ip(&["link", "set", &port, "mtu", "1550", "master", "sw"])
            .unwrap();
        host.ip(&["link", "set", "up0", "mtu", "1550"]).unwrap();
        host.ip(&["addr", "add", &format!("172.31.0.{i}/24"), "dev", "up0"])
            .unwrap();
        let net = Net::new(Some(host.name().to_string()), Some("up0".into()))
            .with_transport(Transport::Vxlan(Vxlan::default()));
        hosts.push((host, net));
    }
    (switch, hosts)
}

#[tokio::test]
async fn vxlan_segments_carry_their_vni_and_only_it() {
    if !common::can_use_netns("vxlan_segments_carry_their_vni_and_only_it") {
        return;
    }
    let (_switch, hosts) = vxlan_fabric();
    let (h1, n1) = &hosts[0];
    let (h2, n2) = &hosts[1];
    // Host 1: a guest on VLAN 10. Host 2: one on VLAN 10 and one on VLAN
    // 20 — all three in the same subnet, so only the segments keep 10 and
    // 20 apart.
    assert_eq!(n1.ensure_segment(Some(10)).await.unwrap(), "hyb10");
    assert_eq!(n2.ensure_segment(Some(10)).await.unwrap(), "hyb10");
    assert_eq!(n2.ensure_segment(Some(20)).await.unwrap(), "hyb20");
    let dev = n1.link("hyx10").await.unwrap().unwrap();
    assert_eq!(dev.kind(), "vxlan");
    assert_eq!(dev.master.as_deref(), Some("hyb10"));
    assert_eq!(dev.mtu, Some(1500), "underlay 1550 minus VXLAN's 50");
    let up = n1.link("up0").await.unwrap().unwrap();
    assert_eq!(
        up.master, None,
        "the uplink carries the underlay, unbridged"
    );
    let g1 = plug_guest(h1, "hyb10", "10.40.0.11/24");
    let _g2 = plug_guest(h2, "hyb10", "10.40.0.12/24");
    let g3 = Netns::create(NS_PREFIX).unwrap();
    h2.veth("vm1", &g3, "eth0").unwrap();
    h2.ip(&["link", "set", "vm1", "master", "hyb20"]).unwrap();
    g3.ip(&["addr", "add", "10.40.0.13/24", "dev", "eth0"])
        .unwrap();

    // Idempotent on an existing device.
    let before = n1.ip(&["-j", "link", "show"]).await.unwrap();
    n1.ensure_segment(Some(10)).await.unwrap();
    assert_eq!(n1.ip(&["-j", "link", "show"]).await.unwrap(), before);

    // Same VNI across hosts: full-size frames, not fragmented.
    g1.exec(&[
        "ping",
        "-c",
        "2",
        "-W",
        "2",
        "-M",
        "do",
        "-s",
        "1472",
        "10.40.0.12",
    ])
    .unwrap();
    // Another VNI: not reached (ARP goes unanswered).
    let out = g1
        .exec_output(&["ping", "-c", "1", "-W", "1", "10.40.0.13"])
        .unwrap();
    assert!(!out.status.success(), "VLAN 20's guest answered on VLAN 10");

    // The untagged segment is a VNI of its own, the uplink left alone.
    assert_eq!(n1.ensure_segment(None).await.unwrap(), "hybu");
    let dev = n1.link("hyxu").await.unwrap().unwrap();
    assert_eq!(dev.kind(), "vxlan");
    assert_eq!(n1.link("up0").await.unwrap().unwrap().master, None);

    // A device left with other settings is refused, naming what differs.
    let other = Net::new(Some(h1.name().to_string()), Some("up0".into())).with_transport(
        Transport::Vxlan(Vxlan::new("239.7.7.7".parse().unwrap(), 4789).unwrap()),
    );
    let err = other
        .ensure_segment(Some(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("hyx10") && err.contains("239.7.7.7"), "{err}");
    // …and so is the VLAN transport on a bridge that has a VXLAN port.
    let vlan = Net::new(Some(h1.name().to_string()), Some("up0".into()));
    let err = vlan.ensure_segment(Some(10)).await.unwrap_err().to_string();
    assert!(
        err.contains("hyx10") && err.contains("--segment-transport"),
        "{err}"
    );

    // Removing a segment removes its VXLAN device; the uplink stays.
    n1.remove_segment(Some(10)).await.unwrap();
    n1.remove_segment(None).await.unwrap();
    assert!(n1.link("hyx10").await.unwrap().is_none());
    assert_eq!(our_links(h1), Vec::<String>::new());
    assert!(n1.link("up0").await.unwrap().is_some());
    let mut removed = n2.cleanup_prefix().await.unwrap();
    removed.sort();
    assert_eq!(removed, ["hyb10", "hyb20", "hyx10", "hyx20"]);
}

/// Log lines of the current thread's tracing events.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn vxlan_on_a_bare_1500_uplink_is_made_with_warnings() {
    if !common::can_use_netns("vxlan_on_a_bare_1500_uplink_is_made_with_warnings") {
        return;
    }
    let logs = Captured::default();
    // tokio::test runs on this thread: the default subscriber sees it all.
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    // up0 has no address yet (DHCP may come later) and MTU 1500: the
    // agent makes the segment and warns about both.
    let (host, _dc, net) = host_and_dc();
    let net = net.with_transport(Transport::Vxlan(Vxlan::default()));
    assert_eq!(net.ensure_segment(Some(5)).await.unwrap(), "hyb5");
    let dev = net.link("hyx5").await.unwrap().unwrap();
    assert_eq!(dev.mtu, Some(1450), "the kernel's uplink MTU minus 50");
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("MTU 1500") && text.contains("at least 1550"),
        "{text}"
    );
    assert!(text.contains("no IPv4 address"), "{text}");
    net.remove_segment(Some(5)).await.unwrap();
    assert_eq!(our_links(&host), Vec::<String>::new());
}
