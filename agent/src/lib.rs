//! `hybrid-agent`: the daemon that runs as root on every physical host and
//! owns that host's VMs (QEMU), disks (qcow2 overlays, NoCloud seeds) and
//! networks (a bridge per VLAN segment on the configured uplink, a tap per
//! VM). It creates nothing outside its data directory and its `hy` naming
//! prefix, and answers only to the hybrid-host that signed its certificate.
//!
//! - [`engine`]: VMs — create, boot, watch for the guest's report, stop,
//!   delete, and re-adopt running QEMU processes after a restart.
//! - [`net`]: bridges, VLAN devices and taps (iproute2).

pub mod engine;
pub mod net;
