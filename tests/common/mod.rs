//! Helpers shared by the integration tests: running the real binary, reading its listening
//! address from its log, plain HTTP GETs over a `TcpStream`, and parsing an exposition.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerkit-exporter"))
}

/// Directory of the crate, where `fixtures/` lives.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running exporter that is killed when dropped, so that no test leaves one behind.
pub struct Exporter {
    pub child: Child,
    pub address: SocketAddr,
    /// The exporter's log lines, read on a thread (the pipe must never fill up).
    pub log: mpsc::Receiver<String>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    /// Starts the binary listening on a free port of 127.0.0.1 with `args` after the
    /// listen flag, and waits (at most 20 s) for it to log its address.
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_with(Command::new(binary()), args)
    }

    pub fn start_with(command: Command, args: &[&str]) -> Exporter {
        Exporter::start_configured(command, args, false)
    }

    /// Like `start`, with the exporter's standard input a pipe held in `child.stdin`.
    pub fn start_with_stdin(args: &[&str]) -> Exporter {
        let mut command = Command::new(binary());
        command.stdin(Stdio::piped());
        Exporter::start_configured(command, args, true)
    }

    fn start_configured(mut command: Command, args: &[&str], keep_stdin: bool) -> Exporter {
        command
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .current_dir(crate_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if command.get_program() == binary().as_os_str() && !keep_stdin {
            command.stdin(Stdio::null());
        }
        let child = command.spawn().expect("start the exporter");
        // Owned by an `Exporter` from here on, so that a failed start still reaps it.
        let (sender, log) = mpsc::channel();
        let mut exporter = Exporter {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let stderr = exporter.child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = exporter
                .log
                .recv_timeout(remaining)
                .expect("the exporter logs its address");
            if let Some(address) = logged_address(&line) {
                exporter.address = address;
                return exporter;
            }
        }
    }

    pub fn get(&self, path: &str) -> Response {
        http_get(self.address, path, None)
    }

    /// Scrapes `/metrics` until `check` accepts the samples, for at most `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Samples) -> bool,
    ) -> Result<Samples, Samples> {
        let deadline = Instant::now() + timeout;
        loop {
            let samples = parse_exposition(&self.get("/metrics").body);
            if check(&samples) {
                return Ok(samples);
            }
            if Instant::now() >= deadline {
                return Err(samples);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The address in the exporter's "listening" log line.
fn logged_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("address="))
        .and_then(|address| address.trim_matches('"').parse().ok())
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A plain HTTP/1.1 GET with `Connection: close`.
pub fn http_get(address: SocketAddr, path: &str, accept: Option<&str>) -> Response {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Samples keyed by `name{label="value",...}` with labels sorted by name.
pub type Samples = BTreeMap<String, f64>;

/// Parses exposition text (0.0.4 or OpenMetrics) into samples.
pub fn parse_exposition(text: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().expect("numeric sample value"),
        };
        samples.insert(canonical_series(series), value);
    }
    samples
}

/// `name{b="2",a="1"}` becomes `name{a="1",b="2"}`, so that tests can name series in any
/// label order.
pub fn canonical_series(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_owned();
    };
    let labels = labels.strip_suffix('}').expect("closing brace");
    let mut pairs = split_labels(labels);
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn split_labels(labels: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in labels.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                pairs.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.is_empty() {
        pairs.push(current);
    }
    pairs
}

/// The value of one series, named in any label order; `None` when absent.
pub fn value(samples: &Samples, series: &str) -> Option<f64> {
    samples.get(&canonical_series(series)).copied()
}

/// Runs `replay` on fixture files and returns its standard output.
pub fn replay(args: &[&str]) -> String {
    let output = Command::new(binary())
        .arg("replay")
        .args(args)
        .current_dir(crate_dir())
        .output()
        .expect("run replay");
    assert!(
        output.status.success(),
        "replay {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Whether `program args` runs and succeeds. Without it a test says so and passes, except
/// under CI (`CI=true`), where a missing tool fails the test: `.ci/run` installs them all.
pub fn tool_available(program: &str, args: &[&str]) -> bool {
    let found = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{program} {}` failed: the tool is required under CI",
            args.join(" ")
        );
        eprintln!("`{program} {}` failed: skipping this check", args.join(" "));
    }
    found
}
