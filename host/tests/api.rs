//! End-to-end tests of the HTTPS API against an in-process server.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, spec, start_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn harness() -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), None).await;
    (dir, h)
}

#[tokio::test]
async fn auth_health_and_openapi() {
    let (_d, h) = harness().await;
    let r = h.raw(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let port = h.endpoint.rsplit(':').next().unwrap();
    let replica = r.body["replica"].as_str().unwrap();
    assert!(replica.ends_with(&format!(":{port}")), "{replica}");
    let engine = if common::test_database(&h.dir).await.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(r.body["store"], engine);
    let r = h.raw(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");

    for token in [None, Some("wrong")] {
        let r = h.raw(Method::GET, "/v1/vnets", None, &[], token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "Unauthorized");
        assert_eq!(r.message(), "missing or invalid bearer token");
    }

    let r = h
        .raw(Method::GET, "/v1/openapi.json", None, &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["paths"]["/v1/vnets/{name}"]["put"].is_object());

    let r = h.get("/v1/management-host").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], "/management-host");
    assert_eq!(r.body["driver"], "sim");
    assert_eq!(r.body["simulated"], true);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));

    let r = h.call(Method::POST, "/v1/vnets", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "MethodNotAllowed");
    assert_eq!(r.header("allow"), "GET,HEAD");

    let r = h.get("/v1/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NotFound");
}

#[tokio::test]
async fn put_is_async_then_idempotent_and_patch_grows_in_place() {
    let (_d, h) = harness().await;
    let r = h.put_vnet("net1", spec()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), format!("/v1/operations/{op_id}"));
    assert_eq!(r.body["kind"], "vnet.create");
    assert_eq!(r.body["target"], "/vnets/net1");
    let etag = r.header("etag");
    assert!(!etag.is_empty());

    let op = h.wait_op(&op_id).await;
    assert_eq!(op["status"], "Succeeded");
    let v = h.get("/v1/vnets/net1").await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(
        v.header("etag"),
        etag,
        "completion does not change the etag"
    );
    assert_eq!(v.body["id"], "/vnets/net1");
    assert_eq!(v.body["provisioning_state"], "Succeeded");
    assert_eq!(v.body["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(v.body["status"]["conditions"][0]["status"], "True");
    assert_eq!(
        v.body["status"]["vm_ip_pool"],
        json!({"size": 40, "used": 0, "available": 40})
    );

    // Same body again: 200 with the vnet, no new operation.
    let r = h.put_vnet("net1", spec()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "net1");
    assert!(r.headers.get("location").is_none());

    // PATCH grows the pool in place.
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(json!({"vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.0.99"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "vnet.update");
    assert_ne!(r.header("etag"), etag, "a spec change makes a new etag");
    h.wait_op(r.body["id"].as_str().unwrap()).await;
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["vm_ip_pool"]["end"], "10.0.0.99");
    assert_eq!(v["status"]["vm_ip_pool"]["size"], 90);
    assert_eq!(v["tags"]["env"], "test", "PATCH leaves other fields alone");

    let list = h.get("/v1/vnets").await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let r = h
        .call(Method::PATCH, "/v1/vnets/ghost", Some(json!({"tags": {}})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/v1/vnets/ghost").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("ghost"));
    assert!(r.body["error"].get("target").is_none());
}

#[tokio::test]
async fn list_is_sorted_by_name() {
    let (_d, h) = harness().await;
    for (vlan, n) in [(101, "c"), (102, "a"), (103, "b")] {
        h.create_vnet(n, common::spec_on_vlan(vlan)).await;
    }
    let list = h.get("/v1/vnets").await.body;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
}

/// The LIST reads every vnet with its reservations and operation in three
/// queries; each item must still be exactly what GET of that vnet shows.
#[tokio::test]
async fn list_items_are_what_each_get_shows() {
    let (_d, h) = harness().await;
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let mut s = spec();
        s["address_prefix"] = json!(format!("10.{i}.0.0/24"));
        s["gateway"] = json!(format!("10.{i}.0.1"));
        s["dns_servers"] = json!([format!("10.{i}.0.2")]);
        s["vm_ip_pool"] = json!({"start": format!("10.{i}.0.10"), "end": format!("10.{i}.0.49")});
        s["vip_pool"] = json!({"start": format!("10.{i}.0.200"), "end": format!("10.{i}.0.210")});
        h.create_vnet(n, s).await;
    }
    for (vnet, count) in [("a", 2), ("c", 1)] {
        for k in 0..count {
            let r = h
                .reserve(vnet, json!({"pool": "vm", "owner": format!("owner-{k}")}))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        }
    }
    let list = h.get("/v1/vnets").await.body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        let name = item["name"].as_str().unwrap();
        let one = h.get(&format!("/v1/vnets/{name}")).await.body;
        assert_eq!(item, &one, "LIST item {name} differs from its GET");
    }
    let used: Vec<&Value> = items
        .iter()
        .map(|v| &v["status"]["vm_ip_pool"]["used"])
        .collect();
    assert_eq!(used, [&json!(2), &json!(0), &json!(1)]);
}

#[tokio::test]
async fn shrink_immutable_and_preconditions() {
    let (_d, h) = harness().await;
    h.create_vnet("net1", spec()).await;
    let r = h
        .reserve(
            "net1",
            json!({"pool": "vm", "owner": "/clusters/c1", "address": "10.0.0.40"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(json!({"vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.0.30"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "PoolShrinkConflict");
    assert_eq!(r.target(), "vm_ip_pool");
    assert!(r.message().contains("10.0.0.40"), "{}", r.message());

    // Shrinking around the allocation is fine.
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(json!({"vm_ip_pool": {"start": "10.0.0.40", "end": "10.0.0.45"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    h.wait_op(r.body["id"].as_str().unwrap()).await;

    let mut changed = spec();
    changed["address_prefix"] = json!("10.1.0.0/16");
    changed["gateway"] = json!("10.1.0.1");
    changed["vm_ip_pool"] = json!({"start": "10.1.0.40", "end": "10.1.0.45"});
    changed["vip_pool"] = json!({"start": "10.1.0.200", "end": "10.1.0.210"});
    let r = h.put_vnet("net1", changed).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "FieldImmutable");
    assert_eq!(r.target(), "address_prefix");
    assert_eq!(r.body["error"]["details"][1]["target"], "gateway");

    let etag = h.get("/v1/vnets/net1").await.header("etag");
    let mut grown = spec();
    grown["vm_ip_pool"] = json!({"start": "10.0.0.40", "end": "10.0.0.60"});
    let r = h
        .raw(
            Method::PUT,
            "/v1/vnets/net1",
            Some(grown.clone()),
            &[("if-match", "\"stale\"")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.code(), "PreconditionFailed");
    let r = h
        .raw(
            Method::PUT,
            "/v1/vnets/net1",
            Some(grown.clone()),
            &[("if-none-match", "*")],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = h
        .raw(
            Method::PUT,
            "/v1/vnets/net1",
            Some(grown),
            &[("if-match", &etag)],
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}

#[tokio::test]
async fn every_validation_rule_names_its_target() {
    let (_d, h) = harness().await;
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit)] = &[
        ("address_prefix", |s| {
            s["address_prefix"] = json!("10.0.0.0/33")
        }),
        ("address_prefix", |s| {
            s["address_prefix"] = json!("10.0.0.7/24")
        }),
        ("gateway", |s| s["gateway"] = json!("10.9.0.1")),
        ("gateway", |s| s["gateway"] = json!("10.0.0.255")),
        ("dns_servers[1]", |s| {
            s["dns_servers"] = json!(["1.1.1.1", "x"])
        }),
        ("vlan_id", |s| s["vlan_id"] = json!(5000)),
        ("vm_ip_pool.start", |s| {
            s["vm_ip_pool"]["start"] = json!("192.168.1.10")
        }),
        ("vm_ip_pool.end", |s| {
            s["vm_ip_pool"]["end"] = json!("10.0.0.0.1")
        }),
        ("vip_pool.end", |s| {
            s["vip_pool"]["end"] = json!("10.0.0.255")
        }),
        ("vm_ip_pool", |s| {
            s["vm_ip_pool"] = json!({"start": "10.0.0.49", "end": "10.0.0.10"})
        }),
        ("vip_pool", |s| {
            s["vip_pool"] = json!({"start": "10.0.0.40", "end": "10.0.0.60"})
        }),
        ("vm_ip_pool", |s| s["gateway"] = json!("10.0.0.11")),
        ("vm_ip_pool", |s| {
            s.as_object_mut().unwrap().remove("vm_ip_pool");
        }),
        ("vm_ip_pool", |s| s["ip_allocation_method"] = json!("dhcp")),
        ("vm_ip_pol", |s| s["vm_ip_pol"] = json!({})),
        ("vm_ip_pool.stop", |s| s["vm_ip_pool"]["stop"] = json!("x")),
        ("ip_allocation_method", |s| {
            s["ip_allocation_method"] = json!("bootp")
        }),
    ];
    for (target, edit) in cases {
        let mut s = spec();
        edit(&mut s);
        let r = h.put_vnet("net1", s.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{target}: {:?}", r.body);
        assert_eq!(r.code(), "InvalidField", "{target}");
        assert_eq!(r.target(), *target, "{s}: {:?}", r.body);
    }
    let r = h.put_vnet("Bad_Name", spec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.target(), "name");
    // Several errors: first on top, all in details.
    let mut s = spec();
    s["vlan_id"] = json!(4095);
    s["dns_servers"] = json!(["nope"]);
    let r = h.put_vnet("net1", s).await;
    assert_eq!(r.target(), "dns_servers[0]");
    assert_eq!(r.body["error"]["details"].as_array().unwrap().len(), 2);
    // Nothing was created by refused requests.
    assert_eq!(h.get("/v1/vnets").await.body["items"], json!([]));
}

#[tokio::test]
async fn delete_in_use_then_delete() {
    let (_d, h) = harness().await;
    h.create_vnet("net1", spec()).await;
    for owner in ["/clusters/a", "/clusters/b", "/clusters/a"] {
        let r = h
            .reserve("net1", json!({"pool": "vm", "owner": owner}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = h.call(Method::DELETE, "/v1/vnets/net1", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "InUse");
    assert!(
        r.message().contains("/clusters/a, /clusters/b"),
        "{}",
        r.message()
    );
    let details = r.body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "one entry per user");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.10, 10.0.0.12")
    );

    let list = h.get("/v1/vnets/net1/reservations").await.body;
    for r in list["items"].as_array().unwrap() {
        let a = r["address"].as_str().unwrap();
        let d = h
            .call(
                Method::DELETE,
                &format!("/v1/vnets/net1/reservations/{a}"),
                None,
            )
            .await;
        assert_eq!(d.status, StatusCode::NO_CONTENT);
    }
    let d = h
        .call(
            Method::DELETE,
            "/v1/vnets/net1/reservations/10.0.0.10",
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);

    let r = h.call(Method::DELETE, "/v1/vnets/net1", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "vnet.delete");
    let op = h.wait_op(r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Succeeded");
    assert_eq!(h.get("/v1/vnets/net1").await.status, StatusCode::NOT_FOUND);
    let r = h.call(Method::DELETE, "/v1/vnets/net1", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reservations_rules() {
    let (_d, h) = harness().await;
    let mut s = spec();
    s["vip_pool"] = json!({"start": "10.0.0.200", "end": "10.0.0.201"});
    h.create_vnet("net1", s).await;
    let r = h
        .reserve(
            "net1",
            json!({"pool": "vip", "owner": "x", "address": "10.0.0.201"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["address"], "10.0.0.201");
    assert_eq!(r.body["pool"], "vip");
    let r = h
        .reserve(
            "net1",
            json!({"pool": "vip", "owner": "y", "address": "10.0.0.201"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "Conflict");
    let r = h
        .reserve(
            "net1",
            json!({"pool": "vip", "owner": "y", "address": "10.0.0.50"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.target(), "address");
    let r = h
        .reserve("net1", json!({"pool": "vip", "owner": "y"}))
        .await;
    assert_eq!(r.body["address"], "10.0.0.200", "lowest free");
    let r = h
        .reserve("net1", json!({"pool": "vip", "owner": "z"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "PoolExhausted");
    assert_eq!(
        r.message(),
        "vip_pool of vnet net1 has 0 free addresses, 1 needed"
    );
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(
        v["status"]["vip_pool"],
        json!({"size": 2, "used": 2, "available": 0})
    );
    let r = h
        .reserve("ghost", json!({"pool": "vm", "owner": "z"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .reserve("net1", json!({"pool": "vm", "owner": "z", "bogus": 1}))
        .await;
    assert_eq!(r.target(), "bogus");
}

/// More operations than the worker runs at once: the rest wait in the store
/// and every one of them completes.
#[tokio::test]
async fn a_burst_beyond_the_running_limit_all_completes() {
    let (_d, h) = harness().await;
    let h = Arc::new(h);
    let n = hybrid_host::operations::MAX_RUNNING + 72;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let net = format!("10.{}.{}", 100 + i / 256, i % 256);
                let body = json!({
                    "address_prefix": format!("{net}.0/24"),
                    "vm_ip_pool": {"start": format!("{net}.10"), "end": format!("{net}.20")},
                    "vip_pool": {"start": format!("{net}.200"), "end": format!("{net}.201")},
                });
                let r = h.put_vnet(&format!("burst-{i}"), body).await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
                r.body["id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut ops = Vec::new();
    for t in tasks {
        ops.push(t.await.unwrap());
    }
    for id in ops {
        assert_eq!(h.wait_op(&id).await["status"], "Succeeded", "{id}");
    }
    let list = h.get("/v1/vnets").await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), n);
}

#[tokio::test]
async fn concurrent_reservations_never_share_an_address() {
    let (_d, h) = harness().await;
    let mut s = spec();
    s["address_prefix"] = json!("10.8.0.0/16");
    s["gateway"] = json!("10.8.0.1");
    // 10.8.0.10 ..= 10.8.1.3 is 250 addresses.
    s["vm_ip_pool"] = json!({"start": "10.8.0.10", "end": "10.8.1.3"});
    s["vip_pool"] = json!({"start": "10.8.9.1", "end": "10.8.9.9"});
    let v = h.create_vnet("big", s).await;
    assert_eq!(v["status"]["vm_ip_pool"]["size"], 250);

    let h = Arc::new(h);
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.reserve("big", json!({"pool": "vm", "owner": format!("owner-{i}")}))
                    .await
            })
        })
        .collect();
    let mut addresses = BTreeSet::new();
    let mut exhausted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => {
                assert!(
                    addresses.insert(r.body["address"].as_str().unwrap().to_string()),
                    "duplicate address {}",
                    r.body["address"]
                );
            }
            StatusCode::CONFLICT => {
                assert_eq!(r.code(), "PoolExhausted");
                exhausted += 1;
            }
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!(addresses.len(), 250);
    assert_eq!(exhausted, 50);
    let v = h.get("/v1/vnets/big").await.body;
    assert_eq!(v["status"]["vm_ip_pool"]["available"], 0);
}

#[tokio::test]
async fn in_flight_put_returns_the_same_operation_and_long_poll_wakes() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some("[timings]\nnetwork_ms = 1000\n")).await;
    let a = h.put_vnet("net1", spec()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let b = h.put_vnet("net1", spec()).await;
    assert_eq!(b.status, StatusCode::ACCEPTED);
    assert_eq!(a.body["id"], b.body["id"], "same operation while in flight");
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["provisioning_state"], "Accepted");

    let id = a.body["id"].as_str().unwrap();
    let r = h.get(&format!("/v1/operations/{id}")).await;
    assert_eq!(r.body["status"], "Running", "no wait = immediate answer");
    let started = Instant::now();
    let op = h.wait_op(id).await;
    assert_eq!(op["status"], "Succeeded");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "long-poll returns on completion"
    );

    let r = h.get("/v1/operations/op-unknown?wait=1s").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get(&format!("/v1/operations/{id}?wait=forever")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.target(), "wait");
}

#[tokio::test]
async fn failed_operation_is_reported_and_retry_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), Some("[faults]\nfail_networks = [\"net1\"]\n")).await;
    let r = h.put_vnet("net1", spec()).await;
    let op = h.wait_op(r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Failed");
    assert!(op["error"]["message"].as_str().unwrap().contains("net1"));
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["provisioning_state"], "Failed");
    assert_eq!(v["status"]["conditions"][0]["status"], "False");
    h.stop().await;

    // Fault cleared: the same PUT retries and converges.
    std::fs::write(dir.path().join("sim.toml"), "").unwrap();
    let h = start_in(dir.path(), Some("")).await;
    let r = h.put_vnet("net1", spec()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "retry after failure");
    assert_eq!(
        h.wait_op(r.body["id"].as_str().unwrap()).await["status"],
        "Succeeded"
    );
}

#[tokio::test]
async fn restart_keeps_state_token_ca_and_resumes_operations() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), None).await;
    h.create_vnet("keep", spec()).await;
    let token = h.token.clone();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    h.stop().await;

    // A slow network: the operation is still Running when we stop.
    let mut h = start_in(dir.path(), Some("[timings]\nnetwork_ms = 60000\n")).await;
    assert_eq!(h.token, token);
    assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
    assert_eq!(
        h.get("/v1/vnets/keep").await.body["provisioning_state"],
        "Succeeded"
    );
    let r = h.put_vnet("pending", common::spec_on_vlan(101)).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let stop_started = Instant::now();
    h.stop().await;
    assert!(
        stop_started.elapsed() < Duration::from_secs(5),
        "shutdown is prompt"
    );

    let h = start_in(dir.path(), None).await;
    let op = h.wait_op(&id).await;
    assert_eq!(op["status"], "Succeeded", "resumed after restart");
    assert_eq!(
        h.get("/v1/vnets/pending").await.body["provisioning_state"],
        "Succeeded"
    );
}

#[tokio::test]
async fn a_newer_change_supersedes_one_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), Some("[timings]\nnetwork_ms = 600\n")).await;
    let a = h.put_vnet("net1", spec()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let b = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1",
            Some(json!({"tags": {"env": "prod"}})),
        )
        .await;
    assert_eq!(b.status, StatusCode::ACCEPTED, "{:?}", b.body);
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(
        h.get("/v1/vnets/net1").await.body["provisioning_state"],
        "Updating"
    );

    let first = h.wait_op(a.body["id"].as_str().unwrap()).await;
    assert_eq!(first["status"], "Succeeded");
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(
        v["provisioning_state"], "Updating",
        "finishing the older operation does not hide the newer one"
    );
    h.wait_op(b.body["id"].as_str().unwrap()).await;
    let v = h.get("/v1/vnets/net1").await.body;
    assert_eq!(v["provisioning_state"], "Succeeded");
    assert_eq!(v["tags"], json!({"env": "prod"}));

    let r = h.get("/v1/vnets/ghost/reservations").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dry_run_on_vnets_stores_nothing_and_unknown_query_parameters_are_refused() {
    let (_d, h) = harness().await;
    // A dry-run create answers the vnet as it would be, and stores nothing.
    let r = h
        .call(Method::PUT, "/v1/vnets/dry?dry_run=true", Some(spec()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "dry");
    assert_eq!(r.body["address_prefix"], "10.0.0.0/24");
    assert_eq!(h.get("/v1/vnets/dry").await.status, StatusCode::NOT_FOUND);
    // A dry-run change of an existing vnet leaves it as it was.
    h.create_vnet("net1", spec()).await;
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/net1?dry_run=true",
            Some(json!({"tags": {"env": "prod"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["tags"]["env"], "prod");
    assert_eq!(h.get("/v1/vnets/net1").await.body["tags"]["env"], "test");
    // A dry-run refusal is the real refusal.
    let mut bad = spec();
    bad["vm_ip_pool"]["end"] = json!("10.0.1.49");
    let r = h
        .call(Method::PUT, "/v1/vnets/net1?dry_run=true", Some(bad))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // Routes without a dry run refuse it, naming the parameter.
    for path in [
        "/v1/vnets/net1",
        "/v1/clusters/c1",
        "/v1/custom-locations/l1",
    ] {
        let r = h
            .call(Method::DELETE, &format!("{path}?dry_run=true"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {:?}", r.body);
        assert_eq!(
            (r.code(), r.target()),
            ("InvalidField", "dry_run"),
            "{path}"
        );
        assert!(
            r.message().contains("takes no query parameters"),
            "{}",
            r.message()
        );
    }
    assert_eq!(h.get("/v1/vnets/net1").await.status, StatusCode::OK);
    // A misspelt parameter is refused, never ignored, and the answer says
    // what the route accepts.
    let r = h
        .call(Method::PUT, "/v1/vnets/net1?dryrun=true", Some(spec()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!((r.code(), r.target()), ("InvalidField", "dryrun"));
    assert!(
        r.message().contains(
            "query parameter `dryrun` is not accepted by PUT /v1/vnets/net1: it accepts `dry_run`"
        ),
        "{}",
        r.message()
    );
    let r = h.get("/v1/operations/op-x?wiat=1s").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.target(), "wiat");
}

#[tokio::test]
async fn concurrent_patches_without_if_match_all_apply_on_the_latest_version() {
    let (_d, h) = harness().await;
    let stale = h.create_custom_location("loc1").await.header("etag");
    // 20 PATCHes at once, none with If-Match, each adding its own tag.
    let patches = (0..20).map(|i| {
        let h = &h;
        async move {
            h.call(
                Method::PATCH,
                "/v1/custom-locations/loc1",
                Some(json!({"tags": {format!("k{i}"): "v"}})),
            )
            .await
        }
    });
    for r in futures_util::future::join_all(patches).await {
        assert!(r.status.is_success(), "{:?} {:?}", r.status, r.body);
    }
    let tags = h.get("/v1/custom-locations/loc1").await.body["tags"].clone();
    for i in 0..20 {
        assert_eq!(tags[format!("k{i}")], "v", "lost k{i}: {tags}");
    }
    // The client's own If-Match still guards: a stale one is a 412.
    let r = h
        .raw(
            Method::PATCH,
            "/v1/custom-locations/loc1",
            Some(json!({"tags": {"late": "v"}})),
            &[("if-match", stale.as_str())],
            Some(&h.token.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);
}
