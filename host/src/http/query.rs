//! Strict query strings: an unknown parameter (a typo like `?dryrun=true`,
//! or `?dry_run=true` where a route has no dry run) is refused with the
//! error envelope naming it and what the route accepts, never ignored.

use axum::extract::{FromRequestParts, Query};
use axum::http::Uri;
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
            Err(e) => Err(refusal(
                &e.body_text(),
                &format!("{} {}", parts.method, parts.uri.path()),
                &parts.uri,
            )),
        }
    }
}

/// The refusal for the query string of `uri` (of route `what`), from the
/// error serde gave: `[name: ]message`, where a name is the parameter at
/// fault.
fn refusal(error: &str, what: &str, uri: &Uri) -> Failure {
    let detail = error
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(error);
    let is_name =
        |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let (at, inner) = match detail.split_once(": ") {
        Some((name, rest)) if is_name(name) => (Some(name), rest),
        _ => (None, detail),
    };
    // Serde's field-level errors name the field in backquotes.
    let quoted = |prefix: &str| {
        inner
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, rest)| (name.to_string(), rest.to_string()))
    };
    if let Some((name, rest)) = quoted("unknown field `") {
        let accepted = match rest.strip_prefix(", expected ") {
            Some(list) => format!("it accepts {}", list.replace("one of ", "")),
            None => "it takes no query parameters".to_string(),
        };
        return Refusal::invalid_field(
            name.clone(),
            format!("query parameter `{name}` is not accepted by {what}: {accepted}"),
        )
        .into();
    }
    if let Some((name, _)) = quoted("duplicate field `") {
        return Refusal::invalid_field(
            name.clone(),
            format!("query parameter `{name}` is given more than once in {what}; give it once"),
        )
        .into();
    }
    // A value that does not parse: `name: why`.
    if let Some(name) = at {
        let value = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .ok()
            .and_then(|Query(pairs)| pairs.into_iter().find(|(k, _)| k == name))
            .map(|(_, v)| format!(" is {:?}", v.chars().take(100).collect::<String>()))
            .unwrap_or_default();
        return Refusal::invalid_field(
            name,
            format!("query parameter `{name}`{value} in {what}: {inner}"),
        )
        .into();
    }
    Failure::bad_request(format!("invalid query string in {what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Write {
        #[serde(default)]
        #[allow(dead_code)]
        dry_run: bool,
    }

    fn refused<T: DeserializeOwned>(uri: &str) -> Failure {
        let uri: Uri = uri.parse().unwrap();
        match Query::<T>::try_from_uri(&uri) {
            Ok(_) => panic!("{uri} should be refused"),
            Err(e) => refusal(&e.body_text(), "PUT /v1/vnets/a", &uri),
        }
    }

    #[test]
    fn bad_values_name_the_parameter_and_the_value() {
        let f = refused::<Write>("/v1/vnets/a?dry_run=maybe");
        assert_eq!(f.status.as_u16(), 400);
        assert_eq!(f.error.target.as_deref(), Some("dry_run"));
        assert!(
            f.error.message.contains(r#"`dry_run` is "maybe""#),
            "{}",
            f.error.message
        );
        assert!(
            f.error.message.contains("`true` or `false`"),
            "{}",
            f.error.message
        );
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let f = refused::<Write>("/v1/vnets/a?dryrun=true");
        assert_eq!(f.error.target.as_deref(), Some("dryrun"));
        assert!(
            f.error.message.contains("it accepts `dry_run`"),
            "{}",
            f.error.message
        );
        let f = refused::<NoQuery>("/v1/vnets/a?x=1");
        assert_eq!(f.error.target.as_deref(), Some("x"));
        assert!(
            f.error.message.contains("takes no query parameters"),
            "{}",
            f.error.message
        );
        let f = refused::<Write>("/v1/vnets/a?dry_run=true&dry_run=false");
        assert_eq!(f.error.target.as_deref(), Some("dry_run"));
        assert!(
            f.error.message.contains("more than once"),
            "{}",
            f.error.message
        );
    }
}
