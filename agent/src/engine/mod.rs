//! VMs on this host: each is a QEMU process (KVM when `/dev/kvm` works,
//! TCG otherwise) with a qcow2 overlay on its node image, a NoCloud seed, a
//! tap on its VLAN segment's bridge, a QMP socket and a serial console log,
//! all under `DATA_DIR/vms/{name}/`. QEMU outlives the agent; [`Engine::open`]
//! re-adopts what runs.
//!
//! A VM's directory holds everything the engine needs to pick it up again:
//!
//! | file | what |
//! |---|---|
//! | `spec.json` (0600) | the [`VmSpec`] it was created from (its bootstrap secret until the guest reported in) |
//! | `state.json` (0600) | desired power state and when the last boot began |
//! | `overlay.qcow2` | its disk, backed by the image's disk |
//! | `seed.img` (0600) | the NoCloud seed ([`seed`]) |
//! | `qemu.pid`, `qmp.sock` | the running QEMU and its control socket |
//! | `console.log` | serial port 0 (the console) |
//! | `report.log` | serial port 1: the guest's `{"hybrid_ready":…}` line |
//!
//! Concurrency: lifecycle operations on one VM are serialised by that VM's
//! operation lock; bridge creation and removal by one segment lock, so
//! that a segment's last VM going away never races a new VM joining it.
//! A background watcher per boot turns the guest's report into `Running`,
//! or the boot timeout / QEMU's exit into `Failed`.
//!
//! The bootstrap secret ([`hybrid_api::bootstrap::BootstrapSecret`]) lives
//! apart from the VM's spec in memory, so that no status ever shows it; it
//! is on disk (`spec.json`, `seed.img`) only until the guest reports in:
//! then both are written again without it and it is forgotten. A VM that
//! boots again afterwards gets a seed without it (it has bootstrapped).

pub mod image;
pub mod qemu;
pub mod seed;

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hybrid_api::agent::{VmPowerState, VmSpec, VmStatus};
use hybrid_api::bootstrap::BootstrapSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::process::Command;

use crate::net::{self, Net};
use image::Image;
use qemu::VmPaths;

/// How the engine runs VMs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The agent's state directory (VMs under `vms/`).
    pub data_dir: PathBuf,
    /// Node images: `IMAGE_DIR/{image}/image.json`.
    pub image_dir: PathBuf,
    /// Interface the VLAN segments' bridges attach to (`None`: bridges
    /// without an uplink, e.g. a single test host).
    pub uplink: Option<String>,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// `qemu-img`.
    pub qemu_img: PathBuf,
    /// Graceful powerdown timeout before QEMU is told to quit.
    pub stop_timeout: Duration,
    /// Network namespace for the bridges, taps and QEMU processes (`None`:
    /// the agent's own). With it, iproute2 runs as `ip -n NS …` and QEMU as
    /// `ip netns exec NS qemu-system-x86_64 …`, so that its tap is opened in
    /// that namespace; the agent itself stays where it is. Tests use it to
    /// keep the machine's root namespace untouched, and so can a try-it run
    /// of `hybrid-agent`.
    pub netns: Option<String>,
}

/// `kvm` or `tcg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// Why the engine could not do what was asked (messages name the VM, the
/// file or the command).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("VM {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// How many console lines a failed VM reports.
const CONSOLE_TAIL_LINES: usize = 20;
/// How long QEMU gets to exit after `quit` before SIGKILL.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `qemu-img` or QEMU's own start-up may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a booting VM's report file and process are looked at: the
/// report's delay until `Running` is half of it on average, and a look is a
/// read of a one-line file and of `/proc/<pid>/stat` (cheap even for many
/// VMs booting at once).
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// How often a running VM's process is looked at.
const RUNNING_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The VMs of this host.
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    accelerator: Accelerator,
    net: Net,
    vms: Mutex<BTreeMap<String, Arc<Vm>>>,
    /// Held while a segment's bridge is created or removed (see module doc).
    segments: tokio::sync::Mutex<()>,
}

/// One VM: what never changes after creation, and its live state.
struct Vm {
    /// Its spec, always without the bootstrap secret.
    spec: VmSpec,
    /// The bootstrap secret, until the guest has reported in.
    secret: Mutex<Option<BootstrapSecret>>,
    paths: VmPaths,
    tap: String,
    bridge: String,
    /// Serialises lifecycle operations on this VM.
    op: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<VmState>,
}

#[derive(Debug, Clone)]
struct VmState {
    power: VmPowerState,
    pid: Option<u32>,
    report: Option<Value>,
    error: Option<String>,
    console_tail: Option<String>,
    /// Bumped by every boot, stop and delete: a watcher whose generation is
    /// no longer current has nothing more to say.
    generation: u64,
}

/// `state.json`: what the VM should be doing, so that a restarted agent
/// boots a VM whose QEMU died meanwhile, and leaves a stopped one alone.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Desired {
    Running,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PersistedState {
    desired: Desired,
    /// Unix seconds when the last boot began (the readiness deadline of an
    /// adopted, still-booting VM counts from it).
    #[serde(default)]
    booted_at: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `path` (0600) by way of a temporary file and a rename, so that a
/// crash never leaves half a file behind.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| EngineError::Failed(format!("writing {}: {e}", path.display())))
}

fn mkdir_private(path: &Path) -> Result<(), EngineError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| EngineError::Failed(format!("creating {}: {e}", path.display())))
}

impl Vm {
    fn status(&self) -> VmStatus {
        let s = self.lock_state().clone();
        VmStatus {
            name: self.spec.name.clone(),
            state: s.power,
            spec: self.spec.clone(),
            pid: s.pid,
            tap: self.tap.clone(),
            bridge: self.bridge.clone(),
            report: s.report,
            error: s.error,
            console_tail: s.console_tail,
        }
    }

    /// The state lock guards plain data; a panic while holding it cannot
    /// leave it half-updated in a way that matters, so poison is ignored.
    fn lock_state(&self) -> std::sync::MutexGuard<'_, VmState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn lock_secret(&self) -> std::sync::MutexGuard<'_, Option<BootstrapSecret>> {
        self.secret.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spec with its secret, as the seed and `spec.json` need it.
    fn full_spec(&self) -> VmSpec {
        let mut spec = self.spec.clone();
        spec.bootstrap_secret = self.lock_secret().clone();
        spec
    }

    /// Writes `spec.json` (with the secret while the VM has one).
    fn save_spec(&self) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec_pretty(&self.full_spec())
            .map_err(|e| EngineError::Failed(format!("encoding VM {} spec: {e}", self.name())))?;
        write_private(&self.paths.spec(), &bytes)
    }

    /// Removes the bootstrap secret from `spec.json` and the seed (written
    /// again in place, so that the running QEMU keeps a valid volume), then
    /// forgets it. The guest has reported in: it has used the secret.
    /// Caller holds the op lock.
    fn wipe_secret(&self) -> Result<(), EngineError> {
        if self.lock_secret().is_none() {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.spec)
            .map_err(|e| EngineError::Failed(format!("encoding VM {} spec: {e}", self.name())))?;
        write_private(&self.paths.spec(), &bytes)?;
        if self.paths.seed().exists() {
            seed::write(&self.paths.seed(), &seed::render(&self.spec)).map_err(|e| {
                EngineError::Failed(format!(
                    "VM {}: writing the seed {} without the bootstrap secret: {e}",
                    self.name(),
                    self.paths.seed().display()
                ))
            })?;
        }
        *self.lock_secret() = None;
        tracing::info!(vm = %self.name(), "guest reported in: bootstrap secret removed from the agent's disk");
        Ok(())
    }

    fn save_state(&self, desired: Desired, booted_at: u64) -> Result<(), EngineError> {
        let state = PersistedState { desired, booted_at };
        let bytes = serde_json::to_vec_pretty(&state)
            .map_err(|e| EngineError::Failed(format!("encoding VM {} state: {e}", self.name())))?;
        write_private(&self.paths.state(), &bytes)
    }

    fn load_state(&self) -> PersistedState {
        std::fs::read(self.paths.state())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(PersistedState {
                desired: Desired::Running,
                booted_at: 0,
            })
    }

    /// The last lines of the serial console.
    fn console_tail(&self) -> Option<String> {
        let bytes = std::fs::read(self.paths.console()).ok()?;
        let text = String::from_utf8_lossy(&bytes).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(CONSOLE_TAIL_LINES)..].join("\n");
        Some(tail)
    }

    /// The guest's report, once it has written it.
    fn read_report(&self) -> Option<Value> {
        let bytes = std::fs::read(self.paths.report()).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines().find_map(|line| {
            // The serial line may carry noise before the JSON.
            let start = line.find("{\"hybrid_ready\"")?;
            let v: Value = serde_json::from_str(line[start..].trim()).ok()?;
            v.get("hybrid_ready").cloned()
        })
    }

    /// Marks the VM failed (keeping the current generation); its QEMU no
    /// longer runs.
    fn fail(&self, error: String) {
        let tail = self.console_tail();
        let mut s = self.lock_state();
        s.power = VmPowerState::Failed;
        s.pid = None;
        s.error = Some(error);
        s.console_tail = tail;
    }
}

impl Engine {
    /// Opens the state directory, probes the accelerator (logged once) and
    /// re-adopts the VMs found there.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::open_with_transport(config, net::Transport::Vlan).await
    }

    /// [`Engine::open`] with the segments carried by `transport` on the
    /// uplink (`hybrid-agent run --segment-transport`).
    pub async fn open_with_transport(
        config: EngineConfig,
        transport: net::Transport,
    ) -> Result<Engine, EngineError> {
        mkdir_private(&config.data_dir)?;
        let vms_dir = config.data_dir.join("vms");
        mkdir_private(&vms_dir)?;

        let (accelerator, why) = qemu::probe_accelerator(&config.qemu, &config.data_dir).await;
        tracing::info!(
            accelerator = accelerator.as_str(),
            reason = %why,
            "VMs run with {}",
            accelerator.as_str()
        );

        let net = Net::new(config.netns.clone(), config.uplink.clone()).with_transport(transport);
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                accelerator,
                net,
                vms: Mutex::new(BTreeMap::new()),
                segments: tokio::sync::Mutex::new(()),
            }),
        };
        engine.readopt(&vms_dir).await?;
        Ok(engine)
    }

    /// Picks up every VM directory: adopts a QEMU that still runs, boots
    /// one that should run and does not, and leaves stopped ones stopped.
    async fn readopt(&self, vms_dir: &Path) -> Result<(), EngineError> {
        let entries = std::fs::read_dir(vms_dir)
            .map_err(|e| EngineError::Failed(format!("reading {}: {e}", vms_dir.display())))?;
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let paths = VmPaths { dir: dir.clone() };
            let spec: VmSpec = match std::fs::read(paths.spec())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        "skipping a VM directory without a readable spec.json ({e}); delete the VM by name to remove it"
                    );
                    continue;
                }
            };
            if dir.file_name().and_then(|n| n.to_str()) != Some(spec.name.as_str()) {
                tracing::warn!(dir = %dir.display(), vm = %spec.name, "skipping a VM directory whose spec names another VM");
                continue;
            }
            let vm = self.inner.insert_new(spec, paths);
            let _op = vm.op.clone().lock_owned().await;
            let persisted = vm.load_state();
            let pid = qemu::read_pidfile(&vm.paths.pidfile())
                .filter(|pid| qemu::alive(*pid))
                .filter(|pid| qemu::is_our_qemu(*pid, vm.name(), &vm.paths.pidfile()));
            match (pid, persisted.desired) {
                (Some(pid), _) => self.inner.adopt(&vm, pid, persisted.booted_at).await,
                (None, Desired::Running) => {
                    tracing::info!(vm = %vm.name(), "QEMU is not running; booting the VM again");
                    if let Err(e) = self.inner.boot(&vm).await {
                        tracing::warn!(vm = %vm.name(), "booting again failed: {e}");
                    }
                }
                (None, Desired::Stopped) => {
                    vm.lock_state().power = VmPowerState::Stopped;
                }
            }
        }
        Ok(())
    }

    /// The accelerator the probe chose.
    pub fn accelerator(&self) -> Accelerator {
        self.inner.accelerator
    }

    /// Node image names under the image directory.
    pub fn images(&self) -> Vec<String> {
        image::list(&self.inner.config.image_dir)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Creates the VM (idempotent by name) and boots it in the background;
    /// answers at once with its state (`Booting`, or what it already is).
    ///
    /// The same spec again returns the VM's status; a `Failed` VM is booted
    /// afresh (the PUT states the desired state: running). A different spec
    /// under an existing name is refused, naming the fields that differ.
    pub async fn apply(&self, spec: VmSpec) -> Result<VmStatus, EngineError> {
        validate(&spec)?;
        if let Some(vm) = self.inner.find(&spec.name) {
            // The secret is not part of the comparison: hybrid-host mints a
            // fresh token when it asks again, and the agent may have
            // forgotten the one it had.
            let mut public = spec.clone();
            let secret = public.bootstrap_secret.take();
            let differ = differing_fields(&vm.spec, &public);
            if !differ.is_empty() {
                return Err(EngineError::Invalid(format!(
                    "VM {} exists with a different spec ({} differ); delete it first to change them",
                    spec.name,
                    differ.join(", ")
                )));
            }
            let _op = vm.op.clone().lock_owned().await;
            if vm.lock_state().power == VmPowerState::Failed {
                tracing::info!(vm = %vm.name(), "booting a failed VM again");
                // It never reported in: it boots with the newest secret.
                if secret.is_some() {
                    *vm.lock_secret() = secret;
                    vm.save_spec()?;
                }
                self.inner.boot(&vm).await?;
            }
            return Ok(vm.status());
        }

        // Refuse what cannot boot before anything is created.
        self.inner.image(&spec)?;
        let paths = VmPaths {
            dir: self.inner.vms_dir().join(&spec.name),
        };
        let vm = self.inner.insert_new(spec, paths);
        let _op = vm.op.clone().lock_owned().await;
        mkdir_private(&vm.paths.dir)?;
        vm.save_spec()?;
        self.inner.boot(&vm).await?;
        Ok(vm.status())
    }

    /// One VM.
    pub async fn get(&self, name: &str) -> Option<VmStatus> {
        self.inner.find(name).map(|vm| vm.status())
    }

    /// Every VM, by name.
    pub async fn list(&self) -> Vec<VmStatus> {
        let vms: Vec<Arc<Vm>> = self.inner.lock_vms().values().cloned().collect();
        vms.iter().map(|vm| vm.status()).collect()
    }

    /// Graceful powerdown (then quit after the timeout); idempotent.
    pub async fn stop(&self, name: &str) -> Result<VmStatus, EngineError> {
        let vm = self
            .inner
            .find(name)
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let _op = vm.op.clone().lock_owned().await;
        vm.save_state(Desired::Stopped, vm.load_state().booted_at)?;
        self.inner.halt(&vm, true).await?;
        Ok(vm.status())
    }

    /// Boots a stopped VM; idempotent.
    pub async fn start(&self, name: &str) -> Result<VmStatus, EngineError> {
        let vm = self
            .inner
            .find(name)
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let _op = vm.op.clone().lock_owned().await;
        let (power, pid) = {
            let s = vm.lock_state();
            (s.power, s.pid)
        };
        let runs = pid.is_some_and(qemu::alive);
        if matches!(power, VmPowerState::Booting | VmPowerState::Running) && runs {
            return Ok(vm.status());
        }
        self.inner.boot(&vm).await?;
        Ok(vm.status())
    }

    /// Removes the VM's process, overlay, seed and tap (and its segment's
    /// bridge when it was the last VM on it); a missing VM is fine.
    pub async fn delete(&self, name: &str) -> Result<(), EngineError> {
        let Some(vm) = self.inner.find(name) else {
            return self.inner.delete_leftover(name).await;
        };
        let _op = vm.op.clone().lock_owned().await;
        self.inner.halt(&vm, false).await?;
        self.inner
            .net
            .remove_tap(vm.name())
            .await
            .map_err(|e| EngineError::Failed(format!("deleting VM {}: {e}", vm.name())))?;
        if vm.paths.dir.exists() {
            std::fs::remove_dir_all(&vm.paths.dir).map_err(|e| {
                EngineError::Failed(format!(
                    "deleting VM {}: removing {}: {e}",
                    vm.name(),
                    vm.paths.dir.display()
                ))
            })?;
        }
        let _segments = self.inner.segments.lock().await;
        self.inner.lock_vms().remove(vm.name());
        let still_used = self
            .inner
            .lock_vms()
            .values()
            .any(|other| other.bridge == vm.bridge);
        if !still_used {
            self.inner
                .net
                .remove_segment(vm.spec.network.vlan_id)
                .await
                .map_err(|e| {
                    EngineError::Failed(format!(
                        "deleting VM {}: removing bridge {}: {e}",
                        vm.name(),
                        vm.bridge
                    ))
                })?;
        }
        tracing::info!(vm = %vm.name(), "VM deleted");
        Ok(())
    }
}

impl Inner {
    fn lock_vms(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Vm>>> {
        self.vms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn find(&self, name: &str) -> Option<Arc<Vm>> {
        self.lock_vms().get(name).cloned()
    }

    fn vms_dir(&self) -> PathBuf {
        self.config.data_dir.join("vms")
    }

    /// Registers a VM (state `Booting` until its first operation says
    /// otherwise); a concurrent apply of the same name then finds it.
    fn insert_new(&self, mut spec: VmSpec, paths: VmPaths) -> Arc<Vm> {
        let secret = spec.bootstrap_secret.take();
        let vm = Arc::new(Vm {
            secret: Mutex::new(secret),
            tap: net::tap_name(&spec.name),
            bridge: net::bridge_name(spec.network.vlan_id),
            spec,
            paths,
            op: Arc::new(tokio::sync::Mutex::new(())),
            state: Mutex::new(VmState {
                power: VmPowerState::Booting,
                pid: None,
                report: None,
                error: None,
                console_tail: None,
                generation: 0,
            }),
        });
        self.lock_vms()
            .entry(vm.spec.name.clone())
            .or_insert(vm)
            .clone()
    }

    /// The image a spec names; one this host lacks is refused.
    fn image(&self, spec: &VmSpec) -> Result<Image, EngineError> {
        image::resolve(&self.config.image_dir, &spec.image)
            .map_err(|e| EngineError::Invalid(format!("VM {}: {e}", spec.name)))
    }

    /// Boots the VM: creates whatever of overlay, seed, bridge and tap is
    /// missing, starts QEMU and a watcher. Caller holds the VM's op lock.
    /// On failure the VM is `Failed` with the reason, which is also returned.
    async fn boot(self: &Arc<Self>, vm: &Arc<Vm>) -> Result<(), EngineError> {
        let generation = {
            let mut s = vm.lock_state();
            s.generation += 1;
            s.power = VmPowerState::Booting;
            s.pid = None;
            s.report = None;
            s.error = None;
            s.console_tail = None;
            s.generation
        };
        match self.boot_inner(vm).await {
            Ok(pid) => {
                vm.lock_state().pid = Some(pid);
                tracing::info!(vm = %vm.name(), pid, tap = %vm.tap, bridge = %vm.bridge, "VM booting");
                let deadline =
                    tokio::time::Instant::now() + Duration::from_secs(vm.spec.boot_timeout_seconds);
                self.watch(vm, generation, deadline);
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(vm = %vm.name(), "boot failed: {msg}");
                vm.fail(msg);
                Err(e)
            }
        }
    }

    async fn boot_inner(&self, vm: &Vm) -> Result<u32, EngineError> {
        let name = vm.name();
        let image = self.image(&vm.spec)?;
        let p = &vm.paths;
        // A QEMU of ours may still run (e.g. a failed boot whose stop did
        // not finish): never start a second one on the same disk.
        if let Some(pid) = qemu::read_pidfile(&p.pidfile())
            && qemu::alive(pid)
            && qemu::is_our_qemu(pid, name, &p.pidfile())
        {
            hard_stop(vm, pid).await;
        }
        if !p.overlay().exists() {
            self.create_overlay(vm, &image).await?;
        }
        // Written at every boot, in place (no QEMU has it open now, and an
        // interrupted write is redone by the next boot): after the guest's
        // first report it has no bootstrap secret any more.
        {
            seed::write(&p.seed(), &seed::render(&vm.full_spec())).map_err(|e| {
                EngineError::Failed(format!(
                    "VM {name}: writing the seed {}: {e}",
                    p.seed().display()
                ))
            })?;
        }
        {
            let _segments = self.segments.lock().await;
            let net_err = |e: net::NetError| EngineError::Failed(format!("VM {name}: {e}"));
            self.net
                .ensure_segment(vm.spec.network.vlan_id)
                .await
                .map_err(net_err)?;
            self.net
                .ensure_tap(name, &vm.bridge)
                .await
                .map_err(net_err)?;
        }
        // Each boot starts with empty serial logs: the report and the
        // console tail must be this boot's.
        for f in [p.report(), p.console()] {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&f)
                .map_err(|e| {
                    EngineError::Failed(format!("VM {name}: truncating {}: {e}", f.display()))
                })?;
        }
        let _ = std::fs::remove_file(p.pidfile());

        let launch = qemu::Launch {
            vm: name,
            vcpus: vm.spec.vcpus,
            memory_mib: vm.spec.memory_mib,
            mac: &vm.spec.network.mac,
            tap: &vm.tap,
            accelerator: self.accelerator,
            image: &image,
            paths: p,
        };
        let mut cmd = match &self.config.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.config.qemu);
                c
            }
            None => Command::new(&self.config.qemu),
        };
        cmd.args(launch.args())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let described = format!("{} for VM {name}", self.config.qemu.display());
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                EngineError::Failed(format!(
                    "{described} did not daemonize within {}s",
                    COMMAND_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| EngineError::Failed(format!("starting {described}: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::Failed(format!(
                "{described} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        qemu::read_pidfile(&p.pidfile())
            .ok_or_else(|| {
                EngineError::Failed(format!(
                    "{described} started but wrote no pid to {}",
                    p.pidfile().display()
                ))
            })
            .and_then(|pid| {
                vm.save_state(Desired::Running, now_secs())?;
                Ok(pid)
            })
    }

    async fn create_overlay(&self, vm: &Vm, image: &Image) -> Result<(), EngineError> {
        let name = vm.name();
        let overlay = vm.paths.overlay();
        // Created under a temporary name and renamed: an interrupted
        // qemu-img never leaves an overlay that looks complete.
        let tmp = vm.paths.dir.join("overlay.qcow2.tmp");
        let size = format!("{}G", vm.spec.disk_gib);
        let mut cmd = Command::new(&self.config.qemu_img);
        cmd.args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&image.disk)
            .arg(&tmp)
            .arg(&size)
            .kill_on_drop(true);
        let described = format!(
            "{} create -f qcow2 -F qcow2 -b {} {} {size}",
            self.config.qemu_img.display(),
            image.disk.display(),
            tmp.display()
        );
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .map_err(|_| EngineError::Failed(format!("VM {name}: `{described}` hung")))?
            .map_err(|e| EngineError::Failed(format!("VM {name}: `{described}`: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::Failed(format!(
                "VM {name}: `{described}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::fs::rename(&tmp, &overlay).map_err(|e| {
            EngineError::Failed(format!(
                "VM {name}: renaming {} to {}: {e}",
                tmp.display(),
                overlay.display()
            ))
        })
    }

    /// Takes over a QEMU that still runs (after an agent restart).
    async fn adopt(self: &Arc<Self>, vm: &Arc<Vm>, pid: u32, booted_at: u64) {
        let name = vm.name();
        if let Err(e) = qemu::qmp(&vm.paths.qmp(), "query-status").await {
            tracing::warn!(vm = %name, pid, "adopted QEMU does not answer on QMP: {e}");
        }
        {
            // The QEMU holds its tap; the segment is made whole again in
            // case an uplink was re-plugged meanwhile (creates only what is
            // missing).
            let _segments = self.segments.lock().await;
            if let Err(e) = self.net.ensure_segment(vm.spec.network.vlan_id).await {
                tracing::warn!(vm = %name, "checking the VM's segment: {e}");
            }
        }
        let report = vm.read_report();
        let generation = {
            let mut s = vm.lock_state();
            s.generation += 1;
            s.pid = Some(pid);
            s.power = if report.is_some() {
                VmPowerState::Running
            } else {
                VmPowerState::Booting
            };
            s.report = report;
            s.generation
        };
        if reported_in(vm)
            && let Err(e) = vm.wipe_secret()
        {
            tracing::warn!(vm = %name, "{e}");
        }
        let elapsed = now_secs().saturating_sub(booted_at);
        let left = vm.spec.boot_timeout_seconds.saturating_sub(elapsed);
        tracing::info!(vm = %name, pid, "re-adopted running VM");
        self.watch(
            vm,
            generation,
            tokio::time::Instant::now() + Duration::from_secs(left),
        );
    }

    /// Stops QEMU: a graceful ACPI powerdown first when `graceful`, then
    /// `quit`, then SIGKILL. The VM ends `Stopped`. Caller holds the op lock.
    async fn halt(&self, vm: &Vm, graceful: bool) -> Result<(), EngineError> {
        let pid = {
            let mut s = vm.lock_state();
            s.generation += 1;
            s.pid
        }
        .or_else(|| qemu::read_pidfile(&vm.paths.pidfile()))
        .filter(|pid| qemu::alive(*pid) && qemu::is_our_qemu(*pid, vm.name(), &vm.paths.pidfile()));
        if let Some(pid) = pid {
            let mut gone = false;
            if graceful {
                match qemu::qmp(&vm.paths.qmp(), "system_powerdown").await {
                    Ok(_) => gone = qemu::wait_exit(pid, self.config.stop_timeout).await,
                    Err(e) => tracing::warn!(vm = %vm.name(), "powerdown: {e}"),
                }
                if !gone {
                    tracing::info!(
                        vm = %vm.name(),
                        "guest did not power down within {}s; quitting QEMU",
                        self.config.stop_timeout.as_secs()
                    );
                }
            }
            if !gone && !hard_stop(vm, pid).await {
                return Err(EngineError::Failed(format!(
                    "VM {}: QEMU (pid {pid}) survived quit and SIGKILL",
                    vm.name()
                )));
            }
        }
        let _ = std::fs::remove_file(vm.paths.pidfile());
        let mut s = vm.lock_state();
        s.power = VmPowerState::Stopped;
        s.pid = None;
        s.report = None;
        s.error = None;
        s.console_tail = None;
        Ok(())
    }

    /// Deletes what a VM unknown to the engine left behind under its name
    /// (a directory without a readable spec, its tap).
    async fn delete_leftover(&self, name: &str) -> Result<(), EngineError> {
        if validate_name(name).is_err() {
            return Ok(());
        }
        let dir = self.vms_dir().join(name);
        if dir.is_dir() {
            let pidfile = dir.join("qemu.pid");
            if let Some(pid) = qemu::read_pidfile(&pidfile)
                && qemu::alive(pid)
                && qemu::is_our_qemu(pid, name, &pidfile)
            {
                qemu::kill9(pid).await;
                qemu::wait_exit(pid, QUIT_TIMEOUT).await;
            }
            std::fs::remove_dir_all(&dir).map_err(|e| {
                EngineError::Failed(format!(
                    "deleting VM {name}: removing {}: {e}",
                    dir.display()
                ))
            })?;
        }
        self.net
            .remove_tap(name)
            .await
            .map_err(|e| EngineError::Failed(format!("deleting VM {name}: {e}")))
    }

    /// Watches one boot: the report makes the VM `Running`; QEMU's exit or
    /// the deadline make it `Failed`. Ends when the generation moves on or
    /// the engine is dropped (an agent that stops watching leaves QEMU
    /// running, as a killed agent would).
    fn watch(self: &Arc<Self>, vm: &Arc<Vm>, generation: u64, deadline: tokio::time::Instant) {
        let engine: Weak<Inner> = Arc::downgrade(self);
        let vm = Arc::downgrade(vm);
        tokio::spawn(async move {
            loop {
                let (Some(engine), Some(vm)) = (engine.upgrade(), vm.upgrade()) else {
                    return;
                };
                let (current, power, pid) = {
                    let s = vm.lock_state();
                    (s.generation, s.power, s.pid)
                };
                if current != generation {
                    return;
                }
                // Once the guest reported in, its secret goes; a busy op
                // lock (a stop or delete under way) means: next round.
                if power == VmPowerState::Running
                    && vm.lock_secret().is_some()
                    && let Ok(_op) = vm.op.clone().try_lock_owned()
                    && vm.lock_state().generation == generation
                    && let Err(e) = vm.wipe_secret()
                {
                    tracing::warn!(vm = %vm.name(), "{e}; retrying");
                }
                if power == VmPowerState::Booting
                    && let Some(report) = vm.read_report()
                {
                    let mut s = vm.lock_state();
                    if s.generation == generation {
                        s.power = VmPowerState::Running;
                        s.report = Some(report);
                        tracing::info!(vm = %vm.name(), "guest reported in; VM running");
                    }
                    continue;
                }
                let running = pid.is_some_and(qemu::alive);
                if !running
                    || (power == VmPowerState::Booting && tokio::time::Instant::now() >= deadline)
                {
                    // Act under the op lock so a concurrent stop or delete
                    // (which moves the generation on) wins.
                    let _op = vm.op.clone().lock_owned().await;
                    if vm.lock_state().generation != generation {
                        return;
                    }
                    let error = if !running {
                        format!(
                            "VM {}: QEMU (pid {}) exited {}",
                            vm.name(),
                            pid.map(|p| p.to_string()).unwrap_or_default(),
                            if power == VmPowerState::Booting {
                                "before the guest reported in"
                            } else {
                                "while the VM was running"
                            }
                        )
                    } else {
                        format!(
                            "VM {}: the guest did not report in within its boot timeout of {}s; see the console tail",
                            vm.name(),
                            vm.spec.boot_timeout_seconds
                        )
                    };
                    tracing::warn!(vm = %vm.name(), "{error}");
                    // A failed VM holds no CPU or memory: QEMU is stopped
                    // (the disk, seed and tap stay for a retry or delete)
                    // before the VM shows `Failed`, so whoever sees that
                    // state sees no process either.
                    if let Some(pid) = pid.filter(|p| qemu::alive(*p)) {
                        hard_stop(&vm, pid).await;
                    }
                    vm.fail(error);
                    drop(engine);
                    return;
                }
                drop(engine);
                let interval = if power == VmPowerState::Running {
                    RUNNING_WATCH_INTERVAL
                } else {
                    WATCH_INTERVAL
                };
                drop(vm);
                tokio::time::sleep(interval).await;
            }
        });
    }
}

/// True when the VM's current boot has reported in.
fn reported_in(vm: &Vm) -> bool {
    vm.lock_state().report.is_some()
}

/// QMP `quit`, then SIGKILL; true when QEMU is gone.
async fn hard_stop(vm: &Vm, pid: u32) -> bool {
    if let Err(e) = qemu::qmp(&vm.paths.qmp(), "quit").await {
        tracing::warn!(vm = %vm.name(), "quit: {e}");
    }
    if qemu::wait_exit(pid, QUIT_TIMEOUT).await {
        return true;
    }
    tracing::warn!(vm = %vm.name(), pid, "QEMU ignored quit; sending SIGKILL");
    qemu::kill9(pid).await;
    qemu::wait_exit(pid, QUIT_TIMEOUT).await
}

/// The fields (dotted paths) in which two specs differ.
fn differing_fields(a: &VmSpec, b: &VmSpec) -> Vec<String> {
    fn walk(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) if prefix != "labels" => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(
                        &path,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(x), Ok(y)) => walk("", &x, &y, &mut out),
        _ => out.push("spec".to_string()),
    }
    out
}

/// A VM name becomes a directory name and QEMU's `-name`: one plain path
/// component of DNS-ish characters.
fn validate_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "VM name {name:?} must be 1–63 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

/// Refuses a spec that cannot make a sound VM, naming the VM, the field and
/// the rule.
fn validate(spec: &VmSpec) -> Result<(), EngineError> {
    validate_name(&spec.name)?;
    let name = &spec.name;
    let bad =
        |field: &str, rule: String| Err(EngineError::Invalid(format!("VM {name}: {field} {rule}")));
    let h = &spec.hostname;
    if h.is_empty()
        || h.len() > 253
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return bad(
            "hostname",
            format!("{h:?} must be a DNS name (letters, digits, '-', '.')"),
        );
    }
    if !(1..=256).contains(&spec.vcpus) {
        return bad("vcpus", format!("{} must be 1–256", spec.vcpus));
    }
    if spec.memory_mib < 64 {
        return bad(
            "memory_mib",
            format!("{} must be at least 64", spec.memory_mib),
        );
    }
    if !(1..=65536).contains(&spec.disk_gib) {
        return bad("disk_gib", format!("{} must be 1–65536", spec.disk_gib));
    }
    if spec.boot_timeout_seconds == 0 {
        return bad("boot_timeout_seconds", "must be at least 1".into());
    }
    let net = &spec.network;
    let mac: Vec<&str> = net.mac.split(':').collect();
    let mac_ok = mac.len() == 6
        && mac
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(mac[0], 16).is_ok_and(|b| b & 1 == 0);
    if !mac_ok {
        return bad(
            "network.mac",
            format!("{:?} must be a unicast MAC like 52:54:00:12:34:56", net.mac),
        );
    }
    if let Some(vid) = net.vlan_id
        && !(1..=4094).contains(&vid)
    {
        return bad(
            "network.vlan_id",
            format!("{vid} must be 1–4094 (untagged: none)"),
        );
    }
    if let Some(addr) = &net.address {
        let ok = addr.split_once('/').is_some_and(|(ip, len)| {
            match (ip.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(l)) => l <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(l)) => l <= 128,
                _ => false,
            }
        });
        if !ok {
            return bad(
                "network.address",
                format!("{addr:?} must be an address with its prefix length, like 10.0.0.5/24"),
            );
        }
    }
    for (field, value) in net
        .gateway
        .iter()
        .map(|g| ("network.gateway", g))
        .chain(net.dns_servers.iter().map(|d| ("network.dns_servers", d)))
    {
        if value.parse::<std::net::IpAddr>().is_err() {
            return bad(field, format!("{value:?} must be an IP address"));
        }
    }
    if spec
        .ssh_authorized_keys
        .iter()
        .any(|k| k.contains(['\n', '\r']))
    {
        return bad("ssh_authorized_keys", "entries must be single lines".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybrid_api::agent::VmNetwork;

    fn spec() -> VmSpec {
        VmSpec {
            name: "c-np-0".into(),
            hostname: "c-np-0".into(),
            vcpus: 1,
            memory_mib: 128,
            disk_gib: 1,
            image: "default".into(),
            role: "node".into(),
            network: VmNetwork {
                vnet: "v".into(),
                vlan_id: Some(42),
                address: Some("10.0.0.5/24".into()),
                gateway: None,
                dns_servers: vec![],
                mac: "52:54:00:01:02:03".into(),
            },
            ssh_authorized_keys: vec![],
            boot_timeout_seconds: 60,
            labels: Default::default(),
            bootstrap: None,
            bootstrap_secret: None,
        }
    }

    #[test]
    fn differing_fields_name_nested_paths() {
        let a = spec();
        let mut b = spec();
        assert!(differing_fields(&a, &b).is_empty());
        b.memory_mib = 256;
        b.network.address = Some("10.0.0.6/24".into());
        b.labels.insert("pool".into(), "x".into());
        assert_eq!(
            differing_fields(&a, &b),
            vec!["labels", "memory_mib", "network.address"]
        );
    }

    #[test]
    fn validation_names_the_field_and_rule() {
        assert!(validate(&spec()).is_ok());
        for (mutate, field) in [
            (
                Box::new(|s: &mut VmSpec| s.name = "../x".into()) as Box<dyn Fn(&mut VmSpec)>,
                "VM name",
            ),
            (Box::new(|s: &mut VmSpec| s.vcpus = 0), "vcpus"),
            (
                Box::new(|s: &mut VmSpec| s.network.mac = "53:54:00:01:02:03".into()),
                "network.mac",
            ),
            (
                Box::new(|s: &mut VmSpec| s.network.address = Some("10.0.0.5".into())),
                "network.address",
            ),
            (
                Box::new(|s: &mut VmSpec| s.network.vlan_id = Some(4095)),
                "network.vlan_id",
            ),
            (
                Box::new(|s: &mut VmSpec| s.hostname = "a b".into()),
                "hostname",
            ),
            (
                Box::new(|s: &mut VmSpec| s.ssh_authorized_keys = vec!["a\nb".into()]),
                "ssh_authorized_keys",
            ),
        ] {
            let mut s = spec();
            mutate(&mut s);
            let err = validate(&s).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
