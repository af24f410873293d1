//! Sources: where a stream of log bytes comes from (files once, standard input, followed
//! files, a child process), and the pipeline that carries one source's bytes through
//! framing and parsing.
//!
//! Each source owns one `Pipeline`: bytes in, metric updates out.

pub mod replay;
pub mod run;
pub mod stdin;
pub mod tail;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::lines::LineFramer;
use crate::metrics::Metrics;
use crate::recorder::{Outcome, Recorder};

/// Size of one read from a source.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// One source's line framer and recorder.
pub struct Pipeline {
    framer: LineFramer,
    recorder: Recorder,
}

impl Pipeline {
    pub fn new(source: &str, metrics: Arc<Metrics>, max_line_bytes: usize) -> Pipeline {
        Pipeline {
            framer: LineFramer::new(max_line_bytes),
            recorder: Recorder::new(source, metrics),
        }
    }

    pub fn recorder(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    pub fn framer(&mut self) -> &mut LineFramer {
        &mut self.framer
    }

    /// Frames and records `bytes`, handing each line's outcome to `observe`.
    pub fn feed_with(&mut self, bytes: &[u8], observe: &mut impl FnMut(Outcome)) {
        let recorder = &mut self.recorder;
        recorder.count_bytes(bytes.len());
        self.framer
            .push(bytes, &mut |frame| observe(recorder.record(frame)));
    }

    /// Frames and records `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.feed_with(bytes, &mut |_| {});
    }

    /// Records a last line that has no newline, at the end of the input.
    pub fn finish_with(&mut self, observe: &mut impl FnMut(Outcome)) {
        let recorder = &mut self.recorder;
        self.framer
            .finish(&mut |frame| observe(recorder.record(frame)));
    }

    pub fn finish(&mut self) {
        self.finish_with(&mut |_| {});
    }

    /// Removes every series the recorder created for this source (see `Recorder::forget`).
    pub fn forget(self) {
        self.recorder.forget();
    }
}

/// Reads `reader` to its end (or until `shutdown`), feeding `pipeline`, then flushes the
/// last partial line. Returns the read error that ended the stream, if one did.
pub async fn pump(
    mut reader: impl AsyncRead + Unpin,
    pipeline: &mut Pipeline,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    let result = loop {
        let read = tokio::select! {
            read = reader.read(&mut buffer) => read,
            () = shutdown.cancelled() => break Ok(()),
        };
        match read {
            Ok(0) => break Ok(()),
            Ok(n) => pipeline.feed(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(error),
        }
    };
    pipeline.finish();
    result
}
