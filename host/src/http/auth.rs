//! Authentication on the wire: the bearer-token middleware and who a
//! request comes from, for the audit log.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hybrid_api::codes;

use super::failure::Failure;
use crate::objects::{Reason, Refusal};
use crate::security::audit::ADMIN_PRINCIPAL;
use crate::security::tokens::Token;

/// Middleware: 401 envelope unless the request carries the bearer token.
pub async fn require_token(State(token): State<Token>, req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if token.accepts(authorization) {
        next.run(req).await
    } else {
        unauthenticated()
    }
}

/// The tokens `/metrics` accepts: the admin token, and a scrape-only
/// token when `--metrics-token-file` gives one (so Prometheus need not hold
/// the admin token).
#[derive(Clone)]
pub struct ScrapeTokens {
    pub admin: Token,
    pub scrape: Option<Token>,
}

/// Middleware of `/metrics`: 401 envelope unless the request carries one
/// of the [`ScrapeTokens`].
pub async fn require_scrape_token(
    State(tokens): State<ScrapeTokens>,
    req: Request,
    next: Next,
) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let scrape_ok = tokens
        .scrape
        .as_ref()
        .is_some_and(|t| t.accepts(authorization));
    // Both checks always run: which token matched takes no less time.
    let admin_ok = tokens.admin.accepts(authorization);
    if admin_ok || scrape_ok {
        next.run(req).await
    } else {
        unauthenticated()
    }
}

fn unauthenticated() -> Response {
    let mut resp = Failure::from(Refusal::new(
        Reason::Unauthenticated,
        codes::UNAUTHORIZED,
        "missing or invalid bearer token",
    ))
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// Who is asking: the principal plus the peer address when the server
/// records connection info (`admin-token@127.0.0.1:51234`).
pub fn actor(extensions: &Extensions) -> String {
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => format!("{ADMIN_PRINCIPAL}@{peer}"),
        None => ADMIN_PRINCIPAL.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names_the_peer_when_known() {
        let mut ext = Extensions::new();
        assert_eq!(actor(&ext), "admin-token");
        let peer: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        ext.insert(ConnectInfo(peer));
        assert_eq!(actor(&ext), "admin-token@127.0.0.1:51234");
    }
}
