//! Turning host client errors into diagnostics at the right attribute.

use crate::client::ClientError;

use super::diagnostics::Diagnostics;
use super::path::AttrPath;

/// Adds `error` to `diags` under `summary`. An API error with a field
/// `target` (and each of its `details`) points at that attribute.
pub fn report(diags: &mut Diagnostics, summary: &str, error: &ClientError) {
    match error {
        ClientError::Api { error, .. } if !error.details.is_empty() => {
            for detail in &error.details {
                let path = detail
                    .target
                    .as_deref()
                    .map(AttrPath::parse)
                    .unwrap_or_default();
                diags.error_at(path, summary, detail.message.clone());
            }
        }
        ClientError::Api { error, .. } => {
            let path = error
                .target
                .as_deref()
                .map(AttrPath::parse)
                .unwrap_or_default();
            diags.error_at(path, summary, error.message.clone());
        }
        other => diags.error(summary, other.to_string()),
    }
}
