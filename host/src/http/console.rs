//! The console's routes (see [`crate::console`]): its pages and their
//! refreshable fragments, the one-time sign-in link, sign-out and the
//! static files. Only these routes read the session cookie; the API's
//! routes never do, so a browser session can read the console and
//! change nothing.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::failure::Failure;
use super::query::{NoQuery, StrictQuery};
use crate::console::pages::{self, Page};
use crate::console::{assets, session, snapshot};
use crate::objects;

/// The session cookie. `__Host-` makes the browser insist on Secure,
/// `Path=/` and no `Domain`, so no other host can plant or read it.
const COOKIE: &str = "__Host-hybrid-console";

/// Every console answer: no framing, no inline or foreign script or
/// style, no referrer (a sign-in URL carries its ticket), nothing cached.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, with their security headers.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for page in Page::ALL {
        router = router.route(
            page.path(),
            get(
                move |state: State<AppState>, q: StrictQuery<NoQuery>, headers: HeaderMap| {
                    show(state, q, headers, page)
                },
            ),
        );
    }
    router
        .route("/console/fragment/{page}", get(fragment))
        .route("/console/login", get(login))
        .route("/console/logout", post(logout))
        .route("/console/static/console.js", get(script))
        .route("/console/static/console.css", get(stylesheet))
        .layer(axum::middleware::map_response(secure))
}

async fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The session cookie's value, if the request carries one.
fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<bool, Failure> {
    match session_secret(headers) {
        Some(secret) => Ok(session::check(&state.store, &secret).await?),
        None => Ok(false),
    }
}

async fn show(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    headers: HeaderMap,
    page: Page,
) -> Result<Response, Failure> {
    if !signed_in(&state, &headers).await? {
        return Ok(html(StatusCode::UNAUTHORIZED, pages::sign_in(None)));
    }
    let snap = snapshot::read(&state.store, &state.driver).await?;
    Ok(html(
        StatusCode::OK,
        pages::page(page, &snap, &state.replica),
    ))
}

async fn fragment(
    State(state): State<AppState>,
    _: StrictQuery<NoQuery>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    if !signed_in(&state, &headers).await? {
        return Err(Failure::from(objects::Refusal::new(
            objects::Reason::Unauthenticated,
            hybrid_api::codes::UNAUTHORIZED,
            "the console session is missing or has ended; sign in again with a link from `hybrid-host console-link`",
        )));
    }
    let Some(page) = Page::from_slug(&slug) else {
        return Err(Failure::not_found(format!(
            "console page {slug:?} does not exist"
        )));
    };
    let snap = snapshot::read(&state.store, &state.driver).await?;
    Ok(html(StatusCode::OK, pages::fragment(page, &snap)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    ticket: Option<String>,
}

fn cookie(value: &str, max_age: Duration) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    ))
    .ok()
}

async fn login(
    State(state): State<AppState>,
    StrictQuery(q): StrictQuery<LoginQuery>,
) -> Result<Response, Failure> {
    let Some(ticket) = q.ticket.filter(|t| !t.is_empty()) else {
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some(
                "This address needs a ticket: use the whole link `hybrid-host console-link` printed.",
            )),
        ));
    };
    match session::redeem(&state.store, &ticket, state.console_session_ttl).await {
        Ok(s) => {
            let mut resp = html(StatusCode::OK, pages::signed_in());
            if let Some(v) = cookie(&s.secret, s.max_age) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            tracing::info!(expires_at = %s.expires_at, "console: signed in with a one-time link");
            Ok(resp)
        }
        Err(objects::Error::Refused(r)) => {
            tracing::info!(reason = %r.error.message, "console: sign-in link refused");
            Ok(html(
                StatusCode::UNAUTHORIZED,
                pages::sign_in(Some(&r.error.message)),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Failure> {
    if let Some(secret) = session_secret(&headers) {
        session::end(&state.store, &secret).await?;
    }
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Some(v) = cookie("", Duration::ZERO) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::CONSOLE_JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::CONSOLE_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_console_cookie_is_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; __Host-hybrid-console=abc; x=y"),
        );
        assert_eq!(session_secret(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("hybrid-console=abc"),
        );
        assert_eq!(session_secret(&h), None);
    }

    #[test]
    fn the_cookie_is_locked_down() {
        let v = cookie("s", Duration::from_secs(60)).unwrap();
        let v = v.to_str().unwrap();
        for part in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }
}
