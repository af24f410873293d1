//! The `run` source: starts a command (typically `container-kit-mcp`) as a child process,
//! passes its stdin and stdout through untouched, reads its stderr PROGRESS lines and its
//! MCP progress notifications into metrics, and exits with its exit code.
//!
//! Files:
//! - `child`: starting the child, signalling it, waiting for it;
//! - `passthrough`: the three copies between our standard streams and the child's;
//! - `stderr_gate`: standard error shared by the child's lines and our own log lines;
//! - `mcp`: the observer of MCP progress notifications on the child's stdout;
//! - `tokens`: the bounded set of MCP progress tokens that have series;
//! - `merge`: one workflow fed by both channels, each event applied once.
//!
//! Lifecycle: SIGINT, SIGTERM and SIGHUP are forwarded to the child while it runs. When it
//! has exited, its output is drained (for at most `OUTPUT_DRAIN_TIMEOUT`), the metrics stay
//! served for the linger, and `run` returns the exit code for the process to exit with. A
//! signal that arrives after the child exited ends the drain and the linger at once.

pub mod child;
pub mod fd_io;
pub mod mcp;
pub mod merge;
pub mod passthrough;
pub mod stderr_gate;
pub mod tokens;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::metrics::run::{ChildLabels, DirectionLabels};

use child::SpawnError;
use mcp::McpObserver;
use merge::MergedWorkflow;
use passthrough::{Counters, Observers, Outputs};

/// After the child exited, how long its stdout and stderr may take to reach EOF. They
/// stay open past the exit when a process the child started still holds them.
pub const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What `run` needs from the command line and the rest of the exporter.
pub struct RunConfig {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// The `source` label; the program's file name when `None`.
    pub source_name: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Counts this source as one to wait for; `run` marks it open once the child started.
    pub readiness: Arc<Readiness>,
    pub max_line_bytes: usize,
    pub linger: Duration,
}

/// Why `run` could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot listen for signals to forward: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the threads that copy the child's streams: {0}")]
    Threads(std::io::Error),
}

impl RunError {
    /// The exit code the exporter ends with: 127 or 126 when the command cannot be found
    /// or executed, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Spawn(error) => error.exit_code(),
            RunError::Signals(_) | RunError::Threads(_) => 1,
        }
    }
}

/// Runs the command to its end and returns the exit code to exit with.
pub async fn run(config: RunConfig) -> Result<u8, RunError> {
    let source = match &config.source_name {
        Some(name) => name.clone(),
        None => config
            .command
            .first()
            .map(child::program_name)
            .unwrap_or_default(),
    };
    // Listen before the child exists, so that no signal meant for it is lost.
    let mut signals = ForwardedSignals::listen().map_err(RunError::Signals)?;

    let spawned = child::spawn(&config.command)?;
    let process = spawned.process;
    let run_metrics = &config.metrics.run;
    let labels = ChildLabels {};
    run_metrics.child_running.get_or_create(&labels).set(1);
    run_metrics
        .child_start_time
        .get_or_create(&labels)
        .set(unix_seconds(SystemTime::now()));
    tracing::info!(source, pid = process.pid(), "child started");
    // Before any byte passes: a client that got an answer finds the exporter ready.
    config.readiness.source_opened();

    let workflow = Arc::new(MergedWorkflow::new(&source, config.metrics.clone()));
    let counters = Counters {
        stdin: passthrough_counter(&config.metrics, "stdin"),
        stdout: passthrough_counter(&config.metrics, "stdout"),
        stderr: passthrough_counter(&config.metrics, "stderr"),
    };
    let observers = Observers {
        mcp: McpObserver::new(&source, run_metrics, workflow.clone()),
        workflow,
        max_line_bytes: config.max_line_bytes,
    };
    let outputs = match passthrough::start(
        spawned.stdin,
        spawned.stdout,
        spawned.stderr,
        counters,
        observers,
    ) {
        Ok(outputs) => outputs,
        Err(error) => {
            process.signal(libc::SIGKILL);
            return Err(RunError::Threads(error));
        }
    };

    // While the child runs, every signal is passed on to it. One that comes when the child
    // has just exited (reaped, but its exit not seen here yet) is meant for us.
    let mut exited = spawned.exited;
    let mut stop_requested = false;
    let code = loop {
        tokio::select! {
            code = &mut exited => break code.unwrap_or(1),
            Some(name) = signals.next() => {
                if process.signal(name.number()) {
                    tracing::info!(signal = name.as_str(), "forwarded signal to the child");
                } else {
                    stop_requested = true;
                }
            }
        }
    };
    run_metrics.child_running.get_or_create(&labels).set(0);
    run_metrics
        .child_last_exit_code
        .get_or_create(&labels)
        .set(i64::from(code));
    tracing::info!(source, code, "child exited");

    if !drain(outputs, &mut signals).await {
        return Ok(code);
    }
    if !config.linger.is_zero() && !stop_requested {
        tracing::info!(linger = ?config.linger, "serving metrics until the linger ends");
        tokio::select! {
            () = tokio::time::sleep(config.linger) => {}
            Some(name) = signals.next() => {
                tracing::info!(signal = name.as_str(), "linger ended by a signal");
            }
        }
    }
    Ok(code)
}

/// Waits for the child's stdout and stderr to reach EOF, so that their last bytes are
/// passed on and the last stderr line is recorded. False when a signal cut it short.
async fn drain(outputs: Outputs, signals: &mut ForwardedSignals) -> bool {
    let both = async {
        let _ = outputs.stdout_done.await;
        let _ = outputs.stderr_done.await;
    };
    tokio::select! {
        finished = tokio::time::timeout(OUTPUT_DRAIN_TIMEOUT, both) => {
            if finished.is_err() {
                tracing::warn!(
                    timeout = ?OUTPUT_DRAIN_TIMEOUT,
                    "the child's output is still open after it exited (a process it started \
                     may hold it); not waiting for it"
                );
            }
            true
        }
        Some(name) = signals.next() => {
            tracing::info!(signal = name.as_str(), "exiting without draining the child's output");
            false
        }
    }
}

fn passthrough_counter(
    metrics: &Metrics,
    direction: &'static str,
) -> prometheus_client::metrics::counter::Counter {
    metrics
        .run
        .passthrough_bytes
        .get_or_create_owned(&DirectionLabels { direction })
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// The signals `run` forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignalName {
    Interrupt,
    Terminate,
    Hangup,
}

impl SignalName {
    fn number(self) -> libc::c_int {
        match self {
            SignalName::Interrupt => libc::SIGINT,
            SignalName::Terminate => libc::SIGTERM,
            SignalName::Hangup => libc::SIGHUP,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SignalName::Interrupt => "SIGINT",
            SignalName::Terminate => "SIGTERM",
            SignalName::Hangup => "SIGHUP",
        }
    }
}

/// Listeners for SIGINT, SIGTERM and SIGHUP. Once installed, these signals no longer
/// end the exporter by themselves: `run` decides.
struct ForwardedSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl ForwardedSignals {
    fn listen() -> std::io::Result<ForwardedSignals> {
        Ok(ForwardedSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    async fn next(&mut self) -> Option<SignalName> {
        tokio::select! {
            received = self.interrupt.recv() => received.map(|()| SignalName::Interrupt),
            received = self.terminate.recv() => received.map(|()| SignalName::Terminate),
            received = self.hangup.recv() => received.map(|()| SignalName::Hangup),
        }
    }
}
