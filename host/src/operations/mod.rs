//! The durable operation queue and its worker.
//!
//! Operations are rows in the store (status `Running` until done), so a
//! restart simply picks them up again. The worker runs them one at a time in
//! creation order; handlers wake it through a [`Notify`] and long-polling
//! readers learn of completions through a [`watch`] channel, so nobody sleeps
//! in a loop.

use std::sync::Arc;
use std::time::Duration;

use hybrid_api::{ApiError, Operation, codes, operation_kinds};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::error::Failure;
use crate::sim::SimDriver;
use crate::store::{Store, StoreError};

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
    pub fn spawn_worker(
        self: &Arc<Self>,
        driver: SimDriver,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.store.running_operations().await {
                    Ok(ops) => {
                        for op in ops {
                            if *shutdown.borrow() {
                                return;
                            }
                            // On shutdown, abandon the operation mid-way: it
                            // stays Running in the store and resumes on restart.
                            tokio::select! {
                                _ = this.execute(&driver, op) => {}
                                _ = shutdown.wait_for(|stop| *stop) => return,
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot read the operation queue"),
                }
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    // Safety net: re-scan periodically in case a wake-up was
                    // for work that failed transiently.
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        })
    }

    async fn execute(&self, driver: &SimDriver, op: Operation) {
        let name = op
            .target
            .strip_prefix("/vnets/")
            .unwrap_or(&op.target)
            .to_string();
        tracing::info!(operation = %op.id, kind = %op.kind, target = %op.target, "running operation");
        let result = match op.kind.as_str() {
            operation_kinds::VNET_CREATE | operation_kinds::VNET_UPDATE => {
                driver.ensure_network(&name).await
            }
            operation_kinds::VNET_DELETE => driver.remove_network(&name).await,
            other => Err(format!("unknown operation kind {other:?}")),
        };
        let error = result
            .err()
            .map(|message| ApiError::new(codes::INTERNAL, message));
        if let Some(e) = &error {
            tracing::warn!(operation = %op.id, error = %e.message, "operation failed");
        }
        match self.store.complete_vnet_operation(&op.id, error).await {
            Ok(()) => {}
            Err(StoreError::Rejected(f)) => {
                tracing::error!(operation = %op.id, error = %f, "completion rejected")
            }
            Err(e) => tracing::error!(operation = %op.id, error = %e, "cannot record completion"),
        }
        self.completed.send_modify(|n| *n += 1);
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
