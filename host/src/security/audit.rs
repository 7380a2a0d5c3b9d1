//! The audit log: who obtained which credential, from where, and when.
//!
//! A record is written in the same store transaction as the work it
//! describes (a credential is never handed out unrecorded) and mirrored as
//! one `tracing` line with target `audit`, so log shipping sees it too.
//! Records hold only what any admin may read: never a key, a certificate or
//! a kubeconfig.

use hybrid_api::kubeconfig::AuditEntry;
use serde_json::Value;

use crate::clock;

/// Action of a kubeconfig issuance.
pub const KUBECONFIG_ISSUE: &str = "kubeconfig.issue";

/// The principal behind every authenticated request today: the bearer
/// token middleware accepts exactly one token, the admin token.
pub const ADMIN_PRINCIPAL: &str = "admin-token";

/// A record stamped now.
pub fn entry(actor: &str, action: &str, target: &str, details: Value) -> AuditEntry {
    AuditEntry {
        time: clock::now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        details,
    }
}

/// The log line mirroring a committed record.
pub fn log(e: &AuditEntry) {
    tracing::info!(
        target: "audit",
        actor = %e.actor,
        action = %e.action,
        resource = %e.target,
        details = %e.details,
        "audit"
    );
}
