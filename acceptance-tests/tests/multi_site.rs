//! `examples/multi-site`: three sites from the same modules, with the state
//! in Terraform's `pg` backend. Each test starts its own PostgreSQL on
//! loopback (temp dir, free port), stopped by a guard even when the test
//! fails, and its own `hybrid-host`.
//!
//! - [`multi_site_state_in_postgres_with_locking`] drives plain `terraform`
//!   as a team member would: apply, an empty re-plan, the state read back
//!   from PostgreSQL, a run refused and a run queued while another holds
//!   the lock, destroy.
//! - [`run_sh_up_plan_down`] runs the example's own `run.sh` in a copy of
//!   the repository: it starts and stops its PostgreSQL and runs Terraform.

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hybrid_acceptance_tests::plan::{copy_tree, expect_quiet};
use hybrid_acceptance_tests::{
    Error, Host, Mode, Result, TestPostgres, TfOutput, Workdir, binaries, ensure, install_in_mirror,
};
use serde_json::Value;
use tempfile::TempDir;

const EXAMPLE: &str = "examples/multi-site";
/// The schema `versions.tf` gives the `pg` backend.
const SCHEMA: &str = "hybrid_sites";
/// A run that cannot get the lock says this.
const LOCK_ERROR: &str = "Error acquiring the state lock";
/// What every site and cluster of `sites.auto.tfvars` is called.
const SITES: [&str; 3] = ["berlin", "lyon", "madrid"];
const CLUSTERS: [&str; 3] = ["berlin-apps", "lyon-apps", "madrid-pos"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(message: String) -> Error {
    Error::Check(message)
}

fn io(action: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source: e,
    }
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The state database for one test: a PostgreSQL server of its own
/// ([`TestPostgres`]: data in a temp dir, loopback only, a free port) with
/// a new database for Terraform's `pg` backend; dropping it stops the server.
struct Postgres {
    _server: TestPostgres,
    url: String,
    _dir: TempDir,
}

impl Postgres {
    fn start() -> Result<Postgres> {
        let dir = tempfile::Builder::new()
            .prefix("hybrid-acc-pg-")
            .tempdir()
            .map_err(|e| io("creating temp dir", &std::env::temp_dir(), e))?;
        let server = TestPostgres::start(&dir.path().join("server"))?;
        let url = Host::create_database(&server.url())?;
        Ok(Postgres {
            _server: server,
            url,
            _dir: dir,
        })
    }

    fn conn_str(&self) -> String {
        self.url.clone()
    }

    /// `psql -tA -c SQL`, or `None` when `psql` is not installed.
    fn psql(&self, sql: &str) -> Result<Option<String>> {
        if !on_path("psql") {
            return Ok(None);
        }
        let line = format!("psql -tA -c {sql:?}");
        let out = Command::new("psql")
            .args([&self.conn_str(), "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .output()
            .map_err(|e| io("starting", Path::new(&line), e))?;
        ensure!(
            out.status.success(),
            "{line} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    }
}

/// Copies the example and the modules it uses into `dest`, keeping the
/// repository's layout so `../../modules/...` resolves.
fn copy_example(dest: &Path) -> Result<()> {
    copy_tree(&repo().join(EXAMPLE), &dest.join(EXAMPLE))?;
    copy_tree(&repo().join("modules"), &dest.join("modules"))
}

/// `terraform ARGS` in the example (the workdir's configuration directory).
fn tf(wd: &Workdir, args: &[&str]) -> Result<TfOutput> {
    wd.terraform(args)
}

fn tf_ok(wd: &Workdir, args: &[&str]) -> Result<TfOutput> {
    let out = tf(wd, args)?;
    ensure!(
        out.code == Some(0),
        "terraform {args:?} failed:\n{}",
        out.combined()
    );
    Ok(out)
}

/// Checks the service holds every site and cluster of the example (or, with
/// `present = false`, none of them).
fn expect_in_service(host: &Host, present: bool) -> Result<()> {
    let want = if present { 200 } else { 404 };
    for path in SITES
        .iter()
        .map(|s| format!("/v1/vnets/{s}"))
        .chain(CLUSTERS.iter().map(|c| format!("/v1/clusters/{c}")))
    {
        let status = host.get(&path)?.status;
        ensure!(status == want, "GET {path}: {status}, expected {want}");
    }
    Ok(())
}

/// `terraform console` holding the state lock until its stdin is closed:
/// a run that keeps the lock as long as the test wants. (It has no
/// `-lock-timeout`: started while a plan holds the lock, it exits at once
/// with the lock error, and the caller starts another.)
fn spawn_console(wd: &Workdir, host: &Host, pg: &Postgres) -> Result<Child> {
    // The workdir's own CLI configuration (provider mirror), next to `work/`.
    let rc = wd
        .dir()
        .parent()
        .map(|p| p.join("terraformrc"))
        .ok_or_else(|| check("workdir has no parent".into()))?;
    ensure!(rc.exists(), "no CLI configuration at {}", rc.display());
    let mut cmd = Command::new("terraform");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("TF_") || k.starts_with("HYBRID_") || k.starts_with("PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.args(["-chdir=examples/multi-site", "console", "-no-color"])
        .current_dir(wd.dir())
        .env("TF_CLI_CONFIG_FILE", rc)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("HYBRID_ENDPOINT", host.endpoint())
        .env("HYBRID_TOKEN", host.token())
        .env("HYBRID_CA_CERT_FILE", host.ca_file())
        .env("PG_CONN_STR", pg.conn_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn()
        .map_err(|e| io("starting", Path::new("terraform console"), e))
}

/// Ends a console (closing its stdin makes it exit) and returns its output.
fn end_console(mut console: Child) -> Result<Output> {
    drop(console.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    while console
        .try_wait()
        .map_err(|e| io("waiting for", Path::new("terraform console"), e))?
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = console.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    console
        .wait_with_output()
        .map_err(|e| io("waiting for", Path::new("terraform console"), e))
}

/// Kills a console left running when a step in between fails.
struct ConsoleGuard(Option<Child>);

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn multi_site_state_in_postgres_with_locking() -> Result<()> {
    let pg = Postgres::start()?;
    let host = Host::start()?;
    let mut wd = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    wd.set_env("PG_CONN_STR", &pg.conn_str());
    copy_example(&wd.dir())?;
    wd.set_config_dir(EXAMPLE);
    let example = wd.dir().join(EXAMPLE);

    tf_ok(&wd, &["init", "-input=false"])?;
    // The harness's apply: the plan right after it is quiet, with no site's
    // vnet "changed outside of Terraform" although its clusters took
    // addresses.
    wd.apply_with(&["-lock-timeout=60s"])?;
    expect_in_service(&host, true)?;
    let text = tf_ok(&wd, &["output", "-json", "clusters"])?.stdout;
    let clusters: Value =
        serde_json::from_str(&text).map_err(|e| check(format!("output clusters: {e}: {text}")))?;
    let madrid = &clusters["madrid-pos"];
    for pool in ["linux1", "win1"] {
        ensure!(
            madrid["site"] == "madrid"
                && madrid["nodes"][pool][0]["ip"]
                    .as_str()
                    .is_some_and(|ip| ip.starts_with("10.33.")),
            "madrid-pos {pool} node on the madrid network: {clusters}"
        );
    }
    ensure!(
        clusters["berlin-apps"]["endpoint"] == "https://10.31.0.200:6443",
        "berlin-apps endpoint from berlin's VIP pool: {clusters}"
    );

    // The state is in PostgreSQL, not in the working directory.
    ensure!(
        !example.join("terraform.tfstate").exists(),
        "a local terraform.tfstate was written"
    );
    if let Some(rows) = pg.psql(&format!(
        "select name || ' ' || (data::json -> 'resources')::text from {SCHEMA}.states"
    ))? {
        ensure!(
            rows.starts_with("default ")
                && rows.contains("/vnets/berlin")
                && rows.contains("/clusters/madrid-pos/nodepools/win1"),
            "the state row in PostgreSQL: {rows}"
        );
    }
    // A fresh checkout finds the same state: forget the local backend cache
    // and initialise again from PostgreSQL.
    let dot_terraform = example.join(".terraform");
    fs::remove_dir_all(&dot_terraform).map_err(|e| io("removing", &dot_terraform, e))?;
    tf_ok(&wd, &["init", "-input=false"])?;
    let list = tf_ok(&wd, &["state", "list"])?.stdout;
    for address in [
        r#"module.site["berlin"].hybrid_vnet.this"#,
        r#"module.site["lyon"].hybrid_custom_location.this"#,
        r#"module.cluster["madrid-pos"].hybrid_nodepool.this["win1"]"#,
        r#"module.cluster["berlin-apps"].hybrid_extension.this["flux"]"#,
    ] {
        ensure!(
            list.lines().any(|l| l == address),
            "{address} not in the state read from PostgreSQL:\n{list}"
        );
    }

    // Locking. While one run (a console) holds the lock, a plan that will
    // not wait is refused at once...
    let mut console = ConsoleGuard(Some(spawn_console(&wd, &host, &pg)?));
    let deadline = Instant::now() + Duration::from_secs(90);
    let refused = loop {
        ensure!(
            Instant::now() < deadline,
            "terraform console never held the lock"
        );
        // Give the console time to take the lock before the plan tries.
        std::thread::sleep(Duration::from_millis(500));
        let exited = match console.0.as_mut() {
            Some(c) => c
                .try_wait()
                .map_err(|e| io("checking", Path::new("terraform console"), e))?
                .is_some(),
            None => true,
        };
        if exited {
            if let Some(c) = console.0.take() {
                let out = end_console(c)?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                // It lost the race against our own plan's brief lock.
                ensure!(
                    text.contains(LOCK_ERROR),
                    "terraform console exited instead of holding the lock:\n{text}"
                );
            }
            console.0 = Some(spawn_console(&wd, &host, &pg)?);
            continue;
        }
        let out = tf(&wd, &["plan", "-input=false", "-lock-timeout=0s"])?;
        if out.code != Some(0) && out.contains(LOCK_ERROR) {
            break out;
        }
        ensure!(
            out.code == Some(0),
            "plan failed for another reason than the lock:\n{}",
            out.combined()
        );
    };
    refused.expect_contains(&["Workspace is already locked: default"])?;
    if let Some(locks) =
        pg.psql("select count(*) from pg_locks where locktype = 'advisory' and granted")?
    {
        ensure!(
            locks.trim().parse::<u32>().is_ok_and(|n| n >= 1),
            "no advisory lock held in PostgreSQL: {locks}"
        );
    }
    // ...and one that waits (-lock-timeout) runs once the lock is released,
    // not before: concurrent runs are serialised.
    let hold = Duration::from_secs(5);
    let (queued, released) = std::thread::scope(|s| -> Result<(TfOutput, Instant)> {
        let waiting = s.spawn(|| {
            let out = tf(
                &wd,
                &[
                    "plan",
                    "-detailed-exitcode",
                    "-input=false",
                    "-lock-timeout=120s",
                ],
            );
            (out, Instant::now())
        });
        std::thread::sleep(hold);
        let released = Instant::now();
        let console_out = end_console(console.0.take().ok_or_else(|| check("no console".into()))?)?;
        ensure!(
            console_out.status.success(),
            "terraform console: {}",
            String::from_utf8_lossy(&console_out.stderr)
        );
        let (out, finished) = waiting
            .join()
            .map_err(|_| check("the waiting plan's thread panicked".into()))?;
        let out = out?;
        ensure!(
            finished > released,
            "the waiting plan finished before the lock was released:\n{}",
            out.combined()
        );
        Ok((out, released))
    })?;
    ensure!(
        queued.code == Some(0),
        "the queued plan (released after {hold:?}, at {released:?}) is not empty:\n{}",
        queued.combined()
    );

    tf_ok(
        &wd,
        &[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-lock-timeout=60s",
        ],
    )?;
    expect_in_service(&host, false)?;
    let list = tf_ok(&wd, &["state", "list"])?.stdout;
    ensure!(
        list.trim().is_empty(),
        "resources left in the state after destroy: {list}"
    );
    Ok(())
}

/// Runs `run.sh ARGS` of the copied example with `env`, killing it after
/// five minutes; returns stdout + stderr, failing unless it exits 0.
fn run_sh(root: &Path, env: &[(&str, String)], args: &[&str]) -> Result<String> {
    let script = root.join(EXAMPLE).join("run.sh");
    let mut cmd = Command::new("bash");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("TF_")
            || k.starts_with("HYBRID_")
            || k.starts_with("PG")
            || k == "LOCK_TIMEOUT"
            || k == "MULTI_SITE_BUILD_DIR"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.arg(&script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| io("starting", &script, e))?;
    // Drained on threads, so a large output (a JSON plan) never blocks the
    // script on a full pipe.
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(300);
    while child
        .try_wait()
        .map_err(|e| io("waiting for", &script, e))?
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().map_err(|e| io("waiting for", &script, e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
        String::from_utf8_lossy(&stderr.join().unwrap_or_default())
    );
    ensure!(
        status.success(),
        "run.sh {args:?} failed ({status}):\n{text}"
    );
    Ok(text)
}

/// Stops the PostgreSQL `run.sh` started, even when the test fails.
struct RunShGuard<'a> {
    root: &'a Path,
    env: Vec<(&'static str, String)>,
}

impl Drop for RunShGuard<'_> {
    fn drop(&mut self) {
        let _ = run_sh(self.root, &self.env, &["pg-stop"]);
    }
}

#[test]
fn run_sh_up_plan_down() -> Result<()> {
    let host = Host::start()?;
    let root = tempfile::Builder::new()
        .prefix("hybrid-acc-multi-site-")
        .tempdir()
        .map_err(|e| io("creating temp dir", &std::env::temp_dir(), e))?;
    // The copy is a small repository checkout: run.sh finds the example and
    // keeps its PostgreSQL under <root>/.build/multi-site, as it would in
    // the real one. The `postgres` user (when run as root) must reach it.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| io("chmod", root.path(), e))?;
    copy_example(root.path())?;
    // The provider from a filesystem mirror, as `cargo xtask quickstart`
    // installs it.
    let mirror = root.path().join("mirror");
    install_in_mirror(&binaries()?.provider, &mirror)?;
    let rc = root.path().join("terraformrc");
    let rc_text = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/hybridops/hybrid\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hybridops/hybrid\"]\n  }}\n}}\n",
        mirror.display()
    );
    fs::write(&rc, rc_text).map_err(|e| io("writing", &rc, e))?;
    let env: Vec<(&'static str, String)> = vec![
        ("TF_CLI_CONFIG_FILE", rc.display().to_string()),
        ("TF_IN_AUTOMATION", "1".into()),
        ("CHECKPOINT_DISABLE", "1".into()),
        ("HYBRID_ENDPOINT", host.endpoint().into()),
        ("HYBRID_TOKEN", host.token().into()),
        ("HYBRID_CA_CERT_FILE", host.ca_file().display().to_string()),
        ("LOCK_TIMEOUT", "60s".into()),
    ];
    let _guard = RunShGuard {
        root: root.path(),
        env: env.clone(),
    };

    let up = run_sh(root.path(), &env, &["up", "-auto-approve", "-no-color"])?;
    ensure!(
        up.contains("PostgreSQL is running: postgres://terraform@127.0.0.1:")
            && up.contains("Apply complete!"),
        "run.sh up:\n{up}"
    );
    expect_in_service(&host, true)?;
    ensure!(
        root.path()
            .join(".build/multi-site/pg/data/PG_VERSION")
            .exists(),
        "run.sh keeps PostgreSQL's data under .build/multi-site"
    );
    // `env` prints the connection string for plain terraform; the server
    // listens there, on loopback.
    let exported = run_sh(root.path(), &env, &["env"])?;
    let port: u16 = exported
        .trim()
        .strip_prefix("export PG_CONN_STR='postgres://terraform@127.0.0.1:")
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| check(format!("run.sh env: {exported}")))?;
    ensure!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "nothing listens on 127.0.0.1:{port}"
    );
    let plan = run_sh(
        root.path(),
        &env,
        &[
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-out=quiet.tfplan",
        ],
    )?;
    ensure!(plan.contains("No changes."), "run.sh plan:\n{plan}");
    // Nor anything changed outside of Terraform (the harness's rule after
    // every apply, here after `run.sh up`).
    let json = run_sh(root.path(), &env, &["tf", "show", "-json", "quiet.tfplan"])?;
    let json: Value = serde_json::from_str(json.trim())
        .map_err(|e| check(format!("run.sh tf show -json: {e}: {json}")))?;
    expect_quiet(&json)?;
    let list = run_sh(root.path(), &env, &["tf", "state", "list"])?;
    ensure!(
        list.contains(r#"module.cluster["madrid-pos"].hybrid_cluster.this"#),
        "run.sh tf state list:\n{list}"
    );

    let down = run_sh(root.path(), &env, &["down", "-auto-approve", "-no-color"])?;
    ensure!(
        down.contains("Destroy complete!") && down.contains("PostgreSQL stopped"),
        "run.sh down:\n{down}"
    );
    expect_in_service(&host, false)?;
    ensure!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PostgreSQL still listens on {port} after run.sh down"
    );
    Ok(())
}
