//! containerkit-exporter turns Container Kit's PROGRESS log lines into Prometheus metrics.
//!
//! The flow, one module each:
//! - `event`: the `ProgressEvent` every line form becomes, and parse errors;
//! - `lines`: frames bytes into whole lines (length cap, `\r`, NUL runs, invalid UTF-8, ANSI);
//! - `parse`: recognises and parses PROGRESS lines in the slog text, console and JSON forms;
//! - `metrics`: the registry with workflow and self metrics;
//! - `recorder`: per-source workflow state that turns events into metric updates;
//! - `http`: the axum router serving `/metrics`, `/healthz`, `/readyz` and `/`;
//! - `cli`: flags and subcommands.

pub mod event;
pub mod parse;
