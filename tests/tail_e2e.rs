//! `tail` end to end with the real binary: a rename rotation and a restart through SIGTERM
//! with a checkpoint, counted over HTTP. The exporter listens on a free port of 127.0.0.1
//! and is killed when the test ends, whatever happens.

mod common;
mod tail_support;

use std::time::Duration;

use common::{Exporter, Samples, value};
use tail_support::{append, lines, rename};

const WAIT: Duration = Duration::from_secs(15);

fn series(name: &str, source: &str, labels: &str) -> String {
    let sep = if labels.is_empty() { "" } else { "," };
    format!("{name}{{source=\"{source}\"{sep}{labels}}}")
}

fn events(samples: &Samples, source: &str) -> Option<f64> {
    value(
        samples,
        &series("containerkit_exporter_progress_events_total", source, ""),
    )
}

/// Sends SIGTERM and waits for the exit; the exporter must stop by itself, in time.
fn terminate(mut exporter: Exporter) {
    let pid = exporter.child.id() as libc::pid_t;
    // SAFETY: kill(2) with a pid this test spawned and still owns (not yet reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match exporter.child.try_wait().expect("wait for the exporter") {
            Some(status) => {
                assert!(status.success(), "exit status {status}");
                return;
            }
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            None => panic!("the exporter did not stop within 10 s of SIGTERM"),
        }
    }
}

#[test]
fn rotation_and_restart_count_every_event_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("mcp.log");
    let checkpoint = dir.path().join("checkpoint.json");
    let source = log.display().to_string();
    let checkpoint_flag = format!("--tail.checkpoint-file={}", checkpoint.display());
    let args = [
        "--tail.poll-interval=100ms",
        checkpoint_flag.as_str(),
        "tail",
        source.as_str(),
    ];

    append(&log, &lines(0, 5));
    let exporter = Exporter::start(&args);
    exporter
        .wait_for(WAIT, |s| events(s, &source) == Some(5.0))
        .expect("the first lines are counted");
    assert_eq!(exporter.get("/readyz").status, 200);

    rename(&log, &dir.path().join("mcp.log.1"));
    append(&dir.path().join("mcp.log.1"), &lines(5, 6));
    append(&log, &lines(6, 9));
    let rotated = exporter
        .wait_for(WAIT, |s| events(s, &source) == Some(9.0))
        .expect("both files are read");
    let kind = |kind: &str| {
        value(
            &rotated,
            &series(
                "containerkit_exporter_rotations_total",
                &source,
                &format!("kind=\"{kind}\""),
            ),
        )
    };
    assert_eq!(kind("rename"), Some(1.0));
    assert_eq!(kind("delete"), Some(0.0));
    let size = value(
        &rotated,
        &series("containerkit_exporter_file_size_bytes", &source, ""),
    );
    let offset = value(
        &rotated,
        &series("containerkit_exporter_file_offset_bytes", &source, ""),
    );
    assert_eq!(size, Some(lines(6, 9).len() as f64));
    assert_eq!(offset, size);
    assert!(value(&rotated, "containerkit_exporter_files_open").is_some());
    for name in [
        "truncations_total",
        "open_errors_total",
        "leading_nul_bytes_total",
    ] {
        let kind = if name == "truncations_total" {
            "kind=\"shrunk\""
        } else {
            ""
        };
        let name = format!("containerkit_exporter_{name}");
        assert_eq!(
            value(&rotated, &series(&name, &source, kind)),
            Some(0.0),
            "{name}"
        );
    }

    // Half a line is written when the exporter stops; the rest comes while it is down.
    let ninth = tail_support::line(9);
    let (head, rest) = ninth.split_at(60);
    append(&log, head);
    std::thread::sleep(Duration::from_millis(300));
    terminate(exporter);
    append(&log, rest);
    append(&log, &lines(10, 12));

    let restarted = Exporter::start(&args);
    let after = restarted
        .wait_for(WAIT, |s| events(s, &source) == Some(3.0))
        .expect("only the lines after the checkpoint are counted");
    // The state saved with the checkpoint is back: the workflow is still running.
    let running = series(
        "containerkit_workflow_status",
        &source,
        "status=\"running\"",
    );
    assert_eq!(value(&after, &running), Some(1.0));
    std::thread::sleep(Duration::from_millis(300));
    let settled = common::parse_exposition(&restarted.get("/metrics").body);
    assert_eq!(
        events(&settled, &source),
        Some(3.0),
        "nothing counted twice"
    );
    terminate(restarted);
}

#[test]
fn failed_final_checkpoint_is_exit_status_1_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("mcp.log");
    let checkpoint = dir.path().join("no/such/dir/cp.json");
    let source = log.display().to_string();
    let checkpoint_flag = format!("--tail.checkpoint-file={}", checkpoint.display());
    append(&log, &lines(0, 2));
    let mut exporter = Exporter::start(&[checkpoint_flag.as_str(), "tail", &source]);
    exporter
        .wait_for(WAIT, |s| {
            value(s, "containerkit_exporter_checkpoint_write_errors_total").is_some()
                && events(s, &source) == Some(2.0)
        })
        .expect("the counter is shown from the start");

    let pid = exporter.child.id() as libc::pid_t;
    // SAFETY: kill(2) with a pid this test spawned and still owns (not yet reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        match exporter.child.try_wait().expect("wait for the exporter") {
            Some(status) => break status,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            None => panic!("the exporter did not stop within 10 s of SIGTERM"),
        }
    };
    assert_eq!(status.code(), Some(1));
    let expected = format!(
        "containerkit-exporter: cannot write the checkpoint {}: ",
        checkpoint.display()
    );
    let last = std::iter::from_fn(|| exporter.log.recv_timeout(Duration::from_secs(5)).ok())
        .find(|line| line.starts_with("containerkit-exporter: "));
    assert!(
        last.as_deref()
            .is_some_and(|line| line.starts_with(&expected)),
        "{last:?}"
    );
}
