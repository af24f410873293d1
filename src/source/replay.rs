//! The `replay` source: reads files once, from start to end, and prints either the metrics
//! they produce or one JSON object per PROGRESS event.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::event::ProgressEvent;
use crate::metrics::{Metrics, SourceLabels};
use crate::parse::duration::format_go_duration;
use crate::recorder::Outcome;
use crate::source::{Pipeline, READ_CHUNK_BYTES};

/// An event as `replay --output events` prints it: FORMAT.md's field names, the duration
/// as Go text, absent fields left out.
#[derive(Debug, Serialize)]
pub struct PrintedEvent<'a> {
    pub source: &'a str,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'a str>,
    pub step: u32,
    pub total: u32,
    pub percentage: u8,
    pub step_name: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<&'a str>,
}

impl<'a> PrintedEvent<'a> {
    pub fn new(source: &'a str, line: u64, event: &'a ProgressEvent) -> PrintedEvent<'a> {
        PrintedEvent {
            source,
            line,
            time: event.time.map(|time| time.to_rfc3339()),
            level: event.level.as_deref(),
            step: event.step,
            total: event.total,
            percentage: event.percentage,
            step_name: &event.step_name,
            status: event.status.as_str(),
            message: event.message.as_deref(),
            duration: event.duration.map(format_go_duration),
            error: event.error.as_deref(),
            image_ref: event.image_ref.as_deref(),
            namespace: event.namespace.as_deref(),
            component: event.component.as_deref(),
        }
    }
}

/// Replays `paths` in order into `metrics`, writing each event to `events` when given.
/// A file that cannot be read is logged, counted and skipped; the error names how many.
pub fn replay_files<W: Write>(
    paths: &[PathBuf],
    source_name: Option<&str>,
    metrics: &Arc<Metrics>,
    max_line_bytes: usize,
    mut events: Option<&mut W>,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for path in paths {
        let source = source_name.map_or_else(|| path.display().to_string(), str::to_owned);
        let result = replay_file(
            path,
            &source,
            metrics,
            max_line_bytes,
            events.as_deref_mut(),
        );
        if let Err(ReplayError::Write(error)) = result {
            return Err(anyhow::Error::new(error).context("writing events failed"));
        }
        if let Err(ReplayError::Read(error)) = result {
            failed += 1;
            metrics
                .open_errors
                .get_or_create(&SourceLabels {
                    source: Arc::from(source.as_str()),
                })
                .inc();
            tracing::error!(path = %path.display(), error = %error, "could not replay file");
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be read", paths.len());
    }
    Ok(())
}

enum ReplayError {
    Read(io::Error),
    Write(io::Error),
}

fn replay_file<W: Write>(
    path: &Path,
    source: &str,
    metrics: &Arc<Metrics>,
    max_line_bytes: usize,
    mut events: Option<&mut W>,
) -> Result<(), ReplayError> {
    let mut file = File::open(path).map_err(ReplayError::Read)?;
    let mut pipeline = Pipeline::new(source, metrics.clone(), max_line_bytes);
    let mut write_error: Option<io::Error> = None;
    let mut line = 0u64;
    let mut observe = |outcome: Outcome| {
        line += 1;
        if let (Outcome::Event(event), Some(out), None) =
            (outcome, events.as_deref_mut(), &write_error)
        {
            write_error = write_event(out, source, line, &event).err();
        }
    };

    let mut buffer = vec![0u8; 4 * READ_CHUNK_BYTES];
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(ReplayError::Read(error)),
        };
        pipeline.feed_with(&buffer[..n], &mut observe);
    }
    pipeline.finish_with(&mut observe);
    match write_error {
        Some(error) => Err(ReplayError::Write(error)),
        None => Ok(()),
    }
}

fn write_event(
    out: &mut impl Write,
    source: &str,
    line: u64,
    event: &ProgressEvent,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &PrintedEvent::new(source, line, event))?;
    out.write_all(b"\n")
}

/// The exposition with each family's series in a fixed order, so that two replays of the
/// same files print the same text. The encoder keeps series in hash order; this sorts them by
/// their labels, keeping a histogram's buckets, sum and count together and in order.
pub fn sort_series(exposition: &str) -> String {
    let mut out = String::with_capacity(exposition.len());
    let mut series: Vec<(&str, Vec<&str>)> = Vec::new();
    let flush = |series: &mut Vec<(&str, Vec<&str>)>, out: &mut String| {
        series.sort_by(|a, b| a.0.cmp(b.0));
        for line in series.drain(..).flat_map(|(_, lines)| lines) {
            out.push_str(line);
            out.push('\n');
        }
    };
    for line in exposition.lines() {
        if line.starts_with('#') {
            // Only a family's HELP, TYPE or UNIT lines follow its last sample.
            flush(&mut series, &mut out);
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let key = series_key(line);
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, lines)) => lines.push(line),
            None => series.push((key, vec![line])),
        }
    }
    flush(&mut series, &mut out);
    out
}

/// The labels of a sample line without a trailing `le`, which names a bucket of the series.
fn series_key(line: &str) -> &str {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else {
        return "";
    };
    let labels = &line[open..close];
    match labels.rfind("le=\"") {
        Some(le) if le > 0 => labels[..le].trim_end_matches(','),
        _ => labels,
    }
}
