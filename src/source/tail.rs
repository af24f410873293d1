//! The `tail` source: follows log files by name, each on a thread of its own.
//!
//! A follower owns one path: it reads what is appended, and reopens the path when the file
//! behind it is replaced (renamed away and created anew) or truncated. A tailer owns the
//! followers of every path and glob given on the command line, and starts new followers as
//! globs match new files. File system notifications only wake a follower early; a periodic
//! check (`--tail.poll-interval`) backs them up, so a lost notification delays lines but
//! never loses them.
//!
//! Where this simple follower can lose or repeat data:
//! - a file that is replaced twice between two checks: the middle file is never read;
//! - a truncation followed by regrowth past the old offset before the next check is not
//!   seen as a truncation, so the new bytes before the old offset are skipped;
//! - on restart every file is read again from its start (or from its end with
//!   `--tail.from=end`), since no position is saved.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::cli::TailFrom;
use crate::http::Readiness;
use crate::metrics::{KindLabels, Metrics, SourceLabels};
use crate::source::{Pipeline, READ_CHUNK_BYTES};

/// What every follower shares.
#[derive(Clone)]
pub struct TailConfig {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub max_line_bytes: usize,
    pub poll_interval: Duration,
    pub from: TailFrom,
    pub source_name: Option<String>,
}

/// Follows every path and glob in `patterns` until `shutdown`; returns once every follower
/// has flushed and stopped.
pub async fn tail(patterns: Vec<String>, config: TailConfig, shutdown: CancellationToken) {
    let wakers: Arc<Mutex<Vec<Sender<()>>>> = Arc::default();
    let mut threads = Vec::new();
    let mut followed: HashSet<PathBuf> = HashSet::new();
    let mut first_pass = true;

    // `config.readiness` waits for one source per pattern: a plain path is ready once open,
    // a glob once it has been expanded.

    loop {
        for pattern in &patterns {
            for path in expand(pattern) {
                if !followed.insert(path.clone()) {
                    continue;
                }
                let is_glob = is_glob(pattern);
                let (waker, wakes) = mpsc::channel();
                lock(&wakers).push(waker.clone());
                let follower = Follower {
                    source: config
                        .source_name
                        .clone()
                        .unwrap_or_else(|| path.display().to_string()),
                    from_end: first_pass && config.from == TailFrom::End,
                    config: config.clone(),
                    path,
                    ready_on_open: !is_glob,
                };
                let token = shutdown.clone();
                threads.push(std::thread::spawn(move || {
                    follower.run(waker, wakes, token)
                }));
            }
            if first_pass && is_glob(pattern) {
                config.readiness.source_opened();
            }
        }
        first_pass = false;

        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.poll_interval) => {}
        }
    }

    for waker in lock(&wakers).iter() {
        let _ = waker.send(());
    }
    for thread in threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
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
            .filter(|p| p.is_file())
            .collect(),
        Err(error) => {
            tracing::error!(pattern, error = %error, "invalid glob pattern");
            Vec::new()
        }
    }
}

/// The identity of an open file: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(metadata: &Metadata) -> FileId {
        FileId {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }
}

/// An open file and how far it has been read.
struct Opened {
    file: File,
    id: FileId,
    offset: u64,
}

struct Follower {
    source: String,
    path: PathBuf,
    config: TailConfig,
    from_end: bool,
    ready_on_open: bool,
}

impl Follower {
    fn run(self, waker: Sender<()>, wakes: Receiver<()>, shutdown: CancellationToken) {
        let span = tracing::info_span!("follow", path = %self.path.display());
        let _entered = span.enter();
        let _watcher = self.watch_parent(waker);
        let metrics = &self.config.metrics;
        let source_labels = SourceLabels {
            source: Arc::from(self.source.as_str()),
        };
        let open_errors = metrics.open_errors.get_or_create_owned(&source_labels);
        let truncations = metrics.truncations.get_or_create_owned(&source_labels);
        let rotations = metrics.rotations.get_or_create_owned(&KindLabels {
            source: source_labels.source.clone(),
            kind: "replaced",
        });
        let mut pipeline = Pipeline::new(&self.source, metrics.clone(), self.config.max_line_bytes);
        let mut current: Option<Opened> = None;
        let mut first_attempt = true;
        let mut announced_ready = false;
        let mut buffer = vec![0u8; READ_CHUNK_BYTES];

        loop {
            if current.is_none() {
                match self.open(self.from_end && first_attempt) {
                    Ok(opened) => {
                        tracing::info!(offset = opened.offset, "file opened");
                        if self.ready_on_open && !announced_ready {
                            self.config.readiness.source_opened();
                            announced_ready = true;
                        }
                        current = Some(opened);
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        if first_attempt {
                            tracing::info!("waiting for the file to appear");
                        }
                    }
                    Err(error) => {
                        open_errors.inc();
                        tracing::warn!(error = %error, "cannot open file; will retry");
                    }
                }
                first_attempt = false;
            }

            if let Some(Err(error)) = current
                .as_mut()
                .map(|opened| drain(opened, &mut pipeline, &mut buffer))
            {
                open_errors.inc();
                tracing::warn!(error = %error, "read failed; reopening");
                current = None;
                pipeline.finish();
            }

            // Has the path moved on to another file, or was the file cut short?
            if let Some(opened) = current.as_mut() {
                match std::fs::metadata(&self.path) {
                    Ok(metadata) if FileId::of(&metadata) != opened.id => {
                        // Replaced: read the old file to its end before the new one.
                        let _ = drain(opened, &mut pipeline, &mut buffer);
                        pipeline.finish();
                        rotations.inc();
                        tracing::info!("file replaced; reopening");
                        current = None;
                        continue;
                    }
                    Ok(metadata) if metadata.len() < opened.offset => {
                        truncations.inc();
                        tracing::warn!(
                            offset = opened.offset,
                            size = metadata.len(),
                            "file truncated"
                        );
                        pipeline.framer().reset();
                        opened.offset = 0;
                        if let Err(error) = opened.file.seek(SeekFrom::Start(0)) {
                            tracing::warn!(error = %error, "seek failed; reopening");
                            current = None;
                        }
                        continue;
                    }
                    _ => {}
                }
            }

            if shutdown.is_cancelled() {
                pipeline.finish();
                return;
            }
            match wakes.recv_timeout(self.config.poll_interval) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Several notifications may have queued up; one check covers them all.
            while wakes.try_recv().is_ok() {}
        }
    }

    /// Opens the path; with `at_end`, positions after the last complete line.
    fn open(&self, at_end: bool) -> io::Result<Opened> {
        let mut file = File::open(&self.path)?;
        let metadata = file.metadata()?;
        let offset = if at_end {
            last_line_end(&mut file, metadata.len())?
        } else {
            0
        };
        file.seek(SeekFrom::Start(offset))?;
        Ok(Opened {
            file,
            id: FileId::of(&metadata),
            offset,
        })
    }

    /// Watches the parent directory (a watch on the file itself would follow the old inode
    /// after a rename). Without a watcher the follower still polls.
    fn watch_parent(&self, waker: Sender<()>) -> Option<RecommendedWatcher> {
        let parent = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self.path.file_name().map(|name| name.to_os_string());
        let handler = move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(event) => {
                    event.need_rescan()
                        || event.paths.iter().any(|p| p.file_name() == name.as_deref())
                }
                Err(_) => true,
            };
            if relevant {
                let _ = waker.send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(error = %error, "no file notifications; polling only");
                return None;
            }
        };
        if let Err(error) = watcher.watch(&parent, RecursiveMode::NonRecursive) {
            tracing::warn!(error = %error, "cannot watch directory; polling only");
            return None;
        }
        Some(watcher)
    }
}

/// Reads an open file to its current end into the pipeline.
fn drain(opened: &mut Opened, pipeline: &mut Pipeline, buffer: &mut [u8]) -> io::Result<()> {
    loop {
        match opened.file.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                opened.offset += n as u64;
                pipeline.feed(&buffer[..n]);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// The offset just past the last `\n` in the first `len` bytes of `file` (0 if none).
fn last_line_end(file: &mut File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut block = vec![0u8; READ_CHUNK_BYTES];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let block = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(block)?;
        if let Some(newline) = memchr::memrchr(b'\n', block) {
            return Ok(start + newline as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
