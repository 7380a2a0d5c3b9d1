//! Kubeconfig issuance (`POST /v1/clusters/{name}/kubeconfig`) and its audit
//! log (`GET /v1/audit`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifetime of a `user` credential when none is asked for: one hour.
pub const DEFAULT_USER_TTL_SECONDS: u64 = 3600;
/// Shortest and longest `user` credential lifetime.
pub const MIN_USER_TTL_SECONDS: u64 = 300;
pub const MAX_USER_TTL_SECONDS: u64 = 86_400;
/// Lifetime of an `admin` credential: one year.
pub const ADMIN_TTL_SECONDS: u64 = 365 * 86_400;

/// Which credential to issue.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KubeconfigKind {
    /// Member of `system:masters`; long-lived.
    Admin,
    /// A named user with no groups beyond `system:authenticated`;
    /// short-lived (`ttl_seconds`).
    User,
}

impl KubeconfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KubeconfigKind::Admin => "admin",
            KubeconfigKind::User => "user",
        }
    }
}

/// Body of `POST /v1/clusters/{name}/kubeconfig`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[schemars(transform = ttl_only_for_users)]
pub struct KubeconfigRequest {
    pub kind: KubeconfigKind,
    /// Lifetime of a `user` credential, 300–86400 s; absent = 3600. Not
    /// allowed for `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_USER_TTL_SECONDS, max = MAX_USER_TTL_SECONDS))]
    pub ttl_seconds: Option<u64>,
}

/// The schema says what admission says: `ttl_seconds` only with `user`.
fn ttl_only_for_users(schema: &mut schemars::Schema) {
    schema.insert(
        "anyOf".into(),
        serde_json::json!([
            { "properties": { "kind": { "const": "user" } } },
            { "properties": { "ttl_seconds": { "type": "null" } } }
        ]),
    );
}

/// A freshly issued credential. The answer carries the private key: it is
/// never stored or logged by the service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// `/clusters/{name}`.
    pub cluster_id: String,
    pub kind: KubeconfigKind,
    /// The complete kubeconfig document (YAML).
    pub kubeconfig: String,
    /// API server URL, `https://<vip>:6443`.
    pub host: String,
    /// The cluster CA certificate (PEM).
    pub cluster_ca_certificate: String,
    /// Client certificate (PEM), signed by the cluster CA.
    pub client_certificate: String,
    /// Client private key (PEM, PKCS#8).
    pub client_key: String,
    /// Certificate subject common name (the Kubernetes user name).
    pub username: String,
    /// Hex serial number of the client certificate (as in the audit log).
    pub serial: String,
    /// RFC 3339 expiry of the client certificate.
    pub expires_at: String,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("cluster_id", &self.cluster_id)
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("serial", &self.serial)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One audit record: who obtained which credential, when. Never the secret.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// RFC 3339.
    pub time: String,
    /// Who asked: the authenticated principal (e.g. `admin-token`) and the
    /// peer address.
    pub actor: String,
    /// e.g. `kubeconfig.issue`.
    pub action: String,
    /// The resource acted on, e.g. `/clusters/prod`.
    pub target: String,
    /// Action details without secrets (kind, username, serial, expiry).
    pub details: serde_json::Value,
}
