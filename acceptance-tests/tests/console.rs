//! The web console in a real browser: Debian's headless Chromium, driven
//! through its WebDriver (`chromedriver`), against a real hybrid-host
//! holding the quickstart's objects, made by real Terraform. One browser,
//! one service, one scenario: the sign-in page without a session, a
//! one-time link that works once, the pages showing the quickstart's
//! clusters, nodes and addresses, a scale through Terraform appearing
//! without a reload, a lost session, and the banner when the service goes
//! away. It saves one screenshot per page under
//! `target/console-screenshots/` (the guide's images).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hybrid_acceptance_tests::plan::copy_tree;
use hybrid_acceptance_tests::{Error, Host, Mode, Result, Workdir, ensure};
use serde_json::{Value, json};

const INSTALL: &str = "the console test drives Debian's headless Chromium through chromedriver: \
     install both with `apt-get install chromium chromium-driver` (.ci/run installs them)";

/// Chromium's binary (Debian's `/usr/bin/chromium` is a wrapper script
/// that reads settings files; the WebDriver session wants the browser).
fn chromium() -> Result<PathBuf> {
    for p in ["/usr/lib/chromium/chromium", "/usr/bin/chromium"] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    on_path("chromium").ok_or_else(|| Error::Check(format!("chromium not found: {INSTALL}")))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `chromedriver` in a process group of its own, so the browsers it
/// starts go with it, even when the test fails half-way.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group this test created (its id is the driver's pid).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn start_driver(dir: &Path) -> Result<Driver> {
    use std::os::unix::process::CommandExt;
    let bin = on_path("chromedriver")
        .ok_or_else(|| Error::Check(format!("chromedriver not found: {INSTALL}")))?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Check(format!("picking a port for chromedriver: {e}")))?
        .port();
    let log = std::fs::File::create(dir.join("chromedriver.log"))
        .map_err(|e| Error::Check(format!("chromedriver log: {e}")))?;
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Check(format!("starting chromedriver: {e}")))?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(driver)
}

/// A browser session: headless, no sandbox (CI runs as root), no
/// background traffic, a profile in `dir`, and the service's
/// self-signed certificate accepted for this session only.
async fn open_browser(driver: &Driver, dir: &Path) -> Result<Client> {
    let caps = json!({
        "browserName": "chrome",
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": chromium()?.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", dir.join("profile").display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .map_err(|e| Error::Check(format!("opening a Chromium session: {e}")))
}

fn wd(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Check(format!("{what}: {e}"))
}

async fn body_text(c: &Client) -> Result<String> {
    c.find(Locator::Css("body"))
        .await
        .map_err(|e| wd("finding <body>", e))?
        .text()
        .await
        .map_err(|e| wd("reading the page's text", e))
}

/// Waits (without reloading) until the page's text has every one of
/// `needles`; the error shows the text it had.
async fn wait_for_text(c: &Client, needles: &[&str], within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let text = body_text(c).await?;
        if needles.iter().all(|n| text.contains(n)) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "after {within:?} the page still lacks one of {needles:?}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(c: &Client, dir: &Path, name: &str) -> Result<()> {
    let png = c.screenshot().await.map_err(|e| wd("screenshot", e))?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).map_err(|e| wd(&format!("writing {}", path.display()), e))
}

/// `target/console-screenshots`, beside the test binary's profile dir.
fn screenshots_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| wd("locating the test binary", e))?;
    // target/debug/deps/console-… → target
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).map_err(|e| wd(&format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// Names and addresses of a pool's nodes, as the API reports them.
fn nodes(host: &Host, pool: &str) -> Result<Vec<(String, String)>> {
    let p = host.get(&format!("/v1/clusters/quickstart/nodepools/{pool}"))?;
    Ok(p.body["status"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["ip"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

const SCALED: &str = "-var=node_pools={linux1={os_type=\"linux\",node_count=3},win1={os_type=\"windows\",node_count=1}}";

#[test]
fn console_in_a_real_browser() -> Result<()> {
    // Before anything slow: a machine without the browser fails at once,
    // saying how to install it.
    chromium()?;
    on_path("chromedriver")
        .ok_or_else(|| Error::Check(format!("chromedriver not found: {INSTALL}")))?;
    let shots = screenshots_dir()?;
    let scratch = tempfile::Builder::new()
        .prefix("hybrid-acc-browser-")
        .tempdir()
        .map_err(|e| wd("temp dir", e))?;

    let mut host = Host::start()?;
    let mut wdir = Workdir::with_mode(Some(&host), Mode::Mirror)?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    copy_tree(
        &examples.join("quickstart"),
        &wdir.dir().join("examples/quickstart"),
    )?;
    copy_tree(&examples.join("../modules"), &wdir.dir().join("modules"))?;
    wdir.set_config_dir("examples/quickstart");
    wdir.init()?;
    wdir.apply_current()?;
    let linux = nodes(&host, "linux1")?;
    let windows = nodes(&host, "win1")?;
    ensure!(
        linux.len() == 2 && windows.len() == 1,
        "quickstart nodes: {linux:?} {windows:?}"
    );

    let driver = start_driver(scratch.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| wd("tokio runtime", e))?;
    let c = rt.block_on(open_browser(&driver, scratch.path()))?;
    let endpoint = host.endpoint().to_string();
    let result = (|| -> Result<()> {
        // No session: the sign-in page, and no data.
        rt.block_on(async {
            c.goto(&format!("{endpoint}/"))
                .await
                .map_err(|e| wd("goto /", e))?;
            let text = body_text(&c).await?;
            ensure!(
                text.contains("hybrid-host console-link") && !text.contains("quickstart"),
                "without a session / shows the sign-in page only:\n{text}"
            );
            screenshot(&c, &shots, "sign-in").await
        })?;

        // The one-time link signs in and lands on / without the ticket.
        let link = host.console_link()?;
        rt.block_on(async {
            c.goto(&link).await.map_err(|e| wd("goto the link", e))?;
            let mut names: Vec<&str> = vec!["Cluster quickstart", "Site quickstart", "flux"];
            for (n, ip) in linux.iter().chain(&windows) {
                names.push(n);
                names.push(ip);
            }
            wait_for_text(&c, &names, Duration::from_secs(10)).await?;
            let url = c.current_url().await.map_err(|e| wd("current url", e))?;
            ensure!(
                url.path() == "/" && url.query().is_none(),
                "after signing in the address bar shows {url}"
            );
            screenshot(&c, &shots, "sites").await?;
            // The link worked once.
            c.goto(&link)
                .await
                .map_err(|e| wd("goto the link again", e))?;
            wait_for_text(&c, &["already used"], Duration::from_secs(5)).await?;
            Ok(())
        })?;

        // A scale through Terraform shows up on the open page by itself.
        rt.block_on(async {
            c.goto(&format!("{endpoint}/"))
                .await
                .map_err(|e| wd("goto /", e))?;
            wait_for_text(&c, &["Cluster quickstart"], Duration::from_secs(5)).await?;
            // Gone if the page reloads: proves the refresh is in place.
            c.execute("window.__notReloaded = true; return true;", vec![])
                .await
                .map_err(|e| wd("marking the page", e))?;
            Ok::<_, Error>(())
        })?;
        wdir.apply_with(&[SCALED])?;
        let scaled = nodes(&host, "linux1")?;
        ensure!(scaled.len() == 3, "after the scale: {scaled:?}");
        rt.block_on(async {
            let needles: Vec<&str> = scaled
                .iter()
                .flat_map(|(n, ip)| [n.as_str(), ip.as_str()])
                .collect();
            wait_for_text(&c, &needles, Duration::from_secs(15)).await?;
            let marker = c
                .execute("return window.__notReloaded === true;", vec![])
                .await
                .map_err(|e| wd("reading the mark", e))?;
            ensure!(marker == json!(true), "the page reloaded to show the scale");
            Ok::<_, Error>(())
        })?;

        // Every other page, with what it must show.
        let vm = &scaled[0].0;
        let pages: [(&str, &str, Vec<&str>); 4] = [
            (
                "hosts",
                "/console/hosts",
                vec!["vCPU", "memory", vm.as_str()],
            ),
            (
                "networks",
                "/console/networks",
                vec!["quickstart", "VM addresses", "in use", "VIPs"],
            ),
            (
                "operations",
                "/console/operations",
                vec!["nodepool.update", "cluster.create", "Succeeded"],
            ),
            ("audit", "/console/audit", vec!["Audit"]),
        ];
        rt.block_on(async {
            for (name, path, needles) in &pages {
                c.goto(&format!("{endpoint}{path}"))
                    .await
                    .map_err(|e| wd(path, e))?;
                wait_for_text(&c, needles, Duration::from_secs(5)).await?;
                screenshot(&c, &shots, name).await?;
            }
            Ok::<_, Error>(())
        })?;

        // A lost session (cookie gone): the sign-in page, no data.
        rt.block_on(async {
            c.goto(&format!("{endpoint}/console/networks"))
                .await
                .map_err(|e| wd("goto networks", e))?;
            wait_for_text(&c, &["VM addresses"], Duration::from_secs(5)).await?;
            c.delete_all_cookies()
                .await
                .map_err(|e| wd("deleting cookies", e))?;
            // The open page learns of it at its next refresh…
            wait_for_text(&c, &["session has ended"], Duration::from_secs(10)).await?;
            // …and any page now is the sign-in page.
            c.goto(&format!("{endpoint}/"))
                .await
                .map_err(|e| wd("goto /", e))?;
            let text = body_text(&c).await?;
            ensure!(
                text.contains("hybrid-host console-link") && !text.contains("quickstart"),
                "without a session / shows the sign-in page only:\n{text}"
            );
            Ok::<_, Error>(())
        })?;

        // With a session, a service that goes away gets a clear banner.
        let link = host.console_link()?;
        rt.block_on(async {
            c.goto(&link).await.map_err(|e| wd("goto a new link", e))?;
            wait_for_text(&c, &["Cluster quickstart"], Duration::from_secs(10)).await?;
            Ok::<_, Error>(())
        })?;
        host.stop();
        rt.block_on(async {
            wait_for_text(&c, &["unreachable"], Duration::from_secs(10)).await?;
            screenshot(&c, &shots, "unreachable").await
        })?;
        Ok(())
    })();
    let _ = rt.block_on(c.close());
    drop(driver);
    result?;
    eprintln!("console screenshots in {}", shots.display());
    Ok(())
}
