//! One open file of a followed path: the handle, how far it was read, its own line framer,
//! and the checks that tell an append from a truncation.
//!
//! Each open file frames its own lines, so that a rotated file still being drained and the
//! new file at the same path never join their bytes into one line. Both feed the one
//! `Recorder` of their source.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crate::lines::{Frame, LineFramer};
use crate::recorder::Recorder;

use super::identity::{FileKey, FileRecord, Fingerprint, HEAD_BYTES, Stale, WINDOW_BYTES, head_of};

/// How a file changed since it was last checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing new to read.
    Unchanged,
    /// Bytes were appended.
    Grew,
    /// The size fell below the read offset.
    Shrunk,
    /// The bytes before the read offset (or the first bytes) are not the ones read: the
    /// file was truncated and has grown back, maybe past the old offset.
    Rewritten,
}

impl Change {
    /// The `kind` label of a truncation.
    pub fn truncation_kind(self) -> &'static str {
        match self {
            Change::Shrunk => "shrunk",
            _ => "rewritten",
        }
    }
}

/// An open file and the position read in it.
pub struct OpenFile {
    file: File,
    pub key: FileKey,
    /// Fingerprint of the first bytes, grown with the file up to `HEAD_BYTES`.
    pub head: Fingerprint,
    /// Bytes read (and pushed into the framer) so far.
    pub offset: u64,
    /// Where the framer started: its byte counts are relative to this.
    framer_base: u64,
    framer: LineFramer,
    max_line_bytes: usize,
    /// Leading NUL bytes of the framer already reported.
    nuls_reported: u64,
    /// The last bytes read, up to `WINDOW_BYTES`: what must still be before `offset`.
    window: Vec<u8>,
    /// Size and modification time at the last check; equal ones mean nothing changed.
    seen: (u64, i64, i64),
    /// Whether the file was renamed or deleted: its last link count.
    pub links: u64,
}

impl OpenFile {
    /// Opens `path` and positions it at `offset` (clamped to the file's size).
    /// Only regular files are opened: opening a FIFO would block the tailer's thread until a
    /// writer came, and a directory or device is no log.
    pub fn open(path: &Path, offset: u64, max_line_bytes: usize) -> io::Result<OpenFile> {
        if !std::fs::metadata(path)?.is_file() {
            return Err(io::Error::other(
                "not a regular file (a directory, FIFO, socket or device)",
            ));
        }
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let head = head_of(&file, metadata.len())?;
        let offset = offset.min(metadata.len());
        let window_len = offset.min(WINDOW_BYTES as u64) as usize;
        let mut window = vec![0u8; window_len];
        file.read_exact_at(&mut window, offset - window_len as u64)?;
        Ok(OpenFile {
            key: FileKey::of(&metadata),
            head,
            offset,
            framer_base: offset,
            framer: LineFramer::new(max_line_bytes),
            max_line_bytes,
            nuls_reported: 0,
            window,
            seen: (u64::MAX, 0, 0),
            links: metadata.nlink(),
            file,
        })
    }

    pub fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata()
    }

    /// Offset just past the last complete line handed to the recorder.
    pub fn consumed(&self) -> u64 {
        self.framer_base + self.framer.consumed_bytes()
    }

    /// Compares the file with what was read of it. `metadata` is the file's own (`fstat`).
    pub fn check(&mut self, metadata: &Metadata) -> io::Result<Change> {
        let size = metadata.len();
        self.links = metadata.nlink();
        let seen = (size, metadata.mtime(), metadata.mtime_nsec());
        if seen == self.seen && size == self.offset {
            return Ok(Change::Unchanged);
        }
        self.seen = seen;
        if size < self.offset {
            return Ok(Change::Shrunk);
        }
        if !self.head.matches(&self.file, u64::from(self.head.len))? {
            return Ok(Change::Rewritten);
        }
        if !self.window.is_empty() {
            let mut now = vec![0u8; self.window.len()];
            let start = self.offset - self.window.len() as u64;
            match self.file.read_exact_at(&mut now, start) {
                Ok(()) if now == self.window => {}
                Ok(()) => return Ok(Change::Rewritten),
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Change::Shrunk);
                }
                Err(error) => return Err(error),
            }
        }
        if self.head.len < HEAD_BYTES as u32 && size > u64::from(self.head.len) {
            self.head = head_of(&self.file, size)?;
        }
        Ok(if size > self.offset {
            Change::Grew
        } else {
            Change::Unchanged
        })
    }

    /// Starts over at the beginning after a truncation: the partial line held is flushed
    /// into `recorder` (its end will not come), and everything is read anew.
    pub fn restart(&mut self, recorder: &mut Recorder) -> io::Result<()> {
        self.flush(recorder);
        let size = self.file.metadata()?.len();
        self.head = head_of(&self.file, size)?;
        self.offset = 0;
        self.framer_base = 0;
        self.framer = LineFramer::new(self.max_line_bytes);
        self.nuls_reported = 0;
        self.window.clear();
        self.seen = (u64::MAX, 0, 0);
        Ok(())
    }

    /// Reads at most `budget` bytes into `buffer`-sized chunks and feeds them to `recorder`.
    /// Returns the bytes read; fewer than `budget` means the end of the file was reached.
    pub fn read_into(
        &mut self,
        recorder: &mut Recorder,
        buffer: &mut [u8],
        budget: usize,
    ) -> io::Result<usize> {
        let mut total = 0;
        while total < budget {
            let want = buffer.len().min(budget - total);
            let n = match self.file.read_at(&mut buffer[..want], self.offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            let chunk = &buffer[..n];
            recorder.count_bytes(n);
            self.framer
                .push(chunk, &mut |frame: Frame<'_>| drop(recorder.record(frame)));
            self.offset += n as u64;
            self.remember(chunk);
            total += n;
        }
        Ok(total)
    }

    /// Hands a held partial line to `recorder`, as at the end of the file's input.
    pub fn flush(&mut self, recorder: &mut Recorder) {
        self.framer
            .finish(&mut |frame: Frame<'_>| drop(recorder.record(frame)));
    }

    /// Leading NUL bytes skipped since the last call.
    pub fn take_new_nuls(&mut self) -> u64 {
        let total = self.framer.leading_nul_bytes();
        let new = total - self.nuls_reported;
        self.nuls_reported = total;
        new
    }

    fn remember(&mut self, chunk: &[u8]) {
        if chunk.len() >= WINDOW_BYTES {
            self.window.clear();
            self.window
                .extend_from_slice(&chunk[chunk.len() - WINDOW_BYTES..]);
            return;
        }
        self.window.extend_from_slice(chunk);
        let excess = self.window.len().saturating_sub(WINDOW_BYTES);
        self.window.drain(..excess);
    }
}

impl OpenFile {
    /// Moves the read position to `offset` before anything was read.
    pub fn position(&mut self, offset: u64) -> io::Result<()> {
        let window_len = offset.min(WINDOW_BYTES as u64) as usize;
        let mut window = vec![0u8; window_len];
        self.file
            .read_exact_at(&mut window, offset - window_len as u64)?;
        self.window = window;
        self.offset = offset;
        self.framer_base = offset;
        self.framer = LineFramer::new(self.max_line_bytes);
        self.nuls_reported = 0;
        Ok(())
    }

    /// Checks a remembered or saved record against this file.
    pub fn check_record(&self, record: &FileRecord) -> io::Result<Result<(), Stale>> {
        record.check(&self.file, &self.file.metadata()?)
    }

    /// The offset just past the last `\n` in the file now (0 when it has none).
    pub fn last_line_end(&self) -> io::Result<u64> {
        let mut end = self.file.metadata()?.len();
        let mut block = vec![0u8; 64 * 1024];
        while end > 0 {
            let start = end.saturating_sub(block.len() as u64);
            let block = &mut block[..(end - start) as usize];
            self.file.read_exact_at(block, start)?;
            if let Some(newline) = memchr::memrchr(b'\n', block) {
                return Ok(start + newline as u64 + 1);
            }
            end = start;
        }
        Ok(0)
    }

    /// The record of what was processed, for handing the file back: past the flushed last
    /// byte when `flushed`, else just past the last complete line.
    pub fn record_at(&self, flushed: bool) -> io::Result<FileRecord> {
        let offset = if flushed {
            self.offset
        } else {
            self.consumed()
        };
        FileRecord::take(&self.file, self.key, self.head, offset)
    }
}
