//! Managed resources, one file per kind (its schema, model, plan-time
//! checks and what its lifecycle needs), plus the steps they share:
//! `lifecycle` (apply: create, read, update, delete, import),
//! `planning` (plan-time rules), `dry_run` (the service's admission
//! check at plan time), `vip_pressure` (the warning for a VIP pool left
//! with none free) and `attributes` (shared schema pieces).
//!
//! Adding a kind: a file here with its `model!` struct (the schema's
//! attributes), its schema, and an `impl Managed` (id rules, the client
//! calls, `to_state`, `create_request`/`update_request`, plan hooks), plus
//! `managed_resource!(Kind);` and one line in [`all`]. Its HTTP calls go in
//! `client/`; its docs page is `templates/resources/<name>.md.tmpl` with an
//! example in `examples/resources/<type>/` (`cargo xtask docs`). A data
//! source for the kind builds its state on the resource's `to_state`.
//!
//! May depend on the framework, the [`client`](crate::client),
//! [`errors`](crate::errors) and `hybrid-api`; never on the data sources,
//! ephemeral resources or functions (they may depend on this).

pub(crate) mod attributes;
pub mod cluster;
pub mod custom_location;
pub(crate) mod dry_run;
pub mod extension;
pub(crate) mod following;
pub(crate) mod lifecycle;
pub mod nodepool;
pub(crate) mod planning;
pub(crate) mod vip_pressure;
pub mod vnet;

use crate::client::HostClient;
use crate::framework::Resource;

/// Every resource the provider serves.
pub fn all() -> Vec<Box<dyn Resource<HostClient>>> {
    vec![
        Box::new(vnet::VnetResource),
        Box::new(custom_location::CustomLocationResource),
        Box::new(cluster::ClusterResource),
        Box::new(nodepool::NodePoolResource),
        Box::new(extension::ExtensionResource),
    ]
}
