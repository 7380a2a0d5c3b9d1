//! Request ids end to end, on a real `hybrid-host` process with JSON logs:
//! a `traceparent` sent with a request comes back in its error body and
//! headers and is on the log lines of the request and of the operation it
//! queued; a request without one (or with an invalid one) gets a new id.

mod common;

use common::process::spawn;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const REFUSED: &str = "0af7651916cd43dd8448eb211c80319c";
const QUEUED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-b7ad6b7169203331-01")
}

/// The log's JSON lines that mention `id`.
fn lines_with(log: &str, id: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| l.contains(id))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

/// The `request_id` of the innermost span of `name` on a log line.
fn span_id<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()?
        .iter()
        .rev()
        .find(|s| s["name"] == name)?["request_id"]
        .as_str()
}

async fn wait_for_log(p: &common::process::Process, what: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let log = p.log_text();
        if what(&log) {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not in the log:\n{}", p.log_text());
}

#[tokio::test]
async fn a_request_id_follows_the_request_its_error_and_its_operation() {
    let p = spawn(|root| {
        let sim = root.join("sim.toml");
        std::fs::write(&sim, "[faults]\nfail_networks = [\"broken\"]\n").unwrap();
        vec!["--sim".into(), sim.display().to_string()]
    })
    .await;

    // A refused request: the id is in the error body and both headers, and
    // on the request's log line.
    let tp = traceparent(REFUSED);
    let r =
        p.h.raw(
            Method::PUT,
            "/v1/vnets/net1",
            Some(json!({"address_prefix": "10.0.0.0/33"})),
            &[("traceparent", &tp)],
            Some(&p.h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["error"]["request_id"], REFUSED, "{:?}", r.body);
    assert_eq!(r.header("x-request-id"), REFUSED);
    let back = r.header("traceparent");
    assert!(back.starts_with(&format!("00-{REFUSED}-")), "{back}");
    assert!(back.ends_with("-01"), "{back}");
    assert_ne!(back, tp, "the answer names the service's own span");
    let log = wait_for_log(&p, |l| l.contains(REFUSED)).await;
    let lines = lines_with(&log, REFUSED);
    let request = lines
        .iter()
        .find(|l| message(l) == "request")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(request["fields"]["status"], 400);
    assert_eq!(span_id(request, "request"), Some(REFUSED));

    // An accepted request whose operation fails: the operation carries the
    // id, and so do the log lines of its work.
    let tp = traceparent(QUEUED);
    let r =
        p.h.raw(
            Method::PUT,
            "/v1/vnets/broken",
            Some(common::spec()),
            &[("traceparent", &tp)],
            Some(&p.h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["request_id"], QUEUED, "{:?}", r.body);
    assert_eq!(r.header("x-request-id"), QUEUED);
    let op_id = r.body["id"].as_str().unwrap().to_string();
    let op = p.h.wait_op(&op_id).await;
    assert_eq!(op["status"], "Failed", "{op:?}");
    assert_eq!(op["request_id"], QUEUED, "{op:?}");
    let log = wait_for_log(&p, |l| {
        l.lines()
            .any(|x| x.contains(QUEUED) && x.contains("operation failed"))
    })
    .await;
    let lines = lines_with(&log, QUEUED);
    for wanted in ["request", "running operation", "operation failed"] {
        let line = lines
            .iter()
            .find(|l| message(l) == wanted)
            .unwrap_or_else(|| panic!("no {wanted:?} line with {QUEUED}: {lines:?}"));
        let span = if wanted == "request" {
            "request"
        } else {
            "operation"
        };
        assert_eq!(span_id(line, span), Some(QUEUED), "{line}");
    }
    // The operation's lines name it too (its span), whichever task runs it.
    assert!(
        lines
            .iter()
            .any(|l| message(l) == "operation failed" && l["spans"].to_string().contains(&op_id)),
        "{lines:?}"
    );

    // No traceparent, or an invalid one: a new id, well formed, distinct.
    let mut seen = Vec::new();
    for header in [None, Some("00-not-a-trace-01")] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("traceparent", h)).into_iter().collect();
        let r =
            p.h.raw(
                Method::GET,
                "/v1/vnets/nope",
                None,
                &headers,
                Some(&p.h.token),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let id = r.body["error"]["request_id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(r.header("x-request-id"), id);
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1]);
}
