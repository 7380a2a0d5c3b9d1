//! `hybrid-agent`: the daemon that runs as root on every physical host and
//! owns that host's VMs (QEMU), disks (qcow2 overlays, NoCloud seeds) and
//! networks (a bridge per VLAN segment on the configured uplink, a tap per
//! VM). It creates nothing outside its data directory and its `hy` naming
//! prefix, and answers only to the hybrid-host that signed its certificate.
//!
//! Direction: hybrid-host calls the agent (HTTPS + JSON, mutual TLS). It may
//! run as several replicas on one database, and any replica can call any
//! agent with no session routing; each driver call is a request with an
//! answer, a timeout and a retry; heartbeats are hybrid-host's
//! `GET /v1/status` polls. The agent calls hybrid-host only once, to join.
//!
//! - [`cli`]: the command line (`join`, `run`).
//! - [`join`]: trading a join token for the agent's certificate.
//! - [`tls`]: the identity on disk and the mutual-TLS server configuration.
//! - [`server`]: the HTTPS API hybrid-host calls (status, VMs).
//! - [`status`]: measured capacity minus the reserve.
//! - [`engine`]: VMs — create, boot, watch for the guest's report, stop,
//!   delete, and re-adopt running QEMU processes after a restart.
//! - [`net`]: bridges, VLAN or VXLAN devices and taps (iproute2).
//! - [`image_store`]: node images fetched from an image store (URL and
//!   SHA-256), once, into the image directory.

pub mod cli;
pub mod engine;
pub mod image_store;
pub mod join;
pub mod net;
pub mod server;
pub mod status;
pub mod tls;
