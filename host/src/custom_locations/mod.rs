//! Custom locations: where operators may create clusters. Nothing runs on
//! the datacenter for them, so a change is decided and stored in one
//! transaction ([`admission`]) with no operation and no lifecycle; how one
//! is shown is in [`views`].
//!
//! May depend on: [`crate::objects`] and [`crate::store`]. The host
//! extensions a location references are checked through
//! [`crate::extensions::admission`].

use hybrid_api::CustomLocationSpec;

use crate::objects::{Kind, NoInternal, Record};
use crate::store::ObjectKind;

pub mod admission;
pub mod views;

impl Kind for CustomLocationSpec {
    const KIND: ObjectKind = ObjectKind::CustomLocation;
}

pub type CustomLocationRecord = Record<CustomLocationSpec, NoInternal>;
