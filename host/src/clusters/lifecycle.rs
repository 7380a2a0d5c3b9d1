//! Runs cluster and node pool operations against the infrastructure driver.
//!
//! Admission already decided every VM (a `Pending` row with host and
//! address); the reconciler makes the datacenter match, one small step at a
//! time, writing each outcome back before the next step. Every step is
//! idempotent — the driver creates VMs by name and rows are only removed
//! after the driver confirmed — so an operation resumed after a crash picks
//! up where it stopped and never creates a second VM or takes a second IP.

use std::sync::Arc;

use hybrid_api::bootstrap::{self, BootstrapDocument, BootstrapRole, BootstrapSecret};
use hybrid_api::catalog::VmSize;
use hybrid_api::{ApiError, Operation, OsType, ProvisioningState, codes, operation_kinds};

use async_trait::async_trait;
use time::format_description::well_known::Rfc3339;

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
            operation_kinds::NODEPOOL_REPAIR,
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
        operation_kinds::NODEPOOL_REPAIR => {
            // The replacements the repair placed, and the VMs they replace
            // unless their host is down (deleted once it is back).
            let pool = pool.unwrap_or_default();
            let down = driver
                .hosts_down()
                .await
                .map_err(|e| infra(format!("reading which hosts are down: {e}")))?;
            realize(store, driver, &cluster, |v| {
                v.pool.as_deref() == Some(pool.as_str())
                    && (v.phase == VmPhase::Pending
                        || (v.phase == VmPhase::Deleting && !down.contains(&v.host)))
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
            c.internal.certificates = Some(
                super::certificates::CertificateState::issued(&ca.cert, &server.cert)
                    .map_err(|e| StoreError::Corrupt(format!("certificate validity: {e}")))?,
            );
            c.internal.ca_certificate = Some(ca.cert);
            rec::put(tx, &c)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The vnets, SSH keys and bootstrap material a cluster's VMs are created
/// with.
struct VmContext {
    vnets: std::collections::BTreeMap<String, hybrid_api::VnetSpec>,
    ssh_authorized_keys: Vec<String>,
    /// What every VM's bootstrap document shares; `None` while the cluster
    /// has no VIP or CA yet (its VMs then get no document).
    cluster: Option<ClusterBootstrap>,
    /// Pool specs by pool name (labels, taints, max pods).
    pools: std::collections::BTreeMap<String, hybrid_api::NodePoolSpec>,
    /// The cluster's bootstrap token (never stored unsealed or logged).
    secret: Option<BootstrapSecret>,
    /// A control-plane VM of the cluster exists (runs, drains or is being
    /// removed): the next control-plane VM joins rather than initialises.
    control_plane_exists: bool,
}

/// The cluster-wide part of the bootstrap documents.
struct ClusterBootstrap {
    name: String,
    vip: String,
    ca_certificate: String,
    ca_cert_hash: String,
    network: hybrid_api::cluster::ClusterNetwork,
}

impl VmContext {
    async fn load(store: &Arc<dyn Store>, cluster: &str, vms: &[VmRow]) -> Result<Self, StepError> {
        let id = hybrid_api::cluster_id(cluster);
        let name = cluster.to_string();
        let names: std::collections::BTreeSet<String> =
            vms.iter().map(|v| v.vnet.clone()).collect();
        let joins = vms.iter().any(|v| v.role != VmRole::LoadBalancer);
        store
            .write(false, move |tx| -> Result<_, Error> {
                let mut vnets = std::collections::BTreeMap::new();
                for name in names {
                    if let Some(snap) = tx.vnet(&name)? {
                        vnets.insert(name, snap.record.spec);
                    }
                }
                let record = rec::get::<hybrid_api::ClusterSpec, ClusterInternal>(tx, &id)?;
                let ssh_authorized_keys = record
                    .as_ref()
                    .and_then(|c| c.spec.ssh_public_key.clone())
                    .into_iter()
                    .collect();
                let cluster = record.and_then(|c| {
                    let ca_certificate = c.internal.ca_certificate?;
                    Some(ClusterBootstrap {
                        name: name.clone(),
                        vip: c.internal.vip?,
                        ca_cert_hash: spki_sha256(&ca_certificate)?,
                        ca_certificate,
                        network: c.spec.network,
                    })
                });
                let mut pools = std::collections::BTreeMap::new();
                for pool in tx.vms(Some(&name))?.iter().filter_map(|v| v.pool.clone()) {
                    if pools.contains_key(&pool) {
                        continue;
                    }
                    let pid = hybrid_api::nodepool_id(&name, &pool);
                    if let Some(p) = rec::get::<hybrid_api::NodePoolSpec, NoInternal>(tx, &pid)? {
                        pools.insert(pool, p.spec);
                    }
                }
                let control_plane_exists = tx.vms(Some(&name))?.iter().any(|v| {
                    v.role == VmRole::ControlPlane
                        && matches!(
                            v.phase,
                            VmPhase::Running | VmPhase::Draining | VmPhase::Deleting
                        )
                });
                let secret = match cluster.is_some() && joins {
                    true => Some(bootstrap_token(tx, &id)?),
                    false => None,
                };
                Ok(VmContext {
                    vnets,
                    ssh_authorized_keys,
                    cluster,
                    pools,
                    secret,
                    control_plane_exists,
                })
            })
            .await
            .map_err(StepError::from)
    }

    /// The VM's bootstrap document and secret (load balancers get no
    /// secret: they join nothing).
    fn bootstrap(&self, vm: &VmRow) -> (Option<BootstrapDocument>, Option<BootstrapSecret>) {
        let Some(c) = &self.cluster else {
            return (None, None);
        };
        let role = match vm.role {
            VmRole::ControlPlane => BootstrapRole::ControlPlane,
            VmRole::Node => BootstrapRole::Worker,
            VmRole::LoadBalancer => BootstrapRole::LoadBalancer,
        };
        let init = role == BootstrapRole::ControlPlane && !self.control_plane_exists;
        let pool = vm.pool.as_ref().and_then(|p| self.pools.get(p));
        let doc = BootstrapDocument {
            api_version: bootstrap::API_VERSION.to_string(),
            kind: bootstrap::KIND.to_string(),
            role,
            init,
            cluster_name: c.name.clone(),
            node_name: vm.name.clone(),
            kubernetes_version: vm.kubernetes_version.clone(),
            api_endpoint: format!("{}:{}", c.vip, bootstrap::API_SERVER_PORT),
            control_plane_vip: init.then(|| c.vip.clone()),
            ca_certificate: c.ca_certificate.clone(),
            ca_cert_hash: c.ca_cert_hash.clone(),
            labels: pool.map(|p| p.labels.clone()).unwrap_or_default(),
            taints: pool.map(|p| p.taints.clone()).unwrap_or_default(),
            max_pods: pool
                .and_then(|p| p.max_pods)
                .unwrap_or(bootstrap::DEFAULT_MAX_PODS),
            pod_cidr: c.network.pod_cidr.clone(),
            service_cidr: c.network.service_cidr.clone(),
            network_plugin: c.network.plugin,
        };
        let secret = match role {
            BootstrapRole::LoadBalancer => None,
            _ => self.secret.clone(),
        };
        (Some(doc), secret)
    }

    fn request(&self, vm: &VmRow) -> VmRequest {
        let (bootstrap, bootstrap_secret) = self.bootstrap(vm);
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
                // VLAN 0 is 802.1Q's "no VLAN": the API takes it as untagged
                // (as the overlap rule does); agents only know tags 1–4094.
                vlan_id: vnet.and_then(|v| v.vlan_id).filter(|&id| id != 0),
                address: match (&vm.ip, prefix_len) {
                    (Some(ip), Some(len)) => Some(format!("{ip}/{len}")),
                    _ => None,
                },
                gateway: vnet.and_then(|v| v.gateway.clone()),
                dns_servers: vnet.map(|v| v.dns_servers.clone()).unwrap_or_default(),
                mac: hybrid_api::agent::mac_for(&vm.name),
            },
            ssh_authorized_keys: self.ssh_authorized_keys.clone(),
            bootstrap,
            bootstrap_secret,
        }
    }
}

/// How long a cluster's bootstrap token is valid (kubeadm's default TTL).
const BOOTSTRAP_TOKEN_TTL: time::Duration = time::Duration::hours(24);
/// A token with less than this left is replaced before it is handed out,
/// so that a VM always gets one that outlives its boot.
const BOOTSTRAP_TOKEN_MIN_LEFT: time::Duration = time::Duration::hours(1);
/// The store secret (sealed) that holds the cluster's bootstrap token.
const BOOTSTRAP_TOKEN_SECRET: &str = "bootstrap_token";

/// The cluster's bootstrap token, minted (and kept sealed among the
/// cluster's secrets) when it has none or when it is about to expire.
fn bootstrap_token(
    tx: &mut dyn crate::store::Tx,
    cluster_id: &str,
) -> Result<BootstrapSecret, Error> {
    let now = time::OffsetDateTime::now_utc();
    let current = tx
        .secret(cluster_id, BOOTSTRAP_TOKEN_SECRET)?
        .and_then(|s| serde_json::from_str::<BootstrapSecret>(&s).ok())
        .filter(|s| {
            time::OffsetDateTime::parse(&s.expires_at, &Rfc3339)
                .is_ok_and(|at| at - now >= BOOTSTRAP_TOKEN_MIN_LEFT)
        });
    if let Some(current) = current {
        return Ok(current);
    }
    let expires_at = (now + BOOTSTRAP_TOKEN_TTL)
        .format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("formatting a token expiry: {e}")))?;
    let secret = BootstrapSecret {
        api_version: bootstrap::API_VERSION.to_string(),
        bootstrap_token: new_bootstrap_token(),
        expires_at,
    };
    let sealed = serde_json::to_string(&secret)
        .map_err(|e| StoreError::Corrupt(format!("encoding the bootstrap token: {e}")))?;
    tx.put_secret(cluster_id, BOOTSTRAP_TOKEN_SECRET, &sealed)?;
    Ok(secret)
}

/// `sha256:<hex>` of a PEM certificate's SubjectPublicKeyInfo: what
/// `kubeadm join --discovery-token-ca-cert-hash` pins.
fn spki_sha256(pem: &str) -> Option<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    Some(format!("sha256:{}", hex::encode(hash.as_ref())))
}

/// A fresh kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`.
fn new_bootstrap_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = part(6);
    format!("{id}.{}", part(16))
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

/// Creates one VM and records its phase: `Running`, or `Failed` with the
/// driver's error as the step's.
async fn create_one(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    cluster: &str,
    req: &VmRequest,
    vm: &VmRow,
) -> Result<(), StepError> {
    match driver.create_vm(req).await {
        Ok(_) => set_phase(store, cluster, &vm.name, VmPhase::Running).await,
        Err(e) => {
            tracing::warn!(vm = %vm.name, host = %vm.host, error = %e, "VM creation failed");
            set_phase(store, cluster, &vm.name, VmPhase::Failed).await?;
            Err(infra(format!("VM {} on {}: {e}", vm.name, vm.host)))
        }
    }
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
    let all: Vec<VmRow> = store.view(move |tx| tx.vms(Some(&c))).await?;
    // The control plane's etcd members: running control-plane VMs (a
    // draining one still serves until it is removed). A new one becomes a
    // member once it runs (it joins as a learner and is promoted then).
    let mut members = all
        .iter()
        .filter(|v| {
            v.role == VmRole::ControlPlane
                && matches!(v.phase, VmPhase::Running | VmPhase::Draining)
        })
        .count();
    let vms: Vec<VmRow> = all.into_iter().filter(|v| scope(v)).collect();
    let creating: Vec<&VmRow> = vms
        .iter()
        .filter(|v| matches!(v.phase, VmPhase::Pending | VmPhase::Failed))
        .collect();
    // A VM whose earlier boot failed is being created again: it is
    // `Pending` meanwhile, so nothing shows `Failed` while the work runs.
    for vm in creating.iter().filter(|v| v.phase == VmPhase::Failed) {
        set_phase(store, cluster, &vm.name, VmPhase::Pending).await?;
    }
    // The vnets and keys are read only when there is something to create.
    let mut context = match creating.is_empty() {
        true => None,
        false => Some(VmContext::load(store, cluster, &vms).await?),
    };
    // Control planes one at a time, in order: the first initialises the
    // cluster and each later one joins what is there, so membership grows
    // by one member at a time and every new member runs before the next
    // is asked for (and before any member is removed, below). The other VMs (pool
    // nodes, load balancers) need nothing from each other, so they are
    // created side by side: a pool of N is ready in about one boot, not N
    // boots one after another. Each is marked as soon as its own create
    // ends; the first failure is the step's (every failed VM is marked).
    let (control_planes, others): (Vec<&VmRow>, Vec<&VmRow>) = creating
        .into_iter()
        .partition(|v| v.role == VmRole::ControlPlane);
    let mut joined: Vec<&VmRow> = Vec::new();
    for vm in control_planes {
        let Some(context) = context.as_mut() else {
            break;
        };
        if let Err(e) = create_one(store, driver, cluster, &context.request(vm), vm).await {
            return Err(keep_odd_control_plane(store, driver, cluster, members, &joined, e).await);
        }
        members += 1;
        joined.push(vm);
        // The control planes after the first join it.
        context.control_plane_exists = true;
    }
    if let Some(context) = context.as_ref() {
        let requests: Vec<(VmRequest, &VmRow)> = others
            .into_iter()
            .map(|vm| (context.request(vm), vm))
            .collect();
        futures_util::future::join_all(
            requests
                .iter()
                .map(|(req, vm)| create_one(store, driver, cluster, req, vm)),
        )
        .await
        .into_iter()
        .collect::<Result<Vec<()>, StepError>>()?;
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

/// After a control-plane VM failed to boot mid-change: when the members
/// that do run are an even number, takes the last one this step added out
/// again (its row goes back to `Pending`, so the next apply re-creates it
/// in order). Two members tolerate no more failures than one, and four no
/// more than three, while each needs one more healthy member for quorum:
/// the odd size below is the safer place to stop. It is never below the
/// size the change started from (only members this step added are taken
/// out). The step's error then says where the control plane stands.
async fn keep_odd_control_plane(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    cluster: &str,
    members: usize,
    joined: &[&VmRow],
    error: StepError,
) -> StepError {
    let StepError::Failed(mut failure) = error else {
        return error;
    };
    let mut members = members;
    let mut note = String::new();
    if members.is_multiple_of(2)
        && let Some(last) = joined.last()
    {
        match take_out(store, driver, cluster, last).await {
            Ok(()) => {
                members -= 1;
                note = format!(
                    "; {} was taken out again so that the control plane keeps an odd number of members",
                    last.name
                );
            }
            Err(StepError::Failed(e)) => {
                note = format!(
                    "; taking {} out again (to keep an odd number of members) failed too: {}",
                    last.name, e.message
                );
            }
            Err(store_error) => return store_error,
        }
    }
    failure.message = format!(
        "control plane change stopped at {members} running member(s): {}{note}; apply the same configuration again to retry",
        failure.message
    );
    failure
        .target
        .get_or_insert_with(|| "control_plane.count".to_string());
    StepError::Failed(failure)
}

/// Deletes a control-plane VM this step created and puts its row back to
/// `Pending` (keeping its host and address): decided, not running.
async fn take_out(
    store: &Arc<dyn Store>,
    driver: &dyn Driver,
    cluster: &str,
    vm: &VmRow,
) -> Result<(), StepError> {
    driver
        .delete_vm(&vm.name)
        .await
        .map_err(|e| infra(format!("deleting VM {} on {}: {e}", vm.name, vm.host)))?;
    let (cluster, name) = (cluster.to_string(), vm.name.clone());
    store
        .write(false, move |tx| -> Result<_, Error> {
            if let Some(mut vm) = tx.vms(Some(&cluster))?.into_iter().find(|v| v.name == name)
                && vm.phase == VmPhase::Running
            {
                vm.phase = VmPhase::Pending;
                vm.updated_at = clock::now();
                tx.put_vm(&vm)?;
            }
            Ok(())
        })
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, role: VmRole, pool: Option<&str>) -> VmRow {
        VmRow {
            name: name.to_string(),
            cluster: "c1".to_string(),
            pool: pool.map(str::to_string),
            role,
            index: 0,
            host: "h1".to_string(),
            vnet: "v".to_string(),
            ip: Some("10.0.0.10".to_string()),
            vm_size: "Tiny".to_string(),
            vcpus: 1,
            memory_mib: 160,
            disk_gib: 1,
            os_type: "linux".to_string(),
            image: "default".to_string(),
            kubernetes_version: "1.32.3".to_string(),
            phase: VmPhase::Pending,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn context() -> VmContext {
        let mut pool: hybrid_api::NodePoolSpec =
            serde_json::from_value(serde_json::json!({ "os_type": "linux" })).unwrap();
        pool.labels.insert("tier".into(), "web".into());
        pool.taints.push("dedicated=web:NoSchedule".into());
        pool.max_pods = Some(42);
        let ca = certs::new_cluster_ca("c1").unwrap();
        VmContext {
            vnets: Default::default(),
            ssh_authorized_keys: Vec::new(),
            cluster: Some(ClusterBootstrap {
                name: "c1".into(),
                vip: "10.0.0.200".into(),
                ca_cert_hash: spki_sha256(&ca.cert).unwrap(),
                ca_certificate: ca.cert,
                network: Default::default(),
            }),
            pools: [("p1".to_string(), pool)].into(),
            secret: Some(BootstrapSecret {
                api_version: bootstrap::API_VERSION.into(),
                bootstrap_token: new_bootstrap_token(),
                expires_at: "2030-01-01T00:00:00Z".into(),
            }),
            control_plane_exists: false,
        }
    }

    #[test]
    fn tokens_have_kubeadms_form_and_differ() {
        let a = new_bootstrap_token();
        assert!(bootstrap::is_bootstrap_token(&a), "{a}");
        assert_ne!(a, new_bootstrap_token());
    }

    #[test]
    fn ca_hash_is_of_the_public_key() {
        let ca = certs::new_cluster_ca("c1").unwrap();
        let hash = spki_sha256(&ca.cert).unwrap();
        assert!(
            hash.starts_with("sha256:") && hash.len() == 7 + 64,
            "{hash}"
        );
        assert_eq!(spki_sha256(&ca.cert), Some(hash.clone()));
        let other = certs::new_cluster_ca("c1").unwrap();
        assert_ne!(spki_sha256(&other.cert), Some(hash));
        assert_eq!(spki_sha256("not a certificate"), None);
    }

    #[test]
    fn documents_follow_role_pool_and_first_control_plane() {
        let mut ctx = context();
        let cp = ctx.request(&row("c1-cp-0", VmRole::ControlPlane, None));
        let doc = cp.bootstrap.unwrap();
        assert_eq!(
            (doc.role, doc.init, doc.control_plane_vip.as_deref()),
            (BootstrapRole::ControlPlane, true, Some("10.0.0.200"))
        );
        assert_eq!(doc.api_endpoint, "10.0.0.200:6443");
        assert_eq!(doc.api_version, "hybrid.bootstrap/v1");
        assert_eq!(doc.node_name, "c1-cp-0");
        assert!(
            doc.ca_certificate
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(
            (doc.pod_cidr.as_str(), doc.service_cidr.as_str()),
            (
                hybrid_api::cluster::DEFAULT_POD_CIDR,
                hybrid_api::cluster::DEFAULT_SERVICE_CIDR
            )
        );
        assert!(cp.bootstrap_secret.is_some());

        // The next control plane joins, without the VIP.
        ctx.control_plane_exists = true;
        let cp1 = ctx
            .request(&row("c1-cp-1", VmRole::ControlPlane, None))
            .bootstrap
            .unwrap();
        assert_eq!((cp1.init, cp1.control_plane_vip), (false, None));

        let node = ctx.request(&row("c1-p1-0", VmRole::Node, Some("p1")));
        let doc = node.bootstrap.unwrap();
        assert_eq!((doc.role, doc.init), (BootstrapRole::Worker, false));
        assert_eq!(doc.labels.get("tier").map(String::as_str), Some("web"));
        assert_eq!(doc.taints, vec!["dedicated=web:NoSchedule".to_string()]);
        assert_eq!(doc.max_pods, 42);
        assert_eq!(
            node.bootstrap_secret.map(|s| s.bootstrap_token),
            ctx.secret.as_ref().map(|s| s.bootstrap_token.clone())
        );

        // A load balancer joins nothing: no secret.
        let lb = ctx.request(&row("c1-lb-0", VmRole::LoadBalancer, None));
        assert_eq!(
            lb.bootstrap.map(|d| d.role),
            Some(BootstrapRole::LoadBalancer)
        );
        assert!(lb.bootstrap_secret.is_none());

        // The request's Debug never shows the token.
        let token = ctx.secret.as_ref().unwrap().bootstrap_token.clone();
        let shown = format!(
            "{:?}",
            ctx.request(&row("c1-p1-1", VmRole::Node, Some("p1")))
        );
        assert!(!shown.contains(&token), "{shown}");

        // No VIP or CA yet: no document.
        ctx.cluster = None;
        assert!(
            ctx.request(&row("c1-p1-2", VmRole::Node, Some("p1")))
                .bootstrap
                .is_none()
        );
    }
}
