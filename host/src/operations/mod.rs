//! The durable operation queue and its worker.
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

use hybrid_api::{ApiError, Operation, codes, operation_kinds};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::clusters::admission;
use crate::clusters::reconcile::{self, StepError};
use crate::driver::{Driver, DriverError};
use crate::error::Failure;
use crate::store::{Store, StoreError};

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
    ) -> Result<Option<Operation>, Failure> {
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
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            // Work the service starts by itself (automatic extension
            // upgrades, installs that waited for Linux nodes), queued
            // before the first scan.
            match crate::extensions::lifecycle::on_start(&this.store, driver.as_ref()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "extension upgrades queued at start-up"),
                Err(e) => tracing::error!(error = %e, "cannot queue automatic extension upgrades"),
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
                                let (this, driver) = (this.clone(), driver.clone());
                                let task = running.spawn(async move {
                                    this.execute(driver.as_ref(), op).await;
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

    async fn execute(&self, driver: &dyn Driver, op: Operation) {
        tracing::info!(operation = %op.id, kind = %op.kind, target = %op.target, "running operation");
        let recorded = if op.kind.starts_with("vnet.") {
            let name = op.target.strip_prefix("/vnets/").unwrap_or(&op.target);
            let result = match op.kind.as_str() {
                operation_kinds::VNET_CREATE | operation_kinds::VNET_UPDATE => {
                    driver.ensure_network(name).await
                }
                operation_kinds::VNET_DELETE => driver.remove_network(name).await,
                other => Err(DriverError::State(format!(
                    "unknown operation kind {other:?}"
                ))),
            };
            let error = result
                .err()
                .map(|e| ApiError::new(codes::INFRASTRUCTURE_FAILED, e.to_string()));
            log_failure(&op, error.as_ref());
            self.store.complete_vnet_operation(&op.id, error).await
        } else if op.kind.starts_with("extension.") {
            use crate::extensions::lifecycle;
            match lifecycle::run(&self.store, driver, &op).await {
                Err(StepError::Store(e)) => {
                    tracing::error!(operation = %op.id, error = %e, "store failure while running operation; will retry");
                    return;
                }
                Ok(done) => lifecycle::complete(&self.store, &op, Ok(done)).await,
                Err(StepError::Failed(e)) => {
                    log_failure(&op, Some(&e));
                    lifecycle::complete(&self.store, &op, Err(e)).await
                }
            }
        } else {
            let outcome = match admission::env(driver).await {
                Ok(env) => reconcile::run(&self.store, driver, &env, &op).await,
                Err(e) => Err(StepError::Failed(ApiError::new(
                    codes::INFRASTRUCTURE_FAILED,
                    format!("cannot read the datacenter inventory: {e}"),
                ))),
            };
            match outcome {
                Err(StepError::Store(e)) => {
                    // Not the operation's fault: leave it Running; it is retried
                    // on the next scan or restart.
                    tracing::error!(operation = %op.id, error = %e, "store failure while running operation; will retry");
                    return;
                }
                Ok(()) => reconcile::complete(&self.store, &op, None).await,
                Err(StepError::Failed(e)) => {
                    log_failure(&op, Some(&e));
                    reconcile::complete(&self.store, &op, Some(e)).await
                }
            }
        };
        match recorded {
            Ok(()) => {}
            Err(StoreError::Rejected(f)) => {
                tracing::error!(operation = %op.id, error = %f, "completion rejected")
            }
            Err(e) => tracing::error!(operation = %op.id, error = %e, "cannot record completion"),
        }
        self.completed.send_modify(|n| *n += 1);
    }
}

fn log_failure(op: &Operation, error: Option<&ApiError>) {
    if let Some(e) = error {
        tracing::warn!(operation = %op.id, error = %e.message, "operation failed");
    }
}

/// Parses a wait duration: `30s`, `500ms`, `2m` (capped at 60 s).
pub fn parse_wait(value: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::bad_request(format!(
            "wait {value:?} is not a duration; use e.g. 500ms, 30s or 2m"
        ))
        .target("wait")
    };
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| value.split_at(i))
        .ok_or_else(bad)?;
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    Ok(d.min(Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_durations() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("2m").unwrap(), Duration::from_secs(60), "capped");
        for bad in ["", "s", "10", "1h", "-1s", "1.5s"] {
            let e = parse_wait(bad).unwrap_err();
            assert_eq!(e.error.target.as_deref(), Some("wait"), "{bad}");
        }
    }
}
