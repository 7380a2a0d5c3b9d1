//! How one step of an operation's work can fail.

use hybrid_api::{ApiError, codes};

use super::error::Error;
use crate::store::StoreError;

/// Why a step failed: an error that ends the operation as `Failed`, or a
/// store problem that leaves it `Running` to be retried.
#[derive(Debug)]
pub enum StepError {
    Failed(ApiError),
    Store(StoreError),
}

impl StepError {
    /// The infrastructure refused or failed.
    pub fn infra(message: impl Into<String>) -> Self {
        StepError::Failed(ApiError::new(codes::INFRASTRUCTURE_FAILED, message))
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        match e {
            Error::Refused(r) => StepError::Failed(r.error),
            Error::Store(e) => StepError::Store(e),
            Error::Internal(what) => StepError::Failed(ApiError::new(codes::INTERNAL, what)),
        }
    }
}
