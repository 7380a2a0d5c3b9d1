//! Running extension operations (`extension.create|update|delete`) on the
//! driver and recording their outcome, plus the work the service starts by
//! itself: installing extensions that waited for Linux nodes once a Linux
//! pool is up, and automatic minor upgrades at start-up.
//!
//! Every driver call is idempotent (the driver keys extensions by target
//! and name), so an operation resumed after a crash simply asks again.
//! Logs name the extension, its type and version; protected settings are
//! read from the sealed store only to hand them to the driver.

use std::sync::Arc;

use hybrid_api::extension::{self, ExtensionSpec, StatusLevel};
use hybrid_api::{ApiError, Operation, ProvisioningState, codes, operation_kinds};

use async_trait::async_trait;

use super::admission::{has_linux_nodes, namespace_of, stored_protected};
use super::{ExtensionInternal, ExtensionRecord, Target, describe, status};
use crate::clock;
use crate::driver::{Driver, ExtensionChange, ExtensionRequest, ProtectedSettings};
use crate::extension_types as catalog;
use crate::objects::record::tx as rec;
use crate::objects::{StepError, new_operation};
use crate::operations::{Context, Ended, Lifecycle, log_failure};
use crate::store::{ObjectKind, Store, StoreError, Tx};

/// The lifecycle of `extension.*` operations.
pub struct ExtensionLifecycle;

#[async_trait]
impl Lifecycle for ExtensionLifecycle {
    fn kinds(&self) -> &'static [&'static str] {
        &[
            operation_kinds::EXTENSION_CREATE,
            operation_kinds::EXTENSION_UPDATE,
            operation_kinds::EXTENSION_DELETE,
        ]
    }

    async fn execute(&self, ctx: &Context, op: &Operation) -> Ended {
        let outcome = match run(&ctx.store, ctx.driver.as_ref(), op).await {
            Err(StepError::Store(e)) => {
                tracing::error!(operation = %op.id, error = %e, "store failure while running operation; will retry");
                return Ended::Retry;
            }
            Ok(done) => Ok(done),
            Err(StepError::Failed(e)) => {
                log_failure(op, Some(&e));
                Err(e)
            }
        };
        let ended = if outcome.is_ok() {
            Ended::Succeeded
        } else {
            Ended::Failed
        };
        if let Err(e) = complete(ctx, op, outcome).await {
            tracing::error!(operation = %op.id, error = %e, "cannot record completion");
        }
        ended
    }

    /// Extensions waiting for Linux nodes are installed once a node pool's
    /// create or update succeeded, in the transaction that records it.
    fn completed(
        &self,
        tx: &mut dyn Tx,
        op: &Operation,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        let pool_done = succeeded
            && (op.kind == operation_kinds::NODEPOOL_CREATE
                || op.kind == operation_kinds::NODEPOOL_UPDATE);
        match hybrid_api::nodepool::parse_nodepool_id(&op.target) {
            Some((cluster, _)) if pool_done => resume_pending(tx, cluster),
            _ => Ok(()),
        }
    }

    async fn on_start(&self, ctx: &Context) -> Result<usize, StoreError> {
        on_start(&ctx.store, ctx.driver.as_ref()).await
    }
}

/// What an extension operation achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The extension no longer exists (deleted with force meanwhile).
    Nothing,
    /// The driver installed, changed or confirmed `version`.
    Applied {
        version: String,
        change: ExtensionChange,
    },
    /// Accepted, but waiting for a prerequisite (Linux nodes).
    Waiting { message: String },
    /// Removed from the target.
    Removed,
}

fn failed(message: String) -> StepError {
    StepError::Failed(ApiError::new(codes::EXTENSION_FAILED, message))
}

fn target_of(op: &Operation) -> Result<(Target, String), StepError> {
    extension::parse_extension_id(&op.target)
        .and_then(|(t, n)| Target::parse(t).map(|t| (t, n.to_string())))
        .ok_or_else(|| {
            failed(format!(
                "operation target {} is not an extension",
                op.target
            ))
        })
}

/// The message of a `WaitingForLinuxNodes` entry.
fn waiting_message(name: &str, ty: &str, cluster: &str) -> String {
    format!(
        "extension {name} ({ty}) needs Linux nodes, and cluster {cluster} has no Linux node pool with running nodes; add a Linux node pool (os_type = \"linux\") and the service installs the extension by itself"
    )
}

/// Executes one extension operation.
async fn run(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    op: &Operation,
) -> Result<Done, StepError> {
    let (target, name) = target_of(op)?;
    let id = op.target.clone();
    let cluster = match &target {
        Target::Cluster(c) => Some(c.clone()),
        Target::ManagementHost => None,
    };
    let loaded = store
        .view(move |tx| -> Result<_, StoreError> {
            let Some(record): Option<ExtensionRecord> = rec::get(tx, &id)? else {
                return Ok(None);
            };
            let protected = stored_protected(tx, &id)?;
            let linux = match &cluster {
                Some(c) => has_linux_nodes(tx, c)?,
                None => true,
            };
            Ok(Some((record, protected, linux)))
        })
        .await?;
    let Some((record, protected, linux)) = loaded else {
        return Ok(Done::Nothing);
    };
    let target_id = target.id();
    let what = describe(&target, &name);
    let ty_name = record.spec.extension_type.clone();

    if op.kind == operation_kinds::EXTENSION_DELETE {
        tracing::info!(operation = %op.id, extension = %record.id, r#type = %ty_name, "removing extension");
        return match driver.remove_extension(&target_id, &name).await {
            Ok(()) => Ok(Done::Removed),
            Err(e) => Err(failed(format!(
                "removing {what} (type {ty_name}) failed: {e}; deleting again retries, and DELETE with ?force=true forgets the extension without the datacenter"
            ))),
        };
    }

    let types = driver.extension_types();
    let ty = types.iter().find(|t| t.name == ty_name).ok_or_else(|| {
        failed(format!(
            "{what}: extension type {ty_name:?} is no longer in the catalogue"
        ))
    })?;
    if let Target::Cluster(c) = &target
        && ty.requires_linux_nodes
        && !linux
    {
        tracing::info!(operation = %op.id, extension = %record.id, r#type = %ty_name, "extension waits for Linux nodes");
        return Ok(Done::Waiting {
            message: waiting_message(&name, &ty_name, c),
        });
    }
    let current = record.internal.current_version.clone();
    let version =
        catalog::desired_version(ty, &record.spec, current.as_deref()).ok_or_else(|| {
            failed(format!(
                "{what}: release train {:?} of extension type {ty_name:?} has no versions",
                record.spec.release_train.as_deref().unwrap_or_default()
            ))
        })?;
    let req = ExtensionRequest {
        target: target_id.clone(),
        name: name.clone(),
        extension_type: ty_name.clone(),
        version: version.clone(),
        namespace: namespace_of(&record.spec, ty),
        settings: record.spec.configuration_settings.clone(),
        protected: ProtectedSettings(protected.unwrap_or_default()),
    };
    tracing::info!(
        operation = %op.id,
        extension = %record.id,
        r#type = %ty_name,
        %version,
        namespace = %req.namespace,
        from = current.as_deref().unwrap_or("-"),
        "applying extension"
    );
    match driver.apply_extension(&req).await {
        Ok(change) => Ok(Done::Applied { version, change }),
        Err(e) => {
            let doing = match current.as_deref() {
                None => format!("installing {what} (type {ty_name}, version {version})"),
                Some(v) if v != version => {
                    format!("upgrading {what} (type {ty_name}) from version {v} to {version}")
                }
                Some(_) => format!("reconfiguring {what} (type {ty_name}, version {version})"),
            };
            Err(failed(format!("{doing} failed: {e}")))
        }
    }
}

/// Adds `entry` unless the newest entry already says the same.
fn note(internal: &mut ExtensionInternal, level: StatusLevel, code: &str, message: String) {
    if internal
        .statuses
        .first()
        .is_some_and(|s| s.code == code && s.message == message)
    {
        return;
    }
    internal.push_status(status(level, code, message));
}

/// Records the outcome: the operation's status, the installed version and
/// a status entry and, when it is still the extension's current
/// operation, its provisioning state (or its removal after a delete).
async fn complete(
    ctx: &Context,
    op: &Operation,
    outcome: Result<Done, ApiError>,
) -> Result<(), StoreError> {
    let op = op.clone();
    let registry = ctx.registry.clone();
    ctx.store
        .write(false, move |tx| -> Result<_, StoreError> {
            tx.finish_operation(&op.id, outcome.as_ref().err())?;
            registry.completed(tx, &op, outcome.is_ok())?;
            let Some(mut record): Option<ExtensionRecord> = rec::get(tx, &op.target)? else {
                return Ok(());
            };
            let current = record.current_operation.as_deref() == Some(op.id.as_str());
            let ty = record.spec.extension_type.clone();
            let state = match outcome {
                Ok(Done::Nothing) => return Ok(()),
                Ok(Done::Removed) => {
                    if current {
                        tx.delete_secrets(&record.id)?;
                        tx.delete_object(ObjectKind::Extension, &record.id)?;
                    }
                    return Ok(());
                }
                Ok(Done::Waiting { message }) => {
                    note(
                        &mut record.internal,
                        StatusLevel::Warning,
                        "WaitingForLinuxNodes",
                        message,
                    );
                    ProvisioningState::Pending
                }
                Ok(Done::Applied { version, change }) => {
                    let before = record.internal.current_version.replace(version.clone());
                    let (code, message) = match (change, before) {
                        (ExtensionChange::VersionChanged { from }, _) => {
                            let up = catalog::older(&from, &version);
                            (
                                if up { "Upgraded" } else { "Downgraded" },
                                format!("{ty} {from} → {version}"),
                            )
                        }
                        (ExtensionChange::Reconfigured, _) => (
                            "Reconfigured",
                            format!("{ty} {version}: new settings applied"),
                        ),
                        _ => ("Installed", format!("{ty} {version} is installed")),
                    };
                    note(
                        &mut record.internal,
                        StatusLevel::Information,
                        code,
                        message,
                    );
                    ProvisioningState::Succeeded
                }
                Err(e) => {
                    let code = match op.kind.as_str() {
                        operation_kinds::EXTENSION_DELETE => "DeleteFailed",
                        _ if record.internal.current_version.is_none() => "InstallFailed",
                        _ => "UpdateFailed",
                    };
                    note(&mut record.internal, StatusLevel::Error, code, e.message);
                    ProvisioningState::Failed
                }
            };
            if current {
                record.provisioning_state = state;
            }
            record.updated_at = clock::now();
            rec::put(tx, &record)?;
            Ok(())
        })
        .await
}

/// Queues `kind` for `record` on its target's queue and moves it to `state`.
fn enqueue(
    tx: &mut dyn Tx,
    record: &mut ExtensionRecord,
    kind: &str,
    state: ProvisioningState,
) -> Result<Operation, StoreError> {
    let (target, name) = extension::parse_extension_id(&record.id)
        .and_then(|(t, n)| Target::parse(t).map(|t| (t, n.to_string())))
        .ok_or_else(|| StoreError::Corrupt(format!("{} is not an extension id", record.id)))?;
    let op = new_operation(kind, &record.id);
    record.provisioning_state = state;
    record.current_operation = Some(op.id.clone());
    record.updated_at = clock::now();
    rec::put(tx, record)?;
    tx.insert_operation(&op, &record.id, &target.queue(&name))?;
    Ok(op)
}

/// Queues the install of every `Pending` extension of `cluster` if Linux
/// nodes now run there. Called inside the transaction that completes a
/// node pool operation, so the install is queued exactly when the pool is
/// recorded as done.
fn resume_pending(tx: &mut dyn Tx, cluster: &str) -> Result<(), StoreError> {
    let cid = hybrid_api::cluster_id(cluster);
    let pending: Vec<ExtensionRecord> =
        rec::list::<ExtensionSpec, ExtensionInternal>(tx, Some(&cid))?
            .into_iter()
            .filter(|e| e.provisioning_state == ProvisioningState::Pending)
            .collect();
    if pending.is_empty() || !has_linux_nodes(tx, cluster)? {
        return Ok(());
    }
    for mut e in pending {
        note(
            &mut e.internal,
            StatusLevel::Information,
            "LinuxNodesAvailable",
            format!("Linux nodes run on cluster {cluster} now; installing"),
        );
        let kind = if e.internal.current_version.is_none() {
            operation_kinds::EXTENSION_CREATE
        } else {
            operation_kinds::EXTENSION_UPDATE
        };
        let op = enqueue(tx, &mut e, kind, ProvisioningState::Accepted)?;
        tracing::info!(operation = %op.id, extension = %e.id, r#type = %e.spec.extension_type, "Linux nodes available: installing the waiting extension");
    }
    Ok(())
}

/// At start-up: queues the install of waiting extensions whose cluster has
/// Linux nodes by now, and an upgrade for every extension that follows its
/// release train and runs an older version than the newest of its major.
async fn on_start(store: &Arc<dyn Store>, driver: &dyn Driver) -> Result<usize, StoreError> {
    let types = driver.extension_types();
    store
        .write(false, move |tx| -> Result<_, StoreError> {
            let mut queued = 0;
            let clusters: Vec<String> = tx
                .objects(ObjectKind::Extension, None)?
                .into_iter()
                .filter(|e| e.provisioning_state == ProvisioningState::Pending)
                .filter_map(|e| e.parent.as_deref().and_then(hybrid_api::cluster::parse_cluster_id).map(str::to_string))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for c in clusters {
                resume_pending(tx, &c)?;
            }
            for mut e in rec::list::<ExtensionSpec, ExtensionInternal>(tx, None)? {
                if e.provisioning_state != ProvisioningState::Succeeded
                    || e.spec.auto_upgrade_minor_version != Some(true)
                {
                    continue;
                }
                let (Some(ty), Some(current)) = (
                    types.iter().find(|t| t.name == e.spec.extension_type),
                    e.internal.current_version.clone(),
                ) else {
                    continue;
                };
                let Some(want) = catalog::desired_version(ty, &e.spec, Some(&current)) else {
                    continue;
                };
                if !catalog::older(&current, &want) {
                    continue;
                }
                let op = enqueue(
                    tx,
                    &mut e,
                    operation_kinds::EXTENSION_UPDATE,
                    ProvisioningState::Updating,
                )?;
                tracing::info!(operation = %op.id, extension = %e.id, r#type = %e.spec.extension_type, from = %current, to = %want, "automatic minor upgrade queued");
                queued += 1;
            }
            Ok(queued)
        })
        .await
}
