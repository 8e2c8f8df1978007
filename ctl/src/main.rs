//! flotillactl: the Flotilla command-line tool.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = flotillactl::cli::Cli::parse();
    if let Err(e) = flotillactl::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
