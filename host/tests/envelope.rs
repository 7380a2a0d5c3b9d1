//! Every way a request can go wrong before it reaches admission — unknown
//! routes and methods, bad path parameters and query strings, missing or
//! wrong content types, compressed, empty, non-JSON, non-UTF-8, oversized
//! bodies, duplicate keys — answers with the error envelope
//! (`{"error": {code, message, target}}`, `Content-Type: application/json`)
//! and its own status, against the real server over HTTPS.

mod common;

use common::{Harness, Resp, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn harness() -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), None).await;
    (dir, h)
}

/// Sends `body` as is (no `Content-Type` unless `headers` has one).
async fn send(
    h: &Harness,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = h
        .http
        .request(method, format!("{}{}", h.endpoint, path))
        .bearer_auth(&h.token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    Resp {
        status,
        headers,
        body,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// `r` is the envelope with `status` and `code`, at `target` (or none).
#[track_caller]
fn assert_envelope(r: &Resp, status: u16, code: &str, target: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert!(
        r.header("content-type").starts_with("application/json"),
        "content type {:?} of {:?}",
        r.header("content-type"),
        r.body
    );
    let error = r.body["error"].as_object().expect("an error envelope");
    assert_eq!(r.code(), code, "{:?}", r.body);
    assert!(!r.message().is_empty(), "{:?}", r.body);
    assert_eq!(
        error.get("target").and_then(Value::as_str),
        target,
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (_d, h) = harness().await;
    let r = send(&h, Method::GET, "/v1/nope", None, &[]).await;
    assert_envelope(&r, 404, "NotFound", None);
    assert!(r.message().contains("GET /v1/nope"), "{}", r.message());

    let r = send(&h, Method::POST, "/v1/vnets", Some(b"{}".to_vec()), &[JSON]).await;
    assert_envelope(&r, 405, "MethodNotAllowed", None);
    assert_eq!(r.header("allow"), "GET,HEAD");
    assert_eq!(
        r.message(),
        "method POST is not allowed on /v1/vnets; it allows GET, HEAD"
    );
    let r = send(&h, Method::DELETE, "/v1/clusters/c1/kubeconfig", None, &[]).await;
    assert_envelope(&r, 405, "MethodNotAllowed", None);
    assert_eq!(r.header("allow"), "POST");
    let r = send(&h, Method::OPTIONS, "/v1/vnets/a", None, &[]).await;
    assert_envelope(&r, 405, "MethodNotAllowed", None);
    let allow = r.header("allow");
    for m in ["GET", "HEAD", "PUT", "PATCH", "DELETE"] {
        assert!(allow.split(',').any(|a| a == m), "{m} in {allow}");
    }
    // Public routes too.
    let r = send(&h, Method::DELETE, "/healthz", None, &[]).await;
    assert_envelope(&r, 405, "MethodNotAllowed", None);

    // HEAD answers like GET, without a body.
    let r = send(&h, Method::HEAD, "/v1/vnets", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&h, Method::HEAD, "/v1/vnets/missing", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("content-type").starts_with("application/json"));
}

#[tokio::test]
async fn path_parameters_that_are_not_utf8() {
    let (_d, h) = harness().await;
    let r = send(&h, Method::GET, "/v1/vnets/%FF", None, &[]).await;
    assert_envelope(&r, 400, "InvalidField", Some("name"));
    assert!(r.message().contains("not UTF-8"), "{}", r.message());
    let r = send(&h, Method::GET, "/v1/clusters/%C3%28/extensions", None, &[]).await;
    assert_envelope(&r, 400, "InvalidField", Some("cluster"));
    let r = send(
        &h,
        Method::PUT,
        "/v1/clusters/c1/extensions/%FF",
        Some(b"{}".to_vec()),
        &[JSON],
    )
    .await;
    assert_envelope(&r, 400, "InvalidField", Some("name"));
}

#[tokio::test]
async fn bad_query_strings() {
    let (_d, h) = harness().await;
    let body = || Some(serde_json::to_vec(&spec()).unwrap());
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a?dry_run=maybe",
        body(),
        &[JSON],
    )
    .await;
    assert_envelope(&r, 400, "InvalidField", Some("dry_run"));
    assert!(r.message().contains(r#"is "maybe""#), "{}", r.message());
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a?dry_run=true&dry_run=false",
        body(),
        &[JSON],
    )
    .await;
    assert_envelope(&r, 400, "InvalidField", Some("dry_run"));
    let r = send(&h, Method::PUT, "/v1/vnets/a?dryrun=true", body(), &[JSON]).await;
    assert_envelope(&r, 400, "InvalidField", Some("dryrun"));
    assert!(r.message().contains("`dry_run`"), "{}", r.message());
    // Reads refuse parameters too, instead of ignoring them.
    for path in [
        "/v1/vnets?limit=1",
        "/v1/vnets/a?x=1",
        "/v1/clusters?x=1",
        "/v1/vm-sizes?x=1",
        "/v1/management-host?x",
    ] {
        let r = send(&h, Method::GET, path, None, &[]).await;
        assert_eq!(r.status.as_u16(), 400, "{path}: {:?}", r.body);
        assert_eq!(r.code(), "InvalidField", "{path}");
        assert!(
            r.message().contains("takes no query parameters"),
            "{path}: {}",
            r.message()
        );
    }
    let r = send(&h, Method::GET, "/v1/operations/op-x?wait=soon", None, &[]).await;
    assert_envelope(&r, 400, "BadRequest", Some("wait"));
}

#[tokio::test]
async fn bodies_need_application_json() {
    let (_d, h) = harness().await;
    let body = || Some(serde_json::to_vec(&spec()).unwrap());
    // No Content-Type.
    let r = send(&h, Method::PUT, "/v1/vnets/a", body(), &[]).await;
    assert_envelope(&r, 415, "UnsupportedMediaType", None);
    assert!(r.message().contains("PUT /v1/vnets/a"), "{}", r.message());
    assert!(r.message().contains("no Content-Type"), "{}", r.message());
    assert!(r.message().contains("application/json"), "{}", r.message());
    // Another one, on every kind of write.
    for (method, path) in [
        (Method::PUT, "/v1/vnets/a"),
        (Method::PATCH, "/v1/vnets/a"),
        (Method::PUT, "/v1/clusters/c1"),
        (Method::PATCH, "/v1/clusters/c1"),
        (Method::PATCH, "/v1/custom-locations/l1"),
        (Method::PATCH, "/v1/clusters/c1/nodepools/p1"),
        (Method::PUT, "/v1/clusters/c1/extensions/e1"),
        (Method::PATCH, "/v1/management-host/extensions/e1"),
        (Method::POST, "/v1/vnets/a/reservations"),
        (Method::POST, "/v1/clusters/c1/kubeconfig"),
        (Method::POST, "/v1/agent-tokens"),
        (Method::POST, "/v1/agents/join"),
    ] {
        let r = send(
            &h,
            method.clone(),
            path,
            Some(b"{}".to_vec()),
            &[("content-type", "text/plain")],
        )
        .await;
        assert_envelope(&r, 415, "UnsupportedMediaType", None);
        assert!(r.message().contains("\"text/plain\""), "{}", r.message());
        assert!(
            r.message().contains(&format!("{method} {path}")),
            "{}",
            r.message()
        );
    }
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a",
        body(),
        &[("content-type", "application/json; charset=iso-8859-1")],
    )
    .await;
    assert_envelope(&r, 415, "UnsupportedMediaType", None);
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a",
        body(),
        &[JSON, ("content-encoding", "gzip")],
    )
    .await;
    assert_envelope(&r, 415, "UnsupportedMediaType", None);
    assert!(r.message().contains("\"gzip\""), "{}", r.message());
    // With a charset that is UTF-8, the body is taken (dry run: nothing kept).
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a?dry_run=true",
        body(),
        &[("content-type", "application/json; charset=UTF-8")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn empty_non_json_and_non_utf8_bodies() {
    let (_d, h) = harness().await;
    for (method, path) in [
        (Method::PUT, "/v1/vnets/a"),
        (Method::PATCH, "/v1/clusters/c1"),
    ] {
        let r = send(&h, method.clone(), path, None, &[JSON]).await;
        assert_envelope(&r, 400, "BadRequest", None);
        assert!(r.message().contains("empty"), "{}", r.message());
        // Without a Content-Type either: the type is what is missing.
        let r = send(&h, method.clone(), path, None, &[]).await;
        assert_envelope(&r, 415, "UnsupportedMediaType", None);
    }
    let r = send(&h, Method::PUT, "/v1/vnets/a", Some(b"x".to_vec()), &[JSON]).await;
    assert_envelope(&r, 400, "BadRequest", None);
    assert!(r.message().contains("not valid JSON"), "{}", r.message());
    let r = send(
        &h,
        Method::PATCH,
        "/v1/clusters/c1",
        Some(b"{\"tags\":".to_vec()),
        &[JSON],
    )
    .await;
    assert_envelope(&r, 400, "BadRequest", None);
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a",
        Some(b"{\"address_prefix\":\"\xff\"}".to_vec()),
        &[JSON],
    )
    .await;
    assert_envelope(&r, 400, "BadRequest", None);
    assert!(r.message().contains("not UTF-8"), "{}", r.message());
    assert!(r.message().contains("offset 19"), "{}", r.message());
}

#[tokio::test]
async fn duplicate_keys_are_refused_with_their_path() {
    let (_d, h) = harness().await;
    let cases = [
        (
            Method::PUT,
            "/v1/vnets/a",
            r#"{"address_prefix":"10.0.0.0/24","address_prefix":"10.1.0.0/24"}"#,
            "address_prefix",
        ),
        (
            Method::PUT,
            "/v1/vnets/a?dry_run=true",
            r#"{"address_prefix":"10.0.0.0/24","vm_ip_pool":{"start":"10.0.0.10","end":"10.0.0.20","end":"10.0.0.30"}}"#,
            "vm_ip_pool.end",
        ),
        (
            Method::PATCH,
            "/v1/vnets/a",
            r#"{"tags":{"env":"a","env":"b"}}"#,
            r#"tags["env"]"#,
        ),
        (
            Method::PATCH,
            "/v1/clusters/c1",
            r#"{"control_plane":{"count":1,"count":3}}"#,
            "control_plane.count",
        ),
        (
            Method::PUT,
            "/v1/clusters/c1/extensions/e1",
            r#"{"extension_type":"x","configuration_settings":{"k":"1","k":"2"}}"#,
            r#"configuration_settings["k"]"#,
        ),
    ];
    for (method, path, body, target) in cases {
        let r = send(&h, method, path, Some(body.as_bytes().to_vec()), &[JSON]).await;
        assert_envelope(&r, 400, "InvalidField", Some(target));
        assert!(r.message().contains("more than once"), "{}", r.message());
    }
    // Nothing was created by any of them.
    let r = h.get("/v1/vnets").await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn oversized_bodies_get_413_naming_the_limit() {
    let (_d, h) = harness().await;
    // Valid JSON, just too much of it: a 2 MiB tag value.
    let mut big = spec();
    big["tags"]["big"] = json!("x".repeat(2 << 20));
    let body = serde_json::to_vec(&big).unwrap();
    let r = send(&h, Method::PUT, "/v1/vnets/a", Some(body.clone()), &[JSON]).await;
    assert_envelope(&r, 413, "PayloadTooLarge", None);
    assert!(r.message().contains("1 MiB"), "{}", r.message());
    assert!(r.message().contains("1048576 bytes"), "{}", r.message());
    assert!(
        r.message()
            .contains(&format!("Content-Length is {}", body.len())),
        "{}",
        r.message()
    );
    // Every route has the limit, whatever it does with a body.
    for (method, path) in [
        (Method::PATCH, "/v1/clusters/c1"),
        (Method::DELETE, "/v1/vnets/a"),
        (Method::GET, "/v1/vnets"),
    ] {
        let r = send(&h, method, path, Some(body.clone()), &[JSON]).await;
        assert_envelope(&r, 413, "PayloadTooLarge", None);
    }
    // Just under the limit is read (and then judged on its content).
    let mut fits = spec();
    let room = (1 << 20) - serde_json::to_vec(&fits).unwrap().len() - 64;
    fits["tags"]["big"] = json!("x".repeat(room));
    let r = send(
        &h,
        Method::PUT,
        "/v1/vnets/a?dry_run=true",
        Some(serde_json::to_vec(&fits).unwrap()),
        &[JSON],
    )
    .await;
    assert_ne!(r.status.as_u16(), 413, "{:?}", r.body);
    assert!(r.header("content-type").starts_with("application/json"));
    // The connection still serves.
    let r = h.get("/v1/vnets").await;
    assert_eq!(r.status, StatusCode::OK);
}
