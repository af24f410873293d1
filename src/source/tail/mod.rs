//! The `tail` source: follows log files by name through rotation, truncation and restarts.
//!
//! Layout, from the outside in:
//! - `tail` (here) runs a `Tailer` on a thread of its own until the cancellation token
//!   fires: it waits for a wake-up (a file notification, the periodic check, a retry or
//!   linger deadline), runs one cycle, writes the checkpoint at its interval, and stops the
//!   tailer at shutdown;
//! - `watch`: `notify` watches on directories, turned into wake-ups;
//! - `tailer`: every follower, glob expansion, the ledger and the checkpoint; tests drive it
//!   with `Tailer::poll_once` instead of waiting;
//! - `follower`: one path through rotations; `resume`: where it begins in a file it opens;
//!   `open_file`: one open file and its checks;
//! - `identity`: (device, inode) and the hashes that tell files apart; `ledger`: files read,
//!   by identity; `checkpoint`: the saved positions.
//!
//! One thread reads every file: reading is far cheaper than the writes that produce the
//! lines, and one thread keeps the order of a rotated file and its successor simple. A cycle
//! reads at most `follower::STEP_BUDGET_BYTES` per follower, so a backlog on one file
//! delays the others by one budget at a time and shutdown by about as much. A file system
//! call that hangs (a dead network mount) stalls every followed file: this is a known limit.

pub mod checkpoint;
pub mod follower;
pub mod identity;
pub mod ledger;
pub mod open_file;
mod resume;
pub mod tailer;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cli::TailFrom;
use crate::http::Readiness;
use crate::lines::DEFAULT_MAX_LINE_BYTES;
use crate::metrics::Metrics;

pub use checkpoint::SaveError;
pub use tailer::Tailer;
use watch::{Waker, Watch};

/// The default of `--tail.poll-interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The default of `--tail.checkpoint-interval`.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a rotated file stays open after it last grew: long enough for a writer to
/// notice the rotation and reopen its log (logrotate's `postrotate` signal, a size check).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5);

/// How long shutdown waits for the tailer thread before giving up on it.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What the tailer and its followers share.
#[derive(Clone)]
pub struct TailConfig {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub max_line_bytes: usize,
    pub poll_interval: Duration,
    pub from: TailFrom,
    pub source_name: Option<String>,
    pub checkpoint_file: Option<PathBuf>,
    pub checkpoint_interval: Duration,
    pub linger: Duration,
}

impl TailConfig {
    /// The defaults of every flag.
    pub fn new(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> TailConfig {
        TailConfig {
            metrics,
            readiness,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            poll_interval: DEFAULT_POLL_INTERVAL,
            from: TailFrom::Start,
            source_name: None,
            checkpoint_file: None,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Follows every path and glob in `patterns` until `shutdown`; returns once the tailer has
/// stopped and written its checkpoint, or `SHUTDOWN_WAIT` after the token fired. The error
/// is that of the checkpoint written at shutdown: the next start would read from an older
/// one, so the caller makes it the exit status.
pub async fn tail(
    patterns: Vec<String>,
    config: TailConfig,
    shutdown: CancellationToken,
) -> Result<(), SaveError> {
    let (sender, wakes) = mpsc::sync_channel(1);
    let rescan = Arc::new(AtomicBool::new(false));
    let waker = Waker::new(sender, rescan.clone());
    let watch = Watch::new(waker.clone());
    let tailer = Tailer::new(patterns, config);
    let token = shutdown.clone();
    // Dropped when the thread ends, by returning or by a panic: either way this side hears it.
    let (alive, ended) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tail".to_owned())
        .spawn(move || {
            let _alive = alive;
            run(tailer, watch, &wakes, &rescan, &token)
        });
    let thread = match thread {
        Ok(thread) => thread,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the tail thread; no file is followed");
            return Ok(());
        }
    };

    tokio::select! {
        () = shutdown.cancelled() => {}
        _ = ended => {
            // Serving metrics that no longer move would hide the fault: stop the exporter,
            // so that its supervisor restarts it (from the checkpoint, when there is one).
            tracing::error!("the tail thread stopped unexpectedly; stopping the exporter");
            shutdown.cancel();
        }
    }
    waker.wake(false);
    let joined = tokio::task::spawn_blocking(move || thread.join());
    match tokio::time::timeout(SHUTDOWN_WAIT, joined).await {
        Ok(Ok(Ok(saved))) => return saved,
        Ok(_) => tracing::error!("the tail thread panicked"),
        Err(_) => tracing::error!(
            wait = ?SHUTDOWN_WAIT,
            "the tail thread did not stop in time; exiting without it"
        ),
    }
    Ok(())
}

/// The loop around the tailer: wait for a wake-up or a deadline, run one cycle. Returns the
/// result of the checkpoint written at the end.
fn run(
    mut tailer: Tailer,
    mut watch: Watch,
    wakes: &Receiver<()>,
    rescan: &AtomicBool,
    shutdown: &CancellationToken,
) -> Result<(), SaveError> {
    let poll_interval = tailer.config().poll_interval;
    let checkpoint_interval = tailer.config().checkpoint_interval;
    let checkpointing = tailer.config().checkpoint_file.is_some();
    let mut next_tick = Instant::now();
    let mut next_checkpoint = Instant::now() + checkpoint_interval;

    while !shutdown.is_cancelled() {
        // The periodic check, or an event that may mean a new name: expand the globs too.
        let now = Instant::now();
        let full = now >= next_tick || rescan.swap(false, Ordering::SeqCst);
        let more = if full {
            next_tick = now + poll_interval;
            let more = tailer.poll_at(now);
            watch.update(tailer.directories());
            more
        } else {
            tailer.step_all(now)
        };
        if checkpointing && now >= next_checkpoint {
            // A failure is logged and counted; the next interval tries again.
            let _ = tailer.save_checkpoint();
            next_checkpoint = now + checkpoint_interval;
        }
        if more {
            continue;
        }

        let mut until = next_tick;
        if let Some(deadline) = tailer.deadline() {
            until = until.min(deadline);
        }
        if checkpointing {
            until = until.min(next_checkpoint);
        }
        match wakes.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tailer.stop()
}
