//! A follower: follows one path through rotation, truncation and unreadable spells, feeding
//! one source's recorder.
//!
//! The tailer calls `step` whenever something may have changed (a notification, the
//! periodic check, a test). A step re-checks everything from scratch, so a lost or spurious
//! wake-up costs nothing but a few system calls:
//! 1. the path is `stat`ed: naming another file than the open one means a rotation, and the
//!    open file is retired (kept open and drained, since its writer may not have switched);
//! 2. retired files are read to their end, and closed once quiet for the linger time;
//! 3. a path with no file open is opened, with backoff after a failure;
//! 4. the current file is checked for truncation (size below the offset, or other bytes
//!    before it) and read, after the retired files gave all they had.
//!
//! Where this can still lose data: a file that is replaced twice between two steps (the
//! middle file was never opened); bytes appended to a rotated file after it was quiet for
//! the linger time and closed (unless a glob follows its new name); a truncation to the
//! same size with the same first and last-read bytes (not told from no change); the bytes
//! written between a copy and a truncation by `copytruncate` (gone before any reader).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::{KindLabels, Metrics, SourceLabels};
use crate::recorder::Recorder;

use super::checkpoint::SavedSource;
use super::identity::{FileKey, FileRecord};
use super::ledger::Ledger;
use super::open_file::{Change, OpenFile};

/// Bytes one step reads at most from one follower's files, so that a long backlog cannot
/// hold up the other followers or shutdown.
pub const STEP_BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// The first wait after a failed open; it doubles up to `OPEN_RETRY_MAX`.
pub const OPEN_RETRY_FIRST: Duration = Duration::from_millis(250);
pub const OPEN_RETRY_MAX: Duration = Duration::from_secs(10);

/// What a step needs from the tailer.
pub struct StepContext<'a> {
    pub ledger: &'a mut Ledger,
    pub now: Instant,
    pub buffer: &'a mut [u8],
    /// How long a rotated file stays open after it last grew.
    pub linger: Duration,
    pub max_line_bytes: usize,
}

/// Where the first file opened at the path is read from.
pub enum Start {
    Beginning,
    /// After the last complete line (`--tail.from=end`, files present at startup).
    End,
    /// Where a checkpoint says, if the file still matches it.
    Saved(Box<SavedSource>),
}

/// A file being read, with when it last gave bytes.
pub(super) struct Reading {
    pub(super) file: OpenFile,
    pub(super) quiet_since: Instant,
    /// For a rotated file: its held partial line was flushed already.
    pub(super) flushed: bool,
}

pub struct Follower {
    pub path: PathBuf,
    pub from_glob: bool,
    source: Arc<str>,
    metrics: Arc<Metrics>,
    pub(super) recorder: Recorder,
    current: Option<Reading>,
    /// The symlink target the path had when the current file was opened.
    link_target: Option<PathBuf>,
    /// The file opened last: a glob match whose path is gone is still followed while
    /// another followed path names this file (it was renamed to a name the glob matches).
    last_file: Option<FileKey>,
    pub(super) retired: Vec<Reading>,
    pub(super) start: Start,
    failures: u32,
    retry_at: Option<Instant>,
    /// Readiness to report at the first open; taken when reported.
    pub on_first_open: Option<Box<dyn FnOnce() + Send>>,
    logged_waiting: bool,
    open_errors: Counter,
    leading_nuls: Counter,
    offset_gauge: Gauge,
    size_gauge: Gauge,
}

impl Follower {
    pub fn new(path: PathBuf, source: &str, metrics: Arc<Metrics>, start: Start) -> Follower {
        let source: Arc<str> = Arc::from(source);
        let labels = SourceLabels {
            source: source.clone(),
        };
        // Every kind shows at zero before its first event.
        for kind in ["rename", "delete", "symlink"] {
            let _ = metrics.rotations.get_or_create(&kind_labels(&source, kind));
        }
        for kind in ["shrunk", "rewritten"] {
            let _ = metrics
                .truncations
                .get_or_create(&kind_labels(&source, kind));
        }
        Follower {
            recorder: Recorder::new(&source, metrics.clone()),
            open_errors: metrics.open_errors.get_or_create_owned(&labels),
            leading_nuls: metrics.leading_nul_bytes.get_or_create_owned(&labels),
            offset_gauge: metrics.file_offset.get_or_create_owned(&labels),
            size_gauge: metrics.file_size.get_or_create_owned(&labels),
            path,
            from_glob: false,
            source,
            metrics,
            current: None,
            link_target: None,
            last_file: None,
            retired: Vec::new(),
            start,
            failures: 0,
            retry_at: None,
            on_first_open: None,
            logged_waiting: false,
        }
    }

    /// One check-and-read cycle. Returns true when bytes are left to read (the budget ran
    /// out), so that the caller steps again without waiting.
    pub fn step(&mut self, cx: &mut StepContext<'_>) -> bool {
        let mut budget = STEP_BUDGET_BYTES;
        if matches!(self.start, Start::Saved(_)) {
            self.find_saved_file(cx);
        }

        // 1. Has the path moved on to another file?
        let named = fs::metadata(&self.path);
        if let Ok(metadata) = &named {
            cx.ledger.touch(FileKey::of(metadata), cx.now);
        }
        if let Some(current) = &self.current {
            match &named {
                Ok(metadata) if FileKey::of(metadata) == current.file.key => {}
                Ok(_) => self.rotate(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    // Renamed or deleted and nothing new yet: the writer may still be
                    // writing to it, so keep reading until it is quiet.
                    if cx.now.duration_since(current.quiet_since) >= cx.linger {
                        self.retire_current();
                    }
                }
                Err(_) => {}
            }
        }

        // 2. Rotated files first: what they hold was written before the new file's bytes.
        let retired_pending = self.drain_retired(cx, &mut budget);

        // 3. Open the path when nothing is open (and no failure asks to wait). A file
        // another follower holds (it was renamed to a name followed too) is left to that
        // one, and taken up here once it is let go.
        let may_open = self.retry_at.is_none_or(|at| cx.now >= at);
        if self.current.is_none() && may_open {
            self.retry_at = None;
            match named {
                Ok(metadata) if cx.ledger.is_held(FileKey::of(&metadata)) => {
                    // The follower of the path it was renamed from reads it, and its gauges
                    // show the lag; under this name the file counts as read.
                    self.size_gauge.set(metadata.len() as i64);
                    self.offset_gauge.set(metadata.len() as i64);
                    self.report_ready();
                }
                Ok(_) => self.open(cx),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    if !self.logged_waiting {
                        tracing::info!(path = %self.path.display(), "waiting for the file to appear");
                        self.logged_waiting = true;
                    }
                }
                Err(error) => self.open_failed(cx.now, &error),
            }
        }

        // 4. The current file, once the rotated ones gave what they had.
        if retired_pending {
            return true;
        }
        self.read_current(cx, budget)
    }

    /// Whether the follower holds nothing and its path is gone (a glob match that vanished).
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.retired.is_empty() && fs::metadata(&self.path).is_err()
    }

    /// The identity of the file this follower opened last, if it opened one.
    pub fn last_file(&self) -> Option<FileKey> {
        self.last_file
    }

    /// Ends a follower whose glob match is gone for good, removing every series of its
    /// source: the recorder's (workflow gauges included, so a vanished pod log does not
    /// stay `running` forever) and the ones the follower made. Only for a source that no
    /// other follower feeds: the caller checks.
    pub fn forget(self) {
        let labels = SourceLabels {
            source: self.source.clone(),
        };
        for kind in ["rename", "delete", "symlink"] {
            self.metrics
                .rotations
                .remove(&kind_labels(&self.source, kind));
        }
        for kind in ["shrunk", "rewritten"] {
            self.metrics
                .truncations
                .remove(&kind_labels(&self.source, kind));
        }
        self.metrics.open_errors.remove(&labels);
        self.metrics.leading_nul_bytes.remove(&labels);
        self.metrics.file_offset.remove(&labels);
        self.metrics.file_size.remove(&labels);
        self.recorder.forget();
    }

    /// Files this follower holds open.
    pub fn files_open(&self) -> usize {
        usize::from(self.current.is_some()) + self.retired.len()
    }

    /// The earliest time a step has something to do without being woken: a retry, or a
    /// rotated file to close.
    pub fn deadline(&self, linger: Duration) -> Option<Instant> {
        let closes = self
            .retired
            .iter()
            .map(|reading| reading.quiet_since + linger);
        let retry = self.retry_at.filter(|_| self.current.is_none());
        retry.into_iter().chain(closes).min()
    }

    /// The checkpoint entry of this path: the current file at its last complete line, or
    /// the loaded entry of a file that has not been opened again yet.
    pub fn saved(&self) -> Option<SavedSource> {
        if let Start::Saved(saved) = &self.start {
            return Some((**saved).clone());
        }
        let current = self.current.as_ref()?;
        match current.file.record_at(false) {
            Ok(file) => Some(SavedSource {
                path: self.path.clone(),
                file,
                workflow: self.recorder.state().clone(),
            }),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), error = %error, "cannot take the checkpoint of a file");
                None
            }
        }
    }

    /// The files this follower holds, as records for a checkpoint.
    pub fn held_records(&self) -> Vec<FileRecord> {
        let current = self.current.iter().map(|r| r.file.record_at(false));
        let retired = self.retired.iter().map(|r| r.file.record_at(r.flushed));
        current.chain(retired).filter_map(Result::ok).collect()
    }

    /// Ends following: rotated files are drained and flushed; the current file's partial
    /// line is flushed only when `flush_partial` (without a checkpoint nothing reads it
    /// later; with one, the restarted exporter reads the whole line).
    pub fn stop(&mut self, cx: &mut StepContext<'_>, flush_partial: bool) {
        for mut reading in std::mem::take(&mut self.retired) {
            let _ = reading
                .file
                .read_into(&mut self.recorder, cx.buffer, STEP_BUDGET_BYTES);
            reading.file.flush(&mut self.recorder);
            release(cx, reading, true);
        }
        if let (Some(current), true) = (self.current.as_mut(), flush_partial) {
            current.file.flush(&mut self.recorder);
        }
    }

    /// Moves the current file to the retired ones, counting the rotation by kind.
    fn rotate(&mut self) {
        let Some(current) = &self.current else {
            return;
        };
        let target = fs::read_link(&self.path).ok();
        let kind = if self.link_target.is_some() && target != self.link_target {
            "symlink"
        } else if current.file.metadata().map(|m| m.nlink()).unwrap_or(0) == 0 {
            "delete"
        } else {
            "rename"
        };
        self.metrics
            .rotations
            .get_or_create(&kind_labels(&self.source, kind))
            .inc();
        tracing::info!(path = %self.path.display(), kind, "file rotated; draining the old one");
        self.retire_current();
    }

    fn retire_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.retired.push(current);
        }
    }

    /// Reads the rotated files to their end; closes those quiet for the linger time.
    /// Returns true when one still has bytes to give.
    fn drain_retired(&mut self, cx: &mut StepContext<'_>, budget: &mut usize) -> bool {
        let mut pending = false;
        let mut index = 0;
        while index < self.retired.len() {
            if *budget == 0 {
                return true;
            }
            let reading = &mut self.retired[index];
            let read = match reading
                .file
                .read_into(&mut self.recorder, cx.buffer, *budget)
            {
                Ok(read) => read,
                Err(error) => {
                    self.open_errors.inc();
                    tracing::warn!(path = %self.path.display(), error = %error, "reading a rotated file failed; closing it");
                    let reading = self.retired.remove(index);
                    release(cx, reading, false);
                    continue;
                }
            };
            self.leading_nuls.inc_by(reading.file.take_new_nuls());
            if read > 0 {
                reading.quiet_since = cx.now;
            }
            if read == *budget && read > 0 {
                pending = true;
            }
            *budget -= read;
            let quiet = cx.now.duration_since(reading.quiet_since) >= cx.linger;
            if quiet && !pending {
                let mut reading = self.retired.remove(index);
                if !reading.flushed {
                    reading.file.flush(&mut self.recorder);
                    reading.flushed = true;
                }
                tracing::debug!(path = %self.path.display(), "closed a rotated file");
                release(cx, reading, true);
                continue;
            }
            index += 1;
        }
        pending
    }

    /// Opens the file the path names, and decides where to read it from.
    fn open(&mut self, cx: &mut StepContext<'_>) {
        let mut file = match OpenFile::open(&self.path, 0, cx.max_line_bytes) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(error) => return self.open_failed(cx.now, &error),
        };
        if cx.ledger.is_held(file.key) {
            self.report_ready();
            return;
        }
        let offset = match self.start_offset(cx, &file) {
            Ok(offset) => offset,
            Err(error) => return self.open_failed(cx.now, &error),
        };
        if let Err(error) = file.position(offset) {
            return self.open_failed(cx.now, &error);
        }
        if self.failures > 0 {
            tracing::info!(path = %self.path.display(), failures = self.failures, "file readable again");
        }
        tracing::info!(path = %self.path.display(), offset, "file opened");
        self.failures = 0;
        self.retry_at = None;
        self.logged_waiting = false;
        self.link_target = fs::read_link(&self.path).ok();
        self.last_file = Some(file.key);
        if let Ok(record) = file.record_at(false) {
            cx.ledger.hold(record, cx.now);
        }
        self.current = Some(Reading {
            file,
            quiet_since: cx.now,
            flushed: false,
        });
        self.report_ready();
    }

    fn read_current(&mut self, cx: &mut StepContext<'_>, budget: usize) -> bool {
        let Some(current) = self.current.as_mut() else {
            return false;
        };
        // Offset and size always describe the same file: the one open now, which may be a
        // new file with nothing read yet, or a file taken up where an earlier reading (under
        // another name) stopped.
        let checked = current.file.metadata().and_then(|m| {
            let change = current.file.check(&m)?;
            Ok((m.len(), change))
        });
        let (size, change) = match checked {
            Ok(checked) => checked,
            Err(error) => return self.read_failed(cx, &error),
        };
        if matches!(change, Change::Shrunk | Change::Rewritten) {
            let kind = change.truncation_kind();
            self.metrics
                .truncations
                .get_or_create(&kind_labels(&self.source, kind))
                .inc();
            tracing::warn!(path = %self.path.display(), kind, offset = current.file.offset, "file truncated; reading it from its start");
            if let Err(error) = current.file.restart(&mut self.recorder) {
                return self.read_failed(cx, &error);
            }
        }
        self.size_gauge.set(size as i64);
        self.offset_gauge.set(current.file.offset as i64);
        if change == Change::Unchanged {
            return false;
        }

        // New bytes at the path: the writer has switched, so the rotated files' last
        // partial lines will not be completed.
        for reading in self.retired.iter_mut().filter(|r| !r.flushed) {
            reading.file.flush(&mut self.recorder);
            reading.flushed = true;
        }
        let read = match current
            .file
            .read_into(&mut self.recorder, cx.buffer, budget)
        {
            Ok(read) => read,
            Err(error) => return self.read_failed(cx, &error),
        };
        if read > 0 {
            current.quiet_since = cx.now;
        }
        self.leading_nuls.inc_by(current.file.take_new_nuls());
        // Bytes written since the check were read too: the size is at least the offset.
        self.offset_gauge.set(current.file.offset as i64);
        self.size_gauge.set(size.max(current.file.offset) as i64);
        read == budget && read > 0
    }

    /// A read failed: the file is closed (its position kept in the ledger, so reopening
    /// goes on from its last complete line) and reopened after a backoff.
    fn read_failed(&mut self, cx: &mut StepContext<'_>, error: &io::Error) -> bool {
        if let Some(reading) = self.current.take() {
            release(cx, reading, false);
        }
        self.open_failed(cx.now, error);
        false
    }

    fn open_failed(&mut self, now: Instant, error: &io::Error) {
        self.open_errors.inc();
        self.failures += 1;
        let doublings = (self.failures - 1).min(16);
        let wait = OPEN_RETRY_FIRST
            .saturating_mul(1 << doublings)
            .min(OPEN_RETRY_MAX);
        self.retry_at = Some(now + wait);
        tracing::warn!(
            path = %self.path.display(),
            error = %error,
            failures = self.failures,
            retry_in = ?wait,
            "cannot read the file; will retry"
        );
    }

    fn report_ready(&mut self) {
        if let Some(ready) = self.on_first_open.take() {
            ready();
        }
    }
}

fn kind_labels(source: &Arc<str>, kind: &'static str) -> KindLabels {
    KindLabels {
        source: source.clone(),
        kind,
    }
}

/// Closes a file and tells the ledger how far it was processed.
fn release(cx: &mut StepContext<'_>, reading: Reading, flushed: bool) {
    // A deleted file cannot turn up under another name; remembering it could only ever
    // match a file that reuses its inode.
    let deleted = reading.file.metadata().is_ok_and(|m| m.nlink() == 0);
    match reading.file.record_at(flushed) {
        Ok(_) if deleted => cx.ledger.forget(reading.file.key),
        Ok(record) => cx.ledger.release(record, cx.now),
        Err(_) => cx.ledger.forget(reading.file.key),
    }
}
