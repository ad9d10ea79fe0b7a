//! `sluice serve`: API, controller, in-process jobs and console in one process.

use std::process::ExitCode;

use anyhow::Context;
use sluice_api::Config;

use crate::args::{ServeArgs, WorkerArgs};

/// Runs the server until SIGINT or SIGTERM; configuration errors exit with code 2.
pub fn run(args: ServeArgs) -> ExitCode {
    crate::logging::init();
    let mut config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sluice serve: {}", error_chain(&err));
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.kubernetes {
        config.kubernetes = true;
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice serve: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice worker`: runs stream jobs until SIGINT or SIGTERM, sharing them with the other
/// workers and `sluice serve` processes of the same metadata store.
pub fn work(args: WorkerArgs) -> ExitCode {
    crate::logging::init();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sluice worker: {}", error_chain(&err));
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let only = match args.product.as_deref().map(product_key).transpose() {
        Ok(only) => only,
        Err(message) => {
            eprintln!("sluice worker: --product: {message}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let worked = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                tracing::info!(
                    kafka = config
                        .kafka_bootstrap
                        .as_deref()
                        .unwrap_or("<not configured>"),
                    "starting sluice worker"
                );
                sluice_api::work(&config, only, args.health_listen, shutdown_signal()).await?;
                tracing::info!("sluice worker stopped");
                Ok(())
            })
        });
    match worked {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `TEAM/NAME` as the product's key.
fn product_key(text: &str) -> Result<sluice_store::ObjectKey, String> {
    match text.split_once('/') {
        Some((team, name)) if !team.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(sluice_store::ObjectKey::data_product(team, name))
        }
        _ => Err(format!("`{text}` is not TEAM/NAME")),
    }
}

fn serve(config: sluice_api::Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        tracing::info!(
            data_dir = %config.data_dir.display(),
            kafka = config.kafka_bootstrap.as_deref().unwrap_or("<not configured>"),
            "starting sluice serve"
        );
        sluice_api::serve(&config, |_| {}, shutdown_signal()).await?;
        tracing::info!("sluice serve stopped");
        Ok(())
    })
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
