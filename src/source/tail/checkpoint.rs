//! Checkpoints (`--tail.checkpoint-file`): where each followed path was, saved so that a
//! restarted exporter goes on after the last line it processed.
//!
//! A checkpoint is one JSON document. For each followed path it keeps the identity of the
//! file read there, the offset just past the last complete line processed, a hash of the
//! bytes before that offset, and the workflow state of the path's source; it also keeps the
//! files that were read and closed (rotated away), so that a glob matching their new names
//! does not read them again. It is written whole to a temporary file, synced and renamed
//! over the old one, so a crash leaves either the old or the new checkpoint, never half.
//!
//! A checkpoint is only trusted where the file still matches it: a record whose file is
//! another one, shorter, or holds other bytes before the offset is stale, and the file is
//! read from its start. A stale or corrupt checkpoint can make the exporter read data
//! again, never skip it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::recorder::WorkflowState;

use super::identity::FileRecord;

/// The format version written; a checkpoint with another one is ignored.
pub const CHECKPOINT_VERSION: u32 = 1;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// One entry per followed path that had a file open.
    pub sources: Vec<SavedSource>,
    /// Files read and closed, with how far they were read.
    pub files: Vec<FileRecord>,
}

/// What a checkpoint keeps of one followed path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedSource {
    /// The path as it was given or matched.
    pub path: PathBuf,
    /// The file read there and the offset just past its last processed line.
    pub file: FileRecord,
    /// The workflow state of the path's source at that offset.
    pub workflow: WorkflowState,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the checkpoint: {0}")]
    Read(#[from] io::Error),
    #[error("the checkpoint is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "the checkpoint has format version {0}, this exporter reads version {CHECKPOINT_VERSION}"
    )]
    Version(u32),
}

/// A checkpoint that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the checkpoint {}: {error}", .path.display())]
pub struct SaveError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Reads the checkpoint at `path`; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Checkpoint>, LoadError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(LoadError::Read(error)),
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&text)?;
    if checkpoint.version != CHECKPOINT_VERSION {
        return Err(LoadError::Version(checkpoint.version));
    }
    Ok(Some(checkpoint))
}

/// Writes `checkpoint` to `path` atomically: a temporary file beside it, synced, then
/// renamed over `path`, and the directory synced so that the rename itself is durable.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let text = serde_json::to_vec_pretty(checkpoint).map_err(io::Error::other)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);

    let mut file = File::create(&temporary)?;
    file.write_all(&text)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;

    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Some file systems cannot sync a directory; the rename is then as durable as they allow.
    if let Ok(directory) = File::open(directory) {
        let _ = directory.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tail::identity::{FileKey, Fingerprint};

    fn sample() -> Checkpoint {
        let record = FileRecord {
            key: FileKey {
                device: 1,
                inode: 2,
                born: Some(3),
            },
            head: Fingerprint { len: 3, hash: 4 },
            offset: 5,
            window: Fingerprint { len: 5, hash: 6 },
        };
        Checkpoint {
            version: CHECKPOINT_VERSION,
            sources: vec![SavedSource {
                path: PathBuf::from("logs/app.log"),
                file: record,
                workflow: WorkflowState::default(),
            }],
            files: vec![record],
        }
    }

    #[test]
    fn saves_and_loads_the_same_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        assert!(load(&path).unwrap().is_none());
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        assert!(!dir.path().join("checkpoint.json.tmp").exists());
    }

    #[test]
    fn corrupt_and_foreign_checkpoints_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        fs::write(&path, b"{\"version\":1,\"sources\":[{").unwrap();
        assert!(matches!(load(&path), Err(LoadError::Corrupt(_))));
        fs::write(&path, b"{\"version\":9,\"sources\":[],\"files\":[]}").unwrap();
        assert!(matches!(load(&path), Err(LoadError::Version(9))));
    }
}
