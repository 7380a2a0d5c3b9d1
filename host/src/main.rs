//! `hybrid-host`: the Hybrid host management service binary.

use anyhow::Context;
use clap::Parser;
use hybrid_host::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// SIGTERM/SIGINT handlers, installed before the service announces itself:
/// a supervisor that stops us right after the "listening" line must get a
/// graceful shutdown, not the default action of the signal.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Migrate(m) => return migrate(m).await,
        Command::Backup(b) => return backup(b).await,
        Command::AgentToken(hybrid_host::cli::AgentTokenCommand::Create(a)) => {
            return agent_token(a).await;
        }
        Command::ConsoleLink(a) => return console_link(a).await,
    };
    init_logging(args.log_format);
    // One crypto provider for the whole process; ignore "already installed".
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let mut signals = ShutdownSignals::install()?;
    let server = hybrid_host::start(args.config()).await.with_context(|| {
        format!(
            "starting hybrid-host (data dir {})",
            args.data_dir.display()
        )
    })?;
    println!("hybrid-host listening on {}", server.endpoint);
    println!("admin token file: {}", server.token_file.display());
    match &server.ca_file {
        Some(ca) => println!("CA certificate: {}", ca.display()),
        None => println!("CA certificate: (serving --tls-cert; trust its issuer)"),
    }
    if let Some(metrics) = &server.metrics_endpoint {
        println!("metrics: {metrics}");
    }
    tracing::info!(endpoint = %server.endpoint, "hybrid-host started");

    signals.recv().await;
    tracing::info!("shutting down");
    server.shutdown().await.context("shutting down")?;
    Ok(())
}

/// `hybrid-host migrate`.
async fn migrate(args: hybrid_host::cli::MigrateArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Pretty);
    let key = args
        .from_data_dir
        .join(hybrid_host::security::secrets::KEY_FILE);
    let sealer = hybrid_host::security::secrets::Sealer::load(&key, false).with_context(|| {
        format!(
            "reading the secrets key of {}",
            args.from_data_dir.display()
        )
    })?;
    let copied =
        hybrid_host::store::migrate::sqlite_to_postgres(&args.from_data_dir, &args.to, sealer)
            .await
            .with_context(|| format!("migrating {} to PostgreSQL", args.from_data_dir.display()))?;
    println!("copied and verified: {copied}");
    println!(
        "start the replicas with --database-url and --secrets-key-file {}",
        args.from_data_dir
            .join(hybrid_host::security::secrets::KEY_FILE)
            .display()
    );
    Ok(())
}

/// `hybrid-host backup`.
async fn backup(args: hybrid_host::cli::BackupArgs) -> anyhow::Result<()> {
    let src = args.data_dir.join(hybrid_host::DB_FILE);
    let dest = args.to.clone();
    let ops = tokio::task::spawn_blocking(move || hybrid_host::store::sqlite::backup(&src, &dest))
        .await
        .context("backup task")?
        .with_context(|| format!("backing up {}", args.data_dir.display()))?;
    println!(
        "wrote {} ({ops} operations recorded); keep it with the data directory's secrets.key, admin.token and ca-key.pem, which it does not contain",
        args.to.display()
    );
    Ok(())
}

/// `hybrid-host agent-token create`: mints the token in the store itself,
/// so it works whether or not the service runs.
async fn agent_token(args: hybrid_host::cli::AgentTokenArgs) -> anyhow::Result<()> {
    let store = open_store(
        &args.data_dir,
        args.database_url.as_deref(),
        args.secrets_key_file.as_deref(),
    )
    .await?;
    let token =
        hybrid_host::agents::mint_token(&store, std::time::Duration::from_secs(args.ttl_seconds))
            .await
            .context("minting the join token")?;
    println!("{}", token.token);
    eprintln!(
        "single-use join token, valid until {}: hybrid-agent join --join-token-file FILE …",
        token.expires_at
    );
    Ok(())
}

/// `hybrid-host console-link`: mints a one-time sign-in ticket in the
/// store itself (any replica redeems it) and prints the link carrying it.
async fn console_link(args: hybrid_host::cli::ConsoleLinkArgs) -> anyhow::Result<()> {
    let endpoint = match &args.endpoint {
        Some(e) => e.trim_end_matches('/').to_string(),
        None => {
            let file = args.data_dir.join(hybrid_host::ENDPOINT_FILE);
            std::fs::read_to_string(&file)
                .with_context(|| {
                    format!(
                        "reading {} (start hybrid-host with --data-dir {} first, or pass --endpoint https://HOST:PORT)",
                        file.display(),
                        args.data_dir.display()
                    )
                })?
                .trim()
                .trim_end_matches('/')
                .to_string()
        }
    };
    if !endpoint.starts_with("https://") {
        anyhow::bail!("--endpoint {endpoint:?} must be an https://HOST:PORT address");
    }
    let store = open_store(
        &args.data_dir,
        args.database_url.as_deref(),
        args.secrets_key_file.as_deref(),
    )
    .await?;
    let ticket = hybrid_host::console::session::mint_ticket(
        &store,
        std::time::Duration::from_secs(args.ttl_seconds),
    )
    .await
    .context("minting the sign-in ticket")?;
    println!("{endpoint}/console/login?ticket={}", ticket.ticket);
    eprintln!(
        "one-time console sign-in link, valid until {}: open it in a browser that trusts the service's CA",
        ticket.expires_at
    );
    Ok(())
}

/// Opens the service's store from outside the service (the CLI's
/// subcommands that write to it while it may run).
async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    secrets_key_file: Option<&std::path::Path>,
) -> anyhow::Result<std::sync::Arc<dyn hybrid_host::store::Store>> {
    use hybrid_host::security::secrets::{KEY_FILE, Sealer};
    let key = secrets_key_file
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join(KEY_FILE));
    let sealer = Sealer::load(&key, false)
        .with_context(|| format!("reading the secrets key {}", key.display()))?;
    let store: std::sync::Arc<dyn hybrid_host::store::Store> = match database_url {
        Some(url) => std::sync::Arc::new(
            hybrid_host::store::postgres::PgStore::open(url, sealer)
                .await
                .context("opening the PostgreSQL store")?,
        ),
        None => {
            let db = data_dir.join(hybrid_host::DB_FILE);
            if !db.exists() {
                anyhow::bail!(
                    "{} does not exist: start hybrid-host with --data-dir {} first",
                    db.display(),
                    data_dir.display()
                );
            }
            let store = tokio::task::spawn_blocking(move || {
                hybrid_host::store::sqlite::SqliteStore::open(&db, sealer)
            })
            .await
            .context("store task")?
            .context("opening the SQLite store")?;
            std::sync::Arc::new(store)
        }
    };
    Ok(store)
}
