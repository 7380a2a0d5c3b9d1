//! The core every kind is built on: typed stored records ([`record`]), the
//! one domain error ([`error`]), what an admission decides and the
//! operations it queues ([`outcome`]), preconditions on etags
//! ([`preconditions`]), how a step of an operation fails ([`step`]) and the
//! datacenter as admission sees it ([`env`]).
//!
//! May depend on: [`crate::store`], [`crate::driver`] (to read [`Env`]),
//! [`crate::placement`] and [`crate::clock`]. Never on a kind, on
//! `operations/` or on `http/`.

pub mod children;
pub mod env;
pub mod error;
pub mod outcome;
pub mod preconditions;
pub mod record;
pub mod step;

pub use env::Env;
pub use error::{Error, Reason, Refusal};
pub use outcome::{Outcome, new_operation, queue};
pub use preconditions::Preconditions;
pub use record::{Kind, NoInternal, Record};
pub use step::StepError;
