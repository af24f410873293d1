//! The real binary following a directory that the real `logrotate` rotates, in `create` and
//! `copytruncate` modes, as a user would run them. Counts must be exact: the writer waits
//! for the exporter between rotations, so that no case here depends on timing
//! (`benches/logrotate.sh` runs the same with a writer that never waits).
//!
//! CI installs logrotate (`.ci/run`); where it is missing these tests say so and pass,
//! except under CI (`CI=true`), where they fail.

mod common;
mod tail_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Exporter, Samples, tool_available, value};
use tail_support::{append, lines};

const WAIT: Duration = Duration::from_secs(15);

fn have_logrotate() -> bool {
    tool_available("logrotate", &["--version"])
}

fn logrotate(dir: &Path, mode: &str) {
    let config = dir.join("logrotate.conf");
    let text = format!(
        "{}/app.log {{\n    rotate 5\n    missingok\n    {mode}\n}}\n",
        dir.display()
    );
    std::fs::write(&config, text).expect("write logrotate.conf");
    let status = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&config)
        .status()
        .expect("run logrotate");
    assert!(status.success(), "logrotate failed: {status}");
}

fn counted(samples: &Samples, dir: &Path, names: &[&str]) -> f64 {
    names
        .iter()
        .map(|name| {
            let source = dir.join(name).display().to_string();
            let series =
                format!("containerkit_exporter_progress_events_total{{source=\"{source}\"}}");
            value(samples, &series).unwrap_or(0.0)
        })
        .sum()
}

fn run(mode: &str, pattern: &str, names: &[&str]) {
    if !have_logrotate() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("app.log");
    let glob = dir.path().join(pattern).display().to_string();
    append(&log, &lines(0, 10));
    let exporter = Exporter::start(&["--tail.poll-interval=100ms", "tail", &glob]);
    let wait = |want: usize| {
        exporter
            .wait_for(WAIT, |s| counted(s, dir.path(), names) == want as f64)
            .unwrap_or_else(|s| panic!("{mode}: {} of {want}", counted(&s, dir.path(), names)))
    };
    wait(10);

    let mut written = 10;
    for round in 0..3 {
        logrotate(dir.path(), mode);
        if mode == "create" {
            // The program has not reopened its log yet: its next lines go to the old file.
            append(&dir.path().join("app.log.1"), &lines(written, written + 3));
            written += 3;
        }
        append(&log, &lines(written, written + 20 + round));
        written += 20 + round;
        wait(written);
    }
    // Nothing more comes in late, from a rotated name or otherwise.
    std::thread::sleep(Duration::from_millis(500));
    let settled = common::parse_exposition(&exporter.get("/metrics").body);
    assert_eq!(
        counted(&settled, dir.path(), names),
        written as f64,
        "{mode}"
    );
}

#[test]
fn logrotate_create_mode_loses_and_repeats_nothing() {
    run("create", "*.log", &["app.log"]);
}

#[test]
fn logrotate_create_mode_with_a_glob_matching_rotated_names_reads_each_line_once() {
    let names = [
        "app.log",
        "app.log.1",
        "app.log.2",
        "app.log.3",
        "app.log.4",
    ];
    run("create", "app.log*", &names);
}

#[test]
fn logrotate_copytruncate_mode_loses_and_repeats_nothing() {
    run("copytruncate", "*.log", &["app.log"]);
}
