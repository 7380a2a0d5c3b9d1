//! The `sim` datacenter under its historical path: the driver and its
//! `--sim` configuration live in [`crate::driver::sim`]; these re-exports
//! keep `crate::sim::{SimConfig, SimError, SimDriver}` working.

pub use crate::driver::sim::*;
