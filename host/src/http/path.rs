//! Path parameters (`/v1/vnets/{name}`) whose rejections are the error
//! envelope: axum's own `Path` answers a name that is not UTF-8 once
//! percent-decoded (`/v1/vnets/%FF`) in plain text.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use serde::de::DeserializeOwned;

use super::failure::Failure;
use crate::objects::Refusal;

/// The path parameters as `T` (a `String` or a tuple of them).
pub struct StrictPath<T>(pub T);

impl<S, T> FromRequestParts<S> for StrictPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(StrictPath(p)),
            Err(e) => Err(refusal(
                e,
                parts.uri.path_and_query().map(PathAndQuery::path),
            )),
        }
    }
}

fn refusal(e: PathRejection, path: Option<&str>) -> Failure {
    let path = path.unwrap_or("");
    if let PathRejection::FailedToDeserializePathParams(d) = &e
        && let axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } = d.kind()
    {
        return Refusal::invalid_field(
            key.clone(),
            format!(
                "path parameter `{key}` in {path} is not UTF-8 once percent-decoded; names are UTF-8 text"
            ),
        )
        .into();
    }
    // Anything else is a route declared with the wrong parameters: a bug
    // here, not in the request (axum answers those with 500 too).
    let status = e.status();
    let text = e.body_text();
    if status.is_server_error() {
        tracing::error!(error = %text, %path, "path parameters do not fit the route");
        return Failure::internal();
    }
    Failure::from_status(status, format!("{path}: {text}"))
}
