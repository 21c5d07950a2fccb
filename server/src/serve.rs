//! `sluice serve`: load the configuration and the policy bundle, watch the bundle, serve
//! HTTP until SIGINT or SIGTERM.
//!
//! Startup prints one line meant for scripts and tests, on standard error:
//! `sluice listening on http://ADDR revision=REV` (ADDR is the bound address, so
//! `--listen 127.0.0.1:0` reveals the port the system chose).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::admin::{self, AdminState};
use crate::audit::Audit;
use crate::config::Config;
use crate::gateway::{self, Gateway};
use crate::meter;
use crate::reload::{self, PolicyStore};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Options of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file, YAML (`.yaml`, `.yml`) or JSON (`.json`); defaults apply without.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy directory; overrides `policy_dir` of the configuration.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port); overrides
    /// `listen` of the configuration.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Adds the built-in demo upstream, models served by it and the API key
    /// `sk-sluice-demo` (team `platform`), for trying Sluice without any provider account.
    #[arg(long)]
    pub demo: bool,
}

/// The API key `--demo` adds.
pub const DEMO_KEY: &str = "sk-sluice-demo";

/// Models `--demo` serves with the demo provider.
const DEMO_MODELS: [&str; 5] = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "text-embedding-3-small",
];

fn add_demo(config: &mut Config) {
    use crate::config::{DeploymentConfig, KeyConfig, ProviderConfig, ProviderKind};
    let provider = "sluice-demo".to_string();
    if !config.providers.iter().any(|p| p.name == provider) {
        config.providers.push(ProviderConfig {
            name: provider.clone(),
            kind: ProviderKind::Demo,
            base_url: None,
            api_key_env: None,
            api_key_file: None,
            timeouts: Default::default(),
            api_version: None,
            region: None,
            aws: Default::default(),
        });
    }
    for model in DEMO_MODELS {
        config.models.entry(model.to_string()).or_insert_with(|| {
            vec![DeploymentConfig {
                provider: provider.clone(),
                model: None,
                weight: 1,
            }]
        });
    }
    let hash = crate::gateway::keys::hash(DEMO_KEY);
    if !config.keys.iter().any(|k| k.hash == hash) {
        config.keys.push(KeyConfig {
            id: "demo".to_string(),
            hash,
            user: Some("demo".to_string()),
            team: Some("platform".to_string()),
            agent: None,
            roles: vec!["developer".to_string()],
            attributes: Default::default(),
        });
    }
}

/// Runs the gateway until a shutdown signal; the exit code is 1 when it cannot start.
pub fn main(args: ServeArgs) -> ExitCode {
    init_tracing();
    let config = match configure(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let store = match PolicyStore::open(&config.policy_dir) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            eprintln!("error: {error}");
            for diagnostic in &error.error.diagnostics {
                eprintln!("  {diagnostic}");
            }
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, store)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file (or the defaults) with the command-line overrides applied.
fn configure(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &args.policy_dir {
        config.policy_dir.clone_from(dir);
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.demo {
        add_demo(&mut config);
    }
    config.validate()?;
    if !config.policy_dir.is_dir() {
        let explicit = args.policy_dir.is_some() || args.config.is_some();
        anyhow::bail!(
            "policy directory `{}` does not exist{}",
            config.policy_dir.display(),
            if explicit {
                ""
            } else {
                "; pass `--policy-dir DIR`, set `policy_dir` in a `--config` file, or start from the default policy repo with `sluice policy init policies`"
            }
        );
    }
    Ok(config)
}

/// The listener, its connections with `TCP_NODELAY`: every write goes out at once. A
/// streamed answer is many small writes, and with Nagle's algorithm one could wait for the
/// caller's delayed acknowledgement of the previous one (up to 40 ms on Linux).
fn without_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn no_delay(tcp: &mut tokio::net::TcpStream) {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    }
    axum::serve::ListenerExt::tap_io(listener, no_delay as fn(&mut tokio::net::TcpStream))
}

async fn serve(config: Config, store: Arc<PolicyStore>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for `{}`", config.listen))?;
    let signal = shutdown_signal()?;
    let audit = if config.audit.enabled {
        let audit = Audit::start(config.audit.clone())?;
        tracing::info!(path = %config.audit.path.display(), "audit trail open");
        Some(Arc::new(audit))
    } else {
        tracing::warn!("the audit trail is disabled (`audit.enabled: false`)");
        None
    };
    let gateway = Arc::new(Gateway::new(&config, Arc::clone(&store), audit.clone())?);
    let gateway_meter = gateway.meter();
    if !gateway.has_keys() {
        tracing::warn!("no API keys are configured (`keys`): every model call will get 401");
    }
    if config.keys.iter().any(|k| k.id == "demo") && !local.ip().is_loopback() {
        tracing::warn!(listen = %local, "the demo key is active on a non-loopback address");
    }
    // Spend survives restarts: saved counters of windows still open count again.
    let saver = if config.budgets.is_empty() || gateway.meter().is_shared() {
        None
    } else {
        let ledger = gateway.meter();
        let path = config.budget_state_file.clone();
        let restored = ledger.restore(&meter::saved::load(&path)?, meter::now());
        tracing::info!(path = %path.display(), restored, "budget state loaded");
        Some(tokio::spawn(save_budgets(ledger, path)))
    };
    let watcher = reload::spawn_watcher(Arc::clone(&store), config.reload);
    let app = admin::router(AdminState {
        store: Arc::clone(&store),
        token: config.admin.token.as_deref().map(Arc::from),
        audit: audit.clone(),
        meter: Some(gateway.meter()),
    })
    .merge(gateway::router(gateway));
    let revision = store.current().revision().to_string();
    tracing::info!(listen = %local, %revision, policy_dir = %store.dir().display(), "serving");
    // The documented startup line, independent of the log filter and format.
    eprintln!("sluice listening on http://{local} revision={revision}");

    let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
    let listener = without_delay(listener);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let signal = signal.await;
        tracing::info!(signal, "shutting down");
        let _ = signalled_tx.send(true);
    });
    // Graceful shutdown waits for open connections; a client that never lets go must not
    // keep the process alive past the grace period.
    let grace = async move {
        let _ = signalled_rx.wait_for(|signalled| *signalled).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let result = tokio::select! {
        result = server => result.context("the HTTP server failed"),
        () = grace => {
            tracing::warn!(grace_ms = SHUTDOWN_GRACE.as_millis(), "connections still open after the grace period; closing them");
            Ok(())
        }
    };
    watcher.stop().await;
    if let Some(saver) = saver {
        saver.abort();
        let ledger = gateway_meter;
        let path = config.budget_state_file.clone();
        let saved = ledger.snapshot();
        tokio::task::spawn_blocking(move || meter::saved::save(&path, &saved))
            .await
            .context("the budget state could not be saved")??;
    }
    if let Some(audit) = audit {
        // Every decision made is written before the process exits.
        tokio::task::spawn_blocking(move || audit.shutdown())
            .await
            .context("the audit writer could not be drained")?;
    }
    tracing::info!("stopped");
    result
}

/// Saves the budget counters about every second while they change; a failure is logged
/// and retried at the next tick.
async fn save_budgets(ledger: Arc<meter::Ledger>, path: std::path::PathBuf) {
    let mut saved_at = ledger.changes();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let changes = ledger.changes();
        if changes == saved_at {
            continue;
        }
        let snapshot = ledger.snapshot();
        let target = path.clone();
        match tokio::task::spawn_blocking(move || meter::saved::save(&target, &snapshot)).await {
            Ok(Ok(())) => saved_at = changes,
            Ok(Err(error)) => {
                tracing::error!(error = format!("{error:#}"), "cannot save the budget state")
            }
            Err(error) => tracing::error!(%error, "cannot save the budget state"),
        }
    }
}

/// Listens for SIGINT and SIGTERM from now on (not from the first poll, so a signal sent
/// right after the startup line is not lost) and resolves with the first one's name.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str>> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
        "ctrl-c"
    })
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only when a subscriber is already installed, which is then the one to use.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn connections_send_every_write_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = super::without_delay(listener);
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (connection, _) = listener.accept().await;
        assert!(connection.nodelay().unwrap());
    }
}
