//! Command line of the `hybrid-agent` binary: `join` (once, to trade a join
//! token for a certificate) and `run` (the daemon).
//!
//! The operator's command-line reference is generated from these
//! definitions, so every flag's doc comment is its documentation.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hybrid-agent",
    version,
    about = "Hybrid's per-host agent: runs this host's VMs for hybrid-host"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join hybrid-host: trade a join token for this agent's certificate.
    Join(JoinArgs),
    /// Serve the agent's API to hybrid-host (mutual TLS).
    Run(Box<RunArgs>),
}

/// A join token: kept out of `Debug` output so that no log line or panic
/// message can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the join token is empty".into());
        }
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// hybrid-host's address, `https://HOST:PORT`.
    #[arg(long, env = "HYBRID_AGENT_SERVER")]
    pub server: String,
    /// The CA certificate (PEM) that hybrid-host's certificate is checked
    /// against; nothing else is trusted.
    #[arg(long, env = "HYBRID_AGENT_CA_FILE")]
    pub ca_file: PathBuf,
    /// The single-use join token from `hybrid-host agent-token create`
    /// (prefer --join-token-file or the environment variable: a command
    /// line is visible to every user of the machine).
    #[arg(
        long,
        env = "HYBRID_AGENT_JOIN_TOKEN",
        hide_env_values = true,
        conflicts_with = "join_token_file",
        required_unless_present = "join_token_file"
    )]
    pub join_token: Option<Secret>,
    /// Read the join token from this file instead.
    #[arg(long)]
    pub join_token_file: Option<PathBuf>,
    /// This host's name in hybrid-host (placement and `/v1/hosts` use it);
    /// also the certificate's common name.
    #[arg(long, env = "HYBRID_AGENT_NAME")]
    pub name: String,
    /// Where hybrid-host reaches this agent, `https://ADDR:PORT`; ADDR (an
    /// IP address or a DNS name) goes into the agent's certificate.
    #[arg(long, env = "HYBRID_AGENT_ADVERTISE")]
    pub advertise: String,
    /// The agent's state directory: its key, certificate and hybrid-host's
    /// CA are written here (created 0700).
    #[arg(long, env = "HYBRID_AGENT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Replace an identity already in the data directory.
    #[arg(long)]
    pub force: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `--segment-transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SegmentTransport {
    Vlan,
    Vxlan,
}

fn parse_vxlan_group(s: &str) -> Result<Ipv4Addr, String> {
    let group: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
    crate::net::vxlan::check_group(group)?;
    Ok(group)
}

impl RunArgs {
    /// The segment transport the flags ask for.
    pub fn transport(&self) -> crate::net::Transport {
        match self.segment_transport {
            SegmentTransport::Vlan => crate::net::Transport::Vlan,
            SegmentTransport::Vxlan => crate::net::Transport::Vxlan(crate::net::Vxlan {
                group: self.vxlan_group,
                port: self.vxlan_port,
            }),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The state directory `hybrid-agent join` wrote (identity), also where
    /// the VMs' overlays, seeds and logs live.
    #[arg(long, env = "HYBRID_AGENT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on; its port should be the one in the advertised
    /// endpoint (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443", env = "HYBRID_AGENT_LISTEN")]
    pub listen: SocketAddr,
    /// Node images: one directory per image, `IMAGE_DIR/{image}/image.json`.
    #[arg(long, env = "HYBRID_AGENT_IMAGE_DIR")]
    pub image_dir: PathBuf,
    /// TOML file of node images to fetch from an image store into
    /// IMAGE_DIR: `[[images]]` with `name`, `url` (http or https, the
    /// qcow2 disk; redirects are not followed) and `sha256`. Each is
    /// fetched once, in the background, and reported only once its digest
    /// checks out; a mismatch is deleted and logged.
    #[arg(long, env = "HYBRID_AGENT_IMAGE_SOURCES")]
    pub image_sources: Option<PathBuf>,
    /// Network interface the VLAN segments' bridges attach to (none:
    /// bridges without an uplink, for a single test host).
    #[arg(long, env = "HYBRID_AGENT_UPLINK")]
    pub uplink: Option<String>,
    /// How the segments travel on the uplink: `vlan` (802.1Q: a VLAN
    /// device `hyv<vid>` per tagged segment, the uplink itself on the
    /// untagged one; the switch port carries a trunk) or `vxlan` (a VXLAN
    /// device `hyx<vid>` with VNI = VLAN id per segment, VNI 4096 for the
    /// untagged one; the uplink keeps its address and carries the
    /// underlay, which needs IPv4 multicast and an MTU of at least 1550).
    /// Every host of a fabric uses the same transport; vxlan needs
    /// --uplink.
    #[arg(
        long,
        value_enum,
        default_value = "vlan",
        env = "HYBRID_AGENT_SEGMENT_TRANSPORT",
        requires_if("vxlan", "uplink")
    )]
    pub segment_transport: SegmentTransport,
    /// With --segment-transport vxlan: the IPv4 multicast group that
    /// segments' broadcast and unknown frames go to (the same on every
    /// host of the fabric; not 224.0.0.0/24).
    #[arg(
        long,
        default_value_t = crate::net::vxlan::DEFAULT_GROUP,
        env = "HYBRID_AGENT_VXLAN_GROUP",
        value_parser = parse_vxlan_group
    )]
    pub vxlan_group: Ipv4Addr,
    /// With --segment-transport vxlan: the tunnels' UDP port (the same on
    /// every host of the fabric).
    #[arg(
        long,
        default_value_t = crate::net::vxlan::DEFAULT_PORT,
        env = "HYBRID_AGENT_VXLAN_PORT",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub vxlan_port: u16,
    /// Network namespace that holds the bridges, taps and QEMU processes
    /// (it must exist); the agent's own listener stays where the agent runs.
    #[arg(long, env = "HYBRID_AGENT_NETNS")]
    pub netns: Option<String>,
    /// vCPUs kept for the host itself, subtracted from the measured count.
    #[arg(long, default_value_t = 0)]
    pub reserve_vcpus: u32,
    /// Memory (MiB) kept for the host itself, subtracted from MemTotal.
    #[arg(long, default_value_t = 0)]
    pub reserve_memory_mib: u64,
    /// Disk (GiB) kept free, subtracted from what is free under the data
    /// directory.
    #[arg(long, default_value_t = 0)]
    pub reserve_disk_gib: u64,
    /// Seconds a VM has to power down when stopped before QEMU is told to
    /// quit.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stop_timeout_seconds: u64,
    /// The QEMU system emulator to run VMs with.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// `qemu-img`, for the VMs' overlays.
    #[arg(long, default_value = "qemu-img")]
    pub qemu_img: PathBuf,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut args = vec!["hybrid-agent", "run", "--data-dir", "d", "--image-dir", "i"];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args)?.command {
            Command::Run(r) => Ok(*r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn segment_transport_flags() {
        use crate::net::{Transport, Vxlan};
        // Default: 802.1Q, today's behaviour.
        assert_eq!(run(&[]).unwrap().transport(), Transport::Vlan);
        let r = run(&["--uplink", "eth1", "--segment-transport", "vxlan"]).unwrap();
        assert_eq!(r.transport(), Transport::Vxlan(Vxlan::default()));
        let r = run(&[
            "--uplink",
            "eth1",
            "--segment-transport",
            "vxlan",
            "--vxlan-group",
            "239.5.5.5",
            "--vxlan-port",
            "8472",
        ])
        .unwrap();
        assert_eq!(
            r.transport(),
            Transport::Vxlan(Vxlan::new("239.5.5.5".parse().unwrap(), 8472).unwrap())
        );
        // VXLAN needs an uplink to carry the underlay.
        let e = run(&["--segment-transport", "vxlan"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--uplink"), "{e}");
        // A group that is not multicast is refused, naming flag and value.
        let e = run(&[
            "--uplink",
            "e",
            "--segment-transport",
            "vxlan",
            "--vxlan-group",
            "10.1.1.1",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--vxlan-group") && e.contains("10.1.1.1") && e.contains("224.0.0.0/4"),
            "{e}"
        );
        let e = run(&["--vxlan-port", "0"]).unwrap_err().to_string();
        assert!(e.contains("--vxlan-port") && e.contains('0'), "{e}");
    }

    #[test]
    fn token_never_in_debug() {
        let cli = Cli::try_parse_from([
            "hybrid-agent",
            "join",
            "--server",
            "https://127.0.0.1:8443",
            "--ca-file",
            "ca.pem",
            "--join-token",
            "hjt_very_secret",
            "--name",
            "host-1",
            "--advertise",
            "https://127.0.0.1:9443",
            "--data-dir",
            "d",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("very_secret"));
    }
}
