//! The bootstrap contract: what every cluster VM's seed tells its node
//! image so that the image can make it a Kubernetes node (or the cluster's
//! load balancer), and the secret that goes with it.
//!
//! hybrid-host builds a [`BootstrapDocument`] per VM and, for VMs that join
//! the cluster, a [`BootstrapSecret`]; both travel in the agent's
//! [`crate::agent::VmSpec`]. The agent writes them into the NoCloud seed —
//! as [`SEED_DOCUMENT`] and [`SEED_SECRET`], and as cloud-init `write_files`
//! to [`DOCUMENT_PATH`] and [`SECRET_PATH`] — and the user-data runs the
//! image's [`COMMAND`] with both paths. A real image implements the command
//! with kubeadm: `kubeadm init` where [`BootstrapDocument::init`] is true
//! (the first control plane, which also holds
//! [`BootstrapDocument::control_plane_vip`]), `kubeadm join` elsewhere.
//!
//! Secrets are kept apart so that they can be handled apart: the document
//! is public (the agent shows it in `VmStatus.spec`), the secret is never
//! shown by any API, never logged (its `Debug` is redacted), and the agent
//! deletes it from its disk once the guest has reported in.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::NetworkPlugin;

/// The document's `api_version`; a new major version is a new contract.
pub const API_VERSION: &str = "hybrid.bootstrap/v1";
/// The document's `kind`.
pub const KIND: &str = "NodeBootstrap";
/// The command a node image provides; user-data runs it as
/// `COMMAND DOCUMENT_PATH SECRET_PATH` (the secret path is left out when
/// the VM has no secret).
pub const COMMAND: &str = "/usr/local/bin/hybrid-bootstrap";
/// Where cloud-init's `write_files` puts the document in the guest (0644).
pub const DOCUMENT_PATH: &str = "/etc/hybrid/bootstrap.json";
/// Where cloud-init's `write_files` puts the secret in the guest (0600).
pub const SECRET_PATH: &str = "/etc/hybrid/bootstrap-secret.json";
/// The document as a file of the seed volume (for images that read the
/// seed themselves instead of running cloud-init).
pub const SEED_DOCUMENT: &str = "hybrid/bootstrap.json";
/// The secret as a file of the seed volume (removed once the VM reported in).
pub const SEED_SECRET: &str = "hybrid/bootstrap-secret.json";
/// The API server's port behind the control-plane VIP.
pub const API_SERVER_PORT: u16 = 6443;
/// Pods per node when the pool does not say (kubelet's default).
pub const DEFAULT_MAX_PODS: u32 = 110;

/// What the node is for.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BootstrapRole {
    /// Runs the Kubernetes control plane (`kubeadm init` or
    /// `kubeadm join --control-plane`).
    ControlPlane,
    /// A node pool's node (`kubeadm join`).
    Worker,
    /// The cluster's HAProxy load balancer VM (joins nothing).
    LoadBalancer,
}

impl BootstrapRole {
    pub fn as_str(self) -> &'static str {
        match self {
            BootstrapRole::ControlPlane => "control-plane",
            BootstrapRole::Worker => "worker",
            BootstrapRole::LoadBalancer => "load-balancer",
        }
    }
}

/// The bootstrap document (public: no secret in it).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootstrapDocument {
    /// `hybrid.bootstrap/v1`. An image refuses versions it does not know.
    pub api_version: String,
    /// `NodeBootstrap`.
    pub kind: String,
    /// `control-plane`, `worker` or `load-balancer`.
    pub role: BootstrapRole,
    /// True on the cluster's first control-plane VM only: it creates the
    /// cluster (`kubeadm init`, registering the secret's bootstrap token)
    /// and holds the control-plane VIP. Every other VM joins.
    pub init: bool,
    /// The cluster's name.
    pub cluster_name: String,
    /// The Kubernetes node name (also the VM's host name), e.g. `c1-np-0`.
    pub node_name: String,
    /// Kubernetes version the node runs, e.g. `1.32.3`.
    pub kubernetes_version: String,
    /// The API server endpoint, `VIP:6443` (kubeadm's
    /// `controlPlaneEndpoint`, and what `kubeadm join` dials).
    pub api_endpoint: String,
    /// The control-plane VIP (IPv4), on the first control-plane VM only:
    /// that VM brings it up on its interface (a real image configures
    /// keepalived or kube-vip with it, so it moves on failure). Absent on
    /// every other VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_vip: Option<String>,
    /// PEM of the cluster CA certificate (never its key): kubeadm's
    /// `certificatesDir/ca.crt` on control planes; the trust anchor for
    /// joining.
    pub ca_certificate: String,
    /// `sha256:<hex>` of the CA certificate's public key (its
    /// SubjectPublicKeyInfo): `kubeadm join --discovery-token-ca-cert-hash`.
    pub ca_cert_hash: String,
    /// Kubernetes labels for the node (`kubelet --node-labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints for the node, `key=value:Effect` (`kubelet
    /// --register-with-taints`).
    #[serde(default)]
    pub taints: Vec<String>,
    /// Pods per node (kubelet's `maxPods`).
    pub max_pods: u32,
    /// IPv4 CIDR of the pods (kubeadm's `networking.podSubnet`).
    pub pod_cidr: String,
    /// IPv4 CIDR of the services (kubeadm's `networking.serviceSubnet`).
    pub service_cidr: String,
    /// CNI plugin to install: `calico` or `flannel`.
    pub network_plugin: NetworkPlugin,
}

/// The secret part: what lets a node into the cluster. Its `Debug` never
/// shows the token.
#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSecret {
    /// `hybrid.bootstrap/v1`.
    pub api_version: String,
    /// A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`: the first
    /// control plane registers it (`kubeadm init --token`), the others join
    /// with it (`kubeadm join --token`).
    pub bootstrap_token: String,
    /// When the token stops being valid (RFC 3339, UTC): the first control
    /// plane gives it this lifetime (`--token-ttl`).
    pub expires_at: String,
}

impl std::fmt::Debug for BootstrapSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapSecret")
            .field("bootstrap_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// True when `token` has kubeadm's bootstrap token form
/// `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    token
        .split_once('.')
        .is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

/// What the contract asks of a node image, for the guide.
pub const CONTRACT: &str = "\
The seed carries the document twice: as the file `hybrid/bootstrap.json` of the seed volume, \
and in user-data as a cloud-init `write_files` entry for `/etc/hybrid/bootstrap.json` (0644). \
A VM that joins a cluster also gets the secret, as `hybrid/bootstrap-secret.json` and \
`/etc/hybrid/bootstrap-secret.json` (0600). The user-data's `runcmd` then runs \
`/usr/local/bin/hybrid-bootstrap /etc/hybrid/bootstrap.json /etc/hybrid/bootstrap-secret.json` \
(without the second path when there is no secret). The image implements that command; \
when it is done it writes the report line, adding a `bootstrap` object with what it \
applied (see below).";

/// The JSON schemas of the document and of the secret (for the guide's
/// field tables and for images that validate what they get).
pub fn schemas() -> [(&'static str, serde_json::Value); 2] {
    [
        (
            "BootstrapDocument",
            schemars::schema_for!(BootstrapDocument).to_value(),
        ),
        (
            "BootstrapSecret",
            schemars::schema_for!(BootstrapSecret).to_value(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_form_is_kubeadms() {
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
        for bad in [
            "",
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef0",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
    }

    #[test]
    fn secret_debug_hides_the_token() {
        let s = BootstrapSecret {
            api_version: API_VERSION.into(),
            bootstrap_token: "abcdef.0123456789abcdef".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("2030-01-01"), "{shown}");
    }

    #[test]
    fn roles_are_kebab_case() {
        assert_eq!(
            serde_json::to_string(&BootstrapRole::ControlPlane).unwrap(),
            "\"control-plane\""
        );
        assert_eq!(BootstrapRole::LoadBalancer.as_str(), "load-balancer");
    }
}
