//! The one door to standard error in `run` mode, shared by the child's forwarded stderr and
//! the exporter's own log lines.
//!
//! The child's bytes go out the moment they are read, a partial line included: they are
//! never held. Our own log lines are written only between the child's lines: while the
//! child is in the middle of a line, ours wait, and they go out right after the child's
//! next newline (or when its stderr closes). So a log line of ours never lands inside one
//! of the child's, and the child's bytes are never delayed by ours.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;

use super::fd_io::write_fully;

/// Our log lines waiting for the child to finish its line are capped at this many bytes;
/// lines beyond it are dropped (and counted in a note written once the wait ends).
pub const MAX_HELD_LOG_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
struct GateState {
    /// The last byte forwarded from the child was not a newline.
    child_mid_line: bool,
    /// The child's stderr closed in the middle of a line: our next line starts with `\n`.
    needs_newline: bool,
    /// Our log lines that wait for the child's newline.
    held: Vec<u8>,
    dropped_lines: u64,
}

/// Serialises writes to standard error between the child and our own log lines.
#[derive(Debug)]
pub struct StderrGate {
    state: Mutex<GateState>,
}

static GATE: StderrGate = StderrGate::new();

impl StderrGate {
    const fn new() -> StderrGate {
        StderrGate {
            state: Mutex::new(GateState {
                child_mid_line: false,
                needs_newline: false,
                held: Vec::new(),
                dropped_lines: 0,
            }),
        }
    }

    /// The gate of this process's standard error.
    pub fn global() -> &'static StderrGate {
        &GATE
    }

    /// Writes bytes the child wrote to its stderr, then any of our lines that waited for
    /// the end of the child's line.
    pub fn forward_child(&self, bytes: &[u8]) -> io::Result<()> {
        self.forward_child_to(&mut io::stderr().lock(), bytes)
    }

    /// Writes one of our own log lines now, or after the child's current line ends.
    pub fn write_own(&self, line: &[u8]) {
        self.write_own_to(&mut io::stderr().lock(), line);
    }

    /// The child's stderr has closed: what waited goes out now.
    pub fn child_closed(&self) {
        self.child_closed_to(&mut io::stderr().lock());
    }

    // The `_to` forms take the writer, so that tests can watch what goes out.

    fn forward_child_to(&self, out: &mut (impl Write + AsFd), bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if bytes.is_empty() {
            return Ok(());
        }
        write_fully(out, bytes)?;
        state.child_mid_line = bytes.last() != Some(&b'\n');
        if !state.child_mid_line {
            release_held(&mut state, out);
        }
        Ok(())
    }

    fn write_own_to(&self, out: &mut (impl Write + AsFd), line: &[u8]) {
        let mut state = self.lock();
        if state.child_mid_line {
            if state.held.len() + line.len() <= MAX_HELD_LOG_BYTES {
                state.held.extend_from_slice(line);
            } else {
                state.dropped_lines += 1;
            }
            return;
        }
        if std::mem::take(&mut state.needs_newline) {
            let _ = write_fully(out, b"\n");
        }
        // Nowhere is left to report a failed write to standard error.
        let _ = write_fully(out, line);
    }

    fn child_closed_to(&self, out: &mut (impl Write + AsFd)) {
        let mut state = self.lock();
        if state.child_mid_line {
            state.child_mid_line = false;
            state.needs_newline = true;
        }
        release_held(&mut state, out);
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // A panic while writing leaves at worst a partly written line; keep going.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Writes the held lines (after the newline a closed child still owes), and a note on
/// lines that were dropped because too many waited.
fn release_held(state: &mut GateState, out: &mut (impl Write + AsFd)) {
    if state.held.is_empty() && state.dropped_lines == 0 {
        return;
    }
    if std::mem::take(&mut state.needs_newline) {
        let _ = write_fully(out, b"\n");
    }
    let _ = write_fully(out, &state.held);
    state.held.clear();
    let dropped = std::mem::take(&mut state.dropped_lines);
    if dropped > 0 {
        let note = format!(
            "containerkit-exporter: {dropped} log lines dropped while the child's stderr was \
             in the middle of a line\n"
        );
        let _ = write_fully(out, note.as_bytes());
    }
}

/// Hands `tracing` a writer per event that goes through the gate as one whole line.
#[derive(Clone, Copy, Debug, Default)]
pub struct GateMakeWriter;

impl<'a> MakeWriter<'a> for GateMakeWriter {
    type Writer = OwnLine;

    fn make_writer(&'a self) -> OwnLine {
        OwnLine(Vec::with_capacity(256))
    }
}

/// One of our log lines, collected while it is formatted and written through the gate when
/// dropped, so that it is never split.
#[derive(Debug)]
pub struct OwnLine(Vec<u8>);

impl Write for OwnLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for OwnLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            StderrGate::global().write_own(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};

    /// Everything written to `file` so far.
    fn text(file: &mut File) -> String {
        let mut written = String::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_string(&mut written).unwrap();
        written
    }

    #[test]
    fn child_bytes_go_out_at_once_and_ours_wait_for_the_newline() {
        let gate = StderrGate::new();
        let mut out = tempfile::tempfile().unwrap();
        gate.forward_child_to(&mut out, b"child: half").unwrap();
        assert_eq!(text(&mut out), "child: half");
        gate.write_own_to(&mut out, b"ours\n");
        assert_eq!(text(&mut out), "child: half");
        gate.forward_child_to(&mut out, b" a line\nchild: next")
            .unwrap();
        assert_eq!(text(&mut out), "child: half a line\nchild: next");
        gate.forward_child_to(&mut out, b"\n").unwrap();
        assert_eq!(text(&mut out), "child: half a line\nchild: next\nours\n");
    }

    #[test]
    fn ours_go_out_at_once_between_child_lines() {
        let gate = StderrGate::new();
        let mut out = tempfile::tempfile().unwrap();
        gate.forward_child_to(&mut out, b"child\n").unwrap();
        gate.write_own_to(&mut out, b"ours\n");
        assert_eq!(text(&mut out), "child\nours\n");
    }

    #[test]
    fn a_child_that_closes_mid_line_gets_its_line_ended_before_ours() {
        let gate = StderrGate::new();
        let mut out = tempfile::tempfile().unwrap();
        gate.forward_child_to(&mut out, b"last words").unwrap();
        gate.child_closed_to(&mut out);
        assert_eq!(text(&mut out), "last words");
        gate.write_own_to(&mut out, b"ours\n");
        gate.write_own_to(&mut out, b"more\n");
        assert_eq!(text(&mut out), "last words\nours\nmore\n");
    }

    #[test]
    fn held_lines_are_released_when_the_child_closes() {
        let gate = StderrGate::new();
        let mut out = tempfile::tempfile().unwrap();
        gate.forward_child_to(&mut out, b"partial").unwrap();
        gate.write_own_to(&mut out, b"ours\n");
        gate.child_closed_to(&mut out);
        assert_eq!(text(&mut out), "partial\nours\n");
    }

    #[test]
    fn held_lines_are_bounded_and_drops_are_reported() {
        let gate = StderrGate::new();
        let mut out = tempfile::tempfile().unwrap();
        gate.forward_child_to(&mut out, b"partial").unwrap();
        let line = vec![b'x'; MAX_HELD_LOG_BYTES / 2];
        for _ in 0..3 {
            gate.write_own_to(&mut out, &line);
        }
        gate.forward_child_to(&mut out, b"\n").unwrap();
        let written = text(&mut out);
        let held_line = "x".repeat(MAX_HELD_LOG_BYTES / 2);
        assert_eq!(written.matches(&held_line).count(), 2);
        assert!(written.ends_with(
            "1 log lines dropped while the child's stderr was in the middle of a line\n"
        ));
    }
}
