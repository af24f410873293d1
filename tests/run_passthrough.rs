//! `run` as an MCP client sees it: every byte passes through unchanged and at once, the
//! exit code is the child's, signals reach the child, and a command that cannot start
//! fails with one line and the shell's exit code.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Wrapped, stand_in};

const RESPONSE_END: &[u8] = b"}]}}\n";

#[test]
fn every_byte_passes_through_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let stdout_copy = dir.path().join("stdout");
    let stdin_copy = dir.path().join("stdin");
    let mut wrapped = Wrapped::start(
        &["--run.linger=0s"],
        &[
            "--record-stdout",
            stdout_copy.to_str().unwrap(),
            "--record-stdin",
            stdin_copy.to_str().unwrap(),
            "--final",
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}",
        ],
    );

    // Small messages, each answered before the next is sent.
    wrapped.request(1, "initialize", json!({"protocolVersion": "2025-06-18"}));
    wrapped.wait_for_response(1, b"}}}\n");
    wrapped.call(2, "echo", json!({"text": "héllo ✅ \u{1F680}"}));
    wrapped.wait_for_response(2, RESPONSE_END);

    // A message without a trailing newline arrives whole before anything follows it.
    wrapped.call(3, "partial", json!({}));
    wrapped.wait_for_response(3, b"}]}}");

    // A 10 MB message, and raw bytes of every value (newlines, NUL, invalid UTF-8).
    wrapped.call(4, "big", json!({"bytes": 10 * 1024 * 1024}));
    wrapped.wait_for_response(4, RESPONSE_END);
    wrapped.call(5, "binary", json!({}));
    wrapped.wait_for_response(5, RESPONSE_END);

    // Bytes that are no JSON at all reach the child too, and so does a last line
    // without a newline; then EOF, which the child answers by writing its final
    // message (without newline) and exiting.
    wrapped.send(b"\xff\x00 not json\r\n");
    wrapped.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    wrapped.close_stdin();

    assert_eq!(wrapped.wait_for_exit(), 0);
    let written = std::fs::read(&stdout_copy).unwrap();
    assert!(written.len() > 10 * 1024 * 1024);
    assert!(written.ends_with(b"\"params\":{}}"));
    assert!(
        wrapped.stdout.bytes == written,
        "stdout differs from what the child wrote"
    );
    let read = std::fs::read(&stdin_copy).unwrap();
    assert!(
        read == wrapped.sent,
        "the child read other bytes than were sent"
    );
}

#[test]
fn exits_with_the_childs_exit_code() {
    let mut wrapped = Wrapped::start(&["--run.linger=0s"], &["--exit-code", "7"]);
    wrapped.close_stdin();
    assert_eq!(wrapped.wait_for_exit(), 7);
}

#[test]
fn sigint_sigterm_and_sighup_are_forwarded_to_the_child() {
    for (signal, name, code) in [
        (libc::SIGINT, "INT", 41),
        (libc::SIGTERM, "TERM", 42),
        (libc::SIGHUP, "HUP", 43),
    ] {
        let handler = format!("{name}={code}");
        let mut wrapped = Wrapped::start(&["--run.linger=0s"], &["--on-signal", &handler]);
        // Once the child answers, its handler is installed.
        wrapped.request(1, "initialize", json!({}));
        wrapped.wait_for_response(1, b"}}}\n");

        wrapped.signal(signal);
        assert_eq!(wrapped.wait_for_exit(), code, "SIG{name}");
        let stderr = wrapped.stderr.text();
        assert!(
            stderr.contains(&format!("stand-in: SIG{name} received\n")),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("signal=SIG{name}")), "{stderr}");
    }
}

#[test]
fn a_child_ended_by_a_signal_gives_128_plus_its_number() {
    let mut wrapped = Wrapped::start(&["--run.linger=0s"], &[]);
    wrapped.request(1, "initialize", json!({}));
    wrapped.wait_for_response(1, b"}}}\n");
    wrapped.signal(libc::SIGTERM);
    assert_eq!(wrapped.wait_for_exit(), 128 + libc::SIGTERM);
}

/// The lines the exporter wrote to stderr for a command that could not start.
fn failure_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("containerkit-exporter:"))
        .collect()
}

#[test]
fn a_command_that_does_not_exist_exits_127_with_one_line() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_containerkit-exporter"));
    command.args([
        "--web.listen-address=127.0.0.1:0",
        "--log.level=warn",
        "run",
        "--",
        "containerkit-exporter-test-no-such-command",
    ]);
    let mut wrapped = Wrapped::spawn(command);
    assert_eq!(wrapped.wait_for_exit(), 127);
    let stderr = wrapped.stderr.text();
    assert_eq!(
        stderr,
        "containerkit-exporter: cannot run containerkit-exporter-test-no-such-command: \
         command not found\n"
    );
    assert!(wrapped.stdout.bytes.is_empty());
}

#[test]
fn a_command_that_is_not_executable_exits_126_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_containerkit-exporter"));
    command
        .args(["--web.listen-address=127.0.0.1:0", "run", "--"])
        .arg(&script);
    let mut wrapped = Wrapped::spawn(command);
    assert_eq!(wrapped.wait_for_exit(), 126);
    let stderr = wrapped.stderr.text();
    let lines = failure_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("not executable"), "{stderr}");
    assert!(!stderr.contains("level=error"), "{stderr}");
}

#[test]
fn the_stand_in_is_executable_by_itself() {
    // The other tests rely on the stand-in's shebang; check it alone, so that a missing
    // python3 shows up as that and not as a passthrough failure.
    let status = Command::new(stand_in())
        .arg("--exit-code=5")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(5));
}

#[test]
fn a_client_that_stops_reading_breaks_the_childs_stdout() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_containerkit-exporter"));
    command
        .args([
            "--web.listen-address=127.0.0.1:0",
            "--run.linger=0s",
            "run",
            "--",
        ])
        .arg(stand_in());
    // The client closes its end of our stdout and keeps sending requests: the child's
    // answers must fail as they would without the wrapper, and the child end.
    let mut wrapped = Wrapped::spawn_reading(command, false);
    let deadline = Instant::now() + support::WAIT;
    let mut id = 0;
    while wrapped.process.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the child never saw its stdout break"
        );
        id += 1;
        if !wrapped.try_request(id, "initialize", json!({})) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(wrapped.wait_for_exit(), 0);
}

#[test]
fn the_child_runs_without_metrics_when_the_address_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_containerkit-exporter"));
    command
        .arg(format!("--web.listen-address={address}"))
        .args(["--run.linger=0s", "run", "--"])
        .arg(stand_in())
        .args(["--exit-code", "9"]);
    let mut wrapped = Wrapped::spawn(command);
    wrapped.request(1, "initialize", json!({}));
    wrapped.wait_for_response(1, b"}}}\n");
    wrapped.close_stdin();
    assert_eq!(wrapped.wait_for_exit(), 9);
    let stderr = wrapped.stderr.text();
    assert!(
        stderr.contains("level=error") && stderr.contains("serving no metrics"),
        "{stderr}"
    );
}

#[test]
fn a_child_that_stops_reading_breaks_the_clients_stdin() {
    let mut wrapped = Wrapped::start(&["--run.linger=0s"], &[]);
    wrapped.call(1, "deaf", json!({}));
    wrapped.wait_for_response(1, RESPONSE_END);
    // The child closed its stdin: what the client writes next must fail, as it would
    // without the wrapper, while the child still runs. (At this pace the requests of a
    // whole `WAIT` fit in a pipe's buffer, so a write never blocks the test.)
    let deadline = Instant::now() + support::WAIT;
    let mut id = 1;
    loop {
        assert!(Instant::now() < deadline, "stdin never broke");
        id += 1;
        if !wrapped.try_request(id, "initialize", json!({})) {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(wrapped.process.try_wait().unwrap().is_none());
    wrapped.signal(libc::SIGTERM);
    assert_eq!(wrapped.wait_for_exit(), 128 + libc::SIGTERM);
}
