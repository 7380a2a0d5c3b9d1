//! A throw-away PostgreSQL server on loopback for the tests, test runs and
//! benchmarks that need one: `initdb` into a directory of the caller's,
//! `pg_ctl start` on a free port, `pg_ctl stop` (and the directory removed)
//! when dropped. As root, PostgreSQL's programs run as the `postgres` user (the
//! server refuses to run as root).

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// The superuser the server is initialised with (trust authentication,
/// loopback only).
const USER: &str = "hybrid";

/// A running server; stopped and removed on drop.
pub struct TestPostgres {
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("binding a free port on", "127.0.0.1:0", e))?;
    Ok(l.local_addr()
        .map_err(|e| Error::io("reading the address of", "127.0.0.1:0", e))?
        .port())
}

/// True when PostgreSQL's server programs are on PATH.
pub fn available() -> bool {
    Command::new("initdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl TestPostgres {
    /// Initialises and starts a server with its data in `dir` (which must
    /// not exist yet, or is removed first).
    pub fn start(dir: &Path) -> Result<TestPostgres> {
        if !available() {
            return Err(Error::Setup(
                "PostgreSQL's server programs (initdb, pg_ctl, postgres) are not on PATH; .ci/run installs them (Debian: postgresql)".into(),
            ));
        }
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let as_root = is_root();
        let pg = TestPostgres {
            dir: dir.to_path_buf(),
            port: free_port()?,
            as_root,
        };
        if as_root {
            // The postgres user must reach and own its directory.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("chmod", dir, e))?;
            let mut p = dir.parent();
            while let Some(d) = p {
                let mode = fs::metadata(d)
                    .map_err(|e| Error::io("reading", d, e))?
                    .permissions()
                    .mode();
                if mode & 0o001 == 0 {
                    fs::set_permissions(d, fs::Permissions::from_mode(mode | 0o001))
                        .map_err(|e| Error::io("chmod", d, e))?;
                }
                p = d.parent();
            }
            pg.run(Command::new("chown").arg("postgres:").arg(dir))?;
        }
        let data = pg.data();
        pg.run(pg.as_pg("initdb").args([
            "-D",
            &data.display().to_string(),
            "-U",
            USER,
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        ]))?;
        let conf = data.join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|e| Error::io("opening", &conf, e))?;
        // Loopback only, no socket file; fsync off: a test server's data
        // is thrown away (durability is the store's own tests' business,
        // against SQLite and through kill -9 of the service, not the OS).
        write!(
            file,
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\nmax_connections = 300\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            pg.port
        )
        .map_err(|e| Error::io("writing", &conf, e))?;
        pg.resume()?;
        Ok(pg)
    }

    /// Stops the server (fast shutdown: connections are cut), as an outage.
    pub fn pause(&self) -> Result<()> {
        let data = self.data().display().to_string();
        self.run(
            self.as_pg("pg_ctl")
                .args(["-D", &data, "-m", "fast", "-w", "stop"]),
        )
    }

    /// Starts the server again (on the same port, with the same data).
    pub fn resume(&self) -> Result<()> {
        let data = self.data().display().to_string();
        let log = self.dir.join("postgres.log").display().to_string();
        self.run(
            self.as_pg("pg_ctl")
                .args(["-D", &data, "-l", &log, "-w", "-t", "60", "start"]),
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// URL of the server's `postgres` database (tests create their own
    /// databases from it).
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    fn as_pg(&self, program: &str) -> Command {
        if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--", program]);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn run(&self, cmd: &mut Command) -> Result<()> {
        let line = format!("{cmd:?}");
        let out = cmd
            .output()
            .map_err(|e| Error::io("starting", Path::new(&line), e))?;
        if !out.status.success() {
            return Err(Error::Setup(format!(
                "{line} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.run(
            self.as_pg("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "stop"]),
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}
