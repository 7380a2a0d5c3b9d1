//! A real `hybrid-host` process (the built binary) on 127.0.0.1:0 with a
//! temporary data directory, its stderr in DATA_DIR/log, and a [`Harness`]
//! to call it; on `HYBRID_TEST_POSTGRES` it runs on its own database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Harness;

const BIN: &str = env!("CARGO_BIN_EXE_hybrid-host");

/// The process; killed (by its pid) when dropped.
pub struct Process {
    pub child: Child,
    pub h: Harness,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `hybrid-host serve` in JSON log format with the arguments
/// `args` returns (given the directory that holds the data directory, for
/// files it writes there), and waits for its endpoint file.
pub async fn spawn(args: impl FnOnce(&std::path::Path) -> Vec<String>) -> Process {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let args = args(dir.path());
    let log = dir.path().join("log");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(&data)
        .args(&args)
        .env("RUST_LOG", "info");
    if let Some(url) = super::test_database(&data).await {
        cmd.args(["--database-url", &url]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start hybrid-host");
    let h = attach(data, None, &log, "hybrid-host").await;
    Process {
        child,
        h,
        log,
        _dir: dir,
    }
}

/// Waits (up to 60 s) for a started `hybrid-host` to write `data/endpoint`
/// and returns a [`Harness`] on it, trusting the CA and using the admin
/// token in `keys` (another process's data directory whose CA and token it
/// shares, as a replica does) or else in `data`. `what` names the process
/// and `log` holds its stderr, both for the panic when it does not start.
pub async fn attach(data: PathBuf, keys: Option<&Path>, log: &Path, what: &str) -> Harness {
    let endpoint_file = data.join("endpoint");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !endpoint_file.exists() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = keys.unwrap_or(&data);
    let ca = std::fs::read(keys.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    Harness {
        server: None,
        endpoint: std::fs::read_to_string(&endpoint_file)
            .unwrap()
            .trim()
            .to_string(),
        token: std::fs::read_to_string(keys.join("admin.token"))
            .unwrap()
            .trim()
            .to_string(),
        dir: data,
        http,
    }
}
