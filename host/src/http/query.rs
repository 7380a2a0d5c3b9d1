//! Strict query strings: an unknown parameter (a typo like `?dryrun=true`,
//! or `?dry_run=true` where a route has no dry run) is refused with the
//! error envelope naming it and what the route accepts, never ignored.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::failure::Failure;
use crate::objects::Refusal;

/// The query string as `T`, whose fields are the parameters the route
/// accepts (`T` must deny unknown fields).
pub struct StrictQuery<T>(pub T);

/// No parameters at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

impl<S, T> FromRequestParts<S> for StrictQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(q)) => Ok(StrictQuery(q)),
            Err(e) => {
                let detail = e.body_text();
                let detail = detail
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&detail);
                // serde names the parameter: "[x: ]unknown field `x`, expected …".
                let target = detail
                    .split_once('`')
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(name, _)| name.to_string());
                let message = match (&target, detail.split_once(", ")) {
                    (Some(name), Some((_, accepted))) if detail.contains("unknown field") => {
                        let accepted = match accepted.strip_prefix("expected ") {
                            Some(list) => format!("it accepts {list}"),
                            None => "it takes no query parameters".to_string(),
                        };
                        format!(
                            "query parameter `{name}` is not accepted by {} {}: {accepted}",
                            parts.method,
                            parts.uri.path()
                        )
                    }
                    _ => format!("invalid query string: {detail}"),
                };
                Err(match target {
                    Some(t) => Refusal::invalid_field(t, message).into(),
                    None => Failure::bad_request(message),
                })
            }
        }
    }
}
