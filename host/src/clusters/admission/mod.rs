//! Admission of cluster and node pool changes: every rule is checked and
//! every address and host slot is taken inside one store transaction, so a
//! refused request leaves nothing behind and an accepted one can never be
//! short of an address or of host capacity later. The VMs decided here are
//! written as `Pending` rows before any driver call (see [`super::lifecycle`]).
//!
//! [`cluster`] decides cluster changes, [`nodepool`] node pool changes;
//! both place VMs through [`super::vms`].

use hybrid_api::catalog::PoolOs;
use hybrid_api::{NodePoolSpec, ProvisioningState, codes};

use super::PoolRecord;
use crate::objects::{Error, Outcome, Reason, Refusal, outcome};
use crate::store::{Tx, VnetSnapshot};

mod cluster;
mod nodepool;

pub use cluster::{delete_cluster, put_cluster};
pub use nodepool::{delete_pool, put_pool};

pub(super) fn reject(f: Refusal) -> Error {
    Error::Refused(f)
}

pub(super) fn invalid(code: &str, reason: Reason, target: &str, message: String) -> Error {
    reject(Refusal::new(reason, code, message).target(target))
}

pub(super) fn vnet_name(vnet_id: &str) -> &str {
    vnet_id.strip_prefix("/vnets/").unwrap_or(vnet_id)
}

/// The cluster's vnet, which must exist and not be going away.
pub(super) fn load_vnet(tx: &dyn Tx, vnet_id: &str) -> Result<VnetSnapshot, Error> {
    let name = vnet_name(vnet_id);
    let snap = tx.vnet(name)?.ok_or_else(|| {
        reject(
            Refusal::not_found(format!(
                "vnet_id {vnet_id:?}: vnet {name} not found; create it first"
            ))
            .target("vnet_id"),
        )
    })?;
    if snap.record.provisioning_state == ProvisioningState::Deleting {
        return Err(invalid(
            codes::CONFLICT,
            Reason::Conflict,
            "vnet_id",
            format!("vnet_id {vnet_id:?}: vnet {name} is being deleted"),
        ));
    }
    Ok(snap)
}

/// What a cluster's pools run (for version readiness per OS SKU).
pub(super) fn pool_oses(pools: &[PoolRecord]) -> Vec<PoolOs> {
    pools
        .iter()
        .filter(|p| p.provisioning_state != ProvisioningState::Deleting)
        .map(|p| pool_os(&p.name, &p.spec))
        .collect()
}

/// What one pool runs: its OS type and SKU (the OS type's default SKU
/// when it names none).
pub(super) fn pool_os(name: &str, spec: &NodePoolSpec) -> PoolOs {
    PoolOs {
        pool: name.to_string(),
        os_type: spec.os_type,
        os_sku: spec
            .os_sku
            .clone()
            .unwrap_or_else(|| spec.os_type.default_sku().to_string()),
    }
}

pub(super) fn version_error(message: String) -> Error {
    invalid(
        codes::VERSION_NOT_ALLOWED,
        Reason::Invalid,
        "kubernetes_version",
        message,
    )
}

/// The delete already running for an object, if it is being deleted.
pub(super) fn delete_in_flight(
    tx: &dyn Tx,
    id: &str,
    etag: &str,
    state: ProvisioningState,
    op: Option<&str>,
) -> Result<Option<Outcome>, Error> {
    if state != ProvisioningState::Deleting {
        return Ok(None);
    }
    // A failed delete is retried: treat it like a failed operation.
    outcome::unchanged(tx, id, etag, ProvisioningState::Failed, op)
}
