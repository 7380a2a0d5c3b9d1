//! The `hybrid-agent` binary: `join` once, then `run` as a service.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use hybrid_agent::cli::{Cli, Command, JoinArgs, LogFormat, RunArgs, Secret};
use hybrid_agent::engine::{Engine, EngineConfig};
use hybrid_agent::{image_store, join, server, tls};
use hybrid_api::inventory::Resources;
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

/// SIGTERM/SIGINT handlers, installed before the agent announces itself:
/// a supervisor that stops it right after the "listening" line must get a
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
    // One crypto provider for the whole process; ignore "already installed".
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Join(args) => join_command(args).await,
        Command::Run(args) => run(*args).await,
    }
}

/// The join token from --join-token (or its variable) or --join-token-file.
/// Errors never include the token.
fn join_token(args: &JoinArgs) -> anyhow::Result<Secret> {
    match (&args.join_token, &args.join_token_file) {
        (Some(token), _) => Ok(token.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the join token from {}", path.display()))?;
            text.parse::<Secret>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        (None, None) => bail!("give --join-token-file, --join-token or HYBRID_AGENT_JOIN_TOKEN"),
    }
}

/// `hybrid-agent join`.
async fn join_command(args: JoinArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let config = join::JoinConfig {
        server: args.server.clone(),
        ca_file: args.ca_file.clone(),
        token: join_token(&args)?,
        name: args.name.clone(),
        advertise: args.advertise.clone(),
        data_dir: args.data_dir.clone(),
        force: args.force,
    };
    let joined = join::join(&config)
        .await
        .with_context(|| format!("joining {} as {}", args.server, args.name))?;
    println!(
        "joined {} as {}; identity in {}",
        joined.agent.server,
        joined.agent.name,
        joined.data_dir.display()
    );
    println!(
        "next: hybrid-agent run --data-dir {} --listen ADDR:PORT --image-dir IMAGES (hybrid-host will call {})",
        joined.data_dir.display(),
        joined.agent.endpoint
    );
    Ok(())
}

/// `hybrid-agent run`.
async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let dir = &args.data_dir;
    let agent = tls::read_agent_file(dir)
        .with_context(|| format!("loading the agent's identity from {}", dir.display()))?;
    let tls_config = tls::server_config(dir)
        .with_context(|| format!("loading the agent's TLS identity from {}", dir.display()))?;
    warn_if_port_differs(&agent, args.listen.port());
    let listener = server::bind(args.listen)?;
    let image_sources = match &args.image_sources {
        Some(path) => image_store::load(path)?,
        None => Vec::new(),
    };

    let transport = args.transport();
    let engine = Engine::open_with_transport(
        EngineConfig {
            data_dir: dir.clone(),
            image_dir: args.image_dir.clone(),
            uplink: args.uplink.clone(),
            qemu: args.qemu.clone(),
            qemu_img: args.qemu_img.clone(),
            stop_timeout: Duration::from_secs(args.stop_timeout_seconds),
            // Bridges, taps and QEMU go there; this process and its listener
            // stay where they are.
            netns: args.netns.clone(),
        },
        transport,
    )
    .await
    .with_context(|| format!("opening the VM engine on {}", dir.display()))?;

    if !image_sources.is_empty() {
        // In the background: the agent answers heartbeats meanwhile, and
        // reports each image once it is fetched and verified.
        tokio::spawn(image_store::fetch_all(
            args.image_dir.clone(),
            image_sources,
        ));
    }

    let mut signals = ShutdownSignals::install()?;
    let state = server::AppState {
        engine: std::sync::Arc::new(engine),
        name: agent.name.as_str().into(),
        data_dir: std::sync::Arc::new(dir.clone()),
        reserve: Resources {
            vcpus: args.reserve_vcpus,
            memory_mib: args.reserve_memory_mib,
            disk_gib: args.reserve_disk_gib,
        },
    };
    let mut server = server::serve(listener, tls_config, state)?;
    println!("hybrid-agent listening on {}", server.endpoint);
    tracing::info!(
        name = %agent.name,
        endpoint = %server.endpoint,
        advertised = %agent.endpoint,
        uplink = args.uplink.as_deref().unwrap_or("(none)"),
        segment_transport = ?transport,
        "hybrid-agent started"
    );

    tokio::select! {
        _ = signals.recv() => {
            tracing::info!("shutting down; the VMs keep running");
            server.shutdown().await.context("shutting down")?;
        }
        r = server.wait() => {
            r.context("serving the agent API")?;
            bail!("the agent's server ended unexpectedly");
        }
    }
    Ok(())
}

/// hybrid-host calls the advertised endpoint: a listener on another port
/// is most likely a mistake (though a port forward may make it right).
fn warn_if_port_differs(agent: &tls::AgentFile, listen_port: u16) {
    let advertised = agent
        .endpoint
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim_end_matches('/').parse::<u16>().ok());
    if let Some(port) = advertised
        && listen_port != 0
        && port != listen_port
    {
        tracing::warn!(
            advertised = %agent.endpoint,
            listen_port,
            "listening on another port than the advertised endpoint's"
        );
    }
}
