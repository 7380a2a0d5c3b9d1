//! Extensions on a cluster or on the management host (their types are in
//! [`crate::extension_types`]): how a change is
//! admitted ([`admission`]), how the install/upgrade/remove operations run
//! and finish ([`lifecycle`]), and how an extension is shown ([`views`]).
//!
//! May depend on: [`crate::objects`], [`crate::store`], [`crate::driver`],
//! [`crate::operations`] (the lifecycle trait) and [`crate::clusters`] (the
//! clusters extensions are installed on).
//!
//! Protected settings live only in the store's sealed secrets
//! (`Tx::put_secret(extension_id, "protected_settings", …)`); the stored
//! spec, the views, the logs and the operation errors never hold them.

use hybrid_api::extension::{ExtensionSpec, StatusEntry};
use hybrid_api::{MANAGEMENT_HOST_ID, cluster};
use serde::{Deserialize, Serialize};

use crate::objects::{Kind, Record, queue};
use crate::store::ObjectKind;

pub mod admission;
pub mod lifecycle;
pub mod views;

pub use lifecycle::ExtensionLifecycle;

/// Name of the sealed secret holding an extension's protected settings.
pub const PROTECTED_SECRET: &str = "protected_settings";
/// Status entries kept per extension (newest first).
pub const MAX_STATUSES: usize = 10;

/// What the service remembers about an extension beyond its spec.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionInternal {
    /// The version installed on the target (`None` until an install succeeds).
    #[serde(default)]
    pub current_version: Option<String>,
    /// Whether protected settings are stored (never their keys or values).
    #[serde(default)]
    pub has_protected_settings: bool,
    /// What happened, newest first.
    #[serde(default)]
    pub statuses: Vec<StatusEntry>,
}

impl ExtensionInternal {
    /// Adds a status entry on top, keeping the newest [`MAX_STATUSES`].
    pub fn push_status(&mut self, entry: StatusEntry) {
        self.statuses.insert(0, entry);
        self.statuses.truncate(MAX_STATUSES);
    }
}

impl Kind for ExtensionSpec {
    const KIND: ObjectKind = ObjectKind::Extension;
}

pub type ExtensionRecord = Record<ExtensionSpec, ExtensionInternal>;

/// Where an extension is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A cluster, by name.
    Cluster(String),
    ManagementHost,
}

impl Target {
    /// `/clusters/{name}` or `/management-host`.
    pub fn id(&self) -> String {
        match self {
            Target::Cluster(c) => cluster::cluster_id(c),
            Target::ManagementHost => MANAGEMENT_HOST_ID.to_string(),
        }
    }

    /// Parses a target id.
    pub fn parse(id: &str) -> Option<Target> {
        if id == MANAGEMENT_HOST_ID {
            return Some(Target::ManagementHost);
        }
        cluster::parse_cluster_id(id).map(|c| Target::Cluster(c.to_string()))
    }

    pub fn kind(&self) -> hybrid_api::extension::ExtensionTarget {
        match self {
            Target::Cluster(_) => hybrid_api::extension::ExtensionTarget::Cluster,
            Target::ManagementHost => hybrid_api::extension::ExtensionTarget::ManagementHost,
        }
    }

    /// The operation queue: a cluster's extensions run in line with the
    /// cluster's other work; each host extension has its own queue.
    pub fn queue(&self, name: &str) -> String {
        match self {
            Target::Cluster(c) => queue::cluster(c),
            Target::ManagementHost => queue::host_extension(name),
        }
    }

    /// `cluster c1` / `the management host`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Cluster(c) => format!("cluster {c}"),
            Target::ManagementHost => "the management host".to_string(),
        }
    }
}

/// `extension NAME of cluster C` / `extension NAME of the management host`.
pub fn describe(target: &Target, name: &str) -> String {
    format!("extension {name} of {}", target.describe())
}

/// A status entry stamped now.
pub fn status(
    level: hybrid_api::extension::StatusLevel,
    code: &str,
    message: String,
) -> StatusEntry {
    StatusEntry {
        level,
        code: code.to_string(),
        message,
        time: crate::clock::now(),
    }
}
