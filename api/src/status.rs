//! What every kind reports about itself: the [`ProvisioningState`] of its
//! last operation and its observed [`Condition`]s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of the last operation on a resource.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningState {
    Accepted,
    /// Accepted and waiting for a prerequisite outside the resource (e.g. an
    /// extension that needs a Linux node pool); the work resumes by itself.
    Pending,
    Provisioning,
    Updating,
    Deleting,
    Succeeded,
    Failed,
    Canceled,
}

impl ProvisioningState {
    /// The wire spelling (PascalCase).
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::Accepted => "Accepted",
            ProvisioningState::Pending => "Pending",
            ProvisioningState::Provisioning => "Provisioning",
            ProvisioningState::Updating => "Updating",
            ProvisioningState::Deleting => "Deleting",
            ProvisioningState::Succeeded => "Succeeded",
            ProvisioningState::Failed => "Failed",
            ProvisioningState::Canceled => "Canceled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Accepted" => ProvisioningState::Accepted,
            "Pending" => ProvisioningState::Pending,
            "Provisioning" => ProvisioningState::Provisioning,
            "Updating" => ProvisioningState::Updating,
            "Deleting" => ProvisioningState::Deleting,
            "Succeeded" => ProvisioningState::Succeeded,
            "Failed" => ProvisioningState::Failed,
            "Canceled" => ProvisioningState::Canceled,
            _ => return None,
        })
    }

    /// True once no operation is in flight for the resource.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ProvisioningState::Succeeded | ProvisioningState::Failed | ProvisioningState::Canceled
        )
    }
}

/// An observed condition, Kubernetes style (`type` = `Ready`, …).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable CamelCase reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_conditions_use_wire_spelling() {
        for s in ["Accepted", "Updating", "Canceled"] {
            assert_eq!(ProvisioningState::parse(s).unwrap().as_str(), s);
        }
        let c = Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Provisioned".into(),
            message: "ok".into(),
            last_transition_time: "t".into(),
        };
        assert_eq!(serde_json::to_value(&c).unwrap()["type"], "Ready");
    }
}
