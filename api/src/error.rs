//! The error envelope every failed request returns (`{"error": {...}}`)
//! and its machine-readable [`codes`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One error; `details` holds the individual errors when there are several.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// One of [`codes`].
    pub code: String,
    pub message: String,
    /// Field path in the request body: `vm_ip_pool.start`, `dns_servers[1]`,
    /// `tags["env"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ApiError>,
    /// On an error answer, the request's id (its W3C trace id, 32 hex
    /// digits): every line the service logged about the request carries it.
    /// (A boxed `str`, not a `String`: one word less keeps every
    /// `Result<_, ApiError>` small.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Box<str>>,
}

impl ApiError {
    /// An error without target or details.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            request_id: None,
        }
    }

    /// Sets the field path.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Some(t) => write!(f, "{} at {}: {}", self.code, t, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

/// Every error response body: `{"error": {...}}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    pub error: ApiError,
}

/// Error codes used in [`ApiError::code`].
pub mod codes {
    pub const INVALID_FIELD: &str = "InvalidField";
    pub const FIELD_IMMUTABLE: &str = "FieldImmutable";
    pub const NOT_FOUND: &str = "NotFound";
    pub const CONFLICT: &str = "Conflict";
    pub const IN_USE: &str = "InUse";
    pub const POOL_SHRINK_CONFLICT: &str = "PoolShrinkConflict";
    pub const POOL_EXHAUSTED: &str = "PoolExhausted";
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const BAD_REQUEST: &str = "BadRequest";
    /// 405: the path exists but not with this method (the answer's `Allow`
    /// header lists the methods it has).
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// 413: the request body is larger than the service's limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
    /// 415: a request body that is not `Content-Type: application/json`
    /// (or is compressed).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// 408: the request body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "RequestTimeout";
    pub const INTERNAL: &str = "Internal";
    /// 503: the service's database cannot be reached; retry shortly.
    pub const UNAVAILABLE: &str = "Unavailable";
    /// A limit (pools, nodes) would be exceeded.
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    /// Not enough free vCPU/memory on the hosts for the requested VMs.
    pub const INSUFFICIENT_CAPACITY: &str = "InsufficientCapacity";
    /// The Kubernetes version is unknown, unsupported, not ready, or not an allowed upgrade.
    pub const VERSION_NOT_ALLOWED: &str = "VersionNotAllowed";
    /// The infrastructure failed (e.g. a VM did not boot).
    pub const INFRASTRUCTURE_FAILED: &str = "InfrastructureFailed";
    /// An extension's install, upgrade or removal failed on its target.
    pub const EXTENSION_FAILED: &str = "ExtensionFailed";
}
