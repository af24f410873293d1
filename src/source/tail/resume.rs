//! Where a follower begins in a file it opens: a checkpoint entry that still matches, the
//! point an earlier reading of the same file stopped at, or the start (or the end, for
//! `--tail.from=end`). Also finds a checkpointed file that was rotated while the exporter was
//! down, so that its last lines are read before the new file.
//!
//! A saved position is used only when the file still has the same identity and the same
//! bytes before it; anything else is warned about and the file is read from its start.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::follower::{Follower, Reading, Start, StepContext};
use super::identity::{FileKey, Stale};
use super::open_file::OpenFile;

impl Follower {
    /// Where to begin in a newly opened file: a valid checkpoint entry, else where an
    /// earlier reading stopped, else the start (or the end for `--tail.from=end`).
    pub(super) fn start_offset(
        &mut self,
        cx: &mut StepContext<'_>,
        file: &OpenFile,
    ) -> io::Result<u64> {
        match std::mem::replace(&mut self.start, Start::Beginning) {
            Start::Saved(saved) => match file.check_record(&saved.file)? {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), offset = saved.file.offset, "resuming from the checkpoint");
                    self.recorder.restore(saved.workflow);
                    return Ok(saved.file.offset);
                }
                Err(stale) => warn_stale(&self.path, stale),
            },
            Start::End => {
                if cx.ledger.released(file.key).is_none() {
                    return file.last_line_end();
                }
            }
            Start::Beginning => {}
        }
        if let Some(record) = cx.ledger.released(file.key) {
            match file.check_record(&record)? {
                Ok(()) => return Ok(record.offset),
                Err(_) => cx.ledger.forget(file.key),
            }
        }
        Ok(0)
    }

    /// With a checkpoint whose file is no longer at the path (it was rotated while the
    /// exporter was down), looks for it beside the path under a rotated name and drains
    /// what it has past the saved offset before the new file is read.
    pub(super) fn find_saved_file(&mut self, cx: &mut StepContext<'_>) {
        let Start::Saved(saved) = &self.start else {
            return;
        };
        if fs::metadata(&self.path).is_ok_and(|m| FileKey::of(&m) == saved.file.key) {
            return;
        }
        let saved = match std::mem::replace(&mut self.start, Start::Beginning) {
            Start::Saved(saved) => saved,
            other => return self.start = other,
        };
        let found = rotated_sibling(&self.path, saved.file.key).and_then(|path| {
            OpenFile::open(&path, 0, cx.max_line_bytes)
                .ok()
                .map(|f| (path, f))
        });
        let Some((old_path, mut file)) = found else {
            tracing::warn!(
                path = %self.path.display(),
                "the checkpointed file was replaced while the exporter was down and is not \
                 beside it under a rotated name; lines it got after the checkpoint are not read; the new file is read \
                 from its start"
            );
            return;
        };
        match file.check_record(&saved.file) {
            Ok(Ok(()))
                if !cx.ledger.is_held(file.key) && file.position(saved.file.offset).is_ok() =>
            {
                tracing::info!(path = %self.path.display(), rotated = %old_path.display(), "draining the checkpointed file under its rotated name");
                self.warn_skipped(cx, &file);
                self.recorder.restore(saved.workflow);
                if let Ok(record) = file.record_at(false) {
                    cx.ledger.hold(record, cx.now);
                }
                self.retired.push(Reading {
                    file,
                    quiet_since: cx.now,
                    flushed: false,
                });
            }
            Ok(Err(stale)) => warn_stale(&self.path, stale),
            _ => {}
        }
    }

    /// After a restart that found the checkpointed file under a rotated name: files beside
    /// it written later than it (the path was rotated more than once while the exporter was
    /// down) were at the path in between and are not read by this follower. They cannot be
    /// put in order reliably, so they are named in a warning rather than guessed at.
    fn warn_skipped(&self, cx: &StepContext<'_>, found: &OpenFile) {
        let Ok(found_modified) = found.metadata().and_then(|m| m.modified()) else {
            return;
        };
        let skipped: Vec<String> = rotated_siblings(&self.path)
            .into_iter()
            .filter(|candidate| {
                fs::metadata(candidate).is_ok_and(|m| {
                    let key = FileKey::of(&m);
                    key != found.key
                        && !cx.ledger.is_held(key)
                        && cx.ledger.released(key).is_none()
                        && m.modified()
                            .is_ok_and(|modified| modified >= found_modified)
                })
            })
            .map(|candidate| candidate.display().to_string())
            .collect();
        if !skipped.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                skipped = %skipped.join(", "),
                "the path was rotated more than once while the exporter was down; the files \
                 in between are not read (unless a glob follows their names)"
            );
        }
    }
}

fn warn_stale(path: &Path, stale: Stale) {
    tracing::warn!(
        path = %path.display(),
        reason = stale.as_str(),
        "checkpoint does not match the file; reading it from its start"
    );
}

/// A file beside `path` whose name begins with the path's file name (`app.log.1`,
/// `app.log-20250712`) and whose identity is `key`.
fn rotated_sibling(path: &Path, key: FileKey) -> Option<PathBuf> {
    rotated_siblings(path)
        .into_iter()
        .find(|candidate| fs::metadata(candidate).is_ok_and(|m| FileKey::of(&m) == key))
}

/// The files beside `path` whose names begin with the path's file name, sorted by name.
fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut siblings: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(name) && n != name)
        })
        .map(|entry| entry.path())
        .collect();
    siblings.sort();
    siblings
}
