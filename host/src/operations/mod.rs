//! The durable operation queue and its worker.
//!
//! May depend on: [`crate::store`], [`crate::driver`], [`crate::objects`]
//! and [`crate::observability`];
//! never on a kind: each kind's [`Lifecycle`] is found in the [`Registry`].
//!
//! Operations are rows in the store (status `Running` until done), so a
//! restart simply picks them up again. The worker runs them in creation
//! order, one at a time per queue and at most [`MAX_RUNNING`] at once;
//! handlers wake it through a [`Notify`] and long-polling
//! readers learn of completions through a [`watch`] channel, so nobody sleeps
//! in a loop.
//!
//! Replicas sharing one database share the work through leases: a replica
//! runs an operation only while it holds its lease, renews the leases of
//! what it runs every third of the lease's life, and stops an operation
//! whose lease it lost. A replica that dies stops renewing; once its leases
//! expire, another takes the operations over (they are idempotent, step by
//! step, as they already are across a restart). Queued and finished
//! operations of other replicas arrive as [`StoreEvent`]s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hybrid_api::{ApiError, Operation, codes};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::driver::Driver;
use crate::objects;
use crate::observability::{metrics, trace};
use crate::store::{Store, StoreEvent};

mod registry;

pub use registry::{Context, Ended, Lifecycle, Registry};

/// Operations run at once, at most (each on its own queue). More wait in
/// the store, oldest first, and start as others finish. Without a bound a
/// burst of writes turned every accepted operation into a live task at
/// once — 9,000 of them, about 19 MiB, under the API benchmark — all
/// waiting on the store's one writer anyway.
pub const MAX_RUNNING: usize = 128;

/// Default life of an operation lease without renewal.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// How often a replica sharing its store looks for work whose lease
/// expired (a replica that died), besides the events that wake it.
const SHARED_RESCAN: Duration = Duration::from_secs(1);
/// The same for a store only this process uses: a safety net in case a
/// wake-up was for work that failed transiently.
const LOCAL_RESCAN: Duration = Duration::from_secs(30);

/// One running task: its queue, its operation, and how to stop it.
struct Running {
    queue: String,
    operation: String,
    abort: tokio::task::AbortHandle,
}

/// The queues with a running task, and which task serves which (a panicked
/// task is known by its id only).
#[derive(Default)]
struct Busy {
    by_task: HashMap<tokio::task::Id, Running>,
    queues: HashSet<String>,
}

impl Busy {
    fn start(&mut self, abort: tokio::task::AbortHandle, queue: String, operation: String) {
        self.queues.insert(queue.clone());
        self.by_task.insert(
            abort.id(),
            Running {
                queue,
                operation,
                abort,
            },
        );
    }

    /// Forgets a finished task; returns its operation's id unless the task
    /// finished it (it panicked, was stopped, or left it to be retried).
    fn finish(
        &mut self,
        done: Result<(tokio::task::Id, Ended), tokio::task::JoinError>,
    ) -> Option<String> {
        let (id, unfinished) = match done {
            Ok((id, ended)) => (id, ended == Ended::Retry),
            Err(e) => {
                if !e.is_cancelled() {
                    tracing::error!(error = %e, "an operation task failed; it will be retried");
                }
                (e.id(), true)
            }
        };
        let running = self.by_task.remove(&id)?;
        self.queues.remove(&running.queue);
        unfinished.then_some(running.operation)
    }

    fn operations(&self) -> Vec<String> {
        self.by_task.values().map(|r| r.operation.clone()).collect()
    }

    /// Stops the tasks running operations this replica no longer leases.
    fn stop_unless_held(&self, held: &HashSet<String>) {
        for r in self.by_task.values() {
            if !held.contains(&r.operation) {
                tracing::warn!(operation = %r.operation, "lost the operation's lease; stopping it here");
                r.abort.abort();
            }
        }
    }
}

/// Shared handle: enqueue notifications and completion broadcasts.
pub struct Operations {
    store: Arc<dyn Store>,
    wake: Notify,
    completed: watch::Sender<u64>,
    /// This replica's name: the owner of its leases.
    replica: String,
    lease_ttl: Duration,
}

impl Operations {
    pub fn new(store: Arc<dyn Store>, replica: String, lease_ttl: Duration) -> Arc<Self> {
        Arc::new(Operations {
            store,
            wake: Notify::new(),
            completed: watch::channel(0).0,
            replica,
            lease_ttl,
        })
    }

    /// Tells the worker there is new work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until operation `id` is terminal, `wait` elapses or `shutdown`
    /// fires, then returns its latest state (`None` if unknown).
    pub async fn wait_for(
        &self,
        id: &str,
        wait: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Option<Operation>, objects::Error> {
        // Subscribe before the first read so a completion in between is seen.
        let mut changes = self.completed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Some(op) = self.store.get_operation(id).await? else {
                return Ok(None);
            };
            if op.status.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(Some(op));
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, changes.changed()) => {
                    if let Ok(Err(_)) = changed {
                        return Ok(Some(op)); // worker gone; answer with what we have
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => return Ok(Some(op)),
            }
        }
    }

    /// Starts the worker; it stops when `shutdown` becomes true.
    ///
    /// Operations of one queue (one vnet, one cluster with its pools) run
    /// one at a time in the order they were accepted; different queues run
    /// side by side, so a long cluster create never holds up another cluster.
    pub fn spawn_worker(
        self: &Arc<Self>,
        driver: Arc<dyn Driver>,
        registry: Registry,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = self.clone();
        let ctx = Context {
            store: self.store.clone(),
            driver,
            registry: Arc::new(registry),
        };
        let rescan = match self.store.events() {
            Some(events) => {
                tokio::spawn(forward_events(Arc::downgrade(self), events));
                SHARED_RESCAN
            }
            None => LOCAL_RESCAN,
        };
        tokio::spawn(async move {
            // Work the service starts by itself (automatic extension
            // upgrades, installs that waited for Linux nodes), queued
            // before the first scan.
            for lifecycle in ctx.registry.all() {
                match lifecycle.on_start(&ctx).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(queued = n, "operations queued at start-up"),
                    Err(e) => tracing::error!(error = %e, "cannot queue start-up operations"),
                }
            }
            let mut running: JoinSet<Ended> = JoinSet::new();
            let mut busy = Busy::default();
            let mut heartbeat = tokio::time::interval(this.lease_ttl / 3);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if running.len() < MAX_RUNNING {
                    this.start_ready(&ctx, &mut running, &mut busy).await;
                }
                let mut unfinished = Vec::new();
                let mut renew = false;
                let mut stopping = false;
                tokio::select! {
                    Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                        // Reap every other finished task before the next scan:
                        // one scan per batch of completions, not per completion.
                        let mut done = Some(done);
                        while let Some(d) = done.take().or_else(|| running.try_join_next_with_id()) {
                            unfinished.extend(busy.finish(d));
                        }
                    }
                    _ = this.wake.notified() => {}
                    _ = heartbeat.tick(), if !running.is_empty() => renew = true,
                    // On shutdown, abandon operations mid-way: they stay
                    // Running in the store and resume on restart (or on
                    // another replica once their leases expire).
                    _ = shutdown.wait_for(|stop| *stop) => {
                        running.abort_all();
                        stopping = true;
                    }
                    _ = tokio::time::sleep(rescan) => {}
                }
                if stopping {
                    // Hand the leases back so another replica (or this one,
                    // restarted under another name) resumes at once.
                    for op in busy.operations() {
                        this.release(&op).await;
                    }
                    return;
                }
                for op in unfinished {
                    this.release(&op).await;
                }
                if renew {
                    this.renew(&busy).await;
                }
            }
        })
    }

    /// Starts the oldest running operation of every queue that has no task
    /// here, as far as this replica can lease them.
    async fn start_ready(&self, ctx: &Context, running: &mut JoinSet<Ended>, busy: &mut Busy) {
        let ops = match self.store.running_operation_queues().await {
            Ok(ops) => ops,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the operation queue");
                return;
            }
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut ready = Vec::new();
        for (queue, op) in ops {
            if running.len() + ready.len() >= MAX_RUNNING {
                break;
            }
            // Only the oldest running operation of a queue may start.
            if !seen.insert(queue.clone()) || busy.queues.contains(&queue) {
                continue;
            }
            ready.push((queue, op));
        }
        if ready.is_empty() {
            return;
        }
        let ids: Vec<String> = ready.iter().map(|(_, op)| op.id.clone()).collect();
        let held: HashSet<String> = match self
            .store
            .lease_operations(&ids, &self.replica, self.lease_ttl)
            .await
        {
            Ok(held) => held.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot lease operations");
                return;
            }
        };
        for (queue, op) in ready {
            // Another replica runs it (and so its whole queue).
            if !held.contains(&op.id) {
                continue;
            }
            let id = op.id.clone();
            let ctx = ctx.clone();
            let completed = self.completed.clone();
            let abort = running.spawn(async move {
                let ended = execute(&ctx, op).await;
                if ended != Ended::Retry {
                    completed.send_modify(|n| *n += 1);
                }
                ended
            });
            busy.start(abort, queue, id);
        }
    }

    /// Renews the leases of what runs here; stops what lost its lease.
    async fn renew(&self, busy: &Busy) {
        let ids = busy.operations();
        match self
            .store
            .lease_operations(&ids, &self.replica, self.lease_ttl)
            .await
        {
            Ok(held) => busy.stop_unless_held(&held.into_iter().collect()),
            // Keep running: the lease may still be valid, and the next
            // renewal tells. A replica cut off from the database for
            // longer than the lease loses it at that renewal.
            Err(e) => tracing::warn!(error = %e, "cannot renew operation leases"),
        }
    }

    /// Gives up the lease of an operation that stopped here unfinished.
    async fn release(&self, op: &str) {
        if let Err(e) = self.store.release_operation(op, &self.replica).await {
            tracing::warn!(operation = %op, error = %e, "cannot release the operation's lease");
        }
    }
}

/// Turns other replicas' store events into wake-ups and completion
/// broadcasts, until the service is gone.
async fn forward_events(
    ops: std::sync::Weak<Operations>,
    mut events: tokio::sync::broadcast::Receiver<StoreEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = events.recv().await;
        let Some(ops) = ops.upgrade() else { return };
        match event {
            Ok(StoreEvent::Queued) => ops.wake(),
            Ok(StoreEvent::Finished(_)) => ops.completed.send_modify(|n| *n += 1),
            // Missed some: look at everything again.
            Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => {
                ops.wake();
                ops.completed.send_modify(|n| *n += 1);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Runs one operation, counting it in the metrics by kind and outcome.
async fn execute(ctx: &Context, op: Operation) -> Ended {
    let _executing = metrics::Executing::start();
    let start = std::time::Instant::now();
    let kind = op.kind.clone();
    // Every line the operation's work logs carries its request id (the one
    // of the request that queued it), and operations it queues inherit it.
    let span = tracing::info_span!(
        "operation",
        request_id = %op.request_id.as_deref().unwrap_or(""),
        operation = %op.id,
    );
    let ended = match op.request_id.clone() {
        Some(id) => trace::scope(id, run(ctx, op)).instrument(span).await,
        None => run(ctx, op).instrument(span).await,
    };
    let outcome = match ended {
        Ended::Succeeded => "succeeded",
        Ended::Failed => "failed",
        Ended::Retry => "retried",
    };
    metrics::operation(&kind, outcome, start.elapsed());
    ended
}

/// Runs one operation through its kind's lifecycle.
async fn run(ctx: &Context, op: Operation) -> Ended {
    tracing::info!(operation = %op.id, kind = %op.kind, target = %op.target, "running operation");
    if let Some(lifecycle) = ctx.registry.get(&op.kind) {
        return lifecycle.execute(ctx, &op).await;
    }
    // A kind this build does not know (a newer build's operation): end it
    // rather than retry it forever.
    let error = ApiError::new(
        codes::INTERNAL,
        format!("unknown operation kind {:?}", op.kind),
    );
    log_failure(&op, Some(&error));
    let id = op.id.clone();
    match ctx
        .store
        .write(false, move |tx| tx.finish_operation(&id, Some(&error)))
        .await
    {
        Ok(()) => Ended::Failed,
        Err(e) => {
            let e: crate::store::StoreError = e;
            tracing::error!(operation = %op.id, error = %e, "cannot record completion");
            Ended::Retry
        }
    }
}

/// Logs an operation's failure (lifecycles call it before recording it).
pub fn log_failure(op: &Operation, error: Option<&ApiError>) {
    if let Some(e) = error {
        tracing::warn!(operation = %op.id, error = %e.message, "operation failed");
    }
}
