//! The `containerkit-exporter` binary: parses flags, sets up logging, starts the sources and
//! the HTTP server, and turns a fatal error into one line on standard error and exit code 1.
//!
//! The library (`containerkit_exporter`) holds all the work; see its module list.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use containerkit_exporter::cli::{Cli, Command, CommonFlags, LogFormat, ReplayOutput};
use containerkit_exporter::http::{self, Readiness};
use containerkit_exporter::metrics::Metrics;
use containerkit_exporter::source::replay::{replay_files, sort_series};
use containerkit_exporter::source::run::stderr_gate::GateMakeWriter;
use containerkit_exporter::source::run::{self, RunConfig, RunError};
use containerkit_exporter::source::stdin::read_stdin;
use containerkit_exporter::source::tail::{TailConfig, tail};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.common, matches!(cli.command, Command::Run { .. }));
    match run(cli) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let run_error = error.downcast_ref::<RunError>();
            let _ = writeln!(io::stderr(), "containerkit-exporter: {error:#}");
            ExitCode::from(run_error.map_or(1, RunError::exit_code))
        }
    }
}

/// Sets up our log lines on standard error. In `run` mode standard error also carries the
/// child's stderr, so our lines go through the gate that keeps them out of the child's.
fn init_logging(flags: &CommonFlags, run_mode: bool) {
    let filter = flags.log_level.as_filter();
    let registry = tracing_subscriber::registry().with(filter);
    let writer = if run_mode {
        BoxMakeWriter::new(GateMakeWriter)
    } else {
        BoxMakeWriter::new(io::stderr)
    };
    match flags.log_format {
        LogFormat::Logfmt => registry
            .with(tracing_logfmt::builder().layer().with_writer(writer))
            .init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .init(),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = cli.common;
    let metrics = Arc::new(Metrics::new(flags.max_step_names));

    if let Command::Replay { paths, output } = &cli.command {
        return replay(paths, *output, &flags, &metrics);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(cli.command, flags, metrics));
    // A read of standard input blocks a thread that no signal wakes: do not wait for it.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// How long blocked reads may hold up the exit once everything else has stopped.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

fn replay(
    paths: &[std::path::PathBuf],
    output: ReplayOutput,
    flags: &CommonFlags,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let source_name = flags.source_name.as_deref();
    let events = match output {
        ReplayOutput::Events => Some(&mut out),
        ReplayOutput::Metrics => None,
    };
    let replayed = replay_files(paths, source_name, metrics, flags.max_line_bytes, events);
    if output == ReplayOutput::Metrics {
        let text = http::encode(metrics, false).context("encoding metrics")?;
        out.write_all(sort_series(&text).as_bytes())
            .context("writing metrics")?;
    }
    out.flush().context("writing output")?;
    replayed?;
    Ok(ExitCode::SUCCESS)
}

/// Serves metrics while the subcommand's source runs, until a signal or a fatal error.
async fn serve(
    command: Command,
    flags: CommonFlags,
    metrics: Arc<Metrics>,
) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    // Known before the server answers, so that /readyz never says ready too early.
    let sources = match &command {
        Command::Tail { paths } => paths.len(),
        Command::Stdin | Command::Run { .. } | Command::Replay { .. } => 1,
    };
    let readiness = Arc::new(Readiness::waiting_for(sources));
    let run_mode = matches!(command, Command::Run { .. });

    let listener = match bind(&flags.listen_address).await {
        Ok(listener) => Some(listener),
        // A wrapper must not break the tool it wraps: the child runs, without metrics.
        Err(error) if run_mode => {
            tracing::error!(error = format!("{error:#}"), "serving no metrics");
            None
        }
        Err(error) => return Err(error),
    };
    let mut server = None;
    if let Some(listener) = listener {
        let address = listener
            .local_addr()
            .context("reading the listening address")?;
        tracing::info!(address = %address, path = %flags.telemetry_path, "listening");
        let router = http::router(metrics.clone(), readiness.clone(), &flags.telemetry_path);
        let server_shutdown = shutdown.clone();
        server = Some(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(server_shutdown.cancelled_owned())
                .await
        }));
    }

    // `run` forwards these signals to its child instead of stopping.
    let signals = (!run_mode).then(|| tokio::spawn(cancel_on_signal(shutdown.clone())));
    let mut exit = ExitCode::SUCCESS;

    match command {
        Command::Stdin => {
            let source = flags
                .source_name
                .clone()
                .unwrap_or_else(|| "stdin".to_owned());
            read_stdin(
                &source,
                metrics,
                readiness,
                flags.max_line_bytes,
                shutdown.clone(),
            )
            .await;
            shutdown.cancelled().await;
        }
        Command::Tail { paths } => {
            let config = TailConfig {
                max_line_bytes: flags.max_line_bytes,
                poll_interval: flags.poll_interval,
                from: flags.tail_from,
                source_name: flags.source_name.clone(),
                checkpoint_file: flags.checkpoint_file.clone(),
                checkpoint_interval: flags.checkpoint_interval,
                ..TailConfig::new(metrics, readiness)
            };
            tail(paths, config, shutdown.clone()).await?;
        }
        Command::Run { command } => {
            let config = RunConfig {
                command,
                source_name: flags.source_name.clone(),
                metrics,
                readiness,
                max_line_bytes: flags.max_line_bytes,
                // Lingering serves the last scrape; with no server there is none to serve.
                linger: if server.is_some() {
                    flags.run_linger
                } else {
                    std::time::Duration::ZERO
                },
            };
            let code = run::run(config).await;
            shutdown.cancel();
            exit = ExitCode::from(code?);
        }
        Command::Replay { .. } => unreachable!("replay is handled before the runtime starts"),
    }

    if let Some(signals) = signals {
        signals.abort();
    }
    let Some(server) = server else {
        return Ok(exit);
    };
    match server.await {
        Ok(Ok(())) => Ok(exit),
        Ok(Err(error)) => Err(anyhow::Error::new(error).context("serving HTTP")),
        Err(error) => Err(anyhow::Error::new(error).context("HTTP server task")),
    }
}

/// Binds `HOST:PORT`, or every interface for `:PORT` (IPv6 and IPv4 where the machine has
/// IPv6, IPv4 alone otherwise).
async fn bind(address: &str) -> anyhow::Result<TcpListener> {
    let bound = match address.strip_prefix(':') {
        Some(port) => match TcpListener::bind(format!("[::]:{port}")).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(format!("0.0.0.0:{port}")).await,
        },
        None => TcpListener::bind(address).await,
    };
    bound.with_context(|| format!("listening on {address}"))
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for signals; stop the exporter with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!(signal = name, "shutting down");
    shutdown.cancel();
}
