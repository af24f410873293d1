//! Golden pairs: replaying each `fixtures/*.log` yields exactly `fixtures/*.metrics` and
//! `fixtures/*.events.jsonl`.
//!
//! Sample order inside a metric family is not fixed by the encoder, so expositions are
//! compared as sorted lines. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the
//! expected files; read every changed value before committing them.

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{crate_dir, replay};

const FIXTURES: [&str; 7] = [
    "success",
    "success.json",
    "console",
    "failure",
    "abandoned",
    "mid_workflow",
    "malformed",
];

/// Fixtures whose lines carry no time: their last-event timestamp is the time of reading.
const READ_TIME_SOURCES: [&str; 1] = ["console"];

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Replaces the read-time timestamp of `fixture` by a marker, after checking that it lies
/// between `before` and `after`.
fn mask_read_time(exposition: &str, fixture: &str, before: f64, after: f64) -> String {
    let prefix = format!(
        "containerkit_workflow_last_event_timestamp_seconds{{source=\"fixtures/{fixture}.log\"}} "
    );
    exposition
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(value) => {
                let seconds: f64 = value.parse().expect("timestamp value");
                assert!(
                    (before.floor()..=after.ceil()).contains(&seconds),
                    "read time {seconds} not within {before}..{after}"
                );
                format!("{prefix}<read time>")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

fn check_golden(expected_path: &Path, actual: &str, sort: bool) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(expected_path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    if sort {
        assert_eq!(
            sorted_lines(actual),
            sorted_lines(&expected),
            "{}",
            expected_path.display()
        );
    } else {
        assert_eq!(actual, expected, "{}", expected_path.display());
    }
}

#[test]
fn replayed_metrics_match_the_golden_files() {
    for fixture in FIXTURES {
        let before = unix_now();
        let mut exposition = replay(&[&format!("fixtures/{fixture}.log")]);
        let after = unix_now();
        if READ_TIME_SOURCES.contains(&fixture) {
            exposition = mask_read_time(&exposition, fixture, before, after);
        }
        let golden = crate_dir().join(format!("fixtures/{fixture}.metrics"));
        check_golden(&golden, &exposition, true);
    }
}

#[test]
fn replayed_events_match_the_golden_files() {
    for fixture in FIXTURES {
        let events = replay(&["--output", "events", &format!("fixtures/{fixture}.log")]);
        let golden = crate_dir().join(format!("fixtures/{fixture}.events.jsonl"));
        check_golden(&golden, &events, false);
    }
}
