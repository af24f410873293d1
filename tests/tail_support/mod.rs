//! Shared by the `tail_*` tests: a tailer stepped by hand in a temporary directory, real
//! PROGRESS lines, and readers of the metrics that say what was counted.

#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerkit_exporter::http::Readiness;
use containerkit_exporter::metrics::{KindLabels, Metrics, SourceLabels, StatusLabels};
use containerkit_exporter::source::tail::{TailConfig, Tailer};

/// A tailer over files in a temporary directory, with its own clock.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub metrics: Arc<Metrics>,
    pub tailer: Option<Tailer>,
    pub now: Instant,
    pub config: TailConfig,
    patterns: Vec<String>,
}

impl Harness {
    /// A tailer following `patterns` (relative to the temporary directory).
    pub fn new(patterns: &[&str]) -> Harness {
        Harness::with(patterns, |_| {})
    }

    pub fn with(patterns: &[&str], adjust: impl FnOnce(&mut TailConfig)) -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let metrics = Arc::new(Metrics::new(200));
        let mut config = TailConfig::new(metrics.clone(), Arc::new(Readiness::default()));
        config.poll_interval = Duration::from_millis(100);
        adjust(&mut config);
        let patterns: Vec<String> = patterns
            .iter()
            .map(|p| dir.path().join(p).display().to_string())
            .collect();
        let tailer = Tailer::new(patterns.clone(), config.clone());
        Harness {
            dir,
            metrics,
            tailer: Some(tailer),
            now: Instant::now(),
            config,
            patterns,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `source` label of a file in the directory.
    pub fn source(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// One cycle, as a wake-up would run it; repeated while a budget ran out.
    pub fn poll(&mut self) {
        let tailer = self.tailer.as_mut().expect("tailer running");
        while tailer.poll_at(self.now) {}
    }

    /// Lets `duration` pass on the tailer's clock, then polls.
    pub fn advance(&mut self, duration: Duration) {
        self.now += duration;
        self.poll();
    }

    /// Stops the tailer as shutdown does (checkpoint written when configured).
    pub fn stop(&mut self) {
        if let Some(tailer) = self.tailer.take() {
            tailer.stop().expect("checkpoint written at stop");
        }
    }

    /// Stops, then starts a new exporter process on the same files: fresh metrics, the
    /// same flags. Returns the old metrics.
    pub fn restart(&mut self) -> Arc<Metrics> {
        self.stop();
        let old = std::mem::replace(&mut self.metrics, Arc::new(Metrics::new(200)));
        self.config.metrics = self.metrics.clone();
        self.config.readiness = Arc::new(Readiness::default());
        self.tailer = Some(Tailer::new(self.patterns.clone(), self.config.clone()));
        old
    }
}

/// A real slog text PROGRESS line (a step running) whose message carries `n`.
pub fn line(n: usize) -> String {
    format!(
        "time=2025-07-11T20:14:10.357-04:00 level=INFO msg=\"🔄 PROGRESS\" component=mcp-server \
         step=3 total=10 percentage=30 step_name=build_image status=running \
         message=\"[30%] Building Docker image {n}\"\n"
    )
}

/// Lines `from..to`, concatenated.
pub fn lines(from: usize, to: usize) -> String {
    (from..to).map(line).collect()
}

/// Appends `text` to `path` (creating it), as a logger opened with O_APPEND does.
pub fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text.as_bytes()).expect("append");
}

pub fn rename(from: &Path, to: &Path) {
    fs::rename(from, to).expect("rename");
}

/// Empties the file in place, keeping its inode, as copytruncate does.
pub fn truncate(path: &Path) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(0))
        .expect("truncate");
}

fn source_labels(source: &str) -> SourceLabels {
    SourceLabels {
        source: Arc::from(source),
    }
}

pub fn lines_read(metrics: &Metrics, source: &str) -> u64 {
    metrics
        .lines_read
        .get_or_create(&source_labels(source))
        .get()
}

pub fn events(metrics: &Metrics, source: &str) -> u64 {
    metrics
        .progress_events
        .get_or_create(&source_labels(source))
        .get()
}

pub fn steps_running(metrics: &Metrics, source: &str) -> u64 {
    let labels = containerkit_exporter::metrics::StepLabels {
        source: Arc::from(source),
        step_name: Arc::from("build_image"),
        status: "running",
    };
    metrics.steps.get_or_create(&labels).get()
}

pub fn workflows(metrics: &Metrics, source: &str, status: &'static str) -> u64 {
    let labels = StatusLabels {
        source: Arc::from(source),
        status,
    };
    metrics.workflows.get_or_create(&labels).get()
}

pub fn rotations(metrics: &Metrics, source: &str, kind: &'static str) -> u64 {
    metrics
        .rotations
        .get_or_create(&KindLabels {
            source: Arc::from(source),
            kind,
        })
        .get()
}

pub fn truncations(metrics: &Metrics, source: &str, kind: &'static str) -> u64 {
    metrics
        .truncations
        .get_or_create(&KindLabels {
            source: Arc::from(source),
            kind,
        })
        .get()
}

pub fn open_errors(metrics: &Metrics, source: &str) -> u64 {
    metrics
        .open_errors
        .get_or_create(&source_labels(source))
        .get()
}

/// Asserts that exactly `expected` lines were read from `source`, each a PROGRESS event
/// counted once: as events, and as running steps.
#[track_caller]
pub fn assert_counted(metrics: &Metrics, source: &str, expected: u64) {
    let read = lines_read(metrics, source);
    assert_eq!(read, expected, "lines read from {source}");
    let counted = events(metrics, source);
    assert_eq!(counted, expected, "PROGRESS events of {source}");
    let running = steps_running(metrics, source);
    assert_eq!(running, expected, "running steps of {source}");
}

/// Like `assert_counted`, for a source that also had a broken line (a half line flushed
/// at a rotation): it is a line read, and not an event.
#[track_caller]
pub fn assert_events(metrics: &Metrics, source: &str, expected: u64) {
    let counted = events(metrics, source);
    assert_eq!(counted, expected, "PROGRESS events of {source}");
    let running = steps_running(metrics, source);
    assert_eq!(running, expected, "running steps of {source}");
}

/// `file_offset_bytes` and `file_size_bytes` of `source`.
pub fn offset_and_size(metrics: &Metrics, source: &str) -> (i64, i64) {
    let labels = source_labels(source);
    let offset = metrics.file_offset.get_or_create(&labels).get();
    let size = metrics.file_size.get_or_create(&labels).get();
    (offset, size)
}
