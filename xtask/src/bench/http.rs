//! Service request throughput: M concurrent clients, each with its own
//! keep-alive HTTPS connection, send a fixed number of requests to a
//! release `hybrid-host` on loopback. The baseline is `GET /healthz` (no
//! authentication, no store): what the TLS + HTTP stack alone costs.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hybrid_acceptance_tests::Host;
use reqwest::Method;
use reqwest::blocking::Client;
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
        name: "GET /v1/vnets/{name}",
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

/// Runs `scenario` with `clients` threads sending `per_client` requests each.
/// Every answer must be a 200: a benchmark of errors measures nothing.
pub fn run(host: &Host, scenario: &Scenario, clients: usize, per_client: usize) -> Result<Outcome> {
    let ca = reqwest::Certificate::from_pem(host.ca_pem().as_bytes())
        .context("parsing the host's ca.pem")?;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut workers = Vec::with_capacity(clients);
    for i in 0..clients {
        let client = Client::builder()
            .tls_certs_only([ca.clone()])
            .timeout(Duration::from_secs(30))
            .build()
            .context("building an HTTP client")?;
        let url = format!("{}{}", host.endpoint(), scenario.path);
        let token = scenario.auth.then(|| host.token().to_string());
        let s = scenario.clone();
        let barrier = Arc::clone(&barrier);
        let worker = std::thread::Builder::new()
            .name(format!("bench-client-{i}"))
            .spawn(move || -> Result<Vec<Duration>> {
                let send = || send(&client, &s, &url, token.as_deref());
                for _ in 0..WARMUP {
                    send()?;
                }
                barrier.wait();
                let deadline = Instant::now() + SCENARIO_LIMIT;
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    send()?;
                    latencies.push(t.elapsed());
                    if Instant::now() > deadline {
                        break;
                    }
                }
                Ok(latencies)
            })
            .context("starting a client thread")?;
        workers.push(worker);
    }
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::with_capacity(clients * per_client);
    let mut first_error = None;
    for w in workers {
        match w.join() {
            Ok(Ok(lat)) => all.extend(lat),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(anyhow!("a client thread panicked"))),
        }
    }
    let wall = start.elapsed();
    if let Some(e) = first_error {
        return Err(e.context(format!("scenario {}", scenario.name)));
    }
    let latency =
        Summary::of(&all).ok_or_else(|| anyhow!("{}: no request completed", scenario.name))?;
    Ok(Outcome {
        requests: all.len(),
        wall,
        latency,
    })
}

fn send(client: &Client, s: &Scenario, url: &str, token: Option<&str>) -> Result<()> {
    let mut req = client.request(s.method.clone(), url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = &s.body {
        req = req.json(body);
    }
    let resp = req.send().with_context(|| format!("{} {url}", s.method))?;
    let status = resp.status();
    // Read the whole body: a client does, and it frees the connection.
    let body = resp
        .bytes()
        .with_context(|| format!("reading the answer to {} {url}", s.method))?;
    if status != reqwest::StatusCode::OK {
        bail!(
            "{} {url} answered {status}, expected 200: {}",
            s.method,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}
