//! The one domain error of the service.
//!
//! Admission, IPAM, the lifecycles and the views say *why* a request is
//! refused ([`Reason`]) with the API error the client gets ([`Refusal`]);
//! only `http/` turns a reason into a status code. Failures that are not
//! the client's fault (the store, a bug) stay [`Error::Store`] and
//! [`Error::Internal`]: logged, and shown to the client as an internal error.

use hybrid_api::validate::FieldError;
use hybrid_api::{ApiError, codes};

use crate::store::StoreError;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The request breaks a rule on its own: a malformed body, a field out
    /// of range, an unknown catalogue entry.
    Invalid,
    /// No credentials, or not the right ones.
    Unauthenticated,
    /// The object (or one it names) does not exist.
    NotFound,
    /// The method does not apply to the path.
    MethodNotAllowed,
    /// The request clashes with what is stored: an immutable field, an
    /// object in use or being deleted, a limit, capacity, addresses.
    Conflict,
    /// `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed,
}

/// A refusal: the reason and the API error the client gets (code, message,
/// field path, details).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: Reason,
    pub error: ApiError,
}

impl Refusal {
    pub fn new(reason: Reason, code: &str, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            error: ApiError::new(code, message),
        }
    }

    /// Sets the field path.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.error.target = Some(target.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Refusal::new(Reason::NotFound, codes::NOT_FOUND, message)
    }

    /// A malformed request (`BadRequest`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Refusal::new(Reason::Invalid, codes::BAD_REQUEST, message)
    }

    /// A field that breaks a rule (`InvalidField`).
    pub fn invalid_field(target: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal::new(Reason::Invalid, codes::INVALID_FIELD, message).target(target)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Refusal::new(Reason::Conflict, code, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Refusal::new(
            Reason::PreconditionFailed,
            codes::PRECONDITION_FAILED,
            message,
        )
    }

    /// Field errors as one refusal: the first at top level, all in
    /// `details`. `None` when there are none.
    pub fn from_fields(reason: Reason, code: &str, errors: Vec<FieldError>) -> Option<Self> {
        let first = errors.first()?.clone();
        let details = if errors.len() > 1 {
            errors
                .into_iter()
                .map(|e| ApiError::new(code, e.message).with_target(e.target))
                .collect()
        } else {
            Vec::new()
        };
        Some(Refusal {
            reason,
            error: ApiError {
                code: code.to_string(),
                message: first.message,
                target: Some(first.target),
                details,
                request_id: None,
            },
        })
    }

    /// `InvalidField` for validation errors (`None` when valid).
    pub fn invalid(errors: Vec<FieldError>) -> Option<Self> {
        Refusal::from_fields(Reason::Invalid, codes::INVALID_FIELD, errors)
    }

    /// `Ok` when there are no field errors, else the `InvalidField` refusal.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Refusal> {
        match Refusal::invalid(errors) {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// `Ok` when there are no field errors, else a `Conflict` with `code`.
    pub fn check_conflicts(code: &str, errors: Vec<FieldError>) -> Result<(), Refusal> {
        match Refusal::from_fields(Reason::Conflict, code, errors) {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.reason, self.error)
    }
}

impl std::error::Error for Refusal {}

/// What a domain call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is refused; the client is told why.
    #[error("{0}")]
    Refused(Refusal),
    /// The store failed: not the client's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Any other failure that is not the client's fault (never shown).
    #[error("{0}")]
    Internal(String),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

impl Error {
    pub fn internal(what: impl Into<String>) -> Self {
        Error::Internal(what.into())
    }
}

/// Result of a domain call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_field_errors_put_first_on_top_and_all_in_details() {
        let errs = vec![
            FieldError {
                target: "a".into(),
                message: "a bad".into(),
            },
            FieldError {
                target: "b".into(),
                message: "b bad".into(),
            },
        ];
        let f = Refusal::invalid(errs).unwrap();
        assert_eq!(f.reason, Reason::Invalid);
        assert_eq!(f.error.target.as_deref(), Some("a"));
        assert_eq!(f.error.details.len(), 2);
        assert_eq!(f.error.details[1].target.as_deref(), Some("b"));
        assert!(Refusal::invalid(vec![]).is_none());
    }
}
