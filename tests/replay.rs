//! `replay` as a user runs it: values worked out by hand from the fixtures, the three line
//! forms agreeing, flags that change what is counted, and exit codes.

mod common;

use std::process::Command;

use common::{Samples, binary, crate_dir, parse_exposition, replay, value};

fn samples(args: &[&str]) -> Samples {
    parse_exposition(&replay(args))
}

fn of(source: &str, metric: &str, labels: &str) -> String {
    let sep = if labels.is_empty() { "" } else { "," };
    format!("{metric}{{source=\"{source}\"{sep}{labels}}}")
}

#[test]
fn failed_workflow_is_timed_from_its_start_to_its_failure() {
    let s = samples(&["fixtures/failure.log"]);
    let src = "fixtures/failure.log";
    let get = |metric: &str, labels: &str| value(&s, &of(src, metric, labels));
    // 21:01:44.328 to 21:03:56.736
    assert_eq!(
        get(
            "containerkit_workflow_duration_seconds_sum",
            "status=\"failed\""
        ),
        Some(132.408)
    );
    assert_eq!(
        get(
            "containerkit_workflow_duration_seconds_count",
            "status=\"failed\""
        ),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"failed\""),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"started\""),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflow_status", "status=\"failed\""),
        Some(1.0)
    );
    assert_eq!(
        get(
            "containerkit_step_duration_seconds_sum",
            "step_name=\"build_image\",status=\"failed\""
        ),
        Some(72.408113927)
    );
    assert_eq!(
        get(
            "containerkit_steps_total",
            "step_name=\"build_image\",status=\"failed\""
        ),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflow_progress", "step=\"3\",total=\"10\""),
        Some(30.0)
    );
}

#[test]
fn a_new_start_abandons_an_unfinished_workflow() {
    let s = samples(&["fixtures/abandoned.log"]);
    let src = "fixtures/abandoned.log";
    let get = |metric: &str, labels: &str| value(&s, &of(src, metric, labels));
    assert_eq!(
        get("containerkit_workflows_total", "status=\"started\""),
        Some(4.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"abandoned\""),
        Some(2.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"completed\""),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"failed\""),
        Some(0.0)
    );
    assert_eq!(
        get("containerkit_workflow_status", "status=\"started\""),
        Some(1.0)
    );
    assert_eq!(
        get(
            "containerkit_workflow_duration_seconds_sum",
            "status=\"completed\""
        ),
        Some(62.0)
    );
    assert_eq!(
        get("containerkit_workflow_progress", "step=\"0\",total=\"4\""),
        Some(0.0)
    );
}

#[test]
fn a_stream_that_begins_mid_workflow_runs_without_a_counted_start() {
    let s = samples(&["fixtures/mid_workflow.log"]);
    let src = "fixtures/mid_workflow.log";
    let get = |metric: &str, labels: &str| value(&s, &of(src, metric, labels));
    assert_eq!(
        get("containerkit_workflows_total", "status=\"started\""),
        Some(0.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"completed\""),
        Some(1.0)
    );
    // The last line is a step after the 🎉, again without a 🚀.
    assert_eq!(
        get("containerkit_workflow_status", "status=\"running\""),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflow_progress", "step=\"1\",total=\"10\""),
        Some(10.0)
    );
    assert_eq!(
        get(
            "containerkit_workflow_duration_seconds_sum",
            "status=\"completed\""
        ),
        Some(185.0)
    );
    // "status" appears twice on one line: the last one (completed) wins.
    assert_eq!(
        get(
            "containerkit_steps_total",
            "step_name=\"tag_image\",status=\"completed\""
        ),
        Some(1.0)
    );
}

#[test]
fn broken_progress_lines_are_counted_by_reason() {
    let s = samples(&["fixtures/malformed.log"]);
    let src = "fixtures/malformed.log";
    let reason = |r: &str| {
        value(
            &s,
            &of(
                src,
                "containerkit_exporter_parse_errors_total",
                &format!("reason=\"{r}\""),
            ),
        )
    };
    assert_eq!(reason("malformed"), Some(4.0));
    assert_eq!(reason("missing_field"), Some(2.0));
    assert_eq!(reason("invalid_number"), Some(3.0));
    assert_eq!(reason("invalid_duration"), Some(2.0));
    assert_eq!(reason("invalid_status"), Some(1.0));
    let get = |metric: &str, labels: &str| value(&s, &of(src, metric, labels));
    assert_eq!(
        get("containerkit_exporter_progress_events_total", ""),
        Some(5.0)
    );
    assert_eq!(
        get("containerkit_exporter_lines_read_total", ""),
        Some(21.0)
    );
    // The line after leading NULs and the CRLF line both count.
    assert_eq!(
        get(
            "containerkit_steps_total",
            "step_name=\"build_image\",status=\"completed\""
        ),
        Some(1.0)
    );
    assert_eq!(
        get("containerkit_workflows_total", "status=\"failed\""),
        Some(1.0)
    );
}

#[test]
fn text_and_json_forms_of_one_workflow_give_the_same_metrics() {
    let text = samples(&["--source-name=one", "fixtures/success.log"]);
    let json = samples(&["--source-name=one", "fixtures/success.json.log"]);
    let without_bytes = |s: &Samples| -> Samples {
        s.iter()
            .filter(|(k, _)| !k.starts_with("containerkit_exporter_bytes_read_total"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    assert_eq!(without_bytes(&text), without_bytes(&json));
    assert_eq!(
        value(
            &text,
            "containerkit_workflow_duration_seconds_sum{source=\"one\",status=\"completed\"}"
        ),
        Some(252.9)
    );
}

#[test]
fn events_output_gives_percentages_in_every_form() {
    let events = replay(&[
        "--output",
        "events",
        "fixtures/success.log",
        "fixtures/success.json.log",
        "fixtures/console.log",
    ]);
    let percentages: Vec<u64> = events
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
            event["percentage"].as_u64().expect("percentage")
        })
        .collect();
    let one_workflow = [
        0, 10, 10, 20, 20, 30, 30, 50, 50, 60, 60, 70, 70, 90, 90, 100,
    ];
    let console = [0, 10, 10, 20, 20, 30, 30, 12];
    let expected: Vec<u64> = [&one_workflow[..], &one_workflow[..], &console[..]].concat();
    assert_eq!(percentages, expected);
}

#[test]
fn overlong_lines_are_skipped_and_counted() {
    let s = samples(&["--max-line-bytes=250", "fixtures/success.log"]);
    let src = "fixtures/success.log";
    // Only the 🎉 line is longer than 250 bytes: skipped, it never completes the workflow.
    let long_lines = std::fs::read_to_string(crate_dir().join(src))
        .expect("fixture")
        .lines()
        .filter(|l| l.len() > 250)
        .count();
    assert_eq!(long_lines, 1);
    assert_eq!(
        value(
            &s,
            &of(src, "containerkit_exporter_overlong_lines_total", "")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, &of(src, "containerkit_exporter_lines_read_total", "")),
        Some(21.0)
    );
    assert_eq!(
        value(
            &s,
            &of(src, "containerkit_workflows_total", "status=\"completed\"")
        ),
        Some(0.0)
    );
}

#[test]
fn step_names_past_the_cap_become_other() {
    let s = samples(&["--max-step-names=2", "fixtures/success.log"]);
    let src = "fixtures/success.log";
    let step = |name: &str| {
        value(
            &s,
            &of(
                src,
                "containerkit_steps_total",
                &format!("step_name=\"{name}\",status=\"running\""),
            ),
        )
    };
    assert_eq!(step("analyze_repository"), Some(1.0));
    assert_eq!(step("generate_dockerfile"), Some(1.0));
    assert_eq!(step("build_image"), None);
    assert_eq!(step("other"), Some(5.0));
    // Five names past the cap, each with a running and a completed event.
    assert_eq!(
        value(&s, "containerkit_exporter_step_name_overflows_total"),
        Some(10.0)
    );
}

#[test]
fn a_missing_file_is_a_one_line_error_and_exit_code_1() {
    let output = Command::new(binary())
        .args([
            "--log.level=error",
            "replay",
            "fixtures/success.log",
            "fixtures/no-such.log",
        ])
        .current_dir(crate_dir())
        .output()
        .expect("run replay");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().expect("an error line");
    assert_eq!(
        last,
        "containerkit-exporter: 1 of 2 files could not be read"
    );
    // The readable file is still replayed, and the failure is counted.
    let s = parse_exposition(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        value(
            &s,
            &of(
                "fixtures/success.log",
                "containerkit_workflows_total",
                "status=\"completed\""
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            &of(
                "fixtures/no-such.log",
                "containerkit_exporter_open_errors_total",
                ""
            )
        ),
        Some(1.0)
    );
}

#[test]
fn bad_usage_exits_with_code_2() {
    for args in [
        &["replay"][..],
        &["--output=events"],
        &["replay", "--output=yaml", "x"],
        &["nope"],
    ] {
        let status = Command::new(binary()).args(args).status().expect("run");
        assert_eq!(status.code(), Some(2), "{args:?}");
    }
}
