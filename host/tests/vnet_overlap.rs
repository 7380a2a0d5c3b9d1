//! One address is never handed out twice across vnets (issue 19, item 2):
//! vnets on one L2 segment (the same VLAN, or both untagged) must not have
//! overlapping prefixes — refused at admission and so by the dry run, race
//! free under concurrent creates, while vnets stored before the rule stay
//! readable and writable — and a cluster's pod and service CIDRs must not
//! overlap its own vnet (item 7). Runs on SQLite, or on PostgreSQL when
//! `HYBRID_TEST_POSTGRES` is set.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::{Harness, Resp, start_in, test_database};
use hybrid_api::{IpAllocationMethod, IpPool, ProvisioningState, VnetSpec};
use hybrid_host::security::secrets::Sealer;
use hybrid_host::store::{Store, StoreError, VnetRecord};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn harness() -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = start_in(dir.path(), None).await;
    (dir, h)
}

/// A vnet body on `prefix` and `vlan`, with a VM pool at its 10th–20th
/// address and a VIP pool at its 100th–110th (inside any /25).
fn vnet(prefix: &str, vlan: Option<u16>) -> Value {
    let (first, _) = hybrid_api::prefix::span(prefix).unwrap();
    let at = |n: u32| Ipv4Addr::from(first + n).to_string();
    let mut body = json!({
        "address_prefix": prefix,
        "vm_ip_pool": {"start": at(10), "end": at(20)},
        "vip_pool": {"start": at(100), "end": at(110)},
    });
    if let Some(v) = vlan {
        body["vlan_id"] = json!(v);
    }
    body
}

fn assert_overlap(r: &Resp, other: &str, other_prefix: &str, segment: &str) {
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "Conflict", "{:?}", r.body);
    assert_eq!(r.target(), "address_prefix", "{:?}", r.body);
    let wanted = format!("overlaps vnet {other} (address_prefix {other_prefix}), {segment}");
    assert!(r.message().contains(&wanted), "{}", r.message());
    assert!(
        r.message()
            .contains("vnets on one segment must not overlap"),
        "the rule is named: {}",
        r.message()
    );
}

#[tokio::test]
async fn equal_subset_and_superset_prefixes_on_one_vlan_are_refused_naming_the_other_vnet() {
    let (_d, h) = harness().await;
    h.create_vnet("net1", vnet("10.0.0.0/24", Some(100))).await;
    for (name, prefix) in [
        ("same", "10.0.0.0/24"),
        ("subset", "10.0.0.128/25"),
        ("superset", "10.0.0.0/16"),
        ("wider", "10.0.0.0/8"),
    ] {
        for path in [
            format!("/v1/vnets/{name}?dry_run=true"),
            format!("/v1/vnets/{name}"),
        ] {
            let r = h
                .call(Method::PUT, &path, Some(vnet(prefix, Some(100))))
                .await;
            assert_overlap(&r, "net1", "10.0.0.0/24", "both on VLAN 100");
            assert!(
                r.message()
                    .contains(&format!("address_prefix \"{prefix}\"")),
                "the value is named: {}",
                r.message()
            );
        }
        let r = h.get(&format!("/v1/vnets/{name}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "refused means not stored");
    }
    // Neighbours on the same VLAN are fine, before and after the prefix.
    for (name, prefix) in [("below", "9.255.255.0/24"), ("above", "10.0.1.0/24")] {
        let r = h.put_vnet(name, vnet(prefix, Some(100))).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {:?}", r.body);
    }
    // A prefix over several vnets names each of them.
    let r = h.put_vnet("all", vnet("10.0.0.0/15", Some(100))).await;
    assert_overlap(&r, "above", "10.0.1.0/24", "both on VLAN 100");
    let others: Vec<&str> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(others.len(), 2, "{others:?}");
    assert!(others[1].contains("overlaps vnet net1 (address_prefix 10.0.0.0/24)"));
}

#[tokio::test]
async fn other_vlans_may_reuse_a_prefix_and_untagged_vnets_share_one_segment() {
    let (_d, h) = harness().await;
    h.create_vnet("v100", vnet("10.0.0.0/24", Some(100))).await;
    // Another VLAN is another segment.
    let r = h.put_vnet("v200", vnet("10.0.0.0/24", Some(200))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = h.put_vnet("flat1", vnet("10.0.0.0/24", None)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    // Both untagged: one segment.
    let r = h.put_vnet("flat2", vnet("10.0.0.0/25", None)).await;
    assert_overlap(
        &r,
        "flat1",
        "10.0.0.0/24",
        "both untagged, on the same network segment",
    );
    // VLAN id 0 carries no VLAN (802.1Q): it is the untagged segment.
    let r = h.put_vnet("zero", vnet("10.0.0.0/24", Some(0))).await;
    assert_overlap(
        &r,
        "flat1",
        "10.0.0.0/24",
        "both untagged, on the same network segment",
    );
}

#[tokio::test]
async fn a_vnet_never_overlaps_itself_and_a_changed_prefix_is_checked_against_the_others() {
    let (_d, h) = harness().await;
    h.create_vnet("a", vnet("10.0.0.0/24", Some(100))).await;
    h.create_vnet("b", vnet("10.0.1.0/24", Some(100))).await;
    // The same body again is an idempotent no-op, not a clash with itself.
    let r = h.put_vnet("a", vnet("10.0.0.0/24", Some(100))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/a",
            Some(json!({"vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.0.30"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    h.wait_op(r.body["id"].as_str().unwrap()).await;
    // Moving a's prefix onto b's is refused for the overlap, naming b.
    let r = h.put_vnet("a", vnet("10.0.1.0/24", Some(100))).await;
    assert_overlap(&r, "b", "10.0.1.0/24", "both on VLAN 100");
    // A clash-free change is still an immutable field.
    let r = h.put_vnet("a", vnet("10.0.2.0/24", Some(100))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "FieldImmutable", "{:?}", r.body);
}

#[tokio::test]
async fn of_concurrent_overlapping_creates_exactly_one_wins() {
    let (_d, h) = harness().await;
    // Ten rounds of four creates of one prefix (and its halves) racing.
    for round in 0..10u16 {
        let net = format!("10.{round}.0");
        let bodies = [
            (format!("r{round}-a"), vnet(&format!("{net}.0/24"), Some(7))),
            (format!("r{round}-b"), vnet(&format!("{net}.0/24"), Some(7))),
            (format!("r{round}-c"), vnet(&format!("{net}.0/25"), Some(7))),
            (
                format!("r{round}-d"),
                vnet(&format!("{net}.128/25"), Some(7)),
            ),
        ];
        let answers = futures_util::future::join_all(
            bodies
                .iter()
                .map(|(name, body)| h.put_vnet(name, body.clone())),
        )
        .await;
        let won: Vec<&str> = answers
            .iter()
            .zip(&bodies)
            .filter(|(r, _)| r.status == StatusCode::ACCEPTED)
            .map(|(_, (name, _))| name.as_str())
            .collect();
        let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
        // The two /25s do not overlap each other: with one of them first,
        // the other /25 may win as well, but never a /24 beside a /25.
        let ok = matches!(won.len(), 1)
            || (won.len() == 2 && won.iter().all(|n| n.ends_with('c') || n.ends_with('d')));
        assert!(ok, "round {round}: {won:?} won ({statuses:?})");
        for r in answers.iter().filter(|r| r.status != StatusCode::ACCEPTED) {
            assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
            assert_eq!(r.target(), "address_prefix");
        }
        let stored: Vec<String> = h.get("/v1/vnets").await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .filter(|n| n.starts_with(&format!("r{round}-")))
            .map(str::to_string)
            .collect();
        assert_eq!(stored, won, "round {round}: only the winners are stored");
    }
}

#[tokio::test]
async fn of_two_concurrent_identical_creates_exactly_one_wins() {
    let (_d, h) = harness().await;
    for round in 0..20u16 {
        let body = vnet(&format!("10.{round}.0.0/24"), None);
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        let (a, b) = tokio::join!(h.put_vnet(&x, body.clone()), h.put_vnet(&y, body.clone()));
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [202, 409],
            "round {round}: {a:?} / {b:?}",
            a = a.body,
            b = b.body
        );
    }
}

/// A vnet written straight into the store, as a build without the rule
/// could have.
fn legacy(name: &str, prefix: &str) -> VnetRecord {
    let net = prefix.rsplit_once('.').unwrap().0;
    VnetRecord {
        name: name.to_string(),
        spec: VnetSpec {
            address_prefix: prefix.to_string(),
            ip_allocation_method: IpAllocationMethod::Static,
            gateway: None,
            dns_servers: Vec::new(),
            vlan_id: Some(100),
            vm_ip_pool: Some(IpPool {
                start: format!("{net}.10"),
                end: format!("{net}.20"),
            }),
            vip_pool: None,
            tags: BTreeMap::new(),
        },
        etag: format!("legacy-{name}"),
        provisioning_state: ProvisioningState::Succeeded,
        conditions: Vec::new(),
        current_operation: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test]
async fn vnets_that_overlap_from_before_the_rule_stay_readable_and_writable_and_are_indexed_at_start()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start_in(dir.path(), None).await;
    h.stop().await;
    {
        let sealer = Sealer::load_or_create(dir.path()).unwrap();
        let store: Box<dyn Store> = match test_database(dir.path()).await {
            Some(url) => Box::new(
                hybrid_host::store::postgres::PgStore::open(&url, sealer)
                    .await
                    .unwrap(),
            ),
            None => Box::new(
                hybrid_host::store::sqlite::SqliteStore::open(
                    &dir.path().join(hybrid_host::DB_FILE),
                    sealer,
                )
                .unwrap(),
            ),
        };
        let store: &dyn Store = store.as_ref();
        store
            .write(false, |tx| -> Result<(), StoreError> {
                tx.put_vnet(&legacy("old1", "10.0.0.0/24"))?;
                tx.put_vnet(&legacy("old2", "10.0.0.0/25"))
            })
            .await
            .unwrap();
    }
    // Back to the schema before the span columns (undoing the later
    // migrations of the operations' reasons and request ids first): the
    // next start adds them and fills them from the stored specs.
    const DOWNGRADE: &str = "ALTER TABLE operations DROP COLUMN reason;
        DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version);
        ALTER TABLE operations DROP COLUMN trace_id;
        DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version);
        DROP INDEX vnets_by_segment;
        ALTER TABLE vnets DROP COLUMN segment;
        ALTER TABLE vnets DROP COLUMN prefix_first;
        ALTER TABLE vnets DROP COLUMN prefix_last;
        DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version);";
    match test_database(dir.path()).await {
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let conn = tokio::spawn(conn);
            client.batch_execute(DOWNGRADE).await.unwrap();
            drop(client);
            let _ = conn.await;
        }
        None => {
            let conn = rusqlite::Connection::open(dir.path().join(hybrid_host::DB_FILE)).unwrap();
            conn.execute_batch(DOWNGRADE).unwrap();
        }
    }
    let h = start_in(dir.path(), None).await;
    let list = h.get("/v1/vnets").await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    // A write that keeps the prefix is not a new overlap.
    let r = h
        .call(
            Method::PATCH,
            "/v1/vnets/old2",
            Some(json!({"tags": {"kept": "yes"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let op = h.wait_op(r.body["id"].as_str().unwrap()).await;
    assert_eq!(op["status"], "Succeeded", "{op:?}");
    // A new vnet on them is refused, naming both.
    let r = h.put_vnet("new", vnet("10.0.0.0/16", Some(100))).await;
    assert_overlap(&r, "old1", "10.0.0.0/24", "both on VLAN 100");
    assert_eq!(r.body["error"]["details"].as_array().map(Vec::len), Some(2));
}

/// Vnet `net` on 10.0.0.0/16 (so a pod CIDR can fall inside) and custom
/// location `loc`.
async fn cluster_setup(h: &Harness) {
    let mut body = vnet("10.0.0.0/16", Some(100));
    body["vm_ip_pool"] = json!({"start": "10.0.0.10", "end": "10.0.0.60"});
    h.create_vnet("net", body).await;
    let r = h
        .call(
            Method::PUT,
            "/v1/custom-locations/loc",
            Some(json!({"namespace": "loc", "host_id": "/management-host"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

fn cluster(pod_cidr: &str, service_cidr: &str) -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc",
        "vnet_id": "/vnets/net",
        "control_plane": {"count": 1},
        "network": {"pod_cidr": pod_cidr, "service_cidr": service_cidr},
    })
}

#[tokio::test]
async fn a_cluster_whose_pod_or_service_cidr_overlaps_its_vnet_is_refused() {
    let (_d, h) = harness().await;
    cluster_setup(&h).await;
    for (field, body) in [
        ("network.pod_cidr", cluster("10.0.128.0/17", "10.96.0.0/12")),
        (
            "network.service_cidr",
            cluster("10.244.0.0/16", "10.0.0.0/12"),
        ),
    ] {
        for path in ["/v1/clusters/c1?dry_run=true", "/v1/clusters/c1"] {
            let r = h.call(Method::PUT, path, Some(body.clone())).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {:?}", r.body);
            assert_eq!(r.target(), field, "{:?}", r.body);
            let value = body["network"][field.trim_start_matches("network.")]
                .as_str()
                .unwrap();
            let wanted =
                format!("{field} \"{value}\" overlaps address_prefix 10.0.0.0/16 of vnet net");
            assert!(r.message().contains(&wanted), "{}", r.message());
        }
        // Nothing was taken for the refused cluster.
        let r = h.get("/v1/vnets/net/reservations").await;
        assert_eq!(r.body["items"], json!([]), "{:?}", r.body);
        assert_eq!(h.get("/v1/clusters/c1").await.status, StatusCode::NOT_FOUND);
    }
    // Outside the vnet: admitted.
    let r = h
        .call(
            Method::PUT,
            "/v1/clusters/c1",
            Some(cluster("10.244.0.0/16", "10.96.0.0/12")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}
