//! Custom locations, clusters and node pools: what is stored about them
//! ([`records`]), how a change is admitted ([`admission`]), how operations
//! are carried out on the datacenter ([`reconcile`]), how they are shown
//! ([`views`]) and the per-cluster PKI ([`certs`]).

pub mod admission;
pub mod certs;
pub mod reconcile;
pub mod records;
pub mod views;
