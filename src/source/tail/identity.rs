//! What makes a followed file the same file: its (device, inode) pair, a hash of its first
//! bytes, and a hash of the bytes just before the offset read so far.
//!
//! The pair alone is not enough: once a file is deleted and closed, the file system may give
//! its inode to the next file created. The head hash tells such a reused inode from the old
//! file, and the window hash tells a file that was truncated and grew back past the old
//! offset from one that was only appended to. The same records are saved in checkpoints.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many of a file's first bytes its head hash covers.
pub const HEAD_BYTES: usize = 1024;

/// How many bytes before the read offset the window hash covers.
pub const WINDOW_BYTES: usize = 1024;

/// The device and inode of a file, and its birth time where the file system keeps one.
///
/// A reused inode gets a new birth time, which settles what the hashes alone cannot: a new
/// file whose first bytes equal the old file's (a short file, a fixed banner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub device: u64,
    pub inode: u64,
    /// Nanoseconds since the Unix epoch; absent where `statx` gives no birth time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<u64>,
}

impl FileKey {
    pub fn of(metadata: &Metadata) -> FileKey {
        let born = metadata
            .created()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_nanos()).ok());
        FileKey {
            device: metadata.dev(),
            inode: metadata.ino(),
            born,
        }
    }
}

/// A hash of a run of a file's bytes, and how many bytes it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes`: 64-bit FNV-1a, chosen because it is stable across
    /// builds and releases (checkpoints outlive the process), not for strength.
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Fingerprint {
            len: bytes.len() as u32,
            hash,
        }
    }

    /// The fingerprint of the `len` bytes of `file` that end at `end`; `None` when the file
    /// is too short to have them.
    pub fn read(file: &File, end: u64, len: usize) -> io::Result<Option<Fingerprint>> {
        let Some(start) = end.checked_sub(len as u64) else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; len];
        match file.read_exact_at(&mut bytes, start) {
            Ok(()) => Ok(Some(Fingerprint::of(&bytes))),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Whether the bytes of `file` that end at `end` still hash to this fingerprint.
    pub fn matches(&self, file: &File, end: u64) -> io::Result<bool> {
        Ok(Fingerprint::read(file, end, self.len as usize)? == Some(*self))
    }
}

/// The head fingerprint of a file whose size is `size`: its first `HEAD_BYTES` bytes, or
/// all of them when it is shorter.
pub fn head_of(file: &File, size: u64) -> io::Result<Fingerprint> {
    let len = size.min(HEAD_BYTES as u64);
    Ok(Fingerprint::read(file, len, len as usize)?.unwrap_or_default())
}

/// The window fingerprint before `offset`: up to `WINDOW_BYTES` bytes that end there.
pub fn window_before(file: &File, offset: u64) -> io::Result<Fingerprint> {
    let len = offset.min(WINDOW_BYTES as u64) as usize;
    Ok(Fingerprint::read(file, offset, len)?.unwrap_or_default())
}

/// A file's identity and a position in it: what the tailer remembers of a file it read, and
/// what a checkpoint saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    #[serde(flatten)]
    pub key: FileKey,
    pub head: Fingerprint,
    /// Bytes processed: the position to go on from.
    pub offset: u64,
    /// The bytes just before `offset`.
    pub window: Fingerprint,
}

/// Why a record no longer describes the file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    /// Another device or inode.
    OtherFile,
    /// The file is now shorter than the recorded offset.
    Shorter,
    /// Its first bytes changed: the inode was reused, or the file was rewritten.
    HeadChanged,
    /// The bytes before the offset changed: the file was truncated and grew back.
    WindowChanged,
}

impl Stale {
    pub fn as_str(self) -> &'static str {
        match self {
            Stale::OtherFile => "another file (device or inode differs)",
            Stale::Shorter => "file is shorter than the saved offset",
            Stale::HeadChanged => "first bytes differ (inode reused or file rewritten)",
            Stale::WindowChanged => "bytes before the saved offset differ",
        }
    }
}

impl FileRecord {
    /// The record of `file` at `offset`.
    pub fn take(file: &File, key: FileKey, head: Fingerprint, offset: u64) -> io::Result<Self> {
        Ok(FileRecord {
            key,
            head,
            offset,
            window: window_before(file, offset)?,
        })
    }

    /// Checks that `file` (whose metadata is `metadata`) is the file this record was taken
    /// of, with the same bytes before the offset.
    pub fn check(&self, file: &File, metadata: &Metadata) -> io::Result<Result<(), Stale>> {
        if FileKey::of(metadata) != self.key {
            return Ok(Err(Stale::OtherFile));
        }
        if metadata.len() < self.offset {
            return Ok(Err(Stale::Shorter));
        }
        if !self.head.matches(file, u64::from(self.head.len))? {
            return Ok(Err(Stale::HeadChanged));
        }
        if !self.window.matches(file, self.offset)? {
            return Ok(Err(Stale::WindowChanged));
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;

    #[test]
    fn fingerprint_is_fnv1a() {
        // Published FNV-1a 64 test values.
        assert_eq!(Fingerprint::of(b"").hash, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fingerprint::of(b"a").hash, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn record_tells_appends_from_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let header = vec![b'h'; 2 * HEAD_BYTES];
        let mut file = File::create(&path).unwrap();
        file.write_all(&header).unwrap();
        file.write_all(b"one\ntwo\n").unwrap();
        let offset = header.len() as u64 + 8;
        let reader = File::open(&path).unwrap();
        let metadata = reader.metadata().unwrap();
        let head = head_of(&reader, metadata.len()).unwrap();
        let record = FileRecord::take(&reader, FileKey::of(&metadata), head, offset).unwrap();
        let check = |record: &FileRecord| record.check(&reader, &reader.metadata().unwrap());

        file.write_all(b"three\n").unwrap();
        assert_eq!(check(&record).unwrap(), Ok(()));

        file.set_len(0).unwrap();
        assert_eq!(check(&record).unwrap(), Err(Stale::Shorter));

        let mut writer = fs::OpenOptions::new().append(true).open(&path).unwrap();
        writer.write_all(&header).unwrap();
        writer.write_all(b"one\ntwX\nthree\n").unwrap();
        assert_eq!(check(&record).unwrap(), Err(Stale::WindowChanged));

        file.set_len(0).unwrap();
        writer.write_all(b"other\n").unwrap();
        writer.write_all(&header).unwrap();
        writer.write_all(&header).unwrap();
        assert_eq!(check(&record).unwrap(), Err(Stale::HeadChanged));
    }
}
