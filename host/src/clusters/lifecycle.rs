//! Runs cluster and node pool operations against the infrastructure driver.
//!
//! Admission already decided every VM (a `Pending` row with host and
//! address); the reconciler makes the datacenter match, one small step at a
//! time, writing each outcome back before the next step. Every step is
//! idempotent — the driver creates VMs by name and rows are only removed
//! after the driver confirmed — so an operation resumed after a crash picks
//! up where it stopped and never creates a second VM or takes a second IP.

use std::sync::Arc;

use hybrid_api::catalog::VmSize;
use hybrid_api::{ApiError, Operation, OsType, ProvisioningState, codes, operation_kinds};

use async_trait::async_trait;

use super::certs;
use super::vms::{self, NewVm};
use super::{ClusterInternal, ClusterRecord, PoolRecord};
use crate::clock;
use crate::driver::{Driver, VmRequest};
use crate::objects::record::tx as rec;
use crate::objects::{Env, Error, NoInternal, Reason, Record, Refusal, StepError, children};
use crate::operations::{Context, Ended, Lifecycle, log_failure};
use crate::store::{ObjectKind, Store, StoreError, VmPhase, VmRole, VmRow};

fn infra(message: impl Into<String>) -> StepError {
    StepError::infra(message)
}

/// The lifecycle of `cluster.*` and `nodepool.*` operations.
pub struct ClusterLifecycle;

#[async_trait]
impl Lifecycle for ClusterLifecycle {
    fn kinds(&self) -> &'static [&'static str] {
        &[
            operation_kinds::CLUSTER_CREATE,
            operation_kinds::CLUSTER_UPDATE,
            operation_kinds::CLUSTER_DELETE,
            operation_kinds::NODEPOOL_CREATE,
            operation_kinds::NODEPOOL_UPDATE,
            operation_kinds::NODEPOOL_DELETE,
        ]
    }

    async fn execute(&self, ctx: &Context, op: &Operation) -> Ended {
        let outcome = match Env::read(ctx.driver.as_ref()).await {
            Ok(env) => run(&ctx.store, ctx.driver.as_ref(), &env, op).await,
            Err(e) => Err(infra(format!("cannot read the datacenter inventory: {e}"))),
        };
        let error = match outcome {
            Err(StepError::Store(e)) => {
                // Not the operation's fault: leave it Running; it is retried
                // on the next scan or restart.
                tracing::error!(operation = %op.id, error = %e, "store failure while running operation; will retry");
                return Ended::Retry;
            }
            Ok(()) => None,
            Err(StepError::Failed(e)) => Some(e),
        };
        log_failure(op, error.as_ref());
        let ended = if error.is_none() {
            Ended::Succeeded
        } else {
            Ended::Failed
        };
        if let Err(e) = complete(ctx, op, error).await {
            tracing::error!(operation = %op.id, error = %e, "cannot record completion");
        }
        ended
    }
}

/// Executes one cluster-scoped operation.
async fn run(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    env: &Env,
    op: &Operation,
) -> Result<(), StepError> {
    let (cluster, pool) = match hybrid_api::nodepool::parse_nodepool_id(&op.target) {
        Some((c, p)) => (c.to_string(), Some(p.to_string())),
        None => (
            hybrid_api::cluster::parse_cluster_id(&op.target)
                .ok_or_else(|| infra(format!("operation target {} is not a cluster", op.target)))?
                .to_string(),
            None,
        ),
    };
    match op.kind.as_str() {
        operation_kinds::CLUSTER_CREATE | operation_kinds::CLUSTER_UPDATE => {
            ensure_pki(store, &cluster).await?;
            // Node VMs are the pools' business, except a replacement this
            // operation started (a resumed or retried upgrade): the surge VM
            // of a pool that has a draining VM, and that draining VM.
            let c = cluster.clone();
            let replacing: std::collections::BTreeSet<Option<String>> = store
                .view(move |tx| -> Result<_, Error> {
                    Ok(tx
                        .vms(Some(&c))?
                        .into_iter()
                        .filter(|v| v.phase == VmPhase::Draining)
                        .map(|v| v.pool)
                        .collect())
                })
                .await?;
            realize(store, driver, &cluster, |v| {
                v.role != VmRole::Node || replacing.contains(&v.pool)
            })
            .await?;
            rolling_upgrade(store, driver, env, &cluster).await
        }
        operation_kinds::NODEPOOL_CREATE | operation_kinds::NODEPOOL_UPDATE => {
            let pool = pool.unwrap_or_default();
            realize(store, driver, &cluster, |v| {
                v.pool.as_deref() == Some(pool.as_str())
            })
            .await
        }
        operation_kinds::NODEPOOL_DELETE => {
            let pool = pool.unwrap_or_default();
            realize(store, driver, &cluster, |v| {
                v.pool.as_deref() == Some(pool.as_str())
            })
            .await
        }
        operation_kinds::CLUSTER_DELETE => {
            realize(store, driver, &cluster, |_| true).await?;
            // Its extensions go with its VMs.
            let cid = hybrid_api::cluster_id(&cluster);
            driver
                .remove_target_extensions(&cid)
                .await
                .map_err(|e| infra(format!("removing the extensions of cluster {cluster}: {e}")))?;
            // Nothing may outlive the cluster: a VM row left means a VM the
            // service would lose track of.
            let c = cluster.clone();
            let left: Vec<String> = store
                .view(move |tx| -> Result<_, Error> {
                    Ok(tx.vms(Some(&c))?.into_iter().map(|v| v.name).collect())
                })
                .await?;
            if left.is_empty() {
                Ok(())
            } else {
                Err(infra(format!(
                    "cluster {cluster} still has VMs {}; deleting again will retry",
                    left.join(", ")
                )))
            }
        }
        other => Err(infra(format!("unknown operation kind {other:?}"))),
    }
}

/// Generates the cluster CA and API-server certificate once.
async fn ensure_pki(store: &Arc<dyn Store>, cluster: &str) -> Result<(), StepError> {
    let id = hybrid_api::cluster_id(cluster);
    let name = cluster.to_string();
    store
        .write(false, move |tx| -> Result<_, Error> {
            let Some(mut c): Option<ClusterRecord> = rec::get(tx, &id)? else {
                return Ok(());
            };
            if c.internal.ca_certificate.is_some() {
                return Ok(());
            }
            let pki_err =
                |e: rcgen::Error| StoreError::Corrupt(format!("certificate generation: {e}"));
            let ca = certs::new_cluster_ca(&name).map_err(pki_err)?;
            let vip = c.internal.vip.clone().unwrap_or_default();
            let server = certs::apiserver_cert(&ca, &name, &vip).map_err(pki_err)?;
            tx.put_secret(&id, "ca_key", &ca.key)?;
            tx.put_secret(&id, "apiserver_key", &server.key)?;
            tx.put_secret(&id, "apiserver_cert", &server.cert)?;
            c.internal.ca_certificate = Some(ca.cert);
            rec::put(tx, &c)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The vnets and SSH keys a cluster's VMs are created with.
struct VmContext {
    vnets: std::collections::BTreeMap<String, hybrid_api::VnetSpec>,
    ssh_authorized_keys: Vec<String>,
}

impl VmContext {
    async fn load(store: &Arc<dyn Store>, cluster: &str, vms: &[VmRow]) -> Result<Self, StepError> {
        let id = hybrid_api::cluster_id(cluster);
        let names: std::collections::BTreeSet<String> =
            vms.iter().map(|v| v.vnet.clone()).collect();
        store
            .view(move |tx| -> Result<_, Error> {
                let mut vnets = std::collections::BTreeMap::new();
                for name in names {
                    if let Some(snap) = tx.vnet(&name)? {
                        vnets.insert(name, snap.record.spec);
                    }
                }
                let ssh_authorized_keys =
                    rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &id)?
                        .and_then(|c| c.spec.ssh_public_key)
                        .into_iter()
                        .collect();
                Ok(VmContext {
                    vnets,
                    ssh_authorized_keys,
                })
            })
            .await
            .map_err(StepError::from)
    }

    fn request(&self, vm: &VmRow) -> VmRequest {
        let vnet = self.vnets.get(&vm.vnet);
        let prefix_len = vnet
            .and_then(|v| v.address_prefix.split_once('/'))
            .map(|(_, len)| len.to_string());
        VmRequest {
            name: vm.name.clone(),
            host: vm.host.clone(),
            size: VmSize {
                name: vm.vm_size.clone(),
                vcpus: vm.vcpus,
                memory_mib: vm.memory_mib,
                disk_gib: vm.disk_gib,
            },
            image: vm.image.clone(),
            role: vm.role.as_str().to_string(),
            network: hybrid_api::agent::VmNetwork {
                vnet: vm.vnet.clone(),
                vlan_id: vnet.and_then(|v| v.vlan_id),
                address: match (&vm.ip, prefix_len) {
                    (Some(ip), Some(len)) => Some(format!("{ip}/{len}")),
                    _ => None,
                },
                gateway: vnet.and_then(|v| v.gateway.clone()),
                dns_servers: vnet.map(|v| v.dns_servers.clone()).unwrap_or_default(),
                mac: hybrid_api::agent::mac_for(&vm.name),
            },
            ssh_authorized_keys: self.ssh_authorized_keys.clone(),
        }
    }
}

/// Moves VM `name` from a creating phase (Pending/Failed) to `phase`. A VM
/// marked for removal meanwhile (a delete accepted while this operation
/// ran) keeps that mark, so the delete operation still finds and removes it.
async fn set_phase(
    store: &Arc<dyn Store>,
    cluster: &str,
    name: &str,
    phase: VmPhase,
) -> Result<(), StepError> {
    let (cluster, name) = (cluster.to_string(), name.to_string());
    store
        .write(false, move |tx| -> Result<_, Error> {
            if let Some(mut vm) = tx.vms(Some(&cluster))?.into_iter().find(|v| v.name == name)
                && matches!(vm.phase, VmPhase::Pending | VmPhase::Failed)
            {
                vm.phase = phase;
                vm.updated_at = clock::now();
                tx.put_vm(&vm)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Brings the cluster's VMs selected by `scope` to their decided phase:
/// creates Pending/Failed ones, then removes Deleting/Draining ones (so a
/// drained VM goes only after its replacement runs).
async fn realize(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    cluster: &str,
    scope: impl Fn(&VmRow) -> bool,
) -> Result<(), StepError> {
    let c = cluster.to_string();
    let vms: Vec<VmRow> = store
        .view(move |tx| tx.vms(Some(&c)))
        .await?
        .into_iter()
        .filter(|v| scope(v))
        .collect();
    let creating: Vec<&VmRow> = vms
        .iter()
        .filter(|v| matches!(v.phase, VmPhase::Pending | VmPhase::Failed))
        .collect();
    // The vnets and keys are read only when there is something to create.
    let context = match creating.is_empty() {
        true => None,
        false => Some(VmContext::load(store, cluster, &vms).await?),
    };
    for (vm, context) in creating
        .into_iter()
        .filter_map(|vm| Some((vm, context.as_ref()?)))
    {
        match driver.create_vm(&context.request(vm)).await {
            Ok(_) => set_phase(store, cluster, &vm.name, VmPhase::Running).await?,
            Err(e) => {
                tracing::warn!(vm = %vm.name, host = %vm.host, error = %e, "VM creation failed");
                set_phase(store, cluster, &vm.name, VmPhase::Failed).await?;
                return Err(infra(format!("VM {} on {}: {e}", vm.name, vm.host)));
            }
        }
    }
    for vm in vms
        .iter()
        .filter(|v| matches!(v.phase, VmPhase::Deleting | VmPhase::Draining))
    {
        driver
            .delete_vm(&vm.name)
            .await
            .map_err(|e| infra(format!("deleting VM {} on {}: {e}", vm.name, vm.host)))?;
        let vm = vm.clone();
        store
            .write(false, move |tx| -> Result<_, Error> {
                tx.delete_vm(&vm.name)?;
                let Some(ip) = &vm.ip else { return Ok(()) };
                let cid = hybrid_api::cluster_id(&vm.cluster);
                let surge_back = vm.phase == VmPhase::Draining
                    && rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &cid)?
                        .is_some_and(|c| c.provisioning_state != ProvisioningState::Deleting);
                if surge_back {
                    // The drained VM's address becomes the cluster's surge address.
                    tx.set_reservation_owner(&vm.vnet, ip, &cid)?;
                    if let Some(mut c) =
                        rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &cid)?
                    {
                        c.internal.surge_ip = Some(ip.clone());
                        rec::put(tx, &c)?;
                    }
                } else {
                    tx.delete_reservation(&vm.vnet, ip)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Replaces, one surge VM at a time, every control-plane and node VM that
/// does not run the cluster's desired version.
async fn rolling_upgrade(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    env: &Env,
    cluster: &str,
) -> Result<(), StepError> {
    let id = hybrid_api::cluster_id(cluster);
    loop {
        let (c, e, i) = (cluster.to_string(), env.clone(), id.clone());
        let next: Option<(String, String)> = store
            .write(false, move |tx| -> Result<_, Error> {
                let Some(mut rec_c): Option<ClusterRecord> = rec::get(tx, &i)? else {
                    return Ok(None);
                };
                let desired = rec_c.spec.kubernetes_version.clone().unwrap_or_default();
                let vms = tx.vms(Some(&c))?;
                // Control plane first, then pools in name order.
                let stale = vms
                    .iter()
                    .filter(|v| v.phase == VmPhase::Running && v.role != VmRole::LoadBalancer)
                    .filter(|v| v.kubernetes_version != desired)
                    .min_by_key(|v| (v.role != VmRole::ControlPlane, v.pool.clone(), v.index))
                    .cloned();
                let Some(old) = stale else {
                    if rec_c.internal.current_version.as_deref() != Some(desired.as_str()) {
                        rec_c.internal.current_version = Some(desired);
                        rec::put(tx, &rec_c)?;
                    }
                    return Ok(None);
                };
                let Some(surge) = rec_c.internal.surge_ip.take() else {
                    return Err(Error::Refused(Refusal::new(
                        Reason::Conflict,
                        codes::INFRASTRUCTURE_FAILED,
                        format!("cluster {c} has no free surge address for the rolling upgrade"),
                    )));
                };
                let pool_spec = match &old.pool {
                    Some(p) => rec::get::<hybrid_api::NodePoolSpec, NoInternal>(
                        tx,
                        &hybrid_api::nodepool_id(&c, p),
                    )?
                    .map(|p: PoolRecord| p.spec),
                    None => None,
                };
                let os = OsType::parse(&old.os_type).unwrap_or(OsType::Linux);
                let sku = pool_spec
                    .as_ref()
                    .and_then(|s| s.os_sku.clone())
                    .unwrap_or_else(|| os.default_sku().to_string());
                let size = VmSize {
                    name: old.vm_size.clone(),
                    vcpus: old.vcpus,
                    memory_mib: old.memory_mib,
                    disk_gib: old.disk_gib,
                };
                let owner = match &old.pool {
                    Some(p) => hybrid_api::nodepool_id(&c, p),
                    None => i.clone(),
                };
                tx.set_reservation_owner(&old.vnet, &surge, &owner)?;
                let new = NewVm {
                    cluster: &c,
                    pool: old.pool.as_deref(),
                    role: old.role,
                    size: &size,
                    os,
                    sku: &sku,
                    version: &desired,
                };
                let placed = vms::place_vms(tx, &e, &new, &old.vnet, vec![Some(surge)])?;
                let mut drained = old.clone();
                drained.phase = VmPhase::Draining;
                drained.updated_at = clock::now();
                tx.put_vm(&drained)?;
                rec::put(tx, &rec_c)?;
                let new_name = placed.first().map(|v| v.name.clone()).unwrap_or_default();
                Ok(Some((old.name, new_name)))
            })
            .await?;
        let Some((old, new)) = next else {
            return Ok(());
        };
        tracing::info!(cluster, %old, %new, "rolling upgrade: replacing a VM with a surge VM");
        let (o, n) = (old.clone(), new.clone());
        realize(store, driver, cluster, move |v| v.name == o || v.name == n).await?;
    }
}

/// Records the outcome: the operation's status and, when it is still the
/// object's current operation, its provisioning state (or its removal
/// after a successful delete, releasing every address it held).
async fn complete(
    ctx: &Context,
    op: &Operation,
    error: Option<ApiError>,
) -> Result<(), StoreError> {
    let op = op.clone();
    let registry = ctx.registry.clone();
    ctx.store
        .write(false, move |tx| -> Result<_, StoreError> {
            tx.finish_operation(&op.id, error.as_ref())?;
            // Work of other kinds that waited for this (extensions waiting
            // for Linux nodes) is queued in this same transaction.
            registry.completed(tx, &op, error.is_none())?;
            let kind = if hybrid_api::nodepool::parse_nodepool_id(&op.target).is_some() {
                ObjectKind::NodePool
            } else {
                ObjectKind::Cluster
            };
            let Some(mut row) = tx.object(kind, &op.target)? else {
                return Ok(());
            };
            if row.current_operation.as_deref() != Some(op.id.as_str()) {
                return Ok(()); // superseded by a newer operation
            }
            let deleting = op.kind == operation_kinds::CLUSTER_DELETE
                || op.kind == operation_kinds::NODEPOOL_DELETE;
            if deleting && error.is_none() {
                if kind == ObjectKind::Cluster {
                    let cluster: ClusterRecord = Record::from_row(row)?;
                    let vnet = cluster
                        .spec
                        .vnet_id
                        .trim_start_matches("/vnets/")
                        .to_string();
                    for ip in [
                        cluster.internal.vip.as_ref(),
                        cluster.internal.surge_ip.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        tx.delete_reservation(&vnet, ip)?;
                    }
                    // Its pools and extensions go with it.
                    children::forget(tx, &cluster.id)?;
                    tx.delete_secrets(&cluster.id)?;
                    tx.delete_object(ObjectKind::Cluster, &cluster.id)?;
                } else {
                    tx.delete_object(kind, &op.target)?;
                }
                return Ok(());
            }
            row.provisioning_state = if error.is_none() {
                ProvisioningState::Succeeded
            } else {
                ProvisioningState::Failed
            };
            row.updated_at = clock::now();
            tx.put_object(&row)?;
            Ok(())
        })
        .await
}
