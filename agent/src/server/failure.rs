//! Failed requests as the service's error envelope (`{"error": {...}}`,
//! [`hybrid_api::ErrorEnvelope`]), so hybrid-host reads the agent's errors
//! the way every Hybrid client reads hybrid-host's.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hybrid_api::{ApiError, ErrorEnvelope, codes};

use crate::engine::EngineError;

/// A request that failed: the HTTP status and the envelope's error.
#[derive(Debug)]
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

    /// 400 `InvalidField` at `target`.
    pub fn invalid(target: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::BAD_REQUEST,
            error: ApiError::new(codes::INVALID_FIELD, message).with_target(target),
        }
    }

    /// 400 `BadRequest`: the request could not be read at all.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message)
    }

    /// What the engine said about VM `vm`: unknown → 404, refused → 400,
    /// failed → 500. Every message names the VM, so that hybrid-host's
    /// operation error says which one.
    pub fn from_engine(vm: &str, e: EngineError) -> Self {
        let named = |msg: String| {
            if msg.contains(vm) {
                msg
            } else {
                format!("VM {vm}: {msg}")
            }
        };
        match e {
            EngineError::NotFound(name) => Self::not_found(format!("VM {name} does not exist")),
            EngineError::Invalid(msg) => {
                Self::new(StatusCode::BAD_REQUEST, codes::INVALID_FIELD, named(msg))
            }
            EngineError::Failed(msg) => Self::internal(named(msg)),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.error, "request failed");
        }
        (self.status, Json(ErrorEnvelope { error: self.error })).into_response()
    }
}
