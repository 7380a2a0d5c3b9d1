//! Several `hybrid-host` replicas on one PostgreSQL database, as real
//! processes sharing one simulated datacenter (`--sim-state`) and one set
//! of keys (`--token-file`, `--secrets-key-file`, the CA files): the work
//! is shared with no address or VM handed out twice, a long-poll on one
//! replica wakes when another finishes the operation, and the operations
//! of a replica killed with SIGKILL are finished by the others.
//!
//! They need PostgreSQL: they run when `HYBRID_TEST_POSTGRES` is set (the
//! PostgreSQL step of `cargo xtask test`) and say so and pass otherwise.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hybrid-host");

/// One replica process and a client for it.
struct Replica {
    child: Child,
    h: Harness,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replicas on one database, one datacenter and one set of keys.
struct Site {
    _root: tempfile::TempDir,
    database: String,
    replicas: Vec<Replica>,
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

async fn start_replica(root: &Path, i: usize, database: &str, lease_ttl: u64) -> Replica {
    let dir = root.join(format!("replica-{i}"));
    let first = root.join("replica-0");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .args(["--database-url", database, "--sim"])
        .arg(root.join("sim.toml"))
        .arg("--sim-state")
        .arg(root.join("sim-datacenter.db"))
        .args(["--replica-name", &format!("replica-{i}")])
        .args(["--lease-ttl-seconds", &lease_ttl.to_string()]);
    if i > 0 {
        // The first replica's keys: the same token and secrets key, and
        // its CA, which then issues this replica's own server certificate.
        for f in ["ca.pem", "ca-key.pem"] {
            copy(&first.join(f), &dir.join(f));
        }
        cmd.arg("--token-file")
            .arg(first.join("admin.token"))
            .arg("--secrets-key-file")
            .arg(first.join("secrets.key"));
    }
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start hybrid-host");
    let log = dir.join("log");
    let h = common::process::attach(dir, Some(&first), &log, &format!("replica {i}")).await;
    let health = h.raw(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(health.body["replica"], format!("replica-{i}"));
    assert_eq!(health.body["store"], "postgresql");
    Replica { child, h }
}

/// `n` replicas, or `None` (the test passes, saying why) without PostgreSQL.
async fn site(n: usize, sim: &str, lease_ttl: u64) -> Option<Site> {
    let root = tempfile::tempdir().unwrap();
    let Some(database) = common::test_database(root.path()).await else {
        eprintln!(
            "skipped: set {} to run the replica tests",
            common::POSTGRES_ENV
        );
        return None;
    };
    std::fs::write(root.path().join("sim.toml"), sim).unwrap();
    let mut replicas = Vec::new();
    // One after the other: the first creates the keys and the schema.
    for i in 0..n {
        replicas.push(start_replica(root.path(), i, &database, lease_ttl).await);
    }
    Some(Site {
        _root: root,
        database,
        replicas,
    })
}

impl Site {
    fn h(&self, i: usize) -> &Harness {
        &self.replicas[i % self.replicas.len()].h
    }

    async fn sql(&self, query: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = tokio_postgres::connect(&self.database, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.query(query, &[]).await.unwrap()
    }

    async fn count(&self, query: &str) -> i64 {
        self.sql(query).await[0].get(0)
    }

    /// A /22 vnet `net1` and custom location `loc1`.
    async fn setup(&self) {
        self.h(0)
            .create_vnet(
                "net1",
                json!({
                    "address_prefix": "10.1.0.0/22",
                    "gateway": "10.1.0.1",
                    "vm_ip_pool": {"start": "10.1.0.10", "end": "10.1.3.150"},
                    "vip_pool": {"start": "10.1.3.151", "end": "10.1.3.250"}
                }),
            )
            .await;
        let r = self
            .h(1)
            .call(
                Method::PUT,
                "/v1/custom-locations/loc1",
                Some(json!({"namespace": "loc1", "host_id": "/management-host"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }

    /// Long-polls operation `id` on replica `i` until it is terminal.
    async fn wait(&self, i: usize, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let r = self
                .h(i)
                .get(&format!("/v1/operations/{id}?wait=30s"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            if r.body["status"] != "Running" {
                return r.body;
            }
            assert!(Instant::now() < deadline, "operation {id} still Running");
        }
    }

    /// Every VM of the shared datacenter, once each (by name), with their
    /// count equal to the VMs the store placed: none lost, none twice.
    async fn check_vms(&self, i: usize) -> usize {
        let hosts = self.h(i).get("/v1/hosts").await;
        assert_eq!(hosts.status, StatusCode::OK, "{:?}", hosts.body);
        let mut names = BTreeSet::new();
        for host in hosts.body["items"].as_array().unwrap() {
            for vm in host["vms"].as_array().unwrap() {
                assert!(names.insert(vm.as_str().unwrap().to_string()), "{vm} twice");
            }
        }
        let stored = self.count("SELECT count(*) FROM vms").await;
        assert_eq!(names.len() as i64, stored, "datacenter VMs vs stored VMs");
        let dup_ips = self
            .count("SELECT count(*) FROM (SELECT ip FROM vms WHERE ip IS NOT NULL GROUP BY ip HAVING count(*) > 1) d")
            .await;
        assert_eq!(dup_ips, 0, "a VM address handed out twice");
        names.len()
    }
}

fn cluster(version: &str) -> Value {
    json!({
        "custom_location_id": "/custom-locations/loc1",
        "vnet_id": "/vnets/net1",
        "kubernetes_version": version,
        "control_plane": {"count": 1}
    })
}

async fn default_version(h: &Harness) -> String {
    let r = h.get("/v1/kubernetes-versions").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["items"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["supported"] == true))
        .and_then(|v| v["version"].as_str())
        .unwrap_or_else(|| panic!("no supported version in {:?}", r.body))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_300_concurrent_creates_without_duplicates() {
    let Some(site) = site(3, "hosts = 16\n[timings]\nvm_boot_ms = 20\n", 15).await else {
        return;
    };
    site.setup().await;
    let version = default_version(site.h(0)).await;
    // 300 writes at once, spread over the replicas: 30 clusters (operations
    // with VMs and addresses) and 270 address reservations.
    let calls = (0..300).map(|i| {
        let h = site.h(i);
        let version = version.clone();
        async move {
            if i % 10 == 0 {
                let r = h
                    .call(
                        Method::PUT,
                        &format!("/v1/clusters/c{i}"),
                        Some(cluster(&version)),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "cluster c{i}: {:?}", r.body);
                (i, r.body["id"].as_str().map(str::to_string))
            } else {
                let r = h
                    .reserve("net1", json!({"pool": "vm", "owner": format!("owner-{i}")}))
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::CREATED,
                    "reservation {i}: {:?}",
                    r.body
                );
                (i, None)
            }
        }
    });
    let started = Instant::now();
    let results = futures_util::future::join_all(calls).await;
    eprintln!(
        "300 writes accepted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Each operation waited for on another replica than the one that took
    // it: the long-poll wakes on the other replica's notification.
    for (i, op) in results {
        if let Some(op) = op {
            let op = site.wait(i + 1, &op).await;
            assert_eq!(op["status"], "Succeeded", "{op}");
        }
    }
    eprintln!(
        "and their operations done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let not_done = site
        .count("SELECT count(*) FROM operations WHERE status <> 'Succeeded'")
        .await;
    assert_eq!(not_done, 0);
    let runners = site
        .count("SELECT count(DISTINCT lease_owner) FROM operations")
        .await;
    assert_eq!(runners, 0, "finished operations keep no lease");
    let reservations = site.h(2).get("/v1/vnets/net1/reservations").await;
    let items = reservations.body["items"].as_array().unwrap();
    let addresses: BTreeSet<&str> = items
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), items.len(), "an address handed out twice");
    let owners = items
        .iter()
        .filter(|r| r["owner"].as_str().is_some_and(|o| o.starts_with("owner-")))
        .count();
    assert_eq!(owners, 270);
    let vms = site.check_vms(1).await;
    assert!(vms >= 30, "{vms} VMs for 30 clusters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_operation_leaves_its_work_to_the_others() {
    // Slow boots keep the operations running; a 2 s lease lets the others
    // take over soon after the kill.
    let Some(mut site) = site(3, "hosts = 8\n[timings]\nvm_boot_ms = 1500\n", 2).await else {
        return;
    };
    site.setup().await;
    let version = default_version(site.h(0)).await;
    let mut ops = Vec::new();
    for i in 0..6 {
        let r = site
            .h(0)
            .call(
                Method::PUT,
                &format!("/v1/clusters/k{i}"),
                Some(cluster(&version)),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        ops.push(r.body["id"].as_str().unwrap().to_string());
    }
    // Kill the replica running the most of them, once it runs some.
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let rows = site
            .sql("SELECT lease_owner, count(*) FROM operations WHERE status = 'Running' AND lease_owner IS NOT NULL GROUP BY lease_owner ORDER BY count(*) DESC")
            .await;
        if let Some(row) = rows.first() {
            let owner: String = row.get(0);
            break owner;
        }
        assert!(Instant::now() < deadline, "no operation was leased");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let index: usize = victim.trim_start_matches("replica-").parse().unwrap();
    let killed = Instant::now();
    site.replicas[index].child.kill().unwrap(); // SIGKILL
    let _ = site.replicas[index].child.wait();
    let survivor = (index + 1) % 3;
    for op in &ops {
        let op = site.wait(survivor, op).await;
        assert_eq!(op["status"], "Succeeded", "{op}");
    }
    eprintln!(
        "all operations finished {:.1} s after {victim} was killed",
        killed.elapsed().as_secs_f64()
    );
    let by_victim = site
        .count(&format!(
            "SELECT count(*) FROM operations WHERE lease_owner = '{victim}'"
        ))
        .await;
    assert_eq!(by_victim, 0);
    let vms = site.check_vms(survivor).await;
    assert!(vms >= 6, "{vms} VMs for 6 clusters");
}
