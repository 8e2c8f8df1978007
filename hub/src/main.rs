//! The flotilla-hub binary.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use flotilla_hub::config::LogFormat;
use flotilla_hub::{Hub, HubArgs};

/// mimalloc instead of glibc's malloc: the hub allocates and frees many small JSON values
/// across its worker threads, where glibc's arenas contend.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal; logs that are piped or collected stay plain.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = HubArgs::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing(args.log_format);
    let files = flotilla_hub::connections::raise_open_file_limit();
    tracing::debug!(open_file_limit = ?files, "open-file limit");
    let hub = Hub::start(&args).await.context("starting the hub")?;
    println!(
        "flotilla-hub ready: API https://{} agents {} kubeconfig {}",
        hub.api_addr,
        hub.agent_addr,
        hub.kubeconfig.display()
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    hub.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
