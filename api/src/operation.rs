//! Long-running operations (`GET /v1/operations/{id}`): every create,
//! update and delete of a kind is accepted as one, of a kind named in
//! [`operation_kinds`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// State of a long-running operation.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl OperationStatus {
    /// The wire spelling (PascalCase).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "Running",
            OperationStatus::Succeeded => "Succeeded",
            OperationStatus::Failed => "Failed",
            OperationStatus::Canceled => "Canceled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Running" => OperationStatus::Running,
            "Succeeded" => OperationStatus::Succeeded,
            "Failed" => OperationStatus::Failed,
            "Canceled" => OperationStatus::Canceled,
            _ => return None,
        })
    }

    /// True when the operation will not change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, OperationStatus::Running)
    }
}

/// A long-running operation (`GET /v1/operations/{id}`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    /// What it does, `{kind}.{create|update|delete}` (see [`operation_kinds`]).
    pub kind: String,
    /// Id of the resource the operation acts on, e.g. `/vnets/net1`.
    pub target: String,
    pub status: OperationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The request id (W3C trace id, 32 hex digits) of the request that
    /// queued it; the service's log lines about its work carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Why the service queued it by itself, e.g. a `nodepool.repair`'s
    /// "VM c1-np1-0 failed" or "host host-2 down since …"; absent for
    /// operations a request asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Operation kinds.
pub mod operation_kinds {
    pub const VNET_CREATE: &str = "vnet.create";
    pub const VNET_UPDATE: &str = "vnet.update";
    pub const VNET_DELETE: &str = "vnet.delete";
    pub const CLUSTER_CREATE: &str = "cluster.create";
    pub const CLUSTER_UPDATE: &str = "cluster.update";
    pub const CLUSTER_DELETE: &str = "cluster.delete";
    /// Renews or rotates a cluster's certificates (in the background, at
    /// start-up, or on `POST /v1/clusters/{name}/rotate-certificates`).
    pub const CLUSTER_ROTATE_CERTIFICATES: &str = "cluster.rotate_certificates";
    pub const NODEPOOL_CREATE: &str = "nodepool.create";
    pub const NODEPOOL_UPDATE: &str = "nodepool.update";
    pub const NODEPOOL_DELETE: &str = "nodepool.delete";
    /// The service replaces an unhealthy node of a pool with `auto_repair`
    /// (queued by the service itself, never by a request).
    pub const NODEPOOL_REPAIR: &str = "nodepool.repair";
    pub const EXTENSION_CREATE: &str = "extension.create";
    pub const EXTENSION_UPDATE: &str = "extension.update";
    pub const EXTENSION_DELETE: &str = "extension.delete";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_uses_wire_spelling() {
        assert_eq!(
            serde_json::to_value(OperationStatus::Running).unwrap(),
            "Running"
        );
    }
}
