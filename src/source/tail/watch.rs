//! File notifications as wake-up hints for the tailer.
//!
//! Directories are watched, never files: a watch on a file follows its inode through a
//! rename and ends with a delete. Any event in a watched directory wakes the tailer, which
//! re-checks everything itself; an event that can mean a new name (create, rename, remove,
//! a lost-events rescan) also asks for the globs to be expanded again. A directory that
//! cannot be watched (no inotify instance or watch left, a network file system) is left to
//! the periodic check.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// Wakes the tailer. The channel holds one wake-up at most: a full channel means a wake-up
/// is pending already, so a burst of events costs one cycle.
#[derive(Clone)]
pub struct Waker {
    sender: SyncSender<()>,
    rescan: Arc<AtomicBool>,
}

impl Waker {
    pub fn new(sender: SyncSender<()>, rescan: Arc<AtomicBool>) -> Waker {
        Waker { sender, rescan }
    }

    pub fn wake(&self, rescan: bool) {
        if rescan {
            self.rescan.store(true, Ordering::SeqCst);
        }
        let _ = self.sender.try_send(());
    }
}

pub struct Watch {
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Directories whose watch failed; tried again at each update, warned about once.
    failed: HashSet<PathBuf>,
}

impl Watch {
    pub fn new(waker: Waker) -> Watch {
        let handler = move |event: notify::Result<notify::Event>| {
            let rescan = match &event {
                Ok(event) => {
                    event.need_rescan()
                        || matches!(
                            event.kind,
                            EventKind::Create(_)
                                | EventKind::Remove(_)
                                | EventKind::Modify(ModifyKind::Name(_))
                                | EventKind::Other
                        )
                }
                Err(_) => true,
            };
            waker.wake(rescan);
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(error = %error, "no file notifications; checking files every poll interval only");
                None
            }
        };
        Watch {
            watcher,
            watched: HashSet::new(),
            failed: HashSet::new(),
        }
    }

    /// Watches every directory in `wanted` not watched yet.
    pub fn update(&mut self, wanted: HashSet<PathBuf>) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        // A directory removed and made again needs a new watch: the old one died with it.
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|d| !d.is_dir())
            .cloned()
            .collect();
        for directory in gone {
            let _ = watcher.unwatch(&directory);
            self.watched.remove(&directory);
        }
        for directory in wanted {
            if self.watched.contains(&directory) {
                continue;
            }
            match watcher.watch(&directory, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(directory = %directory.display(), "watching");
                    self.failed.remove(&directory);
                    self.watched.insert(directory);
                }
                Err(error) => {
                    if self.failed.insert(directory.clone()) {
                        tracing::warn!(
                            directory = %directory.display(),
                            error = %error,
                            "cannot watch directory; its files are checked every poll interval"
                        );
                    }
                }
            }
        }
    }
}
