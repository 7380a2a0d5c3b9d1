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

/// Mode bits of a file.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn data_is_private_whatever_the_umask_and_loose_keys_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    // umask 000: every file would be world-readable unless made private.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{BIN}' serve --listen 127.0.0.1:0 --data-dir '{}'",
            dir.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("endpoint").exists() {
        assert!(Instant::now() < deadline, "hybrid-host did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(mode(&dir), 0o700, "data directory");
    for f in [
        "admin.token",
        "secrets.key",
        "ca-key.pem",
        "server-key.pem",
        "hybrid.db",
        "sim-datacenter.db",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for f in ["hybrid.db-wal", "hybrid.db-shm"] {
        if dir.join(f).exists() {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
    }

    // A key loosened by a careless copy: refused, naming file and mode.
    for f in ["secrets.key", "admin.token", "ca-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It must refuse at once; one that serves is killed and fails the test.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{f} at 0644 was used: hybrid-host started");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{f} 0644 was used");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{} is readable by others (mode 0644)",
                path.display()
            )),
            "{f}: {stderr}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
