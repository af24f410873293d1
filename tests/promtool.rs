//! `promtool check metrics` accepts the 0.0.4 exposition of every fixture.
//!
//! promtool comes from Debian's `prometheus` package, which `.ci/run` installs. Without it
//! the test says so and passes, except under CI (`CI=true`), where it fails.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{replay, tool_available};

/// Whether promtool can be run; fails the test under CI when it cannot.
fn promtool_available() -> bool {
    tool_available("promtool", &["--version"])
}

fn promtool_check(exposition: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && said.trim().is_empty(), said)
}

#[test]
fn promtool_accepts_the_exposition_of_every_fixture() {
    if !promtool_available() {
        return;
    }
    let exposition = replay(&[
        "fixtures/success.log",
        "fixtures/success.json.log",
        "fixtures/console.log",
        "fixtures/failure.log",
        "fixtures/abandoned.log",
        "fixtures/mid_workflow.log",
        "fixtures/malformed.log",
    ]);
    assert!(exposition.contains("containerkit_step_duration_seconds_bucket"));
    let (ok, said) = promtool_check(&exposition);
    assert!(ok, "promtool check metrics complained:\n{said}");
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // Proves the check above can fail: a counter without the _total suffix and no help.
    if !promtool_available() {
        return;
    }
    let (ok, said) = promtool_check("# TYPE broken counter\nbroken 1\n");
    assert!(!ok, "promtool accepted a broken exposition: {said}");
}
