//! A property test: random sequences of writes, rotations, truncations, deletions and
//! restarts, checked against a model of what must be counted. Every complete line written
//! to the followed file is one PROGRESS event, and across all exporter runs each is counted
//! exactly once.
//!
//! The model's one assumption is the one every tailer needs: the file was looked at (a
//! cycle ran) after its last write and before it is rotated, truncated or deleted. Bytes
//! written and destroyed between two looks are beyond any reader.

mod tail_support;

use std::fs;

use proptest::prelude::*;
use tail_support::*;

#[derive(Clone, Debug)]
enum Op {
    /// Completes a pending half line, then appends whole lines.
    Append(usize),
    /// Appends the first half of a line; its writer finishes it later.
    AppendHalf,
    Poll,
    /// Lets the linger time pass.
    Wait,
    /// Renames the file to `app.log.1`; the next append creates a new one.
    Rename,
    /// Copies the file aside (to a name no glob matches) and empties it.
    CopyTruncate,
    /// Empties the file, then writes lines into it.
    TruncateAndRegrow(usize),
    Delete,
    /// Stops the exporter as shutdown does and starts a new one.
    Restart,
    /// Writes the checkpoint and kills the exporter without any shutdown step.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..6).prop_map(Op::Append),
        1 => Just(Op::AppendHalf),
        3 => Just(Op::Poll),
        1 => Just(Op::Wait),
        1 => Just(Op::Rename),
        1 => Just(Op::CopyTruncate),
        1 => (0usize..12).prop_map(Op::TruncateAndRegrow),
        1 => Just(Op::Delete),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

/// The writer's side of the model: what it wrote that must be counted.
struct Writer {
    next: usize,
    /// Whole lines written.
    written: u64,
    /// The rest of a line whose first half is in the file.
    pending: Option<String>,
}

impl Writer {
    fn append(&mut self, h: &Harness, lines: usize) {
        let log = h.path("app.log");
        if let Some(rest) = self.pending.take() {
            append(&log, &rest);
            self.written += 1;
        }
        for _ in 0..lines {
            append(&log, &line(self.next));
            self.next += 1;
            self.written += 1;
        }
    }

    fn append_half(&mut self, h: &Harness) {
        if self.pending.is_some() {
            return;
        }
        let whole = line(self.next);
        self.next += 1;
        let (head, rest) = whole.split_at(whole.len() / 2);
        append(&h.path("app.log"), head);
        self.pending = Some(rest.to_owned());
    }

    /// The file under the half line is replaced or emptied: the line is never finished.
    fn abandon_half(&mut self) {
        self.pending = None;
    }
}

/// Events of sources whose series were removed since the last look (`seen`, updated).
fn forgotten(
    metrics: &containerkit_exporter::metrics::Metrics,
    sources: &[String],
    seen: &mut [u64],
) -> u64 {
    let mut lost = 0;
    for (source, seen) in sources.iter().zip(seen) {
        let now = events(metrics, source);
        if now < *seen {
            lost += *seen;
        }
        *seen = now;
    }
    lost
}

fn run(glob: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let checkpoint = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let checkpoint_path = checkpoint.to_path_buf();
    let pattern = if glob { "app.log*" } else { "app.log" };
    let mut h = Harness::with(&[pattern], |config| {
        config.checkpoint_file = Some(checkpoint_path);
    });
    let sources = ["app.log", "app.log.1"].map(|name| h.source(name));
    let mut writer = Writer {
        next: 0,
        written: 0,
        pending: None,
    };
    let mut counted_before = 0u64;
    let count = |metrics: &containerkit_exporter::metrics::Metrics| {
        sources.iter().map(|s| events(metrics, s)).sum::<u64>()
    };
    // A glob match that is gone for good takes its series with it: what it had counted
    // is taken from the last look before its counter went back to zero.
    let mut seen = [0u64; 2];
    let log = h.path("app.log");

    for op in ops {
        match op {
            Op::Append(n) => writer.append(&h, *n),
            Op::AppendHalf => writer.append_half(&h),
            Op::Poll => h.poll(),
            Op::Wait => h.advance(h.config.linger),
            Op::Rename if log.exists() => {
                h.poll();
                fs::rename(&log, h.path("app.log.1")).unwrap();
                writer.abandon_half();
            }
            Op::CopyTruncate if log.exists() => {
                h.poll();
                fs::copy(&log, h.path("copied")).unwrap();
                truncate(&log);
                writer.abandon_half();
            }
            Op::TruncateAndRegrow(n) if log.exists() => {
                h.poll();
                truncate(&log);
                writer.abandon_half();
                writer.append(&h, *n);
            }
            Op::Delete if log.exists() => {
                h.poll();
                fs::remove_file(&log).unwrap();
                writer.abandon_half();
            }
            Op::Restart => {
                counted_before += count(&h.restart());
                seen = [0; 2];
            }
            Op::Crash => {
                if let Some(tailer) = &h.tailer {
                    tailer.save_checkpoint().expect("checkpoint written");
                }
                // Dropped without `stop`: no flush, no final checkpoint.
                h.tailer = None;
                counted_before += count(&h.restart());
                seen = [0; 2];
            }
            _ => {}
        }
        counted_before += forgotten(&h.metrics, &sources, &mut seen);
    }

    writer.append(&h, 0);
    h.poll();
    counted_before += forgotten(&h.metrics, &sources, &mut seen);
    h.advance(h.config.linger);
    counted_before += forgotten(&h.metrics, &sources, &mut seen);
    h.advance(h.config.linger);
    counted_before += forgotten(&h.metrics, &sources, &mut seen);
    h.stop();
    let counted = counted_before + count(&h.metrics);
    prop_assert_eq!(counted, writer.written, "ops: {:?}", ops);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_line_is_counted_once_by_path(ops in proptest::collection::vec(op(), 1..40)) {
        run(false, &ops)?;
    }

    #[test]
    fn every_line_is_counted_once_by_glob(ops in proptest::collection::vec(op(), 1..40)) {
        run(true, &ops)?;
    }
}
