//! The go-plugin start-up contract, as pure functions: the magic cookie, the
//! protocol version negotiation, the port range, the handshake line the host
//! reads from our stdout, and the `TF_REATTACH_PROVIDERS` value of debug mode.

use std::net::SocketAddr;

use base64::Engine as _;

/// Environment variable carrying the magic cookie Terraform sets.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The cookie value every Terraform provider checks (from terraform-plugin-go).
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own protocol version (first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol major version we speak.
pub const APP_PROTOCOL_VERSION: u32 = 6;
/// Provider source address used in `TF_REATTACH_PROVIDERS`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/hybridops/hybrid";

/// The message shown when someone runs the binary by hand.
pub const NOT_A_PLUGIN_MESSAGE: &str = "\
This binary is a plugin. These are not meant to be executed directly.
Install it for Terraform with a `provider_installation` block (a `dev_overrides`
entry or a `filesystem_mirror` for hybridops/hybrid) in your Terraform CLI
configuration, then run `terraform init`/`plan` as usual.
To debug it, run it with --debug and export the TF_REATTACH_PROVIDERS value it prints.";

/// Why the go-plugin environment cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The magic cookie is absent or wrong: started by hand, not by Terraform.
    #[error(
        "environment variable {MAGIC_COOKIE_KEY} is missing or wrong: the plugin must be started by Terraform"
    )]
    NotAPlugin,
    /// The host did not offer protocol 6.
    #[error(
        "PLUGIN_PROTOCOL_VERSIONS: value {value:?} does not offer protocol version 6; this provider speaks only Terraform plugin protocol 6 (Terraform 1.0 or newer)"
    )]
    ProtocolUnsupported {
        /// The offered list, verbatim.
        value: String,
    },
    /// An entry of the offered version list is not a number.
    #[error(
        "PLUGIN_PROTOCOL_VERSIONS: entry {entry:?} in {value:?} is not a protocol version (must be a comma-separated list of integers)"
    )]
    InvalidProtocolVersion {
        /// The bad entry.
        entry: String,
        /// The whole list, verbatim.
        value: String,
    },
    /// A port bound is not a port number.
    #[error("{name}: value {value:?} is not a TCP port (must be an integer from 1 to 65535)")]
    InvalidPort {
        /// Which variable.
        name: &'static str,
        /// Its value, verbatim.
        value: String,
    },
    /// The port range is empty.
    #[error(
        "PLUGIN_MIN_PORT/PLUGIN_MAX_PORT: minimum {min} is greater than maximum {max} (the range must not be empty)"
    )]
    EmptyPortRange {
        /// Lower bound.
        min: u16,
        /// Upper bound.
        max: u16,
    },
}

/// Checks the magic cookie value (`None` when the variable is unset).
pub fn check_magic_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::NotAPlugin),
    }
}

/// Picks the protocol version from `PLUGIN_PROTOCOL_VERSIONS`. An absent or
/// empty variable means an old host that assumes the plugin's own version.
pub fn negotiate_protocol(value: Option<&str>) -> Result<u32, HandshakeError> {
    let Some(raw) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(APP_PROTOCOL_VERSION);
    };
    let mut offered = Vec::new();
    for entry in raw.split(',').map(str::trim) {
        let version = entry
            .parse::<u32>()
            .map_err(|_| HandshakeError::InvalidProtocolVersion {
                entry: entry.to_owned(),
                value: raw.to_owned(),
            })?;
        offered.push(version);
    }
    if offered.contains(&APP_PROTOCOL_VERSION) {
        Ok(APP_PROTOCOL_VERSION)
    } else {
        Err(HandshakeError::ProtocolUnsupported {
            value: raw.to_owned(),
        })
    }
}

/// Where to listen: any free port, or the first free one in an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRange {
    /// Let the OS pick.
    Any,
    /// Try `min..=max` in order.
    Range {
        /// Lowest port to try.
        min: u16,
        /// Highest port to try.
        max: u16,
    },
}

impl PortRange {
    /// From `PLUGIN_MIN_PORT` / `PLUGIN_MAX_PORT`; a missing bound is open-ended.
    pub fn from_env_values(min: Option<&str>, max: Option<&str>) -> Result<Self, HandshakeError> {
        fn parse(name: &'static str, v: Option<&str>) -> Result<Option<u16>, HandshakeError> {
            match v.map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(s) => match s.parse::<u16>() {
                    Ok(p) if p > 0 => Ok(Some(p)),
                    _ => Err(HandshakeError::InvalidPort {
                        name,
                        value: s.to_owned(),
                    }),
                },
            }
        }
        let min = parse("PLUGIN_MIN_PORT", min)?;
        let max = parse("PLUGIN_MAX_PORT", max)?;
        match (min, max) {
            (None, None) => Ok(PortRange::Any),
            (min, max) => {
                let (min, max) = (min.unwrap_or(1), max.unwrap_or(u16::MAX));
                if min > max {
                    Err(HandshakeError::EmptyPortRange { min, max })
                } else {
                    Ok(PortRange::Range { min, max })
                }
            }
        }
    }
}

/// The line go-plugin hosts read first from the plugin's stdout:
/// `CORE|APP|NETWORK|ADDR|PROTOCOL|CERT` where CERT is the server
/// certificate DER in unpadded standard base64 (empty without TLS).
pub fn handshake_line(addr: SocketAddr, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert}")
}

/// The `TF_REATTACH_PROVIDERS` JSON value for a debug-mode server.
pub fn reattach_value(addr: SocketAddr, pid: u32) -> String {
    serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": APP_PROTOCOL_VERSION,
            "Pid": pid,
            "Test": true,
            "Addr": { "Network": "tcp", "String": addr.to_string() },
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        assert_eq!(check_magic_cookie(Some(MAGIC_COOKIE_VALUE)), Ok(()));
        assert_eq!(check_magic_cookie(None), Err(HandshakeError::NotAPlugin));
        assert_eq!(
            check_magic_cookie(Some("d602bf8f")),
            Err(HandshakeError::NotAPlugin)
        );
    }

    #[test]
    fn protocol_negotiation() {
        assert_eq!(negotiate_protocol(None), Ok(6));
        assert_eq!(negotiate_protocol(Some("")), Ok(6));
        assert_eq!(negotiate_protocol(Some("5,6")), Ok(6));
        assert_eq!(negotiate_protocol(Some(" 6 ")), Ok(6));
        let err = negotiate_protocol(Some("4,5")).unwrap_err();
        assert!(err.to_string().contains("\"4,5\""), "{err}");
        assert!(
            err.to_string().contains("PLUGIN_PROTOCOL_VERSIONS"),
            "{err}"
        );
        let err = negotiate_protocol(Some("5,x")).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::InvalidProtocolVersion {
                entry: "x".into(),
                value: "5,x".into()
            }
        );
    }

    #[test]
    fn port_ranges() {
        assert_eq!(PortRange::from_env_values(None, None), Ok(PortRange::Any));
        assert_eq!(
            PortRange::from_env_values(Some("10000"), Some("25000")),
            Ok(PortRange::Range {
                min: 10000,
                max: 25000
            })
        );
        assert_eq!(
            PortRange::from_env_values(Some("30000"), None),
            Ok(PortRange::Range {
                min: 30000,
                max: 65535
            })
        );
        let err = PortRange::from_env_values(Some("70000"), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PLUGIN_MIN_PORT: value \"70000\"")
        );
        let err = PortRange::from_env_values(Some("9"), Some("8")).unwrap_err();
        assert_eq!(err, HandshakeError::EmptyPortRange { min: 9, max: 8 });
    }

    #[test]
    fn handshake_line_format() {
        let addr: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        assert_eq!(handshake_line(addr, None), "1|6|tcp|127.0.0.1:12345|grpc|");
        // 4 bytes -> 6 base64 chars without the "==" padding.
        assert_eq!(
            handshake_line(addr, Some(&[0xde, 0xad, 0xbe, 0xef])),
            "1|6|tcp|127.0.0.1:12345|grpc|3q2+7w"
        );
    }

    #[test]
    fn reattach_json_shape() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let v: serde_json::Value = serde_json::from_str(&reattach_value(addr, 77)).unwrap();
        let p = &v["registry.terraform.io/hybridops/hybrid"];
        assert_eq!(p["Protocol"], "grpc");
        assert_eq!(p["ProtocolVersion"], 6);
        assert_eq!(p["Pid"], 77);
        assert_eq!(p["Test"], true);
        assert_eq!(p["Addr"]["Network"], "tcp");
        assert_eq!(p["Addr"]["String"], "127.0.0.1:4242");
    }
}
