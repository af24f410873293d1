//! Flags and subcommands, in the habits of Prometheus exporters.
//!
//! Every flag has a `CONTAINERKIT_EXPORTER_*` environment variable and may stand before or
//! after the subcommand. `main` parses this and hands the parts to the sources and the server.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::lines::DEFAULT_MAX_LINE_BYTES;
use crate::parse::duration::parse_go_duration;

/// The default address: port 9847 on every interface.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":9847";

/// The default of `--run.linger`: long enough for a scrape that was about to happen, short
/// enough not to hold up an MCP client that waits for the server to exit.
pub const DEFAULT_RUN_LINGER: &str = "5s";

#[derive(Debug, Parser)]
#[command(
    name = "containerkit-exporter",
    version,
    about = "Export Container Kit workflow PROGRESS log lines as Prometheus metrics",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonFlags,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct CommonFlags {
    /// Address to serve metrics on: HOST:PORT, or :PORT for every interface.
    #[arg(
        long = "web.listen-address",
        env = "CONTAINERKIT_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = DEFAULT_LISTEN_ADDRESS,
        global = true,
        value_name = "ADDRESS",
        value_parser = parse_listen_address
    )]
    pub listen_address: String,

    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "CONTAINERKIT_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        global = true,
        value_name = "PATH",
        value_parser = parse_telemetry_path
    )]
    pub telemetry_path: String,

    /// Only log messages of this level or more severe.
    #[arg(
        long = "log.level",
        env = "CONTAINERKIT_EXPORTER_LOG_LEVEL",
        default_value = "info",
        global = true,
        value_enum
    )]
    pub log_level: LogLevel,

    /// Format of the exporter's own log lines, written to standard error.
    #[arg(
        long = "log.format",
        env = "CONTAINERKIT_EXPORTER_LOG_FORMAT",
        default_value = "logfmt",
        global = true,
        value_enum
    )]
    pub log_format: LogFormat,

    /// Lines longer than this many bytes are skipped and counted.
    #[arg(
        long = "max-line-bytes",
        env = "CONTAINERKIT_EXPORTER_MAX_LINE_BYTES",
        default_value_t = DEFAULT_MAX_LINE_BYTES,
        global = true,
        value_name = "BYTES",
        value_parser = parse_max_line_bytes
    )]
    pub max_line_bytes: usize,

    /// Distinct step names kept as label values across all sources; more become `other`.
    #[arg(
        long = "max-step-names",
        env = "CONTAINERKIT_EXPORTER_MAX_STEP_NAMES",
        default_value_t = 200,
        global = true,
        value_name = "N"
    )]
    pub max_step_names: usize,

    /// Value of the `source` label instead of the path, `stdin` or the program name.
    /// With several files it applies to all of them.
    #[arg(
        long = "source-name",
        env = "CONTAINERKIT_EXPORTER_SOURCE_NAME",
        global = true,
        value_name = "NAME"
    )]
    pub source_name: Option<String>,

    /// How often followed files are checked even when no change was notified.
    #[arg(
        long = "tail.poll-interval",
        env = "CONTAINERKIT_EXPORTER_TAIL_POLL_INTERVAL",
        default_value = "1s",
        global = true,
        value_name = "DURATION",
        value_parser = parse_positive_duration
    )]
    pub poll_interval: Duration,

    /// Where to start reading files that exist at startup.
    #[arg(
        long = "tail.from",
        env = "CONTAINERKIT_EXPORTER_TAIL_FROM",
        default_value = "start",
        global = true,
        value_enum
    )]
    pub tail_from: TailFrom,

    /// File where followed positions and workflow states are saved, so that a restart goes
    /// on after the last processed line. Without it, a restart reads files anew.
    #[arg(
        long = "tail.checkpoint-file",
        env = "CONTAINERKIT_EXPORTER_TAIL_CHECKPOINT_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub checkpoint_file: Option<PathBuf>,

    /// How often the checkpoint is written (it is also written at shutdown).
    #[arg(
        long = "tail.checkpoint-interval",
        env = "CONTAINERKIT_EXPORTER_TAIL_CHECKPOINT_INTERVAL",
        default_value = "10s",
        global = true,
        value_name = "DURATION",
        value_parser = parse_positive_duration
    )]
    pub checkpoint_interval: Duration,

    /// How long `run` keeps serving metrics after the command exited; a signal ends the wait.
    #[arg(
        long = "run.linger",
        env = "CONTAINERKIT_EXPORTER_RUN_LINGER",
        default_value = DEFAULT_RUN_LINGER,
        global = true,
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub run_linger: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Follow log files (paths or glob patterns) and serve their metrics.
    Tail {
        #[arg(required = true, value_name = "PATH|GLOB")]
        paths: Vec<String>,
    },
    /// Read standard input and serve its metrics.
    Stdin,
    /// Run a command, pass its standard input and output through untouched, serve the
    /// metrics of its standard error and MCP progress, and exit with its exit code.
    Run {
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Read files once, print what they yield, and exit.
    Replay {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,

        /// Print the metrics exposition, or one JSON object per PROGRESS event.
        #[arg(
            long,
            env = "CONTAINERKIT_EXPORTER_OUTPUT",
            default_value = "metrics",
            value_enum
        )]
        output: ReplayOutput,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TailFrom {
    Start,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayOutput {
    Metrics,
    Events,
}

/// A non-negative Go duration such as `1s` or `1m30s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_go_duration(text) {
        Some(nanos) if nanos >= 0 => Ok(Duration::from_nanos(nanos as u64)),
        Some(_) => Err("must not be negative".to_owned()),
        None => Err("not a duration such as 500ms, 1s or 1m30s".to_owned()),
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(duration)
}

fn parse_max_line_bytes(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(bytes) => Ok(bytes),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_telemetry_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err("must start with /".to_owned());
    }
    if ["/", "/healthz", "/readyz"].contains(&text) {
        return Err(format!("{text} is taken by the exporter's own page"));
    }
    Ok(text.to_owned())
}

/// `HOST:PORT` or `:PORT`; the host is resolved when the exporter binds.
fn parse_listen_address(text: &str) -> Result<String, String> {
    let port = text.rsplit_once(':').map(|(_, port)| port);
    match port.map(str::parse::<u16>) {
        Some(Ok(_)) => Ok(text.to_owned()),
        _ => Err("expected HOST:PORT or :PORT, such as :9847 or 127.0.0.1:9847".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "containerkit-exporter",
            "--web.listen-address=127.0.0.1:1",
            "tail",
            "a.log",
            "--tail.poll-interval",
            "250ms",
        ])
        .unwrap();
        assert_eq!(cli.common.listen_address, "127.0.0.1:1");
        assert_eq!(cli.common.poll_interval, Duration::from_millis(250));
        assert!(matches!(cli.command, Command::Tail { ref paths } if paths == &["a.log"]));
    }

    #[test]
    fn run_takes_the_command_after_a_double_dash() {
        let cli = Cli::try_parse_from([
            "containerkit-exporter",
            "run",
            "--run.linger=0s",
            "--",
            "container-kit-mcp",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.common.run_linger, Duration::ZERO);
        let Command::Run { command } = cli.command else {
            panic!("not the run subcommand");
        };
        assert_eq!(command, ["container-kit-mcp", "--log-level", "debug"]);
    }

    #[test]
    fn run_without_a_command_is_a_usage_error() {
        for args in [
            &["containerkit-exporter", "run"][..],
            &["containerkit-exporter", "run", "--"],
            &["containerkit-exporter", "run", "sleep"],
        ] {
            let error = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["containerkit-exporter", "--tail.poll-interval=0s", "stdin"][..],
            &[
                "containerkit-exporter",
                "--web.telemetry-path=metrics",
                "stdin",
            ],
            &["containerkit-exporter", "--max-line-bytes=0", "stdin"],
            &[
                "containerkit-exporter",
                "--web.telemetry-path=/readyz",
                "stdin",
            ],
            &[
                "containerkit-exporter",
                "--web.listen-address=nonsense",
                "stdin",
            ],
            &[
                "containerkit-exporter",
                "--web.listen-address=:99999",
                "stdin",
            ],
            &["containerkit-exporter", "tail"],
        ] {
            let error = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }
}
