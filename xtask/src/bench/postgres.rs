//! The API on PostgreSQL (`--only api-postgres`): the vnet scenarios of
//! the API benchmark against one replica and then three replicas on one
//! database (clients spread over them), beside the same `GET /healthz`
//! floor; and failover: a replica killed (SIGKILL) while it runs an
//! operation, timed until another replica has finished it. The PostgreSQL
//! server is the bench's own, on loopback, under `.build/bench/`.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hybrid_acceptance_tests::Host;
use serde_json::json;

use super::http::{self, Outcome};
use super::report::{Row, Stat, Unit};
use hybrid_acceptance_tests::TestPostgres;

/// Lease of the failover measure, seconds.
const LEASE_SECONDS: u64 = 3;
/// The failover operation's own work (the simulated network set-up).
const FAILOVER_WORK: Duration = Duration::from_secs(2);

fn args(database: &str, sim_state: &Path, name: &str, lease: u64) -> Vec<OsString> {
    vec![
        "--database-url".into(),
        database.into(),
        "--sim-state".into(),
        sim_state.into(),
        "--replica-name".into(),
        name.into(),
        "--lease-ttl-seconds".into(),
        lease.to_string().into(),
    ]
}

/// `n` replicas on a new database of `pg`, the later ones with the first
/// one's keys.
fn replicas(pg: &TestPostgres, tmp: &Path, n: usize, sim: &str, lease: u64) -> Result<Vec<Host>> {
    Ok(replicas_on(pg, tmp, n, sim, lease)?.0)
}

/// [`replicas`] and their database's URL.
fn replicas_on(
    pg: &TestPostgres,
    tmp: &Path,
    n: usize,
    sim: &str,
    lease: u64,
) -> Result<(Vec<Host>, String)> {
    let database = Host::create_database(&pg.url())?;
    let sim_state = tmp.join(format!("sim-{}.db", database.len() ^ n));
    let _ = std::fs::remove_file(&sim_state);
    let first = Host::start_with(Some(sim), args(&database, &sim_state, "r0", lease), &[])?;
    let keys: Vec<_> = ["ca.pem", "ca-key.pem", "admin.token", "secrets.key"]
        .iter()
        .map(|f| first.data_dir().join(f))
        .collect();
    let mut hosts = vec![first];
    for i in 1..n {
        hosts.push(Host::start_with(
            Some(sim),
            args(&database, &sim_state, &format!("r{i}"), lease),
            &keys,
        )?);
    }
    Ok((hosts, database))
}

fn pair(key: &str, name: String, unit: Unit, base: (&str, f64), ours: f64) -> Row {
    Row::paired(
        "hybrid-host API on PostgreSQL (64 keep-alive connections)",
        key,
        name,
        unit,
        (base.0, Stat::single(base.1)),
        Stat::single(ours),
    )
}

/// CPU time of every PostgreSQL server process (the postmaster and its
/// backends) on this machine: the bench's own server is the only one.
fn postgres_cpu() -> Result<Duration> {
    let mut total = Duration::ZERO;
    for (pid, dir) in http::processes()? {
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.trim() == "postgres" {
            total += http::cpu_time(pid).unwrap_or_default();
        }
    }
    Ok(total)
}

/// Where a scenario's CPU went: µs per request in hybrid-host and in
/// PostgreSQL (the profile that explains its throughput on this machine).
fn profiled(host: &Host, run: impl FnOnce() -> Result<Outcome>) -> Result<(Outcome, f64, f64)> {
    let pid = http::host_pid(host)?;
    let (host0, pg0) = (http::cpu_time(pid)?, postgres_cpu()?);
    let outcome = run()?;
    let (host1, pg1) = (http::cpu_time(pid)?, postgres_cpu()?);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / outcome.requests.max(1) as f64;
    Ok((
        outcome,
        per(host1.saturating_sub(host0)),
        per(pg1.saturating_sub(pg0)),
    ))
}

fn cpu_rows(key: &str, name: &str, host_us: f64, pg_us: f64) -> Vec<Row> {
    let group = "hybrid-host API on PostgreSQL: CPU per request";
    vec![
        Row::alone(
            group,
            &format!("{key}.cpu_host"),
            format!("{name}: hybrid-host CPU per request (ms)"),
            Unit::Millis,
            Stat::single(host_us / 1e3),
        ),
        Row::alone(
            group,
            &format!("{key}.cpu_pg"),
            format!("{name}: PostgreSQL CPU per request (ms)"),
            Unit::Millis,
            Stat::single(pg_us / 1e3),
        ),
    ]
}

/// Throughput and latency rows of one scenario against the floor.
fn rows_of(key: &str, name: &str, floor: &Outcome, o: &Outcome) -> Vec<Row> {
    vec![
        pair(
            &format!("{key}.rps"),
            format!("{name}, throughput"),
            Unit::PerSecond,
            ("GET /healthz", floor.rps()),
            o.rps(),
        ),
        pair(
            &format!("{key}.p99"),
            format!("{name}, p99 latency"),
            Unit::Millis,
            ("GET /healthz", floor.latency.p99_ms),
            o.latency.p99_ms,
        ),
    ]
}

/// Every measure of this part, as report rows.
pub fn measure(tmp: &Path, clients: usize, per_client: usize) -> Result<Vec<Row>> {
    let pg = TestPostgres::start(&tmp.join("postgres"))?;
    let (healthz, vnet) = http::scenarios();
    let get = vnet
        .iter()
        .find(|s| s.name == http::VNET_GET)
        .context("no vnet GET scenario")?;
    let writes = (per_client / 4).max(1);
    let mut rows = Vec::new();

    eprintln!("    1 replica on PostgreSQL");
    let one = replicas(&pg, tmp, 1, http::API_SIM, 15)?;
    http::prepare(&one[0])?;
    let refs: Vec<&Host> = one.iter().collect();
    let floor1 = http::run_spread(&refs, &healthz, clients, per_client)?;
    let (get1, get_host, get_pg) = profiled(&one[0], || {
        http::run_spread(&refs, get, clients, per_client)
    })?;
    let (put1, put_host, put_pg) = profiled(&one[0], || {
        http::run_writes_spread(&refs, http::VNET_CREATE, http::new_vnet, clients, writes)
    })?;
    rows.extend(cpu_rows("pg.get", "GET /v1/vnets/{name}", get_host, get_pg));
    rows.extend(cpu_rows(
        "pg.put",
        "PUT /v1/vnets/{new name} (create)",
        put_host,
        put_pg,
    ));
    rows.extend(rows_of(
        "pg.get",
        "GET /v1/vnets/{name}, 1 replica",
        &floor1,
        &get1,
    ));
    rows.extend(rows_of(
        "pg.put",
        "PUT /v1/vnets/{new name} (create), 1 replica",
        &floor1,
        &put1,
    ));
    drop(one);

    eprintln!("    3 replicas on PostgreSQL, clients spread over them");
    let three = replicas(&pg, tmp, 3, http::API_SIM, 15)?;
    http::prepare(&three[0])?;
    let refs: Vec<&Host> = three.iter().collect();
    let floor3 = http::run_spread(&refs, &healthz, clients, per_client)?;
    let get3 = http::run_spread(&refs, get, clients, per_client)?;
    let put3 = http::run_writes_spread(&refs, http::VNET_CREATE, http::new_vnet, clients, writes)?;
    rows.extend(rows_of(
        "pg3.get",
        "GET /v1/vnets/{name}, 3 replicas",
        &floor3,
        &get3,
    ));
    rows.extend(rows_of(
        "pg3.put",
        "PUT /v1/vnets/{new name} (create), 3 replicas",
        &floor3,
        &put3,
    ));
    rows.push(pair(
        "pg.scale.get",
        "GET, 3 replicas in aggregate vs 1".into(),
        Unit::PerSecond,
        ("1 replica", get1.rps()),
        get3.rps(),
    ));
    rows.push(pair(
        "pg.scale.put",
        "PUT create, 3 replicas in aggregate vs 1".into(),
        Unit::PerSecond,
        ("1 replica", put1.rps()),
        put3.rps(),
    ));
    drop(three);

    eprintln!("    failover: a replica killed mid-operation");
    let done = failover(&pg, tmp)?;
    // The target is resumption within lease + 2 s; the measure runs to the
    // end of the resumed operation, so its own work is added to both.
    let budget = Duration::from_secs(LEASE_SECONDS + 2) + FAILOVER_WORK;
    rows.push(pair(
        "pg.failover",
        format!("kill -9 of the replica holding a vnet operation's lease → done on another (lease {LEASE_SECONDS} s, 2 s of work)"),
        Unit::Millis,
        ("lease + 2 s + the work", budget.as_secs_f64() * 1e3),
        done.as_secs_f64() * 1e3,
    ));
    Ok(rows)
}

/// Starts a vnet whose network set-up takes 2 s, kills (SIGKILL) the
/// replica holding its operation's lease as soon as one does, and times
/// until the other replica reports the operation done.
fn failover(pg: &TestPostgres, tmp: &Path) -> Result<Duration> {
    let sim = format!("[timings]\nnetwork_ms = {}\n", FAILOVER_WORK.as_millis());
    let sim = sim.as_str();
    let (mut hosts, database) = replicas_on(pg, tmp, 2, sim, LEASE_SECONDS)?;
    let resp = hosts[0].put(
        "/v1/vnets/failover",
        &json!({
            "address_prefix": "10.253.0.0/24",
            "vm_ip_pool": {"start": "10.253.0.10", "end": "10.253.0.99"},
        }),
    )?;
    if resp.status != 202 {
        bail!("creating the failover vnet: {} {}", resp.status, resp.body);
    }
    let id = resp.body["id"]
        .as_str()
        .context("no operation id")?
        .to_string();
    let owner_sql = format!("SELECT lease_owner FROM operations WHERE id = '{id}'");
    let deadline = Instant::now() + Duration::from_secs(10);
    let owner = loop {
        if let Some(Some(owner)) = Host::query_database(&database, &owner_sql)?.first() {
            break owner.clone();
        }
        if Instant::now() > deadline {
            bail!("no replica took the failover operation's lease");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let victim: usize = owner
        .trim_start_matches('r')
        .parse()
        .with_context(|| format!("lease owner {owner:?}"))?;
    hosts[victim].stop();
    let killed = Instant::now();
    let survivor = &hosts[1 - victim];
    let deadline = killed + Duration::from_secs(60);
    loop {
        let op = survivor.get(&format!("/v1/operations/{id}?wait=5s"))?;
        match op.body["status"].as_str() {
            Some("Succeeded") => return Ok(killed.elapsed()),
            Some("Running") if Instant::now() < deadline => {}
            _ => bail!("the failover operation: {} {}", op.status, op.body),
        }
    }
}
