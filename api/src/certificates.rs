//! A cluster's certificates: what `status.certificates` of a cluster says
//! about them, and `POST /v1/clusters/{name}/rotate-certificates`.
//!
//! The service issues each cluster a CA (ten years) and an API-server
//! certificate (one year), and renews them in the background before they
//! lapse — see [`RENEW_FRACTION`] and [`RENEW_MIN_DAYS`] — as an operation
//! of kind [`crate::operation_kinds::CLUSTER_ROTATE_CERTIFICATES`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Operation;

/// A certificate is renewed once less than this fraction of its lifetime
/// is left (one fifth: about 73 days of an API-server certificate's year,
/// two of the CA's ten years) …
pub const RENEW_FRACTION: f64 = 0.2;
/// … or less than this many days, whichever comes first.
pub const RENEW_MIN_DAYS: i64 = 30;

/// The certificates the service issued for a cluster (`status.certificates`).
/// Kubeconfig client certificates are not among them: each has its own
/// `expires_at` and is issued again rather than renewed.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ClusterCertificates {
    /// RFC 3339: when the cluster CA expires.
    pub ca_not_after: String,
    /// RFC 3339: when the API server's serving certificate expires.
    pub apiserver_not_after: String,
    /// RFC 3339: the earliest of the above — when the cluster's
    /// certificates would lapse if nothing renewed them.
    pub not_after: String,
    /// RFC 3339: from when the service renews them in the background.
    pub renew_after: String,
    /// RFC 3339: when they were last renewed or rotated; absent while they
    /// are the ones issued when the cluster was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated: Option<String>,
    /// RFC 3339: when the CA was last replaced by one on a new key. Every
    /// kubeconfig issued before then no longer works: issue them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_rotated_at: Option<String>,
    /// Id of a renewal or rotation queued or running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_operation: Option<String>,
}

/// The body of `POST /v1/clusters/{name}/rotate-certificates`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotateCertificatesRequest {
    /// Also replace the CA by one on a new key pair (default false: the CA
    /// keeps its key and is only issued again if it is due). A new CA
    /// invalidates every kubeconfig issued so far.
    #[serde(default)]
    pub rotate_ca: bool,
}

/// The `202` answer of `POST /v1/clusters/{name}/rotate-certificates`: the
/// queued operation (the same fields as `GET /v1/operations/{id}`) and what
/// the rotation means for existing kubeconfigs.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct RotateCertificatesAccepted {
    #[serde(flatten)]
    pub operation: Operation,
    /// Whether the CA is replaced by one on a new key.
    pub rotate_ca: bool,
    /// True when every kubeconfig issued before the rotation stops working
    /// once it has run (a new CA): issue them again.
    pub kubeconfigs_must_be_reissued: bool,
    /// The same in words.
    pub message: String,
}
