//! The request id hybrid-host sends: the trace id of the W3C
//! `traceparent` it puts on the calls it makes for an operation (the id of
//! the request that queued it, first sent by the Terraform provider). Each
//! request's log lines are written inside a `request{request_id}` span, so
//! one id follows a VM create from `terraform apply` through hybrid-host's
//! log into this one. A request without a valid header (a heartbeat) gets
//! no span: the agent makes no ids of its own.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// The trace id of a valid W3C Trace Context `traceparent` (version `00`
/// exactly, or a later version with fields after the flags; lowercase hex;
/// ids not all zero), else `None`.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let header = headers
        .get(TRACEPARENT)?
        .to_str()
        .ok()?
        .trim_matches([' ', '\t']);
    let mut parts = header.splitn(5, '-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let later = parts.next();
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && !(version == "00" && later.is_some())
        && hex(trace_id, 32)
        && !zero(trace_id)
        && hex(parent_id, 16)
        && !zero(parent_id)
        && hex(flags, 2);
    valid.then(|| trace_id.to_string())
}

/// Middleware: runs the request inside a `request` span carrying its
/// request id, when it has one.
pub async fn span(request: Request, next: Next) -> Response {
    match trace_id(request.headers()) {
        Some(request_id) => {
            let span = tracing::info_span!("request", request_id = %request_id);
            next.run(request).instrument(span).await
        }
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::routing::get;

    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, traceparent.parse().unwrap());
        h
    }

    #[test]
    fn reads_the_trace_id_of_a_valid_traceparent_only() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id(&headers(&format!("00-{id}-00f067aa0ba902b7-01"))).as_deref(),
            Some(id)
        );
        // A later version may add fields.
        assert_eq!(
            trace_id(&headers(&format!("01-{id}-00f067aa0ba902b7-01-more"))).as_deref(),
            Some(id)
        );
        for bad in [
            format!("00-{id}-00f067aa0ba902b7-01-more"),
            format!("ff-{id}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_string(),
            format!("00-{id}-0000000000000000-01"),
            format!("00-{id}-00f067aa0ba902b7"),
            "garbage".to_string(),
        ] {
            assert_eq!(trace_id(&headers(&bad)), None, "{bad}");
        }
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    /// A log sink for the test's subscriber.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines a handler logs carry the request id of the request's
    /// `traceparent`, served over loopback HTTP by the middleware in a
    /// router (the current-thread runtime keeps the server's task on this
    /// thread, under the test's subscriber).
    #[tokio::test]
    async fn a_handlers_log_lines_carry_the_request_id() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route(
                "/v1/vms/{name}",
                get(|| async {
                    tracing::info!("apply VM");
                }),
            )
            .layer(axum::middleware::from_fn(span));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/v1/vms/a");
        client
            .get(&url)
            .header(TRACEPARENT, format!("00-{id}-00f067aa0ba902b7-01"))
            .send()
            .await
            .unwrap();
        client.get(&url).send().await.unwrap();
        server.abort();
        let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("apply VM")).collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(
            lines[0].contains(&format!("request{{request_id={id}}}")),
            "{log}"
        );
        assert!(!lines[1].contains("request_id"), "{log}");
    }
}
