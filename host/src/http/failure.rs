//! What a failed request answers: the status code and the API error
//! envelope `{"error": {...}}`.
//!
//! This is the one place where the domain's [`Reason`]s become HTTP status
//! codes; everything below `http/` speaks [`objects::Error`].

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
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

    /// 405: `method` does not apply to `path`; `allow` is what the route
    /// has (the `Allow` header's value).
    pub fn method_not_allowed(method: &Method, path: &str, allow: Option<&str>) -> Self {
        let allowed = match allow.map(str::trim).filter(|a| !a.is_empty()) {
            Some(list) => format!("; it allows {}", list.replace(',', ", ")),
            None => String::new(),
        };
        Refusal::new(
            Reason::MethodNotAllowed,
            codes::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed on {path}{allowed}"),
        )
        .into()
    }

    /// 413: the body is larger than `limit` bytes (`declared` is the
    /// request's `Content-Length`, when it gave one).
    pub fn too_large(limit: usize, declared: Option<u64>) -> Self {
        let declared = match declared {
            Some(n) => format!("; the request's Content-Length is {n}"),
            None => String::new(),
        };
        Failure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: ApiError::new(
                codes::PAYLOAD_TOO_LARGE,
                format!(
                    "request body is larger than the limit of {} ({limit} bytes){declared}",
                    human_bytes(limit)
                ),
            ),
        }
    }

    /// 415: the body's media type (or its encoding) is not what the route
    /// takes; `message` names what was received and what is required.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error: ApiError::new(codes::UNSUPPORTED_MEDIA_TYPE, message),
        }
    }

    /// An error answer built outside the domain (axum's extractors, the
    /// router): the code follows the status.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::UNAUTHORIZED => codes::UNAUTHORIZED,
            StatusCode::NOT_FOUND => codes::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED => codes::METHOD_NOT_ALLOWED,
            StatusCode::CONFLICT => codes::CONFLICT,
            StatusCode::PRECONDITION_FAILED => codes::PRECONDITION_FAILED,
            StatusCode::PAYLOAD_TOO_LARGE => codes::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => codes::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::REQUEST_TIMEOUT => codes::REQUEST_TIMEOUT,
            StatusCode::SERVICE_UNAVAILABLE => codes::UNAVAILABLE,
            s if s.is_server_error() => codes::INTERNAL,
            _ => codes::BAD_REQUEST,
        };
        Failure {
            status,
            error: ApiError::new(code, message),
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
    fn into_response(mut self) -> Response {
        // The request's id, so a client can quote it and an operator find
        // the request's log lines.
        if self.error.request_id.is_none() {
            self.error.request_id = crate::observability::trace::current().map(Box::from);
        }
        (self.status, axum::Json(ErrorEnvelope { error: self.error })).into_response()
    }
}

/// `1 MiB`, `512 KiB` or `100 bytes`.
fn human_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// How much of a non-envelope error body [`envelope`] reads to quote it.
const QUOTED_ERROR_BYTES: usize = 4096;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

/// Middleware: every error answer is the envelope. Handlers and this
/// module's extractors already answer with it; what is left are answers
/// axum builds itself — its 405 (empty, with `Allow`, which the envelope
/// then quotes) and any rejection of an extractor that is not ours — and
/// those are rewritten here, keeping their status and headers.
pub async fn envelope(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    let rebuilt = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok());
        Failure::method_not_allowed(&method, &path, allow)
    } else if is_json(resp.headers()) || is_html(resp.headers()) {
        // An HTML answer is a console page (its sign-in page answers 401):
        // a browser shows it, it is its own explanation.
        return resp;
    } else {
        let (parts, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, QUOTED_ERROR_BYTES)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        let failure = if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %text, %method, %path, "error answer outside the envelope");
            Failure {
                status,
                ..Failure::internal()
            }
        } else if text.is_empty() {
            Failure::from_status(
                status,
                format!(
                    "{method} {path}: {}",
                    status.canonical_reason().unwrap_or("refused")
                ),
            )
        } else {
            Failure::from_status(status, text)
        };
        return with_headers(failure, &parts.headers);
    };
    let (parts, _) = resp.into_parts();
    with_headers(rebuilt, &parts.headers)
}

/// `failure`'s answer, carrying the headers of the answer it replaces
/// (`Allow`, `WWW-Authenticate`, …) but not those describing its body.
fn with_headers(failure: Failure, headers: &HeaderMap) -> Response {
    let mut resp = failure.into_response();
    for (name, value) in headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
        {
            resp.headers_mut().append(name, value.clone());
        }
    }
    resp
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

    #[tokio::test]
    async fn answers_outside_the_envelope_are_rewritten() {
        use axum::routing::get;
        let routes = axum::Router::new()
            .route(
                "/plain",
                get(|| async {
                    (
                        StatusCode::BAD_REQUEST,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "plain words",
                    )
                }),
            )
            .route("/bare", get(|| async { StatusCode::CONFLICT }))
            .route(
                "/boom",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "a detail") }),
            )
            .route(
                "/envelope",
                get(|| async { Failure::not_found("nothing here").target("name") }),
            )
            .route("/ok", get(|| async { "fine" }));
        let app = axum::Router::new()
            .fallback_service(routes)
            .layer(axum::middleware::from_fn(envelope));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str| {
            let req = http.request(method, format!("{base}{path}"));
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let text = r.text().await.unwrap();
                (status, headers, text)
            }
        };
        let envelope_of = |text: &str| -> ApiError {
            serde_json::from_str::<ErrorEnvelope>(text)
                .unwrap_or_else(|e| panic!("{e}: {text}"))
                .error
        };

        let (status, headers, text) = call(reqwest::Method::GET, "/plain").await;
        assert_eq!(status, 400);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["www-authenticate"], "Bearer", "headers are kept");
        let e = envelope_of(&text);
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("BadRequest", "plain words")
        );

        let (status, _, text) = call(reqwest::Method::GET, "/bare").await;
        assert_eq!(status, 409);
        let e = envelope_of(&text);
        assert_eq!(e.code, codes::CONFLICT);
        assert_eq!(e.message, "GET /bare: Conflict");

        let (status, _, text) = call(reqwest::Method::GET, "/boom").await;
        assert_eq!(status, 500);
        let e = envelope_of(&text);
        assert_eq!(e.code, codes::INTERNAL);
        assert!(!e.message.contains("a detail"), "details stay in the log");

        let (status, _, text) = call(reqwest::Method::GET, "/envelope").await;
        assert_eq!(status, 404);
        assert_eq!(
            envelope_of(&text).target.as_deref(),
            Some("name"),
            "kept as is"
        );

        let (status, headers, text) = call(reqwest::Method::DELETE, "/ok").await;
        assert_eq!(status, 405);
        assert_eq!(headers["allow"], "GET,HEAD");
        let e = envelope_of(&text);
        assert_eq!(e.code, codes::METHOD_NOT_ALLOWED);
        assert_eq!(
            e.message,
            "method DELETE is not allowed on /ok; it allows GET, HEAD"
        );

        let (status, _, text) = call(reqwest::Method::GET, "/ok").await;
        assert_eq!((status, text.as_str()), (200, "fine"));
        server.abort();
    }

    #[test]
    fn limits_are_written_for_people() {
        assert_eq!(human_bytes(1024 * 1024), "1 MiB");
        assert_eq!(human_bytes(512 * 1024), "512 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        let f = Failure::too_large(1024 * 1024, Some(3_000_000));
        assert_eq!(f.status.as_u16(), 413);
        assert_eq!(
            f.error.message,
            "request body is larger than the limit of 1 MiB (1048576 bytes); the request's Content-Length is 3000000"
        );
    }

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
