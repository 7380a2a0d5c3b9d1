//! Errors from the host management client. None of them carries the token.

use hybrid_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid provider configuration: {0}")]
    Config(String),

    #[error("cannot reach the Hybrid host management service at {endpoint}: {cause}")]
    Unreachable { endpoint: String, cause: String },

    #[error(
        "the Hybrid host management service at {endpoint} rejected the token (HTTP 401): \
         check the provider's `token` argument or HYBRID_TOKEN"
    )]
    Unauthorized { endpoint: String },

    /// The service refused the request and explained why.
    #[error("{}", .error.message)]
    Api { status: u16, error: ApiError },

    /// The operation goes on in the service; its request id finds its log
    /// lines there.
    #[error(
        "timed out after {after} waiting for operation {operation} on {target}{}",
        .request_id.as_deref().map(|id| format!("\n\n{}", request_id_line(id))).unwrap_or_default()
    )]
    Timeout {
        operation: String,
        target: String,
        after: String,
        request_id: Option<String>,
    },

    #[error("unexpected response from {endpoint}: {detail}")]
    Protocol { endpoint: String, detail: String },
}

/// The line that ends a diagnostic about a request the service saw: its
/// request id, which the service's log lines about it carry.
pub fn request_id_line(id: &str) -> String {
    format!("request id: {id} (the hybrid-host log's lines about this request carry it)")
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }
}

/// Renders a transport error with its whole chain of causes: reqwest's own
/// message ("error sending request") hides the part a person needs
/// ("connection refused", "certificate not trusted").
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
