//! `run` as Prometheus sees it: during the linger after the child exited, `/metrics` shows
//! the child's workflow (from its stderr PROGRESS lines and its MCP progress, each event
//! once), its MCP progress tokens, its exit and the bytes passed through.

mod common;
mod support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{Samples, http_get, parse_exposition, value};
use serde_json::json;
use support::{WAIT, Wrapped};

/// Unix time of the stand-in's 🎉 line (2025-07-11T20:17:14.857-04:00).
const COMPLETED_AT: f64 = 1752279434.857;

/// Scrapes `/metrics` until `ready` holds, within `WAIT`, then returns one more scrape: the
/// one that met `ready` may have caught the last event half applied, since a scrape encodes
/// the families one after another.
fn scrape_until(address: SocketAddr, what: &str, ready: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + WAIT;
    loop {
        let response = http_get(address, "/metrics", None);
        assert_eq!(response.status, 200);
        let samples = parse_exposition(&response.body);
        if ready(&samples) {
            return parse_exposition(&http_get(address, "/metrics", None).body);
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}:\n{}",
            response.body
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the value of each series (named with `source="stand_in_mcp.py"` filled in).
fn assert_values(samples: &Samples, expected: &[(&str, f64)]) {
    for (series, want) in expected {
        let series = series.replace("SRC", r#"source="stand_in_mcp.py""#);
        assert_eq!(
            value(samples, &series),
            Some(*want),
            "{series} in\n{samples:#?}"
        );
    }
}

#[test]
fn metrics_show_the_workflow_and_mcp_progress_during_the_linger() {
    let dir = tempfile::tempdir().unwrap();
    let stdout_copy = dir.path().join("stdout");
    let stderr_copy = dir.path().join("stderr");
    let mut wrapped = Wrapped::start(
        &["--run.linger=60s"],
        &[
            "--record-stdout",
            stdout_copy.to_str().unwrap(),
            "--record-stderr",
            stderr_copy.to_str().unwrap(),
            "--exit-code",
            "3",
        ],
    );
    let address = wrapped.metrics_address();

    wrapped.request(1, "initialize", json!({}));
    wrapped.wait_for_response(1, b"}}}\n");
    assert_eq!(http_get(address, "/readyz", None).status, 200);
    wrapped.request(
        2,
        "tools/call",
        json!({"name": "workflow", "arguments": {}, "_meta": {"progressToken": "tok-1"}}),
    );
    wrapped.wait_for_response(2, b"}]}}\n");
    wrapped.close_stdin();

    // The child's stdout closing closes ours at once, not after the linger; ours closes
    // after the last MCP message was observed.
    wrapped.stdout.wait_for_end();
    // The 🎉 is the last stderr line, and the time of its event is written last.
    let samples = scrape_until(address, "the child's exit and its last line", |samples| {
        value(samples, "containerkit_exporter_child_running") == Some(0.0)
            && value(
                samples,
                r#"containerkit_workflow_last_event_timestamp_seconds{source="stand_in_mcp.py"}"#,
            ) == Some(COMPLETED_AT)
    });

    let stdout_bytes = std::fs::read(&stdout_copy).unwrap();
    let stderr_bytes = std::fs::read(&stderr_copy).unwrap();
    assert_values(
        &samples,
        &[
            // The workflow: the 🎉 came last and without a newline, so it counts only
            // because the last partial line was flushed; every step reported on both
            // channels (and repeated as a heartbeat on MCP) counts once.
            (
                "containerkit_workflow_status{SRC,status=\"completed\"}",
                1.0,
            ),
            ("containerkit_workflow_status{SRC,status=\"running\"}", 0.0),
            (
                "containerkit_workflow_progress{SRC,step=\"3\",total=\"3\"}",
                100.0,
            ),
            ("containerkit_workflows_total{SRC,status=\"started\"}", 1.0),
            (
                "containerkit_workflows_total{SRC,status=\"completed\"}",
                1.0,
            ),
            ("containerkit_workflows_total{SRC,status=\"failed\"}", 0.0),
            (
                "containerkit_workflows_total{SRC,status=\"abandoned\"}",
                0.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"running\",step_name=\"analyze_repository\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"completed\",step_name=\"analyze_repository\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"running\",step_name=\"build_image\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"completed\",step_name=\"build_image\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"running\",step_name=\"deploy_to_k8s\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"completed\",step_name=\"deploy_to_k8s\"}",
                1.0,
            ),
            (
                "containerkit_step_duration_seconds_sum{SRC,status=\"completed\",step_name=\"build_image\"}",
                123.0,
            ),
            (
                "containerkit_step_duration_seconds_count{SRC,status=\"completed\",step_name=\"build_image\"}",
                1.0,
            ),
            (
                "containerkit_step_duration_seconds_sum{SRC,status=\"completed\",step_name=\"analyze_repository\"}",
                1.5,
            ),
            (
                "containerkit_step_duration_seconds_sum{SRC,status=\"completed\",step_name=\"deploy_to_k8s\"}",
                0.85,
            ),
            (
                "containerkit_workflow_duration_seconds_sum{SRC,status=\"completed\"}",
                184.5,
            ),
            (
                "containerkit_workflow_duration_seconds_count{SRC,status=\"completed\"}",
                1.0,
            ),
            // The stderr lines: "ready", 🚀, one ordinary line, 🔄 ✅ three times, 🎉.
            ("containerkit_exporter_lines_read_total{SRC}", 10.0),
            ("containerkit_exporter_progress_events_total{SRC}", 8.0),
            (
                "containerkit_exporter_bytes_read_total{SRC}",
                stderr_bytes.len() as f64,
            ),
            (
                "containerkit_exporter_parse_errors_total{SRC,reason=\"malformed\"}",
                0.0,
            ),
            // MCP progress: tok-1 ended at step 3 of 3; tok-2 had no total.
            ("containerkit_mcp_progress{SRC,token=\"tok-1\"}", 3.0),
            ("containerkit_mcp_progress_target{SRC,token=\"tok-1\"}", 3.0),
            ("containerkit_mcp_progress{SRC,token=\"tok-2\"}", 0.5),
            (
                "containerkit_exporter_mcp_progress_notifications_total{SRC}",
                11.0,
            ),
            (
                "containerkit_exporter_mcp_progress_tokens_evicted_total{SRC}",
                0.0,
            ),
            // The child and the bytes passed through.
            ("containerkit_exporter_child_running", 0.0),
            ("containerkit_exporter_child_last_exit_code", 3.0),
            (
                "containerkit_exporter_passthrough_bytes_total{direction=\"stdin\"}",
                wrapped.sent.len() as f64,
            ),
            (
                "containerkit_exporter_passthrough_bytes_total{direction=\"stdout\"}",
                stdout_bytes.len() as f64,
            ),
            (
                "containerkit_exporter_passthrough_bytes_total{direction=\"stderr\"}",
                stderr_bytes.len() as f64,
            ),
        ],
    );
    assert_eq!(
        value(
            &samples,
            r#"containerkit_mcp_progress_target{source="stand_in_mcp.py",token="tok-2"}"#
        ),
        None
    );
    let started = value(&samples, "containerkit_exporter_child_start_time_seconds");
    assert!(
        started.is_some_and(|seconds| seconds > 1.7e9),
        "{started:?}"
    );

    // A signal during the linger ends it; the exit code is still the child's.
    wrapped.signal(libc::SIGTERM);
    assert_eq!(wrapped.wait_for_exit(), 3);

    assert!(wrapped.stdout.bytes == stdout_bytes, "stdout differs");
    // Standard error is the child's bytes with our whole log lines between its lines
    // (and, since its last line had no newline, one newline before ours).
    let stderr = wrapped.stderr.text();
    let child_lines: Vec<&str> = stderr
        .split('\n')
        .filter(|line| !(line.starts_with("ts=") && line.contains("target=containerkit_exporter")))
        .filter(|line| !line.is_empty())
        .collect();
    let expected = String::from_utf8(stderr_bytes).unwrap();
    assert_eq!(child_lines, expected.split('\n').collect::<Vec<_>>());
    assert!(stderr.contains("message=\"child exited\""), "{stderr}");
}

#[test]
fn source_name_replaces_the_program_name() {
    let mut wrapped = Wrapped::start(
        &["--run.linger=60s", "--source-name=ck"],
        &["--exit-code", "4"],
    );
    let address = wrapped.metrics_address();
    wrapped.close_stdin();
    let samples = scrape_until(address, "the child's exit", |samples| {
        value(samples, "containerkit_exporter_child_running") == Some(0.0)
    });
    assert_eq!(
        value(&samples, "containerkit_exporter_child_last_exit_code"),
        Some(4.0)
    );
    // The stand-in's one stderr line ("ready") is counted under the name given.
    assert_eq!(
        value(
            &samples,
            r#"containerkit_exporter_lines_read_total{source="ck"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            r#"containerkit_exporter_passthrough_bytes_total{direction="stdin"}"#
        ),
        Some(0.0)
    );
    assert!(
        !samples
            .keys()
            .any(|series| series.contains("stand_in_mcp.py"))
    );

    wrapped.signal(libc::SIGINT);
    assert_eq!(wrapped.wait_for_exit(), 4);
}

#[test]
fn mcp_progress_alone_feeds_the_workflow_metrics() {
    let mut wrapped = Wrapped::start(&["--run.linger=60s"], &[]);
    let address = wrapped.metrics_address();
    wrapped.request(
        1,
        "tools/call",
        json!({"name": "workflow", "arguments": {"channels": "mcp"},
               "_meta": {"progressToken": 17}}),
    );
    wrapped.wait_for_response(1, b"}]}}\n");
    wrapped.close_stdin();
    // Our stdout closes after the last MCP message was observed.
    wrapped.stdout.wait_for_end();
    let samples = scrape_until(address, "the child's exit", |samples| {
        value(samples, "containerkit_exporter_child_running") == Some(0.0)
    });
    assert_values(
        &samples,
        &[
            (
                "containerkit_workflow_status{SRC,status=\"completed\"}",
                1.0,
            ),
            (
                "containerkit_workflow_progress{SRC,step=\"3\",total=\"3\"}",
                100.0,
            ),
            ("containerkit_workflows_total{SRC,status=\"started\"}", 1.0),
            (
                "containerkit_workflows_total{SRC,status=\"completed\"}",
                1.0,
            ),
            (
                "containerkit_workflows_total{SRC,status=\"abandoned\"}",
                0.0,
            ),
            // Each step once, although its "running" state came twice (a heartbeat).
            (
                "containerkit_steps_total{SRC,status=\"running\",step_name=\"build_image\"}",
                1.0,
            ),
            (
                "containerkit_steps_total{SRC,status=\"completed\",step_name=\"build_image\"}",
                1.0,
            ),
            (
                "containerkit_workflow_duration_seconds_sum{SRC,status=\"completed\"}",
                184.5,
            ),
            ("containerkit_exporter_progress_events_total{SRC}", 0.0),
            ("containerkit_mcp_progress{SRC,token=\"17\"}", 3.0),
            ("containerkit_mcp_progress_target{SRC,token=\"17\"}", 3.0),
            (
                "containerkit_exporter_mcp_progress_notifications_total{SRC}",
                12.0,
            ),
        ],
    );
    // Container Kit's notifications carry no step durations: the series exists (from the
    // step's first event) but observed nothing.
    assert_eq!(
        value(
            &samples,
            r#"containerkit_step_duration_seconds_count{source="stand_in_mcp.py",status="completed",step_name="build_image"}"#
        ),
        Some(0.0)
    );

    wrapped.signal(libc::SIGHUP);
    assert_eq!(wrapped.wait_for_exit(), 0);
}
