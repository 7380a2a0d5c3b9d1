//! Virtual networks: how a change is admitted ([`admission`]), what the
//! worker does for their operations ([`lifecycle`]) and how one is shown
//! ([`views`]). Their address pools are managed by [`crate::ipam`].
//!
//! May depend on: [`crate::objects`], [`crate::ipam`], [`crate::store`],
//! [`crate::operations`] (the lifecycle trait) and [`crate::driver`].

use hybrid_api::Condition;

pub mod admission;
pub mod lifecycle;
pub mod views;

pub use lifecycle::VnetLifecycle;

/// The vnet's `Ready` condition.
pub fn ready_condition(status: &str, reason: &str, message: &str, now: &str) -> Condition {
    Condition {
        type_: "Ready".to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: now.to_string(),
    }
}

/// The vnet name of a vnet id (`/vnets/lan` → `lan`).
pub fn name_of(vnet_id: &str) -> &str {
    vnet_id.strip_prefix("/vnets/").unwrap_or(vnet_id)
}
