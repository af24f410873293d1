//! The three copies between our standard streams and the child's, one thread each.
//!
//! Each copy reads whatever is there (up to `COPY_CHUNK_BYTES`) and writes it on at once:
//! no line buffering, so a message without a newline is delivered the moment the child
//! wrote it. Observation comes after the write: the MCP observer reads the stdout chunk
//! that was already forwarded, and the stderr chunk is framed and parsed after it went
//! through the stderr gate. Plain threads with blocking I/O do this with one read and one
//! write per chunk; they are never joined, and end with the process.
//!
//! Ends mirror what the child and the client would see without us: EOF on our stdin
//! closes the child's stdin; when the child closes its stdout, ours is closed too (so the
//! client sees EOF at once, not when we exit after the linger); when the client stops
//! reading our stdout, the child's stdout is closed; when the child stops reading its
//! stdin, ours is closed. Our stderr stays open for our own log lines: if it cannot be
//! written, the child's stderr is still read for the metrics.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

use crate::lines::LineFramer;

use super::fd_io::{read_some, write_fully};
use super::mcp::McpObserver;
use super::merge::MergedWorkflow;
use super::stderr_gate::StderrGate;

/// Most bytes read (and then written) at once.
pub const COPY_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes passed through, one counter per direction.
pub struct Counters {
    pub stdin: Counter,
    pub stdout: Counter,
    pub stderr: Counter,
}

/// What the stdout and stderr copies need besides the pipes.
pub struct Observers {
    pub mcp: McpObserver,
    pub workflow: Arc<MergedWorkflow>,
    pub max_line_bytes: usize,
}

/// Completion of the two output copies: each sender is dropped when its stream ended.
pub struct Outputs {
    pub stdout_done: oneshot::Receiver<()>,
    pub stderr_done: oneshot::Receiver<()>,
}

/// Starts the three copies.
pub fn start(
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
    counters: Counters,
    observers: Observers,
) -> io::Result<Outputs> {
    let (stdout_sender, stdout_done) = oneshot::channel();
    let (stderr_sender, stderr_done) = oneshot::channel();
    let Counters {
        stdin: stdin_bytes,
        stdout: stdout_bytes,
        stderr: stderr_bytes,
    } = counters;
    let Observers {
        mcp,
        workflow,
        max_line_bytes,
    } = observers;

    let our_stdin = duplicate(io::stdin().as_fd());
    let our_stdout = duplicate(io::stdout().as_fd());
    spawn_named("run-stdin", move || {
        forward_stdin(our_stdin, stdin, stdin_bytes)
    })?;
    spawn_named("run-stdout", move || {
        forward_stdout(stdout, our_stdout, stdout_bytes, mcp);
        drop(stdout_sender);
    })?;
    spawn_named("run-stderr", move || {
        forward_stderr(stderr, stderr_bytes, &workflow, max_line_bytes);
        drop(stderr_sender);
    })?;
    Ok(Outputs {
        stdout_done,
        stderr_done,
    })
}

fn spawn_named(name: &str, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map(|_| ())
}

fn forward_stdin(ours: Option<File>, mut child: ChildStdin, bytes: Counter) {
    let Some(mut ours) = ours else {
        tracing::debug!("standard input is not open; closing the child's");
        return;
    };
    let end = copy(
        &mut ours,
        |chunk| {
            write_fully(&mut child, chunk)?;
            bytes.inc_by(chunk.len() as u64);
            Ok(())
        },
        |_| {},
    );
    match end {
        CopyEnd::SourceClosed => {
            tracing::debug!("standard input closed; closing the child's");
        }
        CopyEnd::SourceFailed(error) => {
            tracing::warn!(error = %error, "reading standard input failed; closing the child's");
        }
        CopyEnd::SinkFailed(error) => {
            tracing::debug!(error = %error, "the child closed its standard input; closing ours");
            drop(ours);
            replace_with_dev_null(libc::STDIN_FILENO);
        }
    }
    // Dropping `child` here closes the child's stdin: it reads EOF.
}

fn forward_stdout(
    mut child: ChildStdout,
    ours: Option<File>,
    bytes: Counter,
    mut observer: McpObserver,
) {
    if let Some(mut ours) = ours {
        let end = copy(
            &mut child,
            |chunk| {
                write_fully(&mut ours, chunk)?;
                bytes.inc_by(chunk.len() as u64);
                Ok(())
            },
            |chunk| observer.observe(chunk),
        );
        match end {
            CopyEnd::SourceClosed => observer.finish(),
            CopyEnd::SourceFailed(error) => {
                tracing::warn!(error = %error, "reading the child's standard output failed");
            }
            CopyEnd::SinkFailed(error) => {
                tracing::info!(
                    error = %error,
                    "standard output is no longer read; closing the child's"
                );
            }
        }
    } else {
        tracing::debug!("standard output is not open; closing the child's");
    }
    drop(child);
    replace_with_dev_null(libc::STDOUT_FILENO);
}

fn forward_stderr(
    mut child: ChildStderr,
    bytes: Counter,
    workflow: &MergedWorkflow,
    max_line_bytes: usize,
) {
    let gate = StderrGate::global();
    let mut framer = LineFramer::new(max_line_bytes);
    let mut forwarding = true;
    let end = copy(
        &mut child,
        |chunk| {
            if forwarding {
                match gate.forward_child(chunk) {
                    Ok(()) => {
                        bytes.inc_by(chunk.len() as u64);
                    }
                    // Standard error is gone; the lines still count for the metrics.
                    Err(_) => forwarding = false,
                }
            }
            Ok(())
        },
        |chunk| workflow.read_log(&mut framer, chunk),
    );
    workflow.finish_log(&mut framer);
    gate.child_closed();
    if let CopyEnd::SourceFailed(error) = end {
        tracing::warn!(error = %error, "reading the child's standard error failed");
    }
}

/// How a copy ended.
#[derive(Debug)]
pub enum CopyEnd {
    /// The source reached EOF.
    SourceClosed,
    SourceFailed(io::Error),
    /// Delivering a chunk failed (the reader went away).
    SinkFailed(io::Error),
}

/// Reads `from` to its end, handing each chunk to `deliver` and then to `observe`.
pub fn copy(
    from: &mut (impl Read + AsFd),
    mut deliver: impl FnMut(&[u8]) -> io::Result<()>,
    mut observe: impl FnMut(&[u8]),
) -> CopyEnd {
    let mut buffer = vec![0u8; COPY_CHUNK_BYTES];
    loop {
        let read = match read_some(from, &mut buffer) {
            Ok(0) => return CopyEnd::SourceClosed,
            Ok(read) => read,
            Err(error) => return CopyEnd::SourceFailed(error),
        };
        let chunk = &buffer[..read];
        if let Err(error) = deliver(chunk) {
            return CopyEnd::SinkFailed(error);
        }
        observe(chunk);
    }
}

/// Our own descriptor for one of the standard streams, bypassing the standard library's
/// buffers (standard output is line-buffered there); `None` when the stream is not open.
fn duplicate(fd: BorrowedFd<'_>) -> Option<File> {
    fd.try_clone_to_owned().ok().map(File::from)
}

/// Closes one of our standard streams for whoever is at the other end, keeping its number
/// taken (by `/dev/null`) so that no file opened later can land on it.
fn replace_with_dev_null(target: RawFd) {
    let null = match OpenOptions::new().read(true).write(true).open("/dev/null") {
        Ok(null) => null,
        Err(error) => {
            tracing::warn!(error = %error, fd = target, "cannot open /dev/null to close a stream");
            return;
        }
    };
    // SAFETY: both descriptors are valid; dup2 atomically closes `target` and makes it a
    // copy of `null`. Nothing else in this process owns `target` as a Rust object.
    if unsafe { libc::dup2(null.as_raw_fd(), target) } < 0 {
        let error = io::Error::last_os_error();
        tracing::warn!(error = %error, fd = target, "cannot close a standard stream");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};

    use super::*;

    #[test]
    fn copy_delivers_then_observes_every_chunk_and_reports_the_end() {
        let mut source = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..=255u8)
            .cycle()
            .take(3 * COPY_CHUNK_BYTES + 17)
            .collect();
        source.write_all(&data).unwrap();
        source.rewind().unwrap();

        let mut delivered = Vec::new();
        let mut observed = 0;
        let end = copy(
            &mut source,
            |chunk| {
                delivered.extend_from_slice(chunk);
                Ok(())
            },
            |chunk| observed += chunk.len(),
        );
        assert!(matches!(end, CopyEnd::SourceClosed));
        assert_eq!(delivered, data);
        assert_eq!(observed, data.len());
    }

    #[test]
    fn a_failed_delivery_stops_the_copy_before_observation() {
        let mut source = tempfile::tempfile().unwrap();
        source.write_all(b"abc").unwrap();
        source.rewind().unwrap();
        let mut observed = false;
        let end = copy(
            &mut source,
            |_| Err(io::ErrorKind::BrokenPipe.into()),
            |_| observed = true,
        );
        assert!(
            matches!(end, CopyEnd::SinkFailed(error) if error.kind() == io::ErrorKind::BrokenPipe)
        );
        assert!(!observed);
    }
}
