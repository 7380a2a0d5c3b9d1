//! `/metrics` of a real `hybrid-host` process: refused without a token,
//! served with the admin token on the API listener and with the scrape
//! token on `--metrics-listen`, and its values move with real work (a
//! vnet and a cluster created through the API).

mod common;

use std::collections::BTreeMap;

use common::process::{Process, spawn};
use reqwest::{Method, StatusCode};
use serde_json::json;

const SCRAPE_TOKEN: &str = "scrape-token-for-tests-0123456789";

/// Series (`name{labels}`) to value, from OpenMetrics text.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                series.to_string(),
                value.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

async fn scrape(p: &Process, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = p.h.http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("scrape sent")
}

async fn scrape_ok(p: &Process, url: &str, token: &str) -> BTreeMap<String, f64> {
    let resp = scrape(p, url, Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    parse(&text)
}

async fn wait_op(p: &Process, r: &common::Resp) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap();
    for _ in 0..6 {
        let op = p.h.get(&format!("/v1/operations/{id}?wait=30s")).await;
        if op.body["status"] != "Running" {
            assert_eq!(op.body["status"], "Succeeded", "{:?}", op.body);
            return;
        }
    }
    panic!("operation {id} still running");
}

#[tokio::test]
async fn metrics_need_a_token_and_move_with_real_work() {
    let p = spawn(|root| {
        let file = root.join("scrape.token");
        std::fs::write(&file, SCRAPE_TOKEN).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        vec![
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
            "--metrics-token-file".into(),
            file.display().to_string(),
        ]
    })
    .await;
    let api_metrics = format!("{}/metrics", p.h.endpoint);
    let own_metrics = std::fs::read_to_string(p.h.dir.join("metrics-endpoint"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(own_metrics, api_metrics);

    // Refused without a token, or with a wrong one, on both listeners; the
    // scrape token opens /metrics only, never the API.
    for url in [&api_metrics, &own_metrics] {
        for token in [None, Some("wrong")] {
            let r = scrape(&p, url, token).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{url} {token:?}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "Unauthorized", "{body}");
        }
    }
    let api =
        p.h.raw(Method::GET, "/v1/vnets", None, &[], Some(SCRAPE_TOKEN))
            .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    // The metrics listener serves nothing else.
    let other =
        p.h.http
            .get(own_metrics.replace("/metrics", "/v1/vnets"))
            .bearer_auth(&p.h.token)
            .send()
            .await
            .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let before = scrape_ok(&p, &own_metrics, SCRAPE_TOKEN).await;
    // The sim's default datacenter: 4 hosts, all up.
    assert_eq!(value(&before, r#"hybrid_hosts{state="Up"}"#), 4.0);
    assert_eq!(value(&before, r#"hybrid_vms{phase="Running"}"#), 0.0);
    assert_eq!(value(&before, "hybrid_operations_pending"), 0.0);

    // Real work: a vnet, a custom location and a cluster.
    let r = p.h.put_vnet("net1", common::spec()).await;
    wait_op(&p, &r).await;
    let r =
        p.h.call(
            Method::PUT,
            "/v1/custom-locations/loc1",
            Some(json!({"namespace": "loc1", "host_id": "/management-host"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r =
        p.h.call(
            Method::PUT,
            "/v1/clusters/c1",
            Some(json!({
                "custom_location_id": "/custom-locations/loc1",
                "vnet_id": "/vnets/net1",
                "control_plane": {"count": 1}
            })),
        )
        .await;
    wait_op(&p, &r).await;
    assert_eq!(
        p.h.get("/v1/vnets/nope").await.status,
        StatusCode::NOT_FOUND
    );

    let after = scrape_ok(&p, &api_metrics, &p.h.token).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved(r#"hybrid_http_requests_total{method="PUT",route="/v1/vnets/{name}",status="202"}"#),
        1.0
    );
    assert_eq!(
        moved(
            r#"hybrid_http_requests_total{method="PUT",route="/v1/clusters/{name}",status="202"}"#
        ),
        1.0
    );
    assert!(
        moved(
            r#"hybrid_http_request_duration_seconds_count{method="PUT",route="/v1/clusters/{name}",status="202"}"#
        ) >= 1.0
    );
    // A 404 of a known route keeps its template; object names never become labels.
    assert!(
        moved(r#"hybrid_http_requests_total{method="GET",route="/v1/vnets/{name}",status="404"}"#)
            >= 1.0
    );
    assert!(
        after
            .keys()
            .all(|k| !k.contains("net1\"") || k.contains("vnet=\"net1\"")),
        "{after:?}"
    );
    assert!(after.keys().all(|k| !k.contains("/v1/vnets/nope")));
    // The scrapes themselves are counted, refused ones included.
    assert!(
        value(
            &after,
            r#"hybrid_http_requests_total{method="GET",route="/metrics",status="401"}"#
        ) >= 4.0
    );

    for kind in ["vnet.create", "cluster.create"] {
        let finished =
            format!(r#"hybrid_operations_finished_total{{kind="{kind}",outcome="succeeded"}}"#);
        assert_eq!(moved(&finished), 1.0, "{finished}");
        let timed = format!(
            r#"hybrid_operation_duration_seconds_count{{kind="{kind}",outcome="succeeded"}}"#
        );
        assert_eq!(moved(&timed), 1.0, "{timed}");
    }
    assert_eq!(value(&after, "hybrid_operations_pending"), 0.0);
    assert_eq!(
        value(&after, "hybrid_operations_oldest_pending_age_seconds"),
        0.0
    );
    assert!(
        moved(r#"hybrid_store_transaction_duration_seconds_count{mode="write",outcome="ok"}"#)
            >= 3.0
    );

    // The pools: 40 VM addresses and 11 VIPs; the cluster took some of each.
    assert_eq!(
        value(&after, r#"hybrid_ip_pool_size{vnet="net1",pool="vm"}"#),
        40.0
    );
    assert_eq!(
        value(&after, r#"hybrid_ip_pool_size{vnet="net1",pool="vip"}"#),
        11.0
    );
    let used = value(&after, r#"hybrid_ip_pool_used{vnet="net1",pool="vm"}"#);
    assert!(used >= 1.0, "{after:?}");
    assert_eq!(
        value(&after, r#"hybrid_ip_pool_free{vnet="net1",pool="vm"}"#),
        40.0 - used
    );
    assert!(value(&after, r#"hybrid_ip_pool_used{vnet="net1",pool="vip"}"#) >= 1.0);

    // Its VMs run, in the service's record and in the datacenter, and take
    // host capacity.
    let running = value(&after, r#"hybrid_vms{phase="Running"}"#);
    assert!(running >= 1.0, "{after:?}");
    assert_eq!(
        value(&after, r#"hybrid_datacenter_vms{state="Running"}"#),
        running
    );
    let allocated: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("hybrid_host_vcpus{") && k.contains(r#"of="allocated""#))
        .map(|(_, v)| v)
        .sum();
    assert!(allocated > 0.0, "{after:?}");
}
