//! Errors that handlers return, rendered as the API error envelope.
//!
//! Every failure a client sees goes through [`Failure`], so every response
//! body is `{"error": {...}}` with a code from `hybrid_api::codes`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hybrid_api::validate::FieldError;
use hybrid_api::{ApiError, ErrorEnvelope, codes};

/// An HTTP status plus the API error to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: StatusCode,
    pub error: ApiError,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Failure {
            status,
            error: ApiError::new(code, message),
        }
    }

    /// Sets the field path.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.error.target = Some(target.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Failure::new(StatusCode::CONFLICT, code, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Failure::new(
            StatusCode::PRECONDITION_FAILED,
            codes::PRECONDITION_FAILED,
            message,
        )
    }

    pub fn internal() -> Self {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; see the hybrid-host log",
        )
    }

    /// Field errors as one error: the first at top level, all in `details`.
    /// Returns `None` when there are no errors.
    pub fn from_fields(status: StatusCode, code: &str, errors: Vec<FieldError>) -> Option<Self> {
        let first = errors.first()?.clone();
        let details = if errors.len() > 1 {
            errors
                .into_iter()
                .map(|e| ApiError::new(code, e.message).with_target(e.target))
                .collect()
        } else {
            Vec::new()
        };
        Some(Failure {
            status,
            error: ApiError {
                code: code.to_string(),
                message: first.message,
                target: Some(first.target),
                details,
            },
        })
    }

    /// 400 `InvalidField` for validation errors (`None` when valid).
    pub fn invalid(errors: Vec<FieldError>) -> Option<Self> {
        Failure::from_fields(StatusCode::BAD_REQUEST, codes::INVALID_FIELD, errors)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.error)
    }
}

impl std::error::Error for Failure {}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorEnvelope { error: self.error })).into_response()
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Rejected(f) => f,
            other => {
                tracing::error!(error = %other, "store failure");
                Failure::internal()
            }
        }
    }
}

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
        let f = Failure::invalid(errs).unwrap();
        assert_eq!(f.error.target.as_deref(), Some("a"));
        assert_eq!(f.error.details.len(), 2);
        assert_eq!(f.error.details[1].target.as_deref(), Some("b"));
        assert!(Failure::invalid(vec![]).is_none());
    }
}
