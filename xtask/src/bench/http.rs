//! Service request throughput: M concurrent clients, each with its own
//! keep-alive HTTPS connection, send a fixed number of requests to a
//! release `hybrid-host` on loopback. The baseline is `GET /healthz` (no
//! authentication, no store): what the TLS + HTTP stack alone costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hybrid_acceptance_tests::Host;
use reqwest::Method;
use serde_json::{Value, json};

use super::stats::Summary;

/// No scenario may run longer than this, whatever the request count.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);
/// Requests per client before the clock starts (connection set-up).
const WARMUP: usize = 5;

/// The vnet the store-backed scenarios read and write.
pub const VNET: &str = "bench-http";

/// One request scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name in the table, e.g. `GET /v1/vnets/{name}`.
    pub name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    auth: bool,
}

/// What one scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Requests completed (the fixed count, unless the time limit hit).
    pub requests: usize,
    /// Wall time from the common start to the last answer.
    pub wall: Duration,
    /// Per-request latency.
    pub latency: Summary,
}

impl Outcome {
    /// Requests per second over the wall time.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

/// The scenario the GET targets read.
pub const VNET_GET: &str = "GET /v1/vnets/{name}";
/// The scenario the PUT target reads: a transactional write with IP
/// allocation (a PUT of an unchanged vnet only compares).
pub const VNET_CREATE: &str = "PUT /v1/vnets/{new name} (create)";

/// The body `PUT /v1/vnets/bench-http` sends, every time the same.
pub fn vnet_body() -> Value {
    json!({
        "address_prefix": "10.254.0.0/24",
        "vm_ip_pool": {"start": "10.254.0.10", "end": "10.254.0.99"},
        "vip_pool": {"start": "10.254.0.200", "end": "10.254.0.239"},
        "tags": {"bench": "true"},
    })
}

/// The baseline and the two store-backed scenarios.
pub fn scenarios() -> (Scenario, Vec<Scenario>) {
    let healthz = Scenario {
        name: "GET /healthz",
        method: Method::GET,
        path: "/healthz".into(),
        body: None,
        auth: false,
    };
    let get = Scenario {
        name: VNET_GET,
        method: Method::GET,
        path: format!("/v1/vnets/{VNET}"),
        body: None,
        auth: true,
    };
    let put = Scenario {
        name: "PUT /v1/vnets/{name} (no change)",
        method: Method::PUT,
        path: format!("/v1/vnets/{VNET}"),
        body: Some(vnet_body()),
        auth: true,
    };
    (healthz, vec![get, put])
}

/// Creates the vnet the scenarios use and waits for it to be ready.
pub fn prepare(host: &Host) -> Result<()> {
    let resp = host.put(&format!("/v1/vnets/{VNET}"), &vnet_body())?;
    if !(200..300).contains(&resp.status) {
        bail!(
            "creating vnet {VNET} for the throughput benchmark: {} {}",
            resp.status,
            resp.body
        );
    }
    host.wait_operation(&resp)?;
    Ok(())
}

/// Runs `scenario` with `clients` concurrent clients (one keep-alive
/// connection each) sending `per_client` requests each. Every answer must be
/// a 200: a benchmark of errors measures nothing.
pub fn run(host: &Host, scenario: &Scenario, clients: usize, per_client: usize) -> Result<Outcome> {
    let url = format!("{}{}", host.endpoint(), scenario.path);
    let body = match &scenario.body {
        Some(b) => Some(serde_json::to_vec(b).context("encoding a body")?),
        None => None,
    };
    let (method, auth) = (scenario.method.clone(), scenario.auth);
    let request: RequestFn = Arc::new(move |_, _| Request {
        method: method.clone(),
        url: url.clone(),
        body: body.clone(),
        auth,
    });
    drive(host, scenario.name, clients, per_client, request, |s| {
        s == reqwest::StatusCode::OK
    })
}

/// [`run`] with the clients spread over several replicas (client `c` talks
/// to `hosts[c % n]`), which share one CA and token.
pub fn run_spread(
    hosts: &[&Host],
    scenario: &Scenario,
    clients: usize,
    per_client: usize,
) -> Result<Outcome> {
    let first = hosts.first().context("no host to measure")?;
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}{}", h.endpoint(), scenario.path))
        .collect();
    let body = match &scenario.body {
        Some(b) => Some(serde_json::to_vec(b).context("encoding a body")?),
        None => None,
    };
    let (method, auth) = (scenario.method.clone(), scenario.auth);
    let request: RequestFn = Arc::new(move |c, _| Request {
        method: method.clone(),
        url: urls[c % urls.len()].clone(),
        body: body.clone(),
        auth,
    });
    drive(first, scenario.name, clients, per_client, request, |s| {
        s == reqwest::StatusCode::OK
    })
}

/// [`run_writes`] with the clients spread over several replicas.
pub fn run_writes_spread(
    hosts: &[&Host],
    name: &str,
    writer: Writer,
    clients: usize,
    per_client: usize,
) -> Result<Outcome> {
    let first = hosts.first().context("no host to measure")?;
    let endpoints: Vec<String> = hosts.iter().map(|h| h.endpoint().to_string()).collect();
    let request: RequestFn = Arc::new(move |c, n| {
        let (path, body) = writer(c, n);
        Request {
            method: Method::PUT,
            url: format!("{}{path}", endpoints[c % endpoints.len()]),
            body: Some(body.to_string().into_bytes()),
            auth: true,
        }
    });
    drive(first, name, clients, per_client, request, |s| {
        s.is_success()
    })
}

/// One request of a load run.
struct Request {
    method: Method,
    url: String,
    /// A JSON body, already encoded.
    body: Option<Vec<u8>>,
    /// Send the admin bearer token.
    auth: bool,
}

/// Request `n` of client `c`.
type RequestFn = Arc<dyn Fn(usize, usize) -> Request + Send + Sync>;

/// The load generator: `clients` tasks on one single-threaded tokio runtime,
/// each with its own client and so its own keep-alive HTTP/1.1 connection
/// (a pool of `clients` connections), send [`WARMUP`] requests (connection
/// set-up, not timed), wait for each other, then `per_client` timed
/// requests each. One thread keeps the generator's share of this small
/// machine's CPU low; the server gets the rest.
fn drive(
    host: &Host,
    name: &str,
    clients: usize,
    per_client: usize,
    request: RequestFn,
    ok: fn(reqwest::StatusCode) -> bool,
) -> Result<Outcome> {
    let ca = reqwest::Certificate::from_pem(host.ca_pem().as_bytes())
        .context("parsing the host's ca.pem")?;
    let token: Arc<str> = host.token().into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;
    let (latencies, wall) = runtime
        .block_on(async move {
            let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
            let mut tasks = tokio::task::JoinSet::new();
            for c in 0..clients {
                let client = reqwest::Client::builder()
                    .tls_certs_only([ca.clone()])
                    .http1_only()
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .context("building an HTTP client")?;
                let (request, token, barrier) = (
                    Arc::clone(&request),
                    Arc::clone(&token),
                    Arc::clone(&barrier),
                );
                tasks.spawn(async move {
                    let send = async |n: usize| -> Result<()> {
                        let r = request(c, n);
                        let mut req = client.request(r.method.clone(), &r.url);
                        if r.auth {
                            req = req.bearer_auth(&*token);
                        }
                        if let Some(body) = r.body {
                            req = req
                                .header(reqwest::header::CONTENT_TYPE, "application/json")
                                .body(body);
                        }
                        let resp = req
                            .send()
                            .await
                            .with_context(|| format!("{} {}", r.method, r.url))?;
                        let status = resp.status();
                        // Read the whole body: a client does, and it frees the
                        // connection.
                        let body = resp.bytes().await.with_context(|| {
                            format!("reading the answer to {} {}", r.method, r.url)
                        })?;
                        if !ok(status) {
                            bail!(
                                "{} {} answered {status}: {}",
                                r.method,
                                r.url,
                                String::from_utf8_lossy(&body)
                            );
                        }
                        Ok(())
                    };
                    let mut warm = Ok(());
                    for n in 0..WARMUP {
                        warm = send(n).await;
                        if warm.is_err() {
                            break;
                        }
                    }
                    // Every task reaches the barrier, failed or not, or the
                    // others would wait for it forever.
                    barrier.wait().await;
                    warm?;
                    let deadline = Instant::now() + SCENARIO_LIMIT;
                    let mut latencies = Vec::with_capacity(per_client);
                    for n in WARMUP..WARMUP + per_client {
                        let t = Instant::now();
                        send(n).await?;
                        latencies.push(t.elapsed());
                        if Instant::now() > deadline {
                            break;
                        }
                    }
                    Ok::<_, anyhow::Error>(latencies)
                });
            }
            barrier.wait().await;
            let start = Instant::now();
            let mut all = Vec::with_capacity(clients * per_client);
            let mut first_error = None;
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Ok(lat)) => all.extend(lat),
                    Ok(Err(e)) => first_error = first_error.or(Some(e)),
                    Err(_) => first_error = first_error.or(Some(anyhow!("a client task panicked"))),
                }
            }
            let wall = start.elapsed();
            match first_error {
                Some(e) => Err(e),
                None => Ok((all, wall)),
            }
        })
        .with_context(|| format!("scenario {name}"))?;
    let latency = Summary::of(&latencies).ok_or_else(|| anyhow!("{name}: no request completed"))?;
    Ok(Outcome {
        requests: latencies.len(),
        wall,
        latency,
    })
}

// ---------------------------------------------------------------------------
// The API report of issue 6 (items 4): GET / LIST / PUT (a real write) from a
// pool of keep-alive clients, the service's RSS, then the same reads with
// 1,000 clusters x 3 node pools stored.

/// The `--sim` file of the API benchmark: zero timings (the default) and one
/// host large enough for thousands of VMs, so seeding is never refused.
pub const API_SIM: &str = "hosts = [{ name = \"bench-1\", vcpus = 1000000, memory_gib = 100000000, disk_gib = 1000000000 }]\n";

/// Vnets the seeded clusters spread over (one /16 each).
const SEED_VNETS: usize = 10;
/// Node pools per seeded cluster.
const SEED_POOLS: usize = 3;

/// Resident memory of the `hybrid-host` process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// `VmRSS`: resident now, in KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far, in KiB.
    pub hwm_kib: u64,
    /// `Threads`: the process's threads now (each may hold a malloc arena).
    pub threads: u64,
}

impl Rss {
    /// Reads the RSS of the `hybrid-host` serving `host` (found by its data
    /// dir on the command line).
    pub fn of(host: &Host) -> Result<Rss> {
        let pid = host_pid(host)?;
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Ok(Rss {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
            threads: field("Threads:"),
        })
    }

    /// `VmRSS` in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// `VmHWM` in MiB.
    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// Every process on the machine: its pid and its `/proc` directory.
pub(super) fn processes() -> Result<impl Iterator<Item = (u32, std::path::PathBuf)>> {
    let entries = std::fs::read_dir("/proc").context("listing /proc")?;
    Ok(entries.filter_map(|entry| {
        let entry = entry.ok()?;
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        Some((pid, entry.path()))
    }))
}

/// The pid of the `hybrid-host` process whose command line names
/// `host`'s data dir.
pub(super) fn host_pid(host: &Host) -> Result<u32> {
    let data = host.data_dir();
    let needle = data.to_string_lossy().into_owned();
    for (pid, dir) in processes()? {
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // The harness starts `hybrid-host serve --data-dir DATA …`.
        let is_host = args
            .windows(2)
            .any(|w| w[0] == "--data-dir" && w[1] == needle);
        if is_host {
            return Ok(pid);
        }
    }
    bail!("no hybrid-host process with data dir {}", data.display())
}

/// CPU time (user + system) the `hybrid-host` process `pid` has used so far,
/// from `/proc/PID/stat` (in clock ticks of 10 ms, Linux's `USER_HZ`).
pub(super) fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The fields after the `(comm)` one: state is field 3, utime 14, stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected {path}: {stat}"))?;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Ok(Duration::from_millis(ticks * 10))
}

/// One measured scenario of the API report.
#[derive(Debug, Clone)]
pub struct Measured {
    /// e.g. `GET /v1/clusters/{name}`.
    pub name: String,
    /// What the store held: e.g. `1 cluster x 3 pools`.
    pub stored: String,
    /// Requests/s and latency.
    pub outcome: Outcome,
    /// CPU time the `hybrid-host` process spent per request (user + system,
    /// warm-up included): the server's own cost, apart from the load
    /// generator's, which shares the machine.
    pub server_cpu_per_request: Duration,
}

/// Everything the API benchmark measured, for the report's rows.
#[derive(Debug, Clone)]
pub struct ApiReport {
    /// Concurrent keep-alive clients (one connection each).
    pub clients: usize,
    /// The scenarios in the order run: baseline, vnet GET/LIST/PUT, then the
    /// cluster reads with one cluster and with `clusters` stored.
    pub scenarios: Vec<Measured>,
    /// RSS after the vnet scenarios (one vnet + the PUT's vnets stored).
    pub rss_small: Rss,
    /// Clusters seeded for the second half (each with [`SEED_POOLS`] pools).
    pub clusters: usize,
    /// How long seeding them through the API took.
    pub seed: Duration,
    /// RSS with `clusters` clusters stored, after the reads ran on them.
    pub rss_seeded: Rss,
}

/// Paths and bodies of a write scenario: request `n` of client `c` creates
/// its own object (an idempotent re-PUT is not a write).
pub type Writer = fn(client: usize, n: usize) -> (String, Value);

/// `PUT /v1/vnets/bench-w-C-N` with its own /24 in 10.128.0.0/9: a new vnet
/// per request (a store transaction: the record, its address pools and an
/// operation).
pub fn new_vnet(client: usize, n: usize) -> (String, Value) {
    // A /24 of its own per write (vnets on one segment must not overlap):
    // 500 per client from 10.128.0.0/24, distinct for 64 clients and below
    // 10.253.0.0/24, which the bench's other vnets use.
    let k = client * 500 + n % 500;
    let (a, b) = (128 + (k / 256) % 125, k % 256);
    let net = format!("10.{a}.{b}");
    (
        format!("/v1/vnets/bench-w-{client}-{n}"),
        json!({
            "address_prefix": format!("{net}.0/24"),
            "vm_ip_pool": {"start": format!("{net}.10"), "end": format!("{net}.99")},
            "vip_pool": {"start": format!("{net}.200"), "end": format!("{net}.239")},
        }),
    )
}

/// Runs a write scenario: every request a new object; 200, 201 or 202 count.
pub fn run_writes(
    host: &Host,
    name: &str,
    writer: Writer,
    clients: usize,
    per_client: usize,
) -> Result<Outcome> {
    let endpoint = host.endpoint().to_string();
    let request: RequestFn = Arc::new(move |c, n| {
        let (path, body) = writer(c, n);
        Request {
            method: Method::PUT,
            url: format!("{endpoint}{path}"),
            body: Some(body.to_string().into_bytes()),
            auth: true,
        }
    });
    drive(host, name, clients, per_client, request, |s| s.is_success())
}

fn get(name: &'static str, path: String) -> Scenario {
    Scenario {
        name,
        method: Method::GET,
        path,
        body: None,
        auth: true,
    }
}

/// The cluster reads measured before and after seeding.
fn cluster_reads() -> Vec<Scenario> {
    vec![
        get("GET /v1/clusters/{name}", "/v1/clusters/c0000".into()),
        get(
            "GET /v1/clusters/{name}/nodepools/{pool}",
            "/v1/clusters/c0000/nodepools/pool1".into(),
        ),
        get(
            "LIST /v1/clusters/{name}/nodepools",
            "/v1/clusters/c0000/nodepools".into(),
        ),
    ]
}

fn seed_vnet(host: &Host, k: usize) -> Result<()> {
    let body = json!({
        "address_prefix": format!("10.{k}.0.0/16"),
        "vm_ip_pool": {"start": format!("10.{k}.0.10"), "end": format!("10.{k}.127.250")},
        "vip_pool": {"start": format!("10.{k}.128.10"), "end": format!("10.{k}.255.250")},
    });
    host.apply(&format!("/v1/vnets/seed{k}"), &body)?;
    Ok(())
}

/// Creates cluster `c{i:04}` on vnet `seed{i % SEED_VNETS}` with
/// [`SEED_POOLS`] one-node pools `pool1`…
fn seed_cluster(host: &Host, i: usize) -> Result<()> {
    let name = format!("c{i:04}");
    host.apply(
        &format!("/v1/clusters/{name}"),
        &json!({
            "custom_location_id": "/custom-locations/bench",
            "vnet_id": format!("/vnets/seed{}", i % SEED_VNETS),
            "kubernetes_version": "1.32.3",
            "control_plane": {"count": 1},
        }),
    )?;
    for p in 1..=SEED_POOLS {
        host.apply(
            &format!("/v1/clusters/{name}/nodepools/pool{p}"),
            &json!({"os_type": "linux", "node_count": 1}),
        )?;
    }
    Ok(())
}

/// Seeds clusters `from..to` with `workers` concurrent API clients.
fn seed_clusters(host: &Host, from: usize, to: usize, workers: usize) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(from);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= to {
                            return Ok(());
                        }
                        seed_cluster(host, i)?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow!("a seeding thread panicked"))??;
        }
        Ok(())
    })
}

/// The API benchmark of issue 6: on `host` (started with [`API_SIM`]),
/// `clients` keep-alive clients send `per_client` requests per scenario:
/// `GET /healthz` (the TLS + HTTP floor), vnet GET, LIST and PUT of new
/// vnets; then cluster and pool reads with one cluster stored, the seeding
/// of `clusters` clusters x 3 pools through the API, and the same reads
/// again. `progress` is told what is running.
pub fn api_report(
    host: &Host,
    clients: usize,
    per_client: usize,
    clusters: usize,
    progress: &dyn Fn(&str),
) -> Result<ApiReport> {
    prepare(host)?;
    let pid = host_pid(host)?;
    let (healthz, vnet) = scenarios();
    let mut measured = Vec::new();
    let mut push = |name: &str, stored: &str, run: &dyn Fn() -> Result<Outcome>| -> Result<()> {
        let cpu = cpu_time(pid)?;
        let outcome = run()?;
        let cpu = cpu_time(pid)?.saturating_sub(cpu);
        let sent = (outcome.requests + clients * WARMUP).max(1) as u32;
        measured.push(Measured {
            name: name.to_string(),
            stored: stored.to_string(),
            outcome,
            server_cpu_per_request: cpu / sent,
        });
        Ok(())
    };
    let small = "1 vnet";
    push(healthz.name, small, &|| {
        run(host, &healthz, clients, per_client)
    })?;
    for s in &vnet {
        push(s.name, small, &|| run(host, s, clients, per_client))?;
    }
    let list = get("LIST /v1/vnets", "/v1/vnets".into());
    push(list.name, small, &|| run(host, &list, clients, per_client))?;
    // Writes are slower: fewer of them, still from every client.
    let writes = (per_client / 4).max(1);
    push(VNET_CREATE, small, &|| {
        run_writes(host, VNET_CREATE, new_vnet, clients, writes)
    })?;
    let rss_small = Rss::of(host)?;

    progress("seeding the first cluster (3 pools)");
    host.apply(
        "/v1/custom-locations/bench",
        &json!({"namespace": "bench", "host_id": "/management-host"}),
    )?;
    for k in 0..SEED_VNETS {
        seed_vnet(host, k)?;
    }
    seed_cluster(host, 0)?;
    let one = format!("1 cluster x {SEED_POOLS} pools");
    for s in cluster_reads() {
        push(s.name, &one, &|| run(host, &s, clients, per_client))?;
    }

    progress(&format!(
        "seeding {clusters} clusters x {SEED_POOLS} pools through the API"
    ));
    let t = Instant::now();
    seed_clusters(host, 1, clusters.max(1), clients.min(16))?;
    let seed = t.elapsed();
    progress(&format!(
        "measuring the reads with {clusters} clusters stored (seeded in {:.1} s)",
        seed.as_secs_f64()
    ));
    let many = format!("{clusters} clusters x {SEED_POOLS} pools");
    for s in cluster_reads() {
        push(s.name, &many, &|| run(host, &s, clients, per_client))?;
    }
    let rss_seeded = Rss::of(host)?;
    Ok(ApiReport {
        clients,
        scenarios: measured,
        rss_small,
        clusters,
        seed,
        rss_seeded,
    })
}

impl ApiReport {
    /// The raw numbers, for `results.json`.
    pub fn to_json(&self) -> Value {
        let mib =
            |r: &Rss| json!({"rss_mib": r.rss_mib(), "hwm_mib": r.hwm_mib(), "threads": r.threads});
        json!({
            "clients": self.clients,
            "clusters": self.clusters,
            "pools_per_cluster": SEED_POOLS,
            "seed_seconds": self.seed.as_secs_f64(),
            "rss_small": mib(&self.rss_small),
            "rss_seeded": mib(&self.rss_seeded),
            "scenarios": self.scenarios.iter().map(|m| json!({
                "name": m.name,
                "stored": m.stored,
                "requests": m.outcome.requests,
                "wall_ms": m.outcome.wall.as_secs_f64() * 1e3,
                "rps": m.outcome.rps(),
                "latency": m.outcome.latency.to_json(),
                "server_cpu_us_per_request": m.server_cpu_per_request.as_secs_f64() * 1e6,
            })).collect::<Vec<_>>(),
        })
    }

    /// A plain-text table: one line per scenario, then the RSS lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<44} {:<24} {:>10} {:>9} {:>9} {:>12}\n",
            "request", "stored", "req/s", "p50 ms", "p99 ms", "server µs/req"
        );
        for m in &self.scenarios {
            out += &format!(
                "{:<44} {:<24} {:>10.0} {:>9.2} {:>9.2} {:>12.0}\n",
                m.name,
                m.stored,
                m.outcome.rps(),
                m.outcome.latency.median_ms,
                m.outcome.latency.p99_ms,
                m.server_cpu_per_request.as_secs_f64() * 1e6
            );
        }
        out += &format!(
            "hybrid-host RSS, small store: {:.1} MiB (peak {:.1} MiB, {} threads)\n",
            self.rss_small.rss_mib(),
            self.rss_small.hwm_mib(),
            self.rss_small.threads
        );
        out += &format!(
            "hybrid-host RSS, {} clusters x {SEED_POOLS} pools: {:.1} MiB (peak {:.1} MiB, {} threads); seeded in {:.1} s\n",
            self.clusters,
            self.rss_seeded.rss_mib(),
            self.rss_seeded.hwm_mib(),
            self.rss_seeded.threads,
            self.seed.as_secs_f64()
        );
        out
    }
}
