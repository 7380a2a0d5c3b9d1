//! PostgreSQL stopped under load: while it is down, requests that need it
//! answer 503 with the `Unavailable` error (never a 500, never a driver
//! message) and `/readyz` is red while `/healthz` stays green; once it is
//! back, the same `hybrid-host` serves again without a restart, and every
//! write it acknowledged is there.
//!
//! The test starts (and stops) its own PostgreSQL on loopback; it needs
//! PostgreSQL's server programs on PATH, as `cargo xtask test` does.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::{Host, Result, TestPostgres, ensure};
use serde_json::json;

#[test]
fn requests_fail_clearly_while_postgres_is_down_and_resume_after() -> Result<()> {
    let dir = tempfile::tempdir()
        .map_err(|e| hybrid_acceptance_tests::Error::Setup(format!("temp dir: {e}")))?;
    let pg = TestPostgres::start(&dir.path().join("pg"))?;
    let database = Host::create_database(&pg.url())?;
    let host = Host::start_with(
        None,
        vec![OsString::from("--database-url"), OsString::from(database)],
        &[],
    )?;
    let created = host.put(
        "/v1/vnets/lan",
        &json!({
            "address_prefix": "10.0.0.0/22",
            "vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.3.250"},
        }),
    )?;
    ensure!(created.status == 202, "vnet: {:?}", created.body);
    host.wait_operation(&created)?;

    // Load: one client reserving addresses as fast as it can, recording
    // each answer.
    let stop = AtomicBool::new(false);
    let (acknowledged, statuses, down_answers) = std::thread::scope(|s| -> Result<_> {
        let load = s.spawn(|| -> Result<_> {
            let mut acknowledged = BTreeSet::new();
            let mut statuses = Vec::new();
            let mut down_answers = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = host.post(
                    "/v1/vnets/lan/reservations",
                    &json!({"pool": "vm", "owner": format!("load-{i}")}),
                )?;
                statuses.push(r.status);
                match r.status {
                    201 => {
                        acknowledged.insert(r.body["address"].as_str().unwrap_or("").to_string());
                    }
                    _ => down_answers.push(r.body),
                }
            }
            Ok((acknowledged, statuses, down_answers))
        });
        std::thread::sleep(Duration::from_millis(500));
        pg.pause()?;
        let down = Instant::now();
        // Readiness turns red; liveness stays green.
        let mut red = false;
        while down.elapsed() < Duration::from_secs(3) {
            let ready = host.call_with_token(reqwest::Method::GET, "/readyz", None, None)?;
            red |= ready.status == 503 && ready.body["status"] == "unavailable";
            let live = host.call_with_token(reqwest::Method::GET, "/healthz", None, None)?;
            ensure!(
                live.status == 200,
                "healthz while the database is down: {live:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        ensure!(
            red,
            "/readyz never answered 503 while the database was down"
        );
        pg.resume()?;
        // Back by itself, without a restart.
        let back = Instant::now();
        loop {
            let ready = host.call_with_token(reqwest::Method::GET, "/readyz", None, None)?;
            if ready.status == 200 {
                break;
            }
            ensure!(
                back.elapsed() < Duration::from_secs(30),
                "/readyz still {} 30 s after the database came back",
                ready.status
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        load.join()
            .map_err(|_| hybrid_acceptance_tests::Error::Check("load thread panicked".into()))?
    })?;

    ensure!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "answers other than 201 and 503: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 201 && **s != 503)
            .collect::<Vec<_>>()
    );
    ensure!(
        !down_answers.is_empty(),
        "no request failed while the database was down"
    );
    for body in &down_answers {
        ensure!(
            body["error"]["code"] == "Unavailable",
            "a refusal while down: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or("");
        ensure!(
            !message.contains("postgres") && !message.contains("connection"),
            "a driver message reached the client: {message}"
        );
    }
    let last = statuses.last().copied();
    ensure!(
        last == Some(201),
        "the last request after recovery answered {last:?}"
    );
    // Nothing acknowledged was lost.
    let stored = host.get("/v1/vnets/lan/reservations")?;
    let stored: BTreeSet<String> = stored.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|r| r["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    ensure!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    Ok(())
}
