//! The W3C Trace Context the client sends: `traceparent:
//! 00-{trace id}-{span id}-01` on every request. Each Terraform call the
//! provider serves runs in its own trace ([`per_call`]), so all requests
//! of one apply (the PUT, its operation's polls, the final GET) share one
//! trace id; a request outside any [`scope`] gets a new one. Each attempt
//! gets a new span id.
//! The trace id is the service's request id: it logs it, stores it with
//! the operations a request queues and returns it in its errors, and the
//! provider's diagnostics quote it.

use std::future::Future;
use std::pin::Pin;

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CURRENT: String;
}

/// Runs `fut` with `trace_id` as the trace of the calls it makes.
pub async fn scope<F: Future>(trace_id: String, fut: F) -> F::Output {
    CURRENT.scope(trace_id, fut).await
}

/// The work of one Terraform call (the framework's `CallWork`).
pub type CallWork<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Runs `work` in a new trace: the provider's wrapper around each
/// Terraform call, so that the call's requests share one trace id.
pub fn per_call(work: CallWork<'_>) -> CallWork<'_> {
    Box::pin(scope(new_trace_id(), work))
}

/// The trace id of the task, if it runs inside [`scope`].
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `n` random bytes as lowercase hex, never all zero (W3C forbids an
/// all-zero id).
fn random_hex(n: usize) -> String {
    let random = rustls::crypto::aws_lc_rs::default_provider().secure_random;
    let mut bytes = vec![0u8; n];
    loop {
        // A failing system RNG leaves the zeros, which the loop tries
        // again; a time-based fallback keeps an id unique enough to grep.
        if random.fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8);
            }
        }
        if bytes.iter().any(|b| *b != 0) {
            return bytes.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
}

/// A new trace id: 32 hex digits.
pub fn new_trace_id() -> String {
    random_hex(16)
}

/// The `traceparent` value of one request of trace `trace_id` (a new span
/// id; sampled).
pub fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{}-01", random_hex(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_hex(s: &str, len: usize) -> bool {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn traceparent_is_w3c_version_00_with_a_new_span_each_time() {
        let id = new_trace_id();
        assert!(is_hex(&id, 32), "{id}");
        let a = traceparent(&id);
        let b = traceparent(&id);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 4, "{a}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", id.as_str(), "01"));
        assert!(is_hex(parts[2], 16), "{a}");
        assert_ne!(a, b);
        assert_ne!(new_trace_id(), id);
    }

    #[tokio::test]
    async fn scope_sets_the_trace_of_the_task() {
        assert_eq!(current(), None);
        assert_eq!(
            scope("abc".to_string(), async { current() })
                .await
                .as_deref(),
            Some("abc")
        );
    }

    #[tokio::test]
    async fn each_call_gets_its_own_trace() {
        let seen = std::sync::Mutex::new(Vec::new());
        for _ in 0..2 {
            per_call(Box::pin(async {
                let id = current();
                assert_eq!(current(), id, "the trace is the call's, not the request's");
                seen.lock().unwrap().push(id);
            }))
            .await;
        }
        let seen = seen.into_inner().unwrap();
        let (a, b) = (seen[0].clone().unwrap(), seen[1].clone().unwrap());
        assert!(is_hex(&a, 32), "{a}");
        assert_ne!(a, b);
        assert_eq!(current(), None);
    }
}

/// The client against a one-request loopback HTTPS server that records the
/// request head and answers with the service's error envelope.
#[cfg(test)]
mod wire_tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::client::{ClientError, HostClient};

    /// Serves one request on 127.0.0.1; returns its endpoint, its CA and
    /// the head it received (once answered).
    async fn one_request_server(
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> (String, String, tokio::task::JoinHandle<String>) {
        let identity = hybrid_tfplugin::tls::generate_server_identity().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key())
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed mid-head");
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8(head).unwrap();
            let body = answer(&head);
            let response = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.write_all(response.as_bytes()).await.unwrap();
            tls.shutdown().await.unwrap();
            head
        });
        (
            format!("https://localhost:{port}"),
            identity.cert_pem(),
            served,
        )
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn every_request_carries_a_traceparent_and_errors_keep_the_request_id() {
        let (endpoint, ca, served) = one_request_server(|head| {
            // The service's answer: the trace id it read, as request_id.
            let trace = header(head, "traceparent")
                .and_then(|t| t.split('-').nth(1))
                .unwrap_or("");
            format!(
                r#"{{"error":{{"code":"NotFound","message":"no such thing","request_id":"{trace}"}}}}"#
            )
        })
        .await;
        let client = HostClient::new(&endpoint, "t0ken", &ca).unwrap();
        let err = client.management_host().await.unwrap_err();
        let head = served.await.unwrap();
        let traceparent =
            header(&head, "traceparent").unwrap_or_else(|| panic!("no traceparent in {head}"));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1].len(), 32, "{traceparent}");
        assert_eq!(parts[2].len(), 16, "{traceparent}");
        match err {
            ClientError::Api { status, error } => {
                assert_eq!(status, 404);
                assert_eq!(error.request_id.as_deref(), Some(parts[1]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn inside_a_scope_the_request_joins_its_trace() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let (endpoint, ca, served) =
            one_request_server(|_| r#"{"error":{"code":"NotFound","message":"x"}}"#.into()).await;
        let client = HostClient::new(&endpoint, "t0ken", &ca).unwrap();
        let _ = super::scope(id.to_string(), client.management_host()).await;
        let head = served.await.unwrap();
        let traceparent = header(&head, "traceparent").unwrap_or("");
        assert!(
            traceparent.starts_with(&format!("00-{id}-")),
            "{traceparent}"
        );
    }

    /// The span id of a recorded request's `traceparent`, with its trace id.
    fn trace_and_span(head: &str) -> (String, String) {
        let traceparent = header(head, "traceparent").unwrap_or_default();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        (parts[1].to_string(), parts[2].to_string())
    }

    /// Two requests of one Terraform call share its trace id with a span
    /// id each; the requests of another call are in another trace.
    #[tokio::test]
    async fn the_requests_of_one_call_share_a_trace_and_calls_differ() {
        let mut heads = Vec::new();
        for _call in 0..2 {
            let (e1, ca1, s1) =
                one_request_server(|_| r#"{"error":{"code":"NotFound","message":"x"}}"#.into())
                    .await;
            let (e2, ca2, s2) =
                one_request_server(|_| r#"{"error":{"code":"NotFound","message":"x"}}"#.into())
                    .await;
            let c1 = HostClient::new(&e1, "t0ken", &ca1).unwrap();
            let c2 = HostClient::new(&e2, "t0ken", &ca2).unwrap();
            super::per_call(Box::pin(async {
                let _ = c1.management_host().await;
                let _ = c2.management_host().await;
            }))
            .await;
            heads.push((
                trace_and_span(&s1.await.unwrap()),
                trace_and_span(&s2.await.unwrap()),
            ));
        }
        let ((t1, s1), (t2, s2)) = &heads[0];
        assert_eq!(t1, t2, "one call, one trace");
        assert_ne!(s1, s2, "a span id per request");
        let ((t3, _), _) = &heads[1];
        assert_ne!(t1, t3, "another call, another trace");
    }
}
