//! How the worker finds the code that carries out an operation: every kind
//! implements [`Lifecycle`] in its own folder and is registered once, in
//! [`crate::start`]; the worker looks an operation's kind up here.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use hybrid_api::Operation;

use crate::driver::Driver;
use crate::store::{Store, StoreError, Tx};

/// What a lifecycle works with.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub driver: Arc<dyn Driver>,
    /// Every registered lifecycle, for [`Registry::completed`].
    pub registry: Arc<Registry>,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Succeeded,
    Failed,
    /// The store failed: the operation stays `Running` and is retried on
    /// the next scan or restart.
    Retry,
}

/// A kind's operations: what the worker does for them.
#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// The operation kinds it carries out (`vnet.create`, …).
    fn kinds(&self) -> &'static [&'static str];

    /// Does the work of `op` on the infrastructure and records how it
    /// ended: the operation's status and, while `op` is still the
    /// object's current operation, its provisioning state. Inside the
    /// transaction that records the end, call [`Registry::completed`].
    async fn execute(&self, ctx: &Context, op: &Operation) -> Ended;

    /// Inside the transaction that records the end of `op` (of any kind):
    /// work of this kind that waited for it is queued here, atomically with
    /// that end (e.g. extensions waiting for a cluster's Linux nodes).
    fn completed(
        &self,
        _tx: &mut dyn Tx,
        _op: &Operation,
        _succeeded: bool,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Work the kind queues by itself at start-up (e.g. automatic
    /// upgrades); returns how many operations it queued.
    async fn on_start(&self, _ctx: &Context) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// The lifecycles by operation kind.
#[derive(Default)]
pub struct Registry {
    all: Vec<Arc<dyn Lifecycle>>,
    by_kind: HashMap<&'static str, Arc<dyn Lifecycle>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers a kind's lifecycle for the operation kinds it names.
    pub fn with(mut self, lifecycle: impl Lifecycle) -> Self {
        let lifecycle: Arc<dyn Lifecycle> = Arc::new(lifecycle);
        for kind in lifecycle.kinds() {
            self.by_kind.insert(kind, lifecycle.clone());
        }
        self.all.push(lifecycle);
        self
    }

    /// The lifecycle that carries out operations of `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Lifecycle>> {
        self.by_kind.get(kind)
    }

    /// Every registered lifecycle.
    pub fn all(&self) -> &[Arc<dyn Lifecycle>] {
        &self.all
    }

    /// Tells every kind, inside the recording transaction, that `op` ended.
    pub fn completed(
        &self,
        tx: &mut dyn Tx,
        op: &Operation,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        for l in &self.all {
            l.completed(tx, op, succeeded)?;
        }
        Ok(())
    }
}
