//! The tailer: owns a follower for every path named on the command line or matched by a
//! glob, the ledger of files read, and the checkpoint.
//!
//! It is driven from outside: `poll_once` (or `poll_at` with a given time) expands the globs
//! and steps every follower once, synchronously. The notification and timer loop in the
//! parent module is a thin layer around it, and tests call it directly instead of sleeping.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::TailFrom;
use crate::metrics::NoLabels;

use super::TailConfig;
use super::checkpoint::{self, CHECKPOINT_VERSION, Checkpoint, SaveError, SavedSource};
use super::follower::{Follower, Start, StepContext};
use super::identity::FileKey;
use super::ledger::Ledger;
use crate::source::READ_CHUNK_BYTES;

struct Pattern {
    text: String,
    is_glob: bool,
}

pub struct Tailer {
    config: TailConfig,
    patterns: Vec<Pattern>,
    followers: Vec<Follower>,
    followed: HashSet<PathBuf>,
    ledger: Ledger,
    /// Checkpoint entries loaded at startup and not yet given to a follower.
    saved: HashMap<PathBuf, SavedSource>,
    buffer: Vec<u8>,
    /// Whether the first expansion of the patterns is done (`--tail.from=end` applies only
    /// to the files found then).
    started: bool,
}

impl Tailer {
    /// A tailer for `patterns`; reads the checkpoint when one is configured. `config.readiness`
    /// must wait for one source per pattern: a path is ready once its file is open, a glob
    /// once it has been expanded.
    pub fn new(patterns: Vec<String>, config: TailConfig) -> Tailer {
        let mut ledger = Ledger::default();
        let mut saved = HashMap::new();
        if let Some(path) = &config.checkpoint_file {
            match checkpoint::load(path) {
                Ok(Some(loaded)) => {
                    tracing::info!(path = %path.display(), sources = loaded.sources.len(), "checkpoint loaded");
                    ledger.seed(loaded.files, Instant::now());
                    saved.extend(loaded.sources.into_iter().map(|s| (s.path.clone(), s)));
                }
                Ok(None) => tracing::info!(path = %path.display(), "no checkpoint yet"),
                Err(error) => tracing::warn!(
                    path = %path.display(),
                    error = %error,
                    "ignoring the checkpoint; files are read as without one"
                ),
            }
        }
        if config.checkpoint_file.is_some() {
            // Shown at zero from the start, so that `increase()` sees the first failure.
            let _ = config
                .metrics
                .checkpoint_write_errors
                .get_or_create(&NoLabels {});
        }
        Tailer {
            patterns: patterns
                .into_iter()
                .map(|text| Pattern {
                    is_glob: is_glob(&text),
                    text,
                })
                .collect(),
            config,
            followers: Vec::new(),
            followed: HashSet::new(),
            ledger,
            saved,
            buffer: vec![0u8; READ_CHUNK_BYTES],
            started: false,
        }
    }

    /// Expands the globs and steps every follower once, now.
    pub fn poll_once(&mut self) -> bool {
        self.poll_at(Instant::now())
    }

    /// Expands the globs and steps every follower once, as if the time were `now`. Returns
    /// true when some follower has bytes left to read.
    pub fn poll_at(&mut self, now: Instant) -> bool {
        self.discover(now);
        self.step_all(now)
    }

    /// Steps every follower once without expanding the globs.
    pub fn step_all(&mut self, now: Instant) -> bool {
        let mut cx = StepContext {
            ledger: &mut self.ledger,
            now,
            buffer: &mut self.buffer,
            linger: self.config.linger,
            max_line_bytes: self.config.max_line_bytes,
        };
        let mut more = false;
        for follower in &mut self.followers {
            more |= follower.step(&mut cx);
        }
        let open: usize = self.followers.iter().map(Follower::files_open).sum();
        self.config.metrics.files_open.set(open as i64);
        more
    }

    /// Starts followers for paths not followed yet; forgets glob matches that are gone.
    ///
    /// A glob match is gone once its path names no file, the follower holds none (its last
    /// file was drained, and closed after the linger time), and no other followed path names
    /// the file it read last (`app.log` renamed to `app.log.1` under `app.log*` is still
    /// matched; its source keeps its series until that file is gone too). Its follower is
    /// dropped,
    /// and with it every series of its source: a pod log that vanished must not keep its
    /// workflow `running` forever, nor its series pile up. Two exceptions keep the series:
    /// a path also named on its own (it is waited for, as the configured source), and
    /// `--source-name`, where the source is the name given and other files may feed it.
    pub fn discover(&mut self, now: Instant) {
        let first = !self.started;
        self.started = true;
        let idle = |follower: &Follower| follower.from_glob && follower.is_idle();
        let named: HashSet<FileKey> = if self.followers.iter().any(idle) {
            let named = self
                .followers
                .iter()
                .filter_map(|f| fs::metadata(&f.path).ok());
            named.map(|metadata| FileKey::of(&metadata)).collect()
        } else {
            HashSet::new()
        };
        let (gone, kept): (Vec<Follower>, Vec<Follower>) = std::mem::take(&mut self.followers)
            .into_iter()
            .partition(|follower| {
                idle(follower) && follower.last_file().is_none_or(|key| !named.contains(&key))
            });
        self.followers = kept;
        for follower in gone {
            self.followed.remove(&follower.path);
            tracing::info!(path = %follower.path.display(), "file gone; no longer followed");
            if self.config.source_name.is_none() {
                follower.forget();
            }
        }
        self.ledger.prune(now);

        for index in 0..self.patterns.len() {
            let Pattern { text, is_glob } = &self.patterns[index];
            let is_glob = *is_glob;
            for path in expand(text) {
                if !self.followed.insert(path.clone()) {
                    if !is_glob {
                        // A path also matched by a glob is followed once, as a path.
                        for follower in self.followers.iter_mut().filter(|f| f.path == path) {
                            follower.from_glob = false;
                        }
                    }
                    if !is_glob && first {
                        // The same path given twice: it is followed once, and ready with it.
                        self.config.readiness.source_opened();
                    }
                    continue;
                }
                let follower = self.new_follower(path, is_glob, first);
                self.followers.push(follower);
            }
            if first && is_glob {
                self.config.readiness.source_opened();
            }
        }
    }

    fn new_follower(&mut self, path: PathBuf, from_glob: bool, first: bool) -> Follower {
        let start = match self.saved.remove(&path) {
            Some(saved) => Start::Saved(Box::new(saved)),
            None if first && self.config.from == TailFrom::End && path.exists() => Start::End,
            None => Start::Beginning,
        };
        let source = self
            .config
            .source_name
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        let mut follower = Follower::new(path, &source, self.config.metrics.clone(), start);
        follower.from_glob = from_glob;
        if !from_glob {
            let readiness = self.config.readiness.clone();
            follower.on_first_open = Some(Box::new(move || readiness.source_opened()));
        }
        follower
    }

    /// The directories to watch: those of the followed paths, of their symlinks' targets,
    /// and the fixed part of each glob.
    pub fn directories(&self) -> HashSet<PathBuf> {
        let mut directories = HashSet::new();
        for follower in &self.followers {
            directories.insert(parent_of(&follower.path));
            if let Ok(target) = std::fs::canonicalize(&follower.path) {
                directories.insert(parent_of(&target));
            }
        }
        for pattern in &self.patterns {
            let fixed = glob_base(&pattern.text);
            directories.insert(if pattern.is_glob {
                fixed
            } else {
                parent_of(&fixed)
            });
        }
        directories
    }

    /// The earliest time some follower has work without being woken.
    pub fn deadline(&self) -> Option<Instant> {
        self.followers
            .iter()
            .filter_map(|f| f.deadline(self.config.linger))
            .min()
    }

    /// What a checkpoint written now would hold.
    pub fn checkpoint(&self) -> Checkpoint {
        // JSON holds text: a path that is not UTF-8 is left out rather than failing the
        // whole checkpoint (its file is read from its start after a restart).
        let sources = self
            .followers
            .iter()
            .filter_map(Follower::saved)
            .filter(|saved| saved.path.to_str().is_some())
            .collect();
        let mut files: Vec<_> = self.ledger.released_records().collect();
        for follower in &self.followers {
            files.extend(follower.held_records());
        }
        Checkpoint {
            version: CHECKPOINT_VERSION,
            sources,
            files,
        }
    }

    /// Writes the checkpoint, when one is configured. A failure is logged, counted in
    /// `checkpoint_write_errors_total`, and retried at the next interval; it is returned
    /// for the final save, whose failure ends the exporter with an error.
    pub fn save_checkpoint(&self) -> Result<(), SaveError> {
        let Some(path) = &self.config.checkpoint_file else {
            return Ok(());
        };
        match checkpoint::save(path, &self.checkpoint()) {
            Ok(()) => {
                tracing::debug!(path = %path.display(), "checkpoint written");
                Ok(())
            }
            Err(error) => {
                self.config
                    .metrics
                    .checkpoint_write_errors
                    .get_or_create(&NoLabels {})
                    .inc();
                tracing::error!(path = %path.display(), error = %error, "cannot write the checkpoint");
                Err(SaveError {
                    path: path.clone(),
                    error,
                })
            }
        }
    }

    /// Stops following: rotated files are drained, partial lines flushed when no checkpoint
    /// will resume them, and the checkpoint written; returns its error when that failed (the
    /// next start then reads from the previous checkpoint, counting some events again).
    pub fn stop(mut self) -> Result<(), SaveError> {
        let flush_partial = self.config.checkpoint_file.is_none();
        let mut cx = StepContext {
            ledger: &mut self.ledger,
            now: Instant::now(),
            buffer: &mut self.buffer,
            linger: self.config.linger,
            max_line_bytes: self.config.max_line_bytes,
        };
        for follower in &mut self.followers {
            follower.stop(&mut cx, flush_partial);
        }
        let saved = self.save_checkpoint();
        self.config.metrics.files_open.set(0);
        saved
    }

    /// Shared handles, for the loop that drives the tailer.
    pub fn config(&self) -> &TailConfig {
        &self.config
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The files a pattern names now: a plain path always names itself (it may not exist yet).
fn expand(pattern: &str) -> Vec<PathBuf> {
    if !is_glob(pattern) {
        return vec![PathBuf::from(pattern)];
    }
    match glob::glob(pattern) {
        Ok(paths) => paths
            .filter_map(Result::ok)
            .filter(|path| path.is_file())
            .collect(),
        Err(error) => {
            tracing::error!(pattern, error = %error, "invalid glob pattern");
            Vec::new()
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The leading components of a pattern before the first one with a wildcard.
fn glob_base(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    for component in Path::new(pattern).components() {
        if is_glob(&component.as_os_str().to_string_lossy()) {
            break;
        }
        base.push(component);
    }
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    }
}
