//! A real `hybrid-host` process for one test, plus a small API client.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::Value;
use tempfile::TempDir;

use crate::{Error, Result, binaries, write};

/// How long a host may take to come up (a cold debug build on a busy 2-core
/// machine can be slow to create its CA and store).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `hybrid-host serve` process on a free loopback port, with its data dir
/// in a temp dir. Dropping it kills the process and removes the data, unless
/// the test is panicking or `HYBRID_ACC_KEEP` is set: then the data is kept
/// and the log tail is printed.
pub struct Host {
    root: TempDir,
    child: Option<Child>,
    endpoint: String,
    token: String,
    ca_pem: String,
    client: Client,
    /// `--sim` file for the next (re)start, if any.
    sim: Option<PathBuf>,
    /// More `serve` arguments, e.g. the database of a replica.
    args: Vec<OsString>,
}

/// With `HYBRID_TEST_POSTGRES` set (a `postgres://` URL of a server the test
/// run started, e.g. by `cargo xtask test`), every [`Host`] gets a database
/// of its own there: the whole suite then runs on PostgreSQL.
const POSTGRES_ENV: &str = "HYBRID_TEST_POSTGRES";

/// Creates a new database on the test PostgreSQL named by
/// [`POSTGRES_ENV`]; returns its URL, or `None` when the suite runs on
/// SQLite.
fn new_test_database() -> Result<Option<String>> {
    match std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty()) {
        Some(server) => create_database(&server).map(Some),
        None => Ok(None),
    }
}

/// Creates a new database on the PostgreSQL server at `server` (a
/// `postgres://` URL of one of its databases); returns the new one's URL.
fn create_database(server: &str) -> Result<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let server = server.to_string();
    let name = format!(
        "acc_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Setup(format!("{what}: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("starting a runtime for the test database", &e))?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .map_err(|e| failed("connecting to the test PostgreSQL", &e))?;
        let conn = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| failed("creating a test database", &e))?;
        drop(client);
        let _ = conn.await;
        Ok::<_, Error>(())
    })?;
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Ok(if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    })
}

/// A host API answer: the HTTP status and the JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// Parsed JSON body; `Value::Null` for an empty body, a JSON string for a
    /// body that is not JSON.
    pub body: Value,
}

impl ApiResponse {
    /// The `error.code` of an error envelope, if this is one.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }
}

impl Host {
    /// Starts a fresh host on `127.0.0.1:0` and waits until `/healthz` answers.
    pub fn start() -> Result<Host> {
        Self::start_inner(None)
    }

    /// Starts a fresh host whose simulated datacenter is described by
    /// `sim_toml` (the `--sim` file: timings, fault injection).
    pub fn start_with_sim(sim_toml: &str) -> Result<Host> {
        Self::start_inner(Some(sim_toml))
    }

    fn start_inner(sim_toml: Option<&str>) -> Result<Host> {
        let mut args = Vec::new();
        if let Some(url) = new_test_database()? {
            args.extend([OsString::from("--database-url"), OsString::from(url)]);
        }
        Self::start_with(sim_toml, args, &[])
    }

    /// Starts a host with more `serve` arguments (`args`), after copying
    /// `seed` files into its data dir (e.g. another replica's CA).
    pub fn start_with(
        sim_toml: Option<&str>,
        args: Vec<OsString>,
        seed: &[PathBuf],
    ) -> Result<Host> {
        let root = tempfile::Builder::new()
            .prefix("hybrid-acc-host-")
            .tempdir()
            .map_err(|e| Error::io("creating temp dir", std::env::temp_dir(), e))?;
        let data = root.path().join("data");
        fs::create_dir_all(&data).map_err(|e| Error::io("creating", &data, e))?;
        let mut host = Host {
            root,
            child: None,
            endpoint: String::new(),
            token: String::new(),
            ca_pem: String::new(),
            client: Client::new(),
            sim: None,
            args,
        };
        for file in seed {
            let name = file.file_name().unwrap_or_default();
            fs::copy(file, data.join(name)).map_err(|e| Error::io("copying", file, e))?;
        }
        host.set_sim(sim_toml)?;
        host.spawn("127.0.0.1:0")?;
        Ok(host)
    }

    /// A new database on the test PostgreSQL named by [`POSTGRES_ENV`] (its
    /// URL), or `None` when the suite runs on SQLite.
    pub fn test_database() -> Result<Option<String>> {
        new_test_database()
    }

    /// The first column of every row `sql` returns, as text, from the
    /// PostgreSQL database at `database` (a store's, to check what the
    /// replicas did).
    pub fn query_database(database: &str, sql: &str) -> Result<Vec<Option<String>>> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::Setup(format!("{what}: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed("starting a runtime for a query", &e))?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(database, tokio_postgres::NoTls)
                .await
                .map_err(|e| failed("connecting to PostgreSQL", &e))?;
            let conn = tokio::spawn(conn);
            let rows = client.query(sql, &[]).await.map_err(|e| failed(sql, &e))?;
            drop(client);
            let _ = conn.await;
            rows.iter()
                .map(|r| {
                    r.try_get::<_, Option<String>>(0)
                        .map_err(|e| failed(sql, &e))
                })
                .collect()
        })
    }

    /// A new database on the PostgreSQL server at `server` (e.g. one the
    /// bench started); returns its URL.
    pub fn create_database(server: &str) -> Result<String> {
        create_database(server)
    }

    /// Kills the process (like a crash: no graceful shutdown) and starts it
    /// again on the same address with the same data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let listen = self
            .endpoint
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        self.spawn(&listen)
    }

    /// Sets (or with `None` removes) the `--sim` file used from the next
    /// [`Host::restart`] on, e.g. to lift an injected fault.
    pub fn set_sim(&mut self, sim_toml: Option<&str>) -> Result<()> {
        self.sim = match sim_toml {
            Some(toml) => {
                let path = self.root.path().join("sim.toml");
                write(&path, toml)?;
                Some(path)
            }
            None => None,
        };
        Ok(())
    }

    /// Stops the process; the data dir stays until the `Host` is dropped.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// The endpoint URL, e.g. `https://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The PEM of the CA that signed the host's server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The host's data dir (holds `ca.pem`, `admin.token`, `endpoint`, the store).
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Path of the CA file, as `HYBRID_CA_CERT_FILE` wants it.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir().join("ca.pem")
    }

    /// Path of the file that collects the host's stdout and stderr.
    pub fn log_file(&self) -> PathBuf {
        self.root.path().join("host.log")
    }

    /// The host's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// A one-time console sign-in link from `hybrid-host console-link`,
    /// run beside the service on its data dir (and database).
    pub fn console_link(&self) -> Result<String> {
        let bins = binaries()?;
        let mut cmd = Command::new(&bins.host);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HYBRID_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("console-link")
            .arg("--data-dir")
            .arg(self.data_dir());
        // The same store as the service: its --database-url, if it has one.
        if let Some(i) = self.args.iter().position(|a| a == "--database-url") {
            cmd.args(&self.args[i..(i + 2).min(self.args.len())]);
        }
        let out = cmd
            .output()
            .map_err(|e| Error::io("running", &bins.host, e))?;
        if !out.status.success() {
            return Err(Error::Check(format!(
                "hybrid-host console-link failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `GET path` (path starts with `/`, e.g. `/v1/vnets/a`).
    pub fn get(&self, path: &str) -> Result<ApiResponse> {
        self.call(Method::GET, path, None)
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.call(Method::PUT, path, Some(body))
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.call(Method::PATCH, path, Some(body))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<ApiResponse> {
        self.call(Method::POST, path, Some(body))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<ApiResponse> {
        self.call(Method::DELETE, path, None)
    }

    /// Sends a request with the admin token. Any HTTP status is returned as
    /// is; only transport failures are errors.
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<ApiResponse> {
        self.call_with_token(method, path, body, Some(&self.token))
    }

    /// Like [`Host::call`] with an explicit token (`None`: no `Authorization`).
    pub fn call_with_token(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<ApiResponse> {
        let url = format!("{}{path}", self.endpoint);
        let mut req = self.client.request(method.clone(), &url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let http = |source| Error::Http {
            method: method.to_string(),
            url: url.clone(),
            source,
        };
        let resp = req.send().map_err(http)?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(http)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(ApiResponse { status, body })
    }

    /// Requires `resp` (the answer to `what`, e.g. `PUT /v1/vnets/a`) to be a
    /// success; for a `202`, waits for its operation and requires it to have
    /// succeeded. Returns the final operation, or the body as it came.
    pub fn settle(&self, what: &str, resp: &ApiResponse) -> Result<Value> {
        crate::ensure!(
            (200..=204).contains(&resp.status),
            "{what}: {} {}",
            resp.status,
            resp.body
        );
        let done = self.wait_operation(resp)?;
        if resp.status == 202 {
            crate::ensure!(
                done.get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("succeeded")),
                "{what}: operation {done}"
            );
        }
        Ok(done)
    }

    /// PUTs `body` at `path` and [settles](Host::settle) the answer.
    pub fn apply(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self.put(path, body)?;
        self.settle(&format!("PUT {path}"), &resp)
    }

    /// If `resp` is a `202` carrying an operation, long-polls it until it is
    /// no longer running and returns the final operation; otherwise returns
    /// the body unchanged.
    pub fn wait_operation(&self, resp: &ApiResponse) -> Result<Value> {
        let Some(id) = resp.body.get("id").and_then(Value::as_str) else {
            return Ok(resp.body.clone());
        };
        if resp.status != 202 {
            return Ok(resp.body.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let op = self.get(&format!("/v1/operations/{id}?wait=30s"))?;
            crate::ensure!(
                op.status == 200,
                "GET /v1/operations/{id} answered {}: {}",
                op.status,
                op.body
            );
            let status = op.body.get("status").and_then(Value::as_str).unwrap_or("");
            let done = ["succeeded", "failed", "canceled", "cancelled"]
                .iter()
                .any(|s| status.eq_ignore_ascii_case(s));
            if done {
                return Ok(op.body);
            }
            crate::ensure!(
                Instant::now() < deadline,
                "operation {id} still {status:?} after 120 s"
            );
        }
    }

    fn spawn(&mut self, listen: &str) -> Result<()> {
        let bins = binaries()?;
        let data = self.data_dir();
        // A stale endpoint file from a previous run must not count as "ready".
        let endpoint_file = data.join("endpoint");
        let _ = fs::remove_file(&endpoint_file);
        let log_path = self.log_file();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io("opening", &log_path, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("duplicating handle of", &log_path, e))?;
        let mut cmd = Command::new(&bins.host);
        // The caller's HYBRID_HOST_* settings (listen, data dir, database)
        // must not leak into a test's host.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HYBRID_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(&data)
            .args(
                self.sim
                    .iter()
                    .flat_map(|p| [std::ffi::OsStr::new("--sim"), p.as_os_str()]),
            )
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| Error::io("starting", &bins.host, e))?;
        self.child = Some(child);
        self.wait_ready(&endpoint_file)
    }

    fn start_error(&self, reason: String) -> Error {
        Error::HostStart {
            reason,
            log: self.log_file(),
            log_tail: tail(&self.log(), 40),
        }
    }

    fn wait_ready(&mut self, endpoint_file: &Path) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_err = String::from("no endpoint file yet");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(self.start_error(format!("hybrid-host exited early with {status}")));
            }
            if Instant::now() > deadline {
                return Err(self.start_error(format!(
                    "not ready after {}s ({last_err})",
                    START_TIMEOUT.as_secs()
                )));
            }
            if let Err(e) = self.try_ready(endpoint_file) {
                last_err = e;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            return Ok(());
        }
    }

    /// One readiness probe: endpoint, CA and token files exist and
    /// `/healthz` answers 200 over TLS verified against the CA.
    fn try_ready(&mut self, endpoint_file: &Path) -> std::result::Result<(), String> {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let endpoint = read(endpoint_file)?
            .trim()
            .trim_end_matches('/')
            .to_string();
        if endpoint.is_empty() {
            return Err("endpoint file is empty".into());
        }
        let data = self.data_dir();
        let ca_pem = read(&data.join("ca.pem"))?;
        let token = read(&data.join("admin.token"))?.trim().to_string();
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|e| format!("ca.pem is not a PEM certificate: {e}"))?;
        let client = Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("building HTTP client: {e}"))?;
        let resp = client
            .get(format!("{endpoint}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .map_err(|e| format!("GET {endpoint}/healthz: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {endpoint}/healthz answered {}", resp.status()));
        }
        self.endpoint = endpoint;
        self.ca_pem = ca_pem;
        self.token = token;
        self.client = client;
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() || std::env::var_os("HYBRID_ACC_KEEP").is_some() {
            self.root.disable_cleanup(true);
            eprintln!(
                "hybrid-host data kept in {}\n--- host log tail ---\n{}",
                self.root.path().display(),
                tail(&self.log(), 40)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
