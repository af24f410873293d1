//! The ledger: every file the tailer has read, by identity, and how far.
//!
//! Followers go by path, but a file can change paths (`app.log` renamed to `app.log.1`) and
//! still match a glob under its new name. Before a follower reads a file it asks the ledger:
//! a file another follower holds open is left to that follower, and a file read before is
//! taken up where the reading stopped. So a byte is read once whatever names it has had.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::identity::{FileKey, FileRecord};

/// A file that is not held and was not seen at any followed path for this long is
/// forgotten: it was rotated out of reach or deleted.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

struct Known {
    /// Where reading stopped; for a held file, where it stood when it was taken.
    record: FileRecord,
    held: bool,
    seen: Instant,
}

#[derive(Default)]
pub struct Ledger {
    known: HashMap<FileKey, Known>,
}

impl Ledger {
    /// Seeds the ledger with files a checkpoint remembers.
    pub fn seed(&mut self, records: impl IntoIterator<Item = FileRecord>, now: Instant) {
        for record in records {
            self.known.insert(
                record.key,
                Known {
                    record,
                    held: false,
                    seen: now,
                },
            );
        }
    }

    pub fn is_held(&self, key: FileKey) -> bool {
        self.known.get(&key).is_some_and(|known| known.held)
    }

    /// What was read of `key` before, if it is not held now.
    pub fn released(&self, key: FileKey) -> Option<FileRecord> {
        self.known
            .get(&key)
            .filter(|known| !known.held)
            .map(|known| known.record)
    }

    /// Marks a file as held by a follower, from `record` on.
    pub fn hold(&mut self, record: FileRecord, now: Instant) {
        self.known.insert(
            record.key,
            Known {
                record,
                held: true,
                seen: now,
            },
        );
    }

    /// A follower closed a file; `record` says how far it was processed.
    pub fn release(&mut self, record: FileRecord, now: Instant) {
        self.known.insert(
            record.key,
            Known {
                record,
                held: false,
                seen: now,
            },
        );
    }

    /// Drops what is known of `key` (its record proved stale).
    pub fn forget(&mut self, key: FileKey) {
        self.known.remove(&key);
    }

    /// A followed path names `key` now.
    pub fn touch(&mut self, key: FileKey, now: Instant) {
        if let Some(known) = self.known.get_mut(&key) {
            known.seen = now;
        }
    }

    /// Forgets files neither held nor seen for `FORGET_AFTER`.
    pub fn prune(&mut self, now: Instant) {
        self.known
            .retain(|_, known| known.held || now.duration_since(known.seen) < FORGET_AFTER);
    }

    /// The records of files not held, for a checkpoint.
    pub fn released_records(&self) -> impl Iterator<Item = FileRecord> + '_ {
        self.known
            .values()
            .filter(|known| !known.held)
            .map(|known| known.record)
    }
}
