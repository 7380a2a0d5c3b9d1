//! The durable operation queue and its worker.
//!
//! May depend on: [`crate::store`], [`crate::driver`] and [`crate::objects`];
//! never on a kind: each kind's [`Lifecycle`] is found in the [`Registry`].
//!
//! Operations are rows in the store (status `Running` until done), so a
//! restart simply picks them up again. The worker runs them in creation
//! order, one at a time per queue and at most [`MAX_RUNNING`] at once;
//! handlers wake it through a [`Notify`] and long-polling
//! readers learn of completions through a [`watch`] channel, so nobody sleeps
//! in a loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hybrid_api::{ApiError, Operation, codes};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::driver::Driver;
use crate::objects;
use crate::store::Store;

mod registry;

pub use registry::{Context, Ended, Lifecycle, Registry};

/// Operations run at once, at most (each on its own queue). More wait in
/// the store, oldest first, and start as others finish. Without a bound a
/// burst of writes turned every accepted operation into a live task at
/// once — 9,000 of them, about 19 MiB, under the API benchmark — all
/// waiting on the store's one writer anyway.
pub const MAX_RUNNING: usize = 128;

/// The queues with a running task, and which task serves which (a panicked
/// task is known by its id only).
#[derive(Default)]
struct Busy {
    by_task: HashMap<tokio::task::Id, String>,
    queues: HashSet<String>,
}

impl Busy {
    fn start(&mut self, task: tokio::task::Id, queue: String) {
        self.queues.insert(queue.clone());
        self.by_task.insert(task, queue);
    }

    fn finish(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                tracing::error!(error = %e, "an operation task failed; it will be retried");
                e.id()
            }
        };
        if let Some(queue) = self.by_task.remove(&id) {
            self.queues.remove(&queue);
        }
    }
}

/// Shared handle: enqueue notifications and completion broadcasts.
pub struct Operations {
    store: Arc<dyn Store>,
    wake: Notify,
    completed: watch::Sender<u64>,
}

impl Operations {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Operations {
            store,
            wake: Notify::new(),
            completed: watch::channel(0).0,
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
            let mut running: JoinSet<()> = JoinSet::new();
            let mut busy = Busy::default();
            loop {
                if running.len() < MAX_RUNNING {
                    match this.store.running_operation_queues().await {
                        Ok(ops) => {
                            let mut seen: HashSet<String> = HashSet::new();
                            for (queue, op) in ops {
                                if running.len() >= MAX_RUNNING {
                                    break;
                                }
                                // Only the oldest running operation of a queue may start.
                                if !seen.insert(queue.clone()) || busy.queues.contains(&queue) {
                                    continue;
                                }
                                let (this, ctx) = (this.clone(), ctx.clone());
                                let task = running.spawn(async move {
                                    this.execute(&ctx, op).await;
                                });
                                busy.start(task.id(), queue);
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "cannot read the operation queue"),
                    }
                }
                tokio::select! {
                    Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                        busy.finish(done);
                        // Reap every other finished task before the next scan:
                        // one scan per batch of completions, not per completion.
                        while let Some(done) = running.try_join_next_with_id() {
                            busy.finish(done);
                        }
                    }
                    _ = this.wake.notified() => {}
                    // On shutdown, abandon operations mid-way: they stay
                    // Running in the store and resume on restart.
                    _ = shutdown.wait_for(|stop| *stop) => {
                        running.abort_all();
                        return;
                    }
                    // Safety net: re-scan periodically in case a wake-up was
                    // for work that failed transiently.
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        })
    }

    async fn execute(&self, ctx: &Context, op: Operation) {
        tracing::info!(operation = %op.id, kind = %op.kind, target = %op.target, "running operation");
        let ended = match ctx.registry.get(&op.kind) {
            Some(lifecycle) => lifecycle.execute(ctx, &op).await,
            None => {
                // A kind this build does not know (a newer build's
                // operation): end it rather than retry it forever.
                let error = ApiError::new(
                    codes::INTERNAL,
                    format!("unknown operation kind {:?}", op.kind),
                );
                log_failure(&op, Some(&error));
                let id = op.id.clone();
                match self
                    .store
                    .write(false, move |tx| tx.finish_operation(&id, Some(&error)))
                    .await
                {
                    Ok(()) => Ended::Failed,
                    Err(e) => {
                        tracing::error!(operation = %op.id, error = %e, "cannot record completion");
                        Ended::Retry
                    }
                }
            }
        };
        if ended == Ended::Retry {
            return;
        }
        self.completed.send_modify(|n| *n += 1);
    }
}

/// Logs an operation's failure (lifecycles call it before recording it).
pub fn log_failure(op: &Operation, error: Option<&ApiError>) {
    if let Some(e) = error {
        tracing::warn!(operation = %op.id, error = %e.message, "operation failed");
    }
}
