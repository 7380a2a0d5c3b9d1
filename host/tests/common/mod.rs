//! Test harness: a real `hybrid-host` server in-process on 127.0.0.1:0 with
//! a temporary data directory, driven over HTTPS by reqwest trusting the
//! generated CA.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Harness {
    pub server: Option<hybrid_host::Server>,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    pub endpoint: String,
    pub token: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn target(&self) -> &str {
        self.body["error"]["target"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// With `HYBRID_TEST_POSTGRES` set (a `postgres://` URL of a server the
/// test run started, e.g. by `cargo xtask test`), every data directory gets
/// its own database there, the same one across restarts of its server:
/// the whole suite then runs on PostgreSQL.
pub const POSTGRES_ENV: &str = "HYBRID_TEST_POSTGRES";

/// The database URL for `dir` on the test PostgreSQL, created on first use;
/// `None` when the suite runs on SQLite.
pub async fn test_database(dir: &Path) -> Option<String> {
    let server = std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())?;
    let marker = dir.join(".test-database");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = conn.await;
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&marker, &url).unwrap();
    Some(url)
}

static NEXT_DATABASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub async fn start_in(dir: &Path, sim: Option<&str>) -> Harness {
    let database = test_database(dir).await;
    start_on(dir, sim, database).await
}

/// [`start_in`] on the given store: SQLite for `None`, whatever
/// `HYBRID_TEST_POSTGRES` says.
pub async fn start_on(dir: &Path, sim: Option<&str>, database: Option<String>) -> Harness {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut config = hybrid_host::Config::new(dir);
    config.database_url = database;
    if let Some(toml) = sim {
        let p = dir.join("sim.toml");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&p, toml).unwrap();
        config.sim = Some(p);
    }
    let server = hybrid_host::start(config).await.expect("server starts");
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let endpoint = std::fs::read_to_string(dir.join("endpoint"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(endpoint, server.endpoint);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    Harness {
        server: Some(server),
        dir: dir.to_path_buf(),
        http,
        endpoint,
        token,
    }
}

impl Harness {
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        token: Option<&str>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.endpoint, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.raw(method, path, body, &[], Some(&self.token.clone()))
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    pub async fn put_vnet(&self, name: &str, spec: Value) -> Resp {
        self.call(Method::PUT, &format!("/v1/vnets/{name}"), Some(spec))
            .await
    }

    /// Long-polls an operation until it is terminal; returns it.
    pub async fn wait_op(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/operations/{id}?wait=10s")).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_ne!(r.body["status"], "Running", "operation did not finish");
        r.body
    }

    /// PUTs a vnet and waits for it to be Succeeded.
    pub async fn create_vnet(&self, name: &str, spec: Value) -> Value {
        let r = self.put_vnet(name, spec).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let op = self.wait_op(r.body["id"].as_str().unwrap()).await;
        assert_eq!(op["status"], "Succeeded", "{op:?}");
        self.get(&format!("/v1/vnets/{name}")).await.body
    }

    /// PUTs custom location `name` (namespace `name`, on the management
    /// host) and checks it was created; returns the answer (its etag).
    pub async fn create_custom_location(&self, name: &str) -> Resp {
        let r = self
            .call(
                Method::PUT,
                &format!("/v1/custom-locations/{name}"),
                Some(json!({"namespace": name, "host_id": "/management-host"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r
    }

    pub async fn reserve(&self, vnet: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            &format!("/v1/vnets/{vnet}/reservations"),
            Some(body),
        )
        .await
    }
}

/// [`spec`] on another VLAN: a vnet with the same prefix on its own
/// segment (vnets on one segment must not overlap).
pub fn spec_on_vlan(vlan: u16) -> Value {
    let mut s = spec();
    s["vlan_id"] = json!(vlan);
    s
}

pub fn spec() -> Value {
    json!({
        "address_prefix": "10.0.0.0/24",
        "gateway": "10.0.0.1",
        "dns_servers": ["10.0.0.2"],
        "vlan_id": 100,
        "vm_ip_pool": {"start": "10.0.0.10", "end": "10.0.0.49"},
        "vip_pool": {"start": "10.0.0.200", "end": "10.0.0.210"},
        "tags": {"env": "test"}
    })
}
pub mod process;
