//! SQLite connections, each owned by its own thread.
//!
//! A [`ConnThreads`] is a fixed set of threads, one per connection, taking
//! jobs from one queue. The async side sends a closure and awaits its reply,
//! so a request never holds a runtime worker while SQLite works, and the
//! process has exactly as many store threads as connections. (Running calls
//! on tokio's `spawn_blocking` with the connections behind mutexes grew its
//! pool to one parked thread per concurrent request — 44 under a 64-client
//! load — and glibc gave each thread a malloc arena: 146 MiB resident.)

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A queue of jobs served by one thread per connection.
pub(super) struct ConnThreads {
    what: &'static str,
    jobs: mpsc::Sender<Job>,
}

impl ConnThreads {
    /// Starts one thread per connection, named `{what}-{i}`. The threads end
    /// when the `ConnThreads` is dropped and the queue is drained.
    pub(super) fn start(what: &'static str, conns: Vec<Connection>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for (i, mut conn) in conns.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{what}-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next
                        // job, not while running it.
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = next else { return };
                        // A panicking job drops its reply sender (the caller
                        // sees `StoreError::Task`) and rolls back its open
                        // transaction on unwind; the connection stays usable.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                    }
                })?;
        }
        Ok(ConnThreads { what, jobs })
    }

    /// Runs `f` on the next free connection and returns its result.
    pub(super) async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                // The caller may have gone (request cancelled): nothing to do.
                let _ = reply.send(f(conn));
            }))
            .map_err(|_| StoreError::Task(format!("the {} threads have stopped", self.what)))?;
        result
            .await
            .map_err(|_| StoreError::Task(format!("a {} call panicked", self.what)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(n: usize) -> ConnThreads {
        let conns = (0..n)
            .map(|_| Connection::open_in_memory())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        ConnThreads::start("test-conn", conns).unwrap()
    }

    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let t = threads(2);
        let v: i64 = t
            .run(|c| Ok(c.query_row("SELECT 40 + 2", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(v, 42);
        let err = t
            .run(|_| -> Result<(), StoreError> { Err(StoreError::Corrupt("x".into())) })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(m) if m == "x"));
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_connection_keeps_serving() {
        let t = threads(1);
        t.run(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER)")?))
            .await
            .unwrap();
        let err = t
            .run(|c| -> Result<(), StoreError> {
                let tx = c.transaction()?;
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                panic!("boom");
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Task(m) if m.contains("panicked")),
            "{err:?}"
        );
        // Same (only) connection: the insert was rolled back on unwind.
        let n: i64 = t
            .run(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn many_concurrent_calls_use_only_the_connection_threads() {
        let t = Arc::new(threads(3));
        let calls = (0..200).map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.run(move |_| Ok((i, std::thread::current().name().map(str::to_owned))))
                    .await
            })
        });
        let mut names = std::collections::BTreeSet::new();
        for call in calls {
            let (_, name) = call.await.unwrap().unwrap();
            names.insert(name.unwrap_or_default());
        }
        assert!(names.len() <= 3, "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("test-conn-")),
            "{names:?}"
        );
    }
}
