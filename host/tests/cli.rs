//! The `hybrid-host` binary: command-line contract, stdout lines, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hybrid-host");

#[test]
fn serve_prints_endpoint_never_the_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let endpoint = first
        .strip_prefix("hybrid-host listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    assert_ne!(endpoint, "https://127.0.0.1:0");
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 0);
    let token_line = lines.next().unwrap().unwrap();
    let ca_line = lines.next().unwrap().unwrap();
    assert!(token_line.contains("admin.token"), "{token_line}");
    assert!(ca_line.contains("ca.pem"), "{ca_line}");
    let endpoint_file = std::fs::read_to_string(dir.path().join("endpoint")).unwrap();
    assert_eq!(endpoint_file.trim(), endpoint);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(out.success(), "graceful exit: {out:?}");

    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    for text in [
        first.as_str(),
        &token_line,
        &ca_line,
        &rest.join("\n"),
        &stderr,
    ] {
        assert!(!text.contains(token.trim()), "token leaked");
    }
    assert!(
        stderr.lines().all(|l| l.starts_with('{')),
        "json logs: {stderr}"
    );
}

#[test]
fn unreachable_postgres_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, the connection is refused.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://u:secret@127.0.0.1:1/x",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the store: the database is unavailable"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");

    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "mysql://u:secret@127.0.0.1:1/x",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected postgres://"), "{stderr}");
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
}
