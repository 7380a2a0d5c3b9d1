//! What a node pool's plan needs to know about its cluster's upgrade.
//!
//! A pool's `kubernetes_version` and `nodes` follow its cluster: a cluster
//! upgrade replaces the pools' VMs too, although the pools' configuration
//! did not change. So that the plan says so (the pools update in place,
//! version and nodes known after apply) rather than the next plan finding
//! them "changed outside of Terraform", the cluster records here the
//! version it is planned or applied at, and the pool's plan compares its
//! own version with it.
//!
//! Terraform plans and applies a pool after the cluster its `cluster_id`
//! references, in one provider process per walk: the plan walk sees the
//! cluster's plan first; the apply walk (also of a saved plan, in a new
//! process) applies the cluster before it re-plans the pool. Nothing here
//! outlives the process, and a pool whose cluster is not in the same
//! configuration plans as before.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, PoisonError};

/// Cluster id → the Kubernetes version its spec asks for, as last planned
/// or applied in this process.
static CLUSTER_VERSIONS: LazyLock<Mutex<BTreeMap<String, String>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Records that cluster `cluster_id` is planned or applied at `version`.
pub(crate) fn record(cluster_id: &str, version: &str) {
    // A poisoned lock only means another thread panicked mid-insert of a
    // plain map entry: the map is still consistent.
    CLUSTER_VERSIONS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(cluster_id.to_string(), version.to_string());
}

/// The version cluster `cluster_id` was last planned or applied at in this
/// process, if it was.
pub(crate) fn version_of(cluster_id: &str) -> Option<String> {
    CLUSTER_VERSIONS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(cluster_id)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_record_wins() {
        let id = "/clusters/following-test";
        assert_eq!(version_of(id), None);
        record(id, "1.32.3");
        record(id, "1.33.1");
        assert_eq!(version_of(id).as_deref(), Some("1.33.1"));
    }
}
