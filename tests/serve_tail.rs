//! `tail` end to end: the real binary follows a file that grows, and `/metrics` over HTTP
//! shows the new events.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Exporter, value};

const WAIT: Duration = Duration::from_secs(15);

fn progress(step: u32, name: &str, status: &str, emoji: &str, extra: &str) -> String {
    format!(
        "time=2025-07-11T20:14:{step:02}.000-04:00 level=INFO msg=\"{emoji} PROGRESS\" \
         component=mcp-server step={step} total=4 step_name={name} status={status}{extra}\n"
    )
}

#[test]
fn appended_lines_show_up_on_metrics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mcp.log");
    let mut file = std::fs::File::create(&path).expect("create log");
    file.write_all(b"time=2025-07-11T20:14:00.000-04:00 level=INFO msg=\"Starting server\"\n")
        .expect("write");
    file.write_all(progress(0, "workflow_start", "started", "🚀", "").as_bytes())
        .expect("write");

    let path_arg = path.to_str().expect("UTF-8 path").to_owned();
    let exporter = Exporter::start(&["--tail.poll-interval=100ms", "tail", &path_arg]);
    let source = |metric: &str, labels: &str| {
        let sep = if labels.is_empty() { "" } else { "," };
        format!("{metric}{{source=\"{path_arg}\"{sep}{labels}}}")
    };

    let started = exporter
        .wait_for(WAIT, |s| {
            value(
                s,
                &source("containerkit_workflow_status", "status=\"started\""),
            ) == Some(1.0)
        })
        .expect("the 🚀 line is read");
    assert_eq!(
        value(
            &started,
            &source("containerkit_workflows_total", "status=\"started\"")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &started,
            &source("containerkit_exporter_lines_read_total", "")
        ),
        Some(2.0)
    );

    // A step in two writes: the first half of the line must wait for the second.
    let line = progress(1, "build_image", "running", "🔄", "");
    let (head, tail) = line.split_at(40);
    file.write_all(head.as_bytes()).expect("write");
    file.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(tail.as_bytes()).expect("write");
    file.write_all(
        progress(
            1,
            "build_image",
            "completed",
            "✅",
            " duration=1m47.302118455s",
        )
        .as_bytes(),
    )
    .expect("write");
    file.write_all(
        progress(
            4,
            "workflow_complete",
            "completed",
            "🎉",
            " duration=3m1.5s image_ref=app:1",
        )
        .as_bytes(),
    )
    .expect("write");

    // The last-event time is written last when an event is applied, but one scrape encodes
    // the families one after another and may catch the event half applied. So wait for the
    // 🎉's time, then read a scrape that began after it was applied.
    exporter
        .wait_for(WAIT, |s| {
            value(
                s,
                &source("containerkit_workflow_last_event_timestamp_seconds", ""),
            ) == Some(1_752_279_244.0)
        })
        .expect("the 🎉 line is read");
    let done = common::parse_exposition(&exporter.get("/metrics").body);
    let steps = |status: &str| {
        value(
            &done,
            &source(
                "containerkit_steps_total",
                &format!("step_name=\"build_image\",status=\"{status}\""),
            ),
        )
    };
    assert_eq!(steps("running"), Some(1.0));
    assert_eq!(steps("completed"), Some(1.0));
    assert_eq!(
        value(
            &done,
            &source(
                "containerkit_step_duration_seconds_sum",
                "step_name=\"build_image\",status=\"completed\""
            )
        ),
        Some(107.302118455)
    );
    assert_eq!(
        value(
            &done,
            &source(
                "containerkit_workflow_duration_seconds_sum",
                "status=\"completed\""
            )
        ),
        Some(181.5)
    );
    assert_eq!(
        value(
            &done,
            &source("containerkit_workflow_status", "status=\"completed\"")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &done,
            &source("containerkit_workflow_status", "status=\"running\"")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &done,
            &source("containerkit_workflow_progress", "step=\"4\",total=\"4\"")
        ),
        Some(100.0)
    );
    assert_eq!(
        value(
            &done,
            &source("containerkit_workflow_progress", "step=\"1\",total=\"4\"")
        ),
        None,
        "the old progress series is removed"
    );
    assert_eq!(
        value(
            &done,
            &source("containerkit_exporter_progress_events_total", "")
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&done, &source("containerkit_exporter_lines_read_total", "")),
        Some(5.0)
    );
    // 2025-07-11T20:14:04-04:00
    assert_eq!(
        value(
            &done,
            &source("containerkit_workflow_last_event_timestamp_seconds", "")
        ),
        Some(1_752_279_244.0)
    );
}

/// Regression: opening a FIFO blocked the tailer until a writer came, so SIGTERM never
/// stopped the exporter. A path that is no regular file is now an open error, retried.
#[test]
fn a_fifo_in_place_of_the_log_neither_blocks_nor_hides_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo.log");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("UTF-8 path")).expect("no NUL");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let fifo_arg = fifo.to_str().expect("UTF-8 path").to_owned();
    let mut exporter = Exporter::start(&["--tail.poll-interval=100ms", "tail", &fifo_arg]);
    let errors = format!("containerkit_exporter_open_errors_total{{source=\"{fifo_arg}\"}}");
    exporter
        .wait_for(WAIT, |s| value(s, &errors).is_some_and(|n| n >= 1.0))
        .expect("the FIFO is counted as an open error");

    let pid = i32::try_from(exporter.child.id()).expect("pid fits");
    // SAFETY: sends SIGTERM to the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = exporter.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
