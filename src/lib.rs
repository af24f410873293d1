//! containerkit-exporter turns Container Kit's PROGRESS log lines into Prometheus metrics.
//!
//! The flow, one module each:
//! - `source`: where bytes come from (replayed files, standard input, followed files, a
//!   wrapped child process), and the pipeline that carries one source's bytes through the
//!   steps below;
//! - `lines`: frames bytes into whole lines (length cap, `\r`, NUL runs, invalid UTF-8, ANSI);
//! - `parse`: recognises and parses PROGRESS lines in the slog text, console and JSON forms;
//! - `event`: the `ProgressEvent` every line form becomes, and parse errors;
//! - `recorder`: per-source workflow state that turns events into metric updates;
//! - `metrics`: the registry with the workflow and self metrics;
//! - `http`: the axum router serving `/metrics`, `/healthz`, `/readyz` and `/`;
//! - `cli`: flags and subcommands.

pub mod cli;
pub mod event;
pub mod http;
pub mod lines;
pub mod metrics;
pub mod parse;
pub mod recorder;
pub mod source;
