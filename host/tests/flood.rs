//! Connection exhaustion: the real `hybrid-host` binary with a small
//! connection cap and short timeouts, flooded from this process over
//! loopback with idle TCP connections and TLS connections that trickle a
//! header line at a time (bounded in count and time). A well-behaved
//! client, on a new connection for every request, is still served within
//! a generous multiple of its own baseline latency; the flood's
//! connections are closed by the server when their timeouts run out; the
//! service logs that its limits bit; and its memory is measured before,
//! during and after.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const BIN: &str = env!("CARGO_BIN_EXE_hybrid-host");

const CAP: usize = 64;
/// The flood: three times the cap, half idle TCP, half slow-header TLS.
const FLOOD: usize = 3 * CAP;
const FLOOD_FOR: Duration = Duration::from_secs(6);
const HANDSHAKE_S: u64 = 2;
const HEADER_S: u64 = 2;
const IDLE_S: u64 = 3;

/// The service process; killed when dropped.
struct Service {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    endpoint: String,
    token: String,
    tls: TlsConnector,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    async fn start(extra: &[&str]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hybrid-host");
        let endpoint_file = dir.path().join("endpoint");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !endpoint_file.exists() {
            assert!(
                Instant::now() < deadline,
                "hybrid-host did not start: {}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let endpoint = std::fs::read_to_string(&endpoint_file)
            .unwrap()
            .trim()
            .to_string();
        let addr: SocketAddr = endpoint.trim_start_matches("https://").parse().unwrap();
        let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
        let tls = connector(&dir.path().join("ca.pem"));
        Service {
            child,
            dir,
            addr,
            endpoint,
            token,
            tls,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Resident memory of the service, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    async fn tls_connect(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        self.tls
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
    }
}

fn connector(ca: &Path) -> TlsConnector {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).expect("CA PEM"))
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A well-behaved client: a new connection for every request.
fn fresh_client(ca: &Path) -> reqwest::Client {
    let ca = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One `/healthz` and one authenticated GET; the slower of the two.
async fn well_behaved(client: &reqwest::Client, s: &Service) -> Duration {
    let mut slowest = Duration::ZERO;
    for (path, auth) in [("/healthz", false), ("/v1/vnets", true)] {
        let started = Instant::now();
        let mut req = client.get(format!("{}{path}", s.endpoint));
        if auth {
            req = req.bearer_auth(&s.token);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} during the flood: {e}"));
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.bytes().await.expect("body");
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// A flood connection left open when the flood stops.
enum Held {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Until `stop` or the server closes it: an idle TCP connection, or a
/// TLS connection that sends a request line and then a header line every
/// 300 ms. Reconnects a second after the server drops it (until `stop`),
/// like a real attacker would, and leaves its last connection open for
/// the server's timeouts to close.
async fn flood_one(s: Arc<Service>, tls: bool, stop: Arc<AtomicBool>) -> Option<Held> {
    while !stop.load(Ordering::Relaxed) {
        if tls {
            if let Ok(mut c) = s.tls_connect().await {
                let mut open = c.write_all(b"GET /healthz HTTP/1.1\r\n").await.is_ok();
                while open && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    open = c.write_all(b"X-Slow: 1\r\n").await.is_ok() && c.flush().await.is_ok();
                }
                if open {
                    return Some(Held::Tls(Box::new(c)));
                }
            }
        } else if let Ok(mut c) = TcpStream::connect(s.addr).await {
            let mut buf = [0u8; 16];
            // Returns when the server closes the connection.
            let closed = tokio::select! {
                _ = c.read(&mut buf) => true,
                _ = until(&stop) => false,
            };
            if !closed {
                return Some(Held::Tcp(c));
            }
        }
        // Bounded churn: the point is holding slots, not burning the CPU
        // the well-behaved client's latency is compared on.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

/// Runs the flood on its own thread and runtime, so its client-side work
/// (TLS handshakes) does not queue behind the well-behaved client's. After
/// `stop`, waits for the server to close what the flood left open; returns
/// how many it left open and how many of those were still open after
/// `within`.
fn spawn_flood(
    s: Arc<Service>,
    stop: Arc<AtomicBool>,
    within: Duration,
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the flood");
        rt.block_on(async move {
            let tasks: Vec<_> = (0..FLOOD)
                .map(|i| tokio::spawn(flood_one(s.clone(), i % 2 == 0, stop.clone())))
                .collect();
            let mut held = Vec::new();
            for t in tasks {
                held.extend(t.await.expect("a flood task"));
            }
            let checks = held.into_iter().map(|c| async move {
                match c {
                    Held::Tcp(mut c) => closed_by_server(&mut c, within).await,
                    Held::Tls(mut c) => closed_by_server(&mut *c, within).await,
                }
            });
            let closed = futures_util::future::join_all(checks).await;
            (closed.len(), closed.iter().filter(|c| !**c).count())
        })
    })
}

async fn until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True once the server closed `c` (EOF or an error), reading whatever it
/// sends; false if it is still open after `within`.
async fn closed_by_server<R: AsyncReadExt + Unpin>(c: &mut R, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_slow_connections_does_not_lock_out_a_well_behaved_client() {
    let s = Arc::new(
        Service::start(&[
            "--max-connections",
            &CAP.to_string(),
            "--handshake-timeout-seconds",
            &HANDSHAKE_S.to_string(),
            "--header-read-timeout-seconds",
            &HEADER_S.to_string(),
            "--idle-timeout-seconds",
            &IDLE_S.to_string(),
        ])
        .await,
    );
    let client = fresh_client(&s.dir.path().join("ca.pem"));

    // Baseline: the slowest of a few rounds, after one to warm up.
    well_behaved(&client, &s).await;
    let mut baseline = Duration::ZERO;
    for _ in 0..5 {
        baseline = baseline.max(well_behaved(&client, &s).await);
    }
    let rss_before = s.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let within = Duration::from_secs(4 * (HANDSHAKE_S + HEADER_S));
    let flood = spawn_flood(s.clone(), stop.clone(), within);
    let started = Instant::now();
    let mut during = Vec::new();
    let mut rss_during = 0;
    // Let the flood fill the cap first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while started.elapsed() < FLOOD_FOR {
        during.push(well_behaved(&client, &s).await);
        rss_during = rss_during.max(s.rss_kib());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let slowest = during.iter().copied().max().unwrap_or_default();
    let bound = baseline * 10 + Duration::from_millis(500);
    eprintln!(
        "baseline {baseline:?}; during the flood {} rounds, slowest {slowest:?} (bound {bound:?})",
        during.len()
    );
    assert!(during.len() >= 5, "too few rounds: {during:?}");
    assert!(
        slowest <= bound,
        "served, but slower than 10x its baseline + 500 ms: {during:?} vs {baseline:?}"
    );

    // What the flood left open, the server closes when its timeouts run out.
    let (left_open, not_closed) = tokio::task::spawn_blocking(move || flood.join())
        .await
        .unwrap()
        .expect("the flood thread");
    assert!(left_open > 0, "the flood left no connection open");
    assert_eq!(
        not_closed, 0,
        "of {left_open} flood connections, {not_closed} stayed open"
    );

    // The limits bit, and the service said so (without any header).
    let bit = |log: &str, what: &str| {
        log.lines().any(|l| {
            l.contains("connection limits bit")
                && l.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{what}=")))
                    .is_some_and(|n| n != "0")
        })
    };
    let kinds = ["shed", "handshake_timeouts", "header_timeouts"];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = s.log();
        if kinds.iter().all(|k| bit(&log, k)) {
            break;
        }
        let missing: Vec<_> = kinds.iter().filter(|k| !bit(&log, k)).collect();
        assert!(
            Instant::now() < deadline,
            "{missing:?} never logged as biting:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!s.log().contains("X-Slow"), "a header was logged");

    // Memory: given back once the flood's connections are gone.
    well_behaved(&client, &s).await;
    let rss_after = s.rss_kib();
    eprintln!("RSS before {rss_before} KiB, during {rss_during} KiB, after {rss_after} KiB");
    assert!(
        rss_after <= rss_before + (rss_during.saturating_sub(rss_before)) / 2 + 8 * 1024,
        "memory not given back: before {rss_before} KiB, during {rss_during} KiB, after {rss_after} KiB"
    );
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_when_their_timeouts_run_out() {
    let s = Service::start(&[
        "--handshake-timeout-seconds",
        &HANDSHAKE_S.to_string(),
        "--header-read-timeout-seconds",
        &HEADER_S.to_string(),
        "--idle-timeout-seconds",
        &IDLE_S.to_string(),
    ])
    .await;
    // Generous: the assertion is that they close, not how fast.
    let within = Duration::from_secs(4 * (HANDSHAKE_S + HEADER_S + IDLE_S));

    // No TLS handshake at all.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    // A handshake, then nothing.
    let mut silent = s.tls_connect().await.unwrap();
    // A request head trickled a line at a time, never finished.
    let mut slow = s.tls_connect().await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = async {
        for _ in 0..(within.as_millis() / 500) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() || slow.flush().await.is_err() {
                break;
            }
        }
    };
    // A request, then the connection kept alive and idle.
    let mut idle = s.tls_connect().await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let (tcp_closed, silent_closed, idle_closed, slow_closed) = tokio::join!(
        closed_by_server(&mut tcp, within),
        closed_by_server(&mut silent, within),
        closed_by_server(&mut idle, within),
        async {
            trickle.await;
            true
        },
    );
    assert!(tcp_closed, "a connection without a handshake stayed open");
    assert!(silent_closed, "a connection without a request stayed open");
    assert!(idle_closed, "an idle keep-alive connection stayed open");
    assert!(slow_closed);
    let trickle_ended_by_server = closed_by_server(&mut slow, Duration::from_secs(1)).await;
    assert!(
        trickle_ended_by_server,
        "a request head trickled a line at a time stayed open"
    );
}

#[test]
fn limit_flags_refuse_zero_and_a_cap_beyond_the_open_files_limit() {
    let dir = tempfile::tempdir().unwrap();
    for flag in [
        "--max-connections",
        "--handshake-timeout-seconds",
        "--header-read-timeout-seconds",
        "--idle-timeout-seconds",
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args([flag, "0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} 0 accepted");
        assert!(
            err.contains(flag) && err.contains("'0'") && err.contains("1..="),
            "{flag} 0: {err}"
        );
    }
    // With 512 open files, 256 are left for connections.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 512 && exec {BIN} serve --listen 127.0.0.1:0 --max-connections 1000 --data-dir {}",
            dir.path().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a cap beyond the limit was accepted");
    assert!(
        err.contains("--max-connections 1000") && err.contains("at most 256"),
        "{err}"
    );
}
