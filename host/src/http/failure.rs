//! What a failed request answers: the status code and the API error
//! envelope `{"error": {...}}`.
//!
//! This is the one place where the domain's [`Reason`]s become HTTP status
//! codes; everything below `http/` speaks [`objects::Error`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hybrid_api::{ApiError, ErrorEnvelope, codes};

use crate::objects::{self, Reason, Refusal};
use crate::store::StoreError;

/// An HTTP status plus the API error to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: StatusCode,
    pub error: ApiError,
}

/// The status code a refusal is answered with.
pub fn status_of(reason: Reason) -> StatusCode {
    match reason {
        Reason::Invalid => StatusCode::BAD_REQUEST,
        Reason::Unauthenticated => StatusCode::UNAUTHORIZED,
        Reason::NotFound => StatusCode::NOT_FOUND,
        Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Reason::Conflict => StatusCode::CONFLICT,
        Reason::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
    }
}

impl Failure {
    pub fn not_found(message: impl Into<String>) -> Self {
        Refusal::not_found(message).into()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Refusal::bad_request(message).into()
    }

    pub fn internal() -> Self {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: ApiError::new(codes::INTERNAL, "internal error; see the hybrid-host log"),
        }
    }

    /// Sets the field path.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.error.target = Some(target.into());
        self
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

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure {
            status: status_of(r.reason),
            error: r.error,
        }
    }
}

impl From<objects::Error> for Failure {
    fn from(e: objects::Error) -> Self {
        match e {
            objects::Error::Refused(r) => r.into(),
            objects::Error::Store(e) => e.into(),
            objects::Error::Internal(what) => {
                tracing::error!(error = %what, "internal error");
                Failure::internal()
            }
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if let StoreError::Unavailable(_) = e {
            tracing::warn!(error = %e, "store unavailable");
            return Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: ApiError::new(
                    codes::UNAVAILABLE,
                    "the service's database cannot be reached right now; retry shortly",
                ),
            };
        }
        tracing::error!(error = %e, "store failure");
        Failure::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_status() {
        let cases = [
            (Reason::Invalid, 400),
            (Reason::Unauthenticated, 401),
            (Reason::NotFound, 404),
            (Reason::MethodNotAllowed, 405),
            (Reason::Conflict, 409),
            (Reason::PreconditionFailed, 412),
        ];
        for (reason, status) in cases {
            let f = Failure::from(Refusal::new(reason, codes::CONFLICT, "x").target("t"));
            assert_eq!(f.status.as_u16(), status, "{reason:?}");
            assert_eq!(f.error.target.as_deref(), Some("t"));
        }
        let f = Failure::from(objects::Error::internal("boom"));
        assert_eq!(f.status.as_u16(), 500);
        assert!(
            !f.error.message.contains("boom"),
            "internal details stay in the log"
        );
    }
}
