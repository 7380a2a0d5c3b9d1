//! The `agents` driver: real VMs on the physical hosts that run
//! `hybrid-agent`, one agent per host.
//!
//! hybrid-host calls the agents (never the reverse, but for joining): any
//! replica can reach any agent, and every driver call is one request with
//! an answer and a timeout. The inventory is the joined agents (read from
//! the [`Registry`], i.e. the store, so every replica sees the same ones)
//! with the capacity each measured, refreshed by a heartbeat — a
//! `GET /v1/status` per agent every `heartbeat_interval_ms`. An agent that
//! misses `missed_heartbeats` in a row, or is revoked, makes its host
//! `Down`; its VMs then read `NotReady` and admission places nothing there.
//!
//! Networks are per host: an agent creates a VLAN segment's bridge with
//! the first VM on it and removes it with the last, so `ensure_network`
//! and `remove_network` have nothing to do here. Extensions need a
//! Kubernetes cluster on the VMs, which this driver does not bootstrap yet:
//! its extension catalogue is empty.
//!
//! Node images: each Kubernetes version of the config names its image per
//! OS (and SKU); an agent reports the images it has in its heartbeat, so
//! the catalogue says on how many up hosts each image is ready, and a
//! version is `ready_for` an OS only where one of its images is ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock as SyncRwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hybrid_api::agent::{AgentStatus, VmPowerState, VmSpec, VmStatus};
use hybrid_api::extension::ExtensionType;
use hybrid_api::inventory::Resources;
use hybrid_api::{KubernetesVersion, PhysicalHost, VmSize};
use tokio::sync::RwLock;

use super::{
    Driver, DriverError, ExtensionChange, ExtensionRequest, InstalledExtension, VmInfo, VmRequest,
    VmState,
};

pub mod client;
pub mod config;

pub use client::{AgentClient, CallError, ClientIdentity};
pub use config::AgentsConfig;

/// A joined agent as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAgent {
    pub name: String,
    pub endpoint: String,
    pub certificate_sha256: String,
    pub revoked: bool,
}

/// Where the driver learns which agents joined.
#[async_trait]
pub trait Registry: Send + Sync {
    async fn agents(&self) -> Result<Vec<RegisteredAgent>, String>;
}

/// What the driver knows of one host.
struct HostState {
    agent: RegisteredAgent,
    client: Option<AgentClient>,
    /// Last successful heartbeat.
    seen: Option<Instant>,
    status: Option<AgentStatus>,
    /// Why the last heartbeat failed.
    last_error: Option<String>,
    /// A heartbeat is waiting for its answer.
    in_flight: bool,
}

/// Real VMs through `hybrid-agent`s.
pub struct AgentsDriver {
    config: AgentsConfig,
    identity: ClientIdentity,
    registry: Arc<dyn Registry>,
    hosts: RwLock<BTreeMap<String, HostState>>,
    /// Per active agent: its last good heartbeat and the images it had,
    /// kept apart from `hosts` so the (synchronous) catalogue can read it.
    images: SyncRwLock<BTreeMap<String, (Instant, BTreeSet<String>)>>,
}

impl AgentsDriver {
    /// Builds the driver, takes a first heartbeat of every agent, and keeps
    /// beating in the background for as long as the driver lives.
    pub async fn start(
        config: AgentsConfig,
        identity: ClientIdentity,
        registry: Arc<dyn Registry>,
    ) -> Arc<AgentsDriver> {
        let driver = Arc::new(AgentsDriver {
            config,
            identity,
            registry,
            hosts: RwLock::new(BTreeMap::new()),
            images: SyncRwLock::new(BTreeMap::new()),
        });
        // The first round is awaited, so the inventory is right from the start.
        for beat in driver.beat().await {
            let _ = beat.await;
        }
        let weak: Weak<AgentsDriver> = Arc::downgrade(&driver);
        let interval = driver.config.heartbeat_interval();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(driver) = weak.upgrade() else { break };
                // Not awaited: a slow agent must not delay the others' beats.
                drop(driver.beat().await);
            }
        });
        driver
    }

    /// One heartbeat round: re-read the registry, then ask every active
    /// agent for its status, each on its own task (bounded by the request
    /// timeout); returns the tasks.
    async fn beat(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let agents = match self.registry.agents().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the agent registry; keeping the last one");
                return Vec::new();
            }
        };
        {
            let mut hosts = self.hosts.write().await;
            hosts.retain(|name, _| agents.iter().any(|a| &a.name == name));
            for agent in agents {
                let changed = hosts.get(&agent.name).is_none_or(|h| h.agent != agent);
                if !changed {
                    continue;
                }
                let client = match agent.revoked {
                    true => None,
                    false => AgentClient::new(
                        &self.identity,
                        &agent.endpoint,
                        &agent.certificate_sha256,
                        self.config.request_timeout(),
                    )
                    .map_err(|e| tracing::error!(agent = %agent.name, error = %e, "cannot build the agent's client"))
                    .ok(),
                };
                hosts.insert(
                    agent.name.clone(),
                    HostState {
                        agent,
                        client,
                        seen: None,
                        status: None,
                        last_error: None,
                        in_flight: false,
                    },
                );
            }
            self.note_images(&hosts);
        }
        // One heartbeat per agent, each on its own task; an agent whose
        // last heartbeat is still waiting for its answer is not asked again.
        let mut hosts = self.hosts.write().await;
        let mut beats = Vec::new();
        for (name, h) in hosts.iter_mut() {
            let Some(client) = h.client.clone() else {
                continue;
            };
            if h.in_flight {
                continue;
            }
            h.in_flight = true;
            let (driver, name) = (self.clone(), name.clone());
            beats.push(tokio::spawn(async move {
                let answer = client.status().await;
                driver.record_beat(&name, answer).await;
            }));
        }
        beats
    }

    /// Takes one agent's heartbeat answer into account.
    async fn record_beat(&self, name: &str, answer: Result<AgentStatus, CallError>) {
        let mut hosts = self.hosts.write().await;
        let Some(h) = hosts.get_mut(name) else {
            return;
        };
        h.in_flight = false;
        let was_up = self.is_up(h);
        match answer {
            Ok(status) => {
                h.seen = Some(Instant::now());
                h.status = Some(status);
                if h.last_error.take().is_some() || !was_up {
                    tracing::info!(host = %name, "agent answers its heartbeat");
                }
                self.note_images(&hosts);
            }
            Err(e) => {
                let message = e.to_string();
                if h.last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(host = %name, error = %message, "agent missed a heartbeat");
                }
                h.last_error = Some(message);
                if was_up && !self.is_up(h) {
                    tracing::error!(host = %name, "host is Down: its agent missed {} heartbeats", self.config.missed_heartbeats);
                }
            }
        }
    }

    /// Copies each active agent's last heartbeat time and images into
    /// [`AgentsDriver::images`].
    fn note_images(&self, hosts: &BTreeMap<String, HostState>) {
        let seen = hosts
            .iter()
            .filter(|(_, h)| !h.agent.revoked)
            .filter_map(|(name, h)| {
                let images = h.status.as_ref()?.images.iter().cloned().collect();
                Some((name.clone(), (h.seen?, images)))
            })
            .collect();
        // A poisoned lock only means a panic elsewhere mid-write of a plain
        // map: the map is replaced whole, so take it over.
        *self.images.write().unwrap_or_else(|e| e.into_inner()) = seen;
    }

    /// The up hosts and the images each has.
    fn up_images(&self) -> BTreeMap<String, BTreeSet<String>> {
        let down_after = self.config.down_after();
        self.images
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, (seen, _))| seen.elapsed() <= down_after)
            .map(|(name, (_, images))| (name.clone(), images.clone()))
            .collect()
    }

    fn is_up(&self, h: &HostState) -> bool {
        !h.agent.revoked
            && h.seen
                .is_some_and(|t| t.elapsed() <= self.config.down_after())
    }

    /// Why a host is down, for errors.
    fn down_reason(&self, h: &HostState) -> String {
        if h.agent.revoked {
            return "its agent was revoked".to_string();
        }
        match (&h.last_error, h.seen) {
            (Some(e), _) => format!("its agent missed its heartbeats: {e}"),
            (None, None) => "its agent has not answered a heartbeat yet".to_string(),
            (None, Some(t)) => format!("no heartbeat for {} s", t.elapsed().as_secs()),
        }
    }

    /// The client of an up host, or why there is none.
    async fn client_for(
        &self,
        host: &str,
        vm: &str,
        action: &'static str,
    ) -> Result<AgentClient, DriverError> {
        let hosts = self.hosts.read().await;
        let Some(h) = hosts.get(host) else {
            return Err(DriverError::UnknownHost {
                vm: vm.to_string(),
                host: host.to_string(),
                known: hosts.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        match (&h.client, self.is_up(h)) {
            (Some(c), true) => Ok(c.clone()),
            _ => Err(DriverError::AgentDown {
                vm: vm.to_string(),
                host: host.to_string(),
                action,
                reason: self.down_reason(h),
            }),
        }
    }

    /// Which host has VM `name`, by the last heartbeats.
    async fn host_of(&self, name: &str) -> Option<String> {
        self.hosts.read().await.iter().find_map(|(host, h)| {
            h.status
                .as_ref()?
                .vms
                .iter()
                .any(|v| v.name == name)
                .then(|| host.clone())
        })
    }

    /// Keeps the cached view of `host` in step with an answer about one VM.
    async fn remember(&self, host: &str, vm: Option<VmStatus>, name: &str) {
        let mut hosts = self.hosts.write().await;
        let Some(status) = hosts.get_mut(host).and_then(|h| h.status.as_mut()) else {
            return;
        };
        status.vms.retain(|v| v.name != name);
        if let Some(vm) = vm {
            status.vms.push(vm);
            status.vms.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }

    /// `POST /v1/vms/{name}/{action}` on the VM's host; `verb` names the
    /// action in errors.
    async fn power(&self, name: &str, action: &str, verb: &'static str) -> Result<(), DriverError> {
        let host = self
            .host_of(name)
            .await
            .ok_or_else(|| DriverError::VmNotFound {
                vm: name.to_string(),
            })?;
        let client = self.client_for(&host, name, verb).await?;
        let vm = client
            .power(name, action)
            .await
            .map_err(|e| Self::agent_err(&host, e))?;
        self.remember(&host, vm, name).await;
        Ok(())
    }

    fn agent_err(host: &str, e: CallError) -> DriverError {
        DriverError::Agent {
            host: host.to_string(),
            message: e.to_string(),
        }
    }

    fn spec(&self, req: &VmRequest) -> VmSpec {
        VmSpec {
            name: req.name.clone(),
            hostname: req.name.clone(),
            vcpus: req.size.vcpus,
            memory_mib: req.size.memory_mib,
            disk_gib: req.size.disk_gib,
            image: req.image.clone(),
            role: req.role.clone(),
            network: req.network.clone(),
            ssh_authorized_keys: req.ssh_authorized_keys.clone(),
            boot_timeout_seconds: self.config.boot_timeout_seconds,
            labels: BTreeMap::new(),
            bootstrap: req.bootstrap.clone(),
            bootstrap_secret: req.bootstrap_secret.clone(),
        }
    }

    /// Runs an idempotent agent call (a GET, or the PUT of a VM, which the
    /// agent keys by name), again while the agent is unreachable, for as
    /// long as a host may miss heartbeats before it counts as down (plus
    /// one request timeout). An agent that is killed and restarted while
    /// the call is on the wire (its VMs survive it and are adopted) must
    /// not fail the operation, as it does not while a boot is polled.
    async fn through_blips<T, F, Fut>(&self, mut call: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let deadline = Instant::now() + self.config.down_after() + self.config.request_timeout();
        loop {
            match call().await {
                Err(CallError::Unreachable { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// Polls the VM until the guest reported in or the agent gave up on it.
    async fn await_running(
        &self,
        client: &AgentClient,
        req: &VmRequest,
    ) -> Result<VmStatus, DriverError> {
        // The agent enforces the boot timeout; this bound only keeps a
        // wedged agent from holding the operation forever.
        let deadline = Instant::now()
            + Duration::from_secs(self.config.boot_timeout_seconds)
            + self.config.down_after()
            + self.config.request_timeout();
        loop {
            let vm = match client.vm(&req.name).await {
                Ok(Some(vm)) => vm,
                Ok(None) => {
                    return Err(DriverError::DeletedWhileBooting {
                        vm: req.name.clone(),
                        host: req.host.clone(),
                    });
                }
                // A blip while polling is not the VM's failure.
                Err(CallError::Unreachable { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(Self::agent_err(&req.host, e)),
            };
            match vm.state {
                VmPowerState::Running => return Ok(vm),
                VmPowerState::Failed | VmPowerState::Stopped => {
                    let mut message = vm
                        .error
                        .clone()
                        .unwrap_or_else(|| format!("the VM is {:?}", vm.state));
                    if let Some(tail) = &vm.console_tail {
                        message.push_str("; last lines of its serial console:\n");
                        message.push_str(tail);
                    }
                    self.remember(&req.host, Some(vm), &req.name).await;
                    return Err(DriverError::BootFailed {
                        vm: req.name.clone(),
                        host: req.host.clone(),
                        message,
                    });
                }
                VmPowerState::Booting if Instant::now() >= deadline => {
                    return Err(DriverError::BootFailed {
                        vm: req.name.clone(),
                        host: req.host.clone(),
                        message: "the agent still reports it booting past its boot timeout".into(),
                    });
                }
                VmPowerState::Booting => tokio::time::sleep(BOOT_POLL).await,
            }
        }
    }
}

/// How often a booting VM is asked after: the guest's report reaches the
/// operation half of it later on average. One GET on the agent's kept-alive
/// connection per booting VM per interval is little for either side.
const BOOT_POLL: Duration = Duration::from_millis(100);

fn vm_state(s: VmPowerState) -> VmState {
    match s {
        VmPowerState::Running => VmState::Running,
        VmPowerState::Booting | VmPowerState::Stopped => VmState::Stopped,
        VmPowerState::Failed => VmState::Failed,
    }
}

fn info(host: &str, vm: &VmStatus, sizes: &[VmSize]) -> VmInfo {
    let size = sizes
        .iter()
        .find(|s| {
            s.vcpus == vm.spec.vcpus
                && s.memory_mib == vm.spec.memory_mib
                && s.disk_gib == vm.spec.disk_gib
        })
        .map(|s| s.name.clone())
        .unwrap_or_else(|| {
            format!(
                "{}vCPU/{}MiB/{}GiB",
                vm.spec.vcpus, vm.spec.memory_mib, vm.spec.disk_gib
            )
        });
    VmInfo {
        name: vm.name.clone(),
        host: host.to_string(),
        state: vm_state(vm.state),
        size,
        image: vm.spec.image.clone(),
    }
}

#[async_trait]
impl Driver for AgentsDriver {
    fn name(&self) -> &'static str {
        "agents"
    }

    fn simulated(&self) -> bool {
        false
    }

    async fn ensure_network(&self, _vnet: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn remove_network(&self, _vnet: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn create_vm(&self, req: &VmRequest) -> Result<VmInfo, DriverError> {
        let client = self.client_for(&req.host, &req.name, "create").await?;
        // A VM that failed is created again from scratch.
        if let Some(old) = self
            .through_blips(|| client.vm(&req.name))
            .await
            .map_err(|e| Self::agent_err(&req.host, e))?
            && old.state == VmPowerState::Failed
        {
            tracing::info!(vm = %req.name, host = %req.host, "re-creating a failed VM");
            client
                .delete_vm(&req.name)
                .await
                .map_err(|e| Self::agent_err(&req.host, e))?;
        }
        let spec = self.spec(req);
        let vm = self
            .through_blips(|| client.put_vm(&spec))
            .await
            .map_err(|e| Self::agent_err(&req.host, e))?;
        self.remember(&req.host, Some(vm.clone()), &req.name).await;
        let vm = match vm.state {
            VmPowerState::Running => vm,
            VmPowerState::Stopped => {
                let vm = client
                    .power(&req.name, "start")
                    .await
                    .map_err(|e| Self::agent_err(&req.host, e))?;
                match vm {
                    Some(v) if v.state == VmPowerState::Running => v,
                    _ => self.await_running(&client, req).await?,
                }
            }
            _ => self.await_running(&client, req).await?,
        };
        self.remember(&req.host, Some(vm.clone()), &req.name).await;
        Ok(info(&req.host, &vm, &self.vm_sizes()))
    }

    async fn start_vm(&self, name: &str) -> Result<(), DriverError> {
        self.power(name, "start", "boot").await
    }

    async fn stop_vm(&self, name: &str) -> Result<(), DriverError> {
        self.power(name, "stop", "stop").await
    }

    async fn delete_vm(&self, name: &str) -> Result<(), DriverError> {
        let Some(host) = self.host_of(name).await else {
            // Not on any host that answered: ask the up ones directly (the
            // cache may predate its creation), then it is gone.
            let clients: Vec<(String, AgentClient)> = {
                let hosts = self.hosts.read().await;
                hosts
                    .iter()
                    .filter(|(_, h)| self.is_up(h))
                    .filter_map(|(n, h)| Some((n.clone(), h.client.clone()?)))
                    .collect()
            };
            for (host, client) in clients {
                client
                    .delete_vm(name)
                    .await
                    .map_err(|e| Self::agent_err(&host, e))?;
            }
            return Ok(());
        };
        let client = self.client_for(&host, name, "delete").await?;
        client
            .delete_vm(name)
            .await
            .map_err(|e| Self::agent_err(&host, e))?;
        self.remember(&host, None, name).await;
        Ok(())
    }

    async fn vm(&self, name: &str) -> Result<Option<VmInfo>, DriverError> {
        Ok(self.vms().await?.into_iter().find(|v| v.name == name))
    }

    async fn vms(&self) -> Result<Vec<VmInfo>, DriverError> {
        let sizes = self.vm_sizes();
        let sizes = &sizes;
        let hosts = self.hosts.read().await;
        let mut out: Vec<VmInfo> = hosts
            .iter()
            .flat_map(|(host, h)| {
                let up = self.is_up(h);
                h.status.iter().flat_map(|s| s.vms.iter()).map(move |vm| {
                    let mut i = info(host, vm, sizes);
                    if !up {
                        i.state = VmState::Stopped;
                    }
                    i
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn inventory(&self) -> Result<Vec<PhysicalHost>, DriverError> {
        let hosts = self.hosts.read().await;
        Ok(hosts
            .iter()
            .map(|(name, h)| {
                let up = self.is_up(h);
                let measured = h.status.as_ref().map(|s| s.capacity).unwrap_or_default();
                let capacity = Resources {
                    vcpus: (f64::from(measured.vcpus) * self.config.cpu_allocation_ratio) as u32,
                    ..measured
                };
                let vms: Vec<&VmStatus> = h.status.iter().flat_map(|s| s.vms.iter()).collect();
                let allocated = vms.iter().fold(Resources::default(), |acc, vm| Resources {
                    vcpus: acc.vcpus + vm.spec.vcpus,
                    memory_mib: acc.memory_mib + vm.spec.memory_mib,
                    disk_gib: acc.disk_gib + vm.spec.disk_gib,
                });
                let free = match up {
                    true => Resources {
                        vcpus: capacity.vcpus.saturating_sub(allocated.vcpus),
                        memory_mib: capacity.memory_mib.saturating_sub(allocated.memory_mib),
                        disk_gib: capacity.disk_gib.saturating_sub(allocated.disk_gib),
                    },
                    false => Resources::default(),
                };
                PhysicalHost {
                    id: format!("/hosts/{name}"),
                    name: name.clone(),
                    state: if up { "Up" } else { "Down" }.to_string(),
                    capacity,
                    allocated,
                    free,
                    vms: vms.iter().map(|v| v.name.clone()).collect(),
                }
            })
            .collect())
    }

    async fn hosts_down(&self) -> Result<BTreeSet<String>, DriverError> {
        let hosts = self.hosts.read().await;
        Ok(hosts
            .iter()
            .filter(|(_, h)| !self.is_up(h))
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn kubernetes_versions(&self) -> Vec<KubernetesVersion> {
        let up = self.up_images();
        super::catalog::kubernetes_versions(
            self.config.kubernetes_versions.as_deref(),
            &super::catalog::Readiness::Hosts(&up),
        )
    }

    fn vm_sizes(&self) -> Vec<VmSize> {
        super::catalog::vm_sizes(self.config.vm_sizes.as_deref())
    }

    fn extension_types(&self) -> Vec<ExtensionType> {
        Vec::new()
    }

    async fn apply_extension(
        &self,
        req: &ExtensionRequest,
    ) -> Result<ExtensionChange, DriverError> {
        Err(DriverError::Unsupported(format!(
            "extension {} cannot be installed on {}: the agents driver does not bootstrap Kubernetes on its VMs yet, so it has no extension catalogue",
            req.name, req.target
        )))
    }

    async fn remove_extension(&self, _target: &str, _name: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn remove_target_extensions(&self, _target: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn installed_extensions(
        &self,
        _target: Option<&str>,
    ) -> Result<Vec<InstalledExtension>, DriverError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<RegisteredAgent>);

    #[async_trait]
    impl Registry for Fixed {
        async fn agents(&self) -> Result<Vec<RegisteredAgent>, String> {
            Ok(self.0.clone())
        }
    }

    fn identity() -> ClientIdentity {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::security::agent_ca::AgentCa::load_or_create(dir.path()).unwrap();
        let id = ca.client_identity().unwrap();
        ClientIdentity {
            ca_pem: ca.ca_pem().to_string(),
            cert_pem: id.cert_pem,
            key_pem: id.key_pem,
        }
    }

    fn agent(name: &str, revoked: bool) -> RegisteredAgent {
        // Port 1 on loopback: nothing listens, the heartbeat fails at once.
        RegisteredAgent {
            name: name.to_string(),
            endpoint: "https://127.0.0.1:1".to_string(),
            certificate_sha256: "00".repeat(32),
            revoked,
        }
    }

    #[tokio::test]
    async fn unanswered_and_revoked_agents_are_down_and_refuse_work() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config =
            AgentsConfig::parse("heartbeat_interval_ms = 100\nrequest_timeout_ms = 500").unwrap();
        let driver = AgentsDriver::start(
            config,
            identity(),
            Arc::new(Fixed(vec![agent("h1", false), agent("h2", true)])),
        )
        .await;
        assert_eq!(driver.name(), "agents");
        assert!(!driver.simulated());
        let down = driver.hosts_down().await.unwrap();
        assert_eq!(down, ["h1", "h2"].map(String::from).into_iter().collect());
        let inv = driver.inventory().await.unwrap();
        assert!(
            inv.iter()
                .all(|h| h.state == "Down" && h.free == Resources::default())
        );

        let req = VmRequest {
            name: "c-cp-0".into(),
            host: "h2".into(),
            size: driver.vm_sizes()[0].clone(),
            image: "default".into(),
            role: "control-plane".into(),
            network: hybrid_api::agent::VmNetwork {
                vnet: "v".into(),
                vlan_id: None,
                address: None,
                gateway: None,
                dns_servers: Vec::new(),
                mac: hybrid_api::agent::mac_for("c-cp-0"),
            },
            ssh_authorized_keys: Vec::new(),
            bootstrap: None,
            bootstrap_secret: None,
        };
        let e = driver.create_vm(&req).await.unwrap_err().to_string();
        assert!(
            e.contains("host h2 is down") && e.contains("revoked"),
            "{e}"
        );
        let e = driver
            .create_vm(&VmRequest {
                host: "h1".into(),
                ..req.clone()
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host h1 is down") && e.contains("127.0.0.1:1"),
            "{e}"
        );
        let e = driver
            .create_vm(&VmRequest {
                host: "h9".into(),
                ..req
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h9 does not exist") && e.contains("h1, h2"),
            "{e}"
        );
        assert!(driver.extension_types().is_empty());
    }
}
