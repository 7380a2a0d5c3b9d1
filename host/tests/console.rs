//! The web console's sign-in rules, without a browser: a `console-link`
//! ticket works once and only until it expires, its session cookie reads
//! the console's pages (and only those: never the API), an expired or
//! missing session gets the sign-in page and no data, and signing out
//! ends the session. (The pages in a real browser: acceptance-tests'
//! console test.)

mod common;

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

const COOKIE: &str = "__Host-hybrid-console";

/// A server in-process with `session_ttl`, on the suite's store.
async fn start(dir: &Path, session_ttl: Duration) -> common::Harness {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut config = hybrid_host::Config::new(dir);
    config.database_url = common::test_database(dir).await;
    config.console_session_ttl = session_ttl;
    let server = hybrid_host::start(config).await.expect("server starts");
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        // The tests look at each answer, redirects included.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    common::Harness {
        endpoint: server.endpoint.clone(),
        server: Some(server),
        dir: dir.to_path_buf(),
        http,
        token,
    }
}

/// `hybrid-host console-link` beside the running service: the link.
async fn console_link(dir: &Path, ttl_seconds: u64) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hybrid-host"));
    cmd.args(["console-link", "--ttl-seconds", &ttl_seconds.to_string()])
        .arg("--data-dir")
        .arg(dir);
    if let Some(url) = common::test_database(dir).await {
        cmd.args(["--database-url", &url]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let ticket = link.rsplit_once("ticket=").unwrap().1;
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(ticket),
        "the ticket is printed once, on stdout"
    );
    link
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn fetch(
    h: &common::Harness,
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
) -> Page {
    let url = if url.starts_with("https://") {
        url.to_string()
    } else {
        format!("{}{url}", h.endpoint)
    };
    let mut req = h.http.request(method, url);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("{COOKIE}={c}"));
    }
    let resp = req.send().await.unwrap();
    Page {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

async fn get(h: &common::Harness, url: &str, cookie: Option<&str>) -> Page {
    fetch(h, reqwest::Method::GET, url, cookie).await
}

/// Visits a link and returns the session cookie it set.
async fn sign_in(h: &common::Harness, link: &str) -> String {
    let p = get(h, link, None).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let set = p.header("set-cookie").to_string();
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(
        p.body
            .contains("http-equiv=\"refresh\" content=\"0;url=/\""),
        "the link page moves on to / (dropping the ticket from the address bar): {}",
        p.body
    );
    set.strip_prefix(&format!("{COOKIE}="))
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string()
}

fn assert_sign_in_page(p: &Page, secret_data: &str) {
    assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{}", p.body);
    assert!(p.header("content-type").starts_with("text/html"));
    assert!(p.body.contains("hybrid-host console-link"), "{}", p.body);
    assert!(
        !p.body.contains(secret_data),
        "the sign-in page shows no data: {}",
        p.body
    );
}

#[tokio::test]
async fn a_link_signs_in_once_and_its_session_reads_the_console_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path(), Duration::from_secs(3600)).await;
    h.create_vnet("console-net", common::spec()).await;

    // No session: the sign-in page, never data; fragments refuse too.
    for page in [
        "/",
        "/console/hosts",
        "/console/networks",
        "/console/operations",
        "/console/audit",
    ] {
        assert_sign_in_page(&get(&h, page, None).await, "console-net");
        assert_sign_in_page(&get(&h, page, Some("forged")).await, "console-net");
    }
    let p = get(&h, "/console/fragment/networks", None).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(!p.body.contains("console-net"));

    let link = console_link(dir.path(), 300).await;
    assert!(
        link.starts_with(&format!("{}/console/login?ticket=hyc_", h.endpoint)),
        "{link}"
    );
    let session = sign_in(&h, &link).await;

    // The ticket worked once.
    let again = get(&h, &link, None).await;
    assert_sign_in_page(&again, "console-net");
    assert!(again.body.contains("already used"), "{}", again.body);
    assert!(again.header("set-cookie").is_empty());

    // The session reads every page, with the console's headers.
    let p = get(&h, "/console/networks", Some(&session)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("console-net"), "{}", p.body);
    assert!(p.body.contains("10.0.0.0/24"));
    assert!(p.body.contains("0 in use, 0 reserved"), "{}", p.body);
    let csp = p.header("content-security-policy");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(p.header("x-frame-options"), "DENY");
    assert_eq!(p.header("cache-control"), "no-store");
    assert!(!p.body.contains("<script>"), "no inline script");
    let p = get(&h, "/console/operations", Some(&session)).await;
    assert!(p.body.contains("vnet.create"), "{}", p.body);
    let p = get(&h, "/console/fragment/networks", Some(&session)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("console-net") && !p.body.contains("<html"));
    for page in ["/", "/console/hosts", "/console/audit"] {
        let p = get(&h, page, Some(&session)).await;
        assert_eq!(p.status, StatusCode::OK, "{page}: {}", p.body);
    }
    let p = get(&h, "/console/hosts", Some(&session)).await;
    assert!(p.body.contains("vCPU 0 of"), "{}", p.body);

    // The cookie is no identity for the API, reads or writes.
    let r = fetch(&h, reqwest::Method::GET, "/v1/vnets", Some(&session)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let r = fetch(&h, method, "/v1/vnets/console-net", Some(&session)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    assert_eq!(h.get("/v1/vnets/console-net").await.status, StatusCode::OK);

    // Signing out ends the session everywhere.
    let out = fetch(&h, reqwest::Method::POST, "/console/logout", Some(&session)).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_sign_in_page(&get(&h, "/", Some(&session)).await, "console-net");
    h.stop().await;
}

#[tokio::test]
async fn an_expired_link_or_session_gets_the_sign_in_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path(), Duration::from_secs(1)).await;
    h.create_vnet("expiring-net", common::spec()).await;

    let stale = console_link(dir.path(), 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = get(&h, &stale, None).await;
    assert_sign_in_page(&p, "expiring-net");
    assert!(p.body.contains("expired at"), "{}", p.body);

    let session = sign_in(&h, &console_link(dir.path(), 300).await).await;
    let p = get(&h, "/console/networks", Some(&session)).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("expiring-net"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_sign_in_page(
        &get(&h, "/console/networks", Some(&session)).await,
        "expiring-net",
    );
    let p = get(&h, "/console/fragment/networks", Some(&session)).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test]
async fn a_link_without_a_ticket_or_with_a_made_up_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(dir.path(), Duration::from_secs(60)).await;
    for url in [
        "/console/login",
        "/console/login?ticket=",
        "/console/login?ticket=hyc_00",
        "/console/login?ticket=not-a-ticket",
    ] {
        let p = get(&h, url, None).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{url}: {}", p.body);
        assert!(p.header("set-cookie").is_empty(), "{url}");
        assert!(p.body.contains("console-link"), "{url}: {}", p.body);
    }
    let p = get(&h, "/console/static/console.js", None).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.header("content-type").starts_with("text/javascript"));
    h.stop().await;
}
