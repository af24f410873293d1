//! End to end with a real Prometheus: it scrapes the exporter while the exporter tails the
//! fixtures as they are written, then every PromQL expression of every dashboard panel and
//! recording rule must return data, and the failure alert must fire for the failing fixture.
//!
//! Needs `prometheus` (Debian's package), and `python3` with PyYAML for
//! `deploy/panel_queries.py`. Without them the test says so and passes, except under CI
//! (`CI=true`), where it fails.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, crate_dir, tool_available};

/// The fixtures written into the followed directory, in two halves.
const FIXTURES: [&str; 7] = [
    "success.log",
    "success.json.log",
    "console.log",
    "failure.log",
    "abandoned.log",
    "mid_workflow.log",
    "malformed.log",
];

/// Prometheus, stopped when dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn start_prometheus(dir: &Path, targets: &[SocketAddr]) -> Prometheus {
    let rules = crate_dir().join("deploy/prometheus");
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - '{}'\n  - '{}'\n\
         scrape_configs:\n  - job_name: containerkit-exporter\n    static_configs:\n      - targets: [{}]\n",
        rules.join("rules.yml").display(),
        rules.join("stall-thresholds.yml").display(),
        targets.join(", ")
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let prometheus = Prometheus { child, address };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(address, "/-/ready").0 != 200 {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    prometheus
}

/// An HTTP/1.0 GET (so that the body is never chunked); status 0 when nobody answers.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut raw = String::new();
    if stream.read_to_string(&mut raw).is_err() {
        return (0, String::new());
    }
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query.
fn query(prometheus: &Prometheus, expr: &str) -> Vec<serde_json::Value> {
    let (status, body) = get(
        prometheus.address,
        &format!("/api/v1/query?query={}", percent_encode(expr)),
    );
    assert_eq!(status, 200, "query {expr}: {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    assert_eq!(answer["status"], "success", "{expr}: {body}");
    match &answer["data"]["result"] {
        serde_json::Value::Array(result) => result.clone(),
        other => vec![other.clone()],
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes each fixture into `dir` in two parts: all but its last two lines, then those. The
/// last PROGRESS line of a fixture (its ❌ or 🎉) thus comes after Prometheus has scraped
/// the series of its step, as in real life, where steps take seconds to minutes.
fn write_half(dir: &Path, second: bool) {
    for fixture in FIXTURES {
        let bytes = std::fs::read(crate_dir().join("fixtures").join(fixture)).expect("fixture");
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let half = lines.len().saturating_sub(2);
        let part = if second {
            &lines[half..]
        } else {
            &lines[..half]
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(fixture))
            .expect("open log");
        for line in part {
            file.write_all(line).expect("append");
        }
    }
}

/// An exporter in `run` mode around the stand-in MCP server, which runs one workflow (on
/// stderr and as MCP progress) and exits; the exporter lingers so that Prometheus sees it.
fn start_wrapped_workflow() -> Exporter {
    let stand_in = crate_dir().join("tests/stand_in_mcp.py");
    let stand_in = stand_in.to_str().expect("UTF-8 path");
    let mut wrapper =
        Exporter::start_with_stdin(&["--run.linger=10m", "run", "--", "python3", stand_in]);
    let request = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":\
                   {\"name\":\"workflow\",\"arguments\":{},\"_meta\":{\"progressToken\":\"e2e\"}}}\n";
    let mut stdin = wrapper.child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(request.as_bytes())
        .expect("send the request");
    // Closing stdin ends the stand-in after it answered, so that its exit code is known.
    drop(stdin);
    wrapper
}

/// The panel and rule expressions, one JSON object each, from deploy/panel_queries.py.
fn panel_queries() -> Vec<serde_json::Value> {
    let output = Command::new("python3")
        .arg("deploy/panel_queries.py")
        .current_dir(crate_dir())
        .output()
        .expect("run deploy/panel_queries.py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn every_panel_query_returns_data_and_the_failure_alert_fires() {
    if !tool_available("prometheus", &["--version"])
        || !tool_available("python3", &["-c", "import yaml"])
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("logs dir");
    write_half(&logs, false);

    let pattern = format!("{}/*.log", logs.display());
    let exporter = Exporter::start(&["--tail.poll-interval=200ms", "tail", &pattern]);
    let wrapper = start_wrapped_workflow();
    let prometheus = start_prometheus(dir.path(), &[exporter.address, wrapper.address]);

    // Two scrapes of both exporters with the first halves written, then the second halves, then a few more scrapes so
    // that every rate has moved.
    wait_until("the first scrapes", Duration::from_secs(60), || {
        query(
            &prometheus,
            "count_over_time(up{job=\"containerkit-exporter\"}[1m]) >= 2",
        )
        .len()
            == 2
    });
    write_half(&logs, true);
    let failure_source = logs.join("failure.log").display().to_string();
    let failed = format!(
        "containerkit_workflows_total{{status=\"failed\",source=\"{failure_source}\"}} == 1"
    );
    wait_until("the failure to be scraped", Duration::from_secs(60), || {
        !query(&prometheus, &failed).is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));

    let mut empty = Vec::new();
    let mut checked = 0;
    for entry in panel_queries() {
        if entry["kind"] == "alert" {
            continue;
        }
        let expr = entry["expr"].as_str().expect("expr");
        checked += 1;
        if query(&prometheus, expr).is_empty() {
            empty.push(format!("{} / {}: {expr}", entry["file"], entry["name"]));
        }
    }
    assert!(checked >= 37, "only {checked} queries were checked");
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );

    // The first failure of a step shows as an increase: its series existed at zero before.
    for expr in [
        format!(
            "increase(containerkit_steps_total{{status=\"failed\",source=\"{failure_source}\"}}[1m]) > 0"
        ),
        format!(
            "increase(containerkit_step_duration_seconds_count{{status=\"failed\",source=\"{failure_source}\"}}[1m]) > 0"
        ),
    ] {
        assert!(!query(&prometheus, &expr).is_empty(), "no data for {expr}");
    }

    let alert = format!(
        "ALERTS{{alertname=\"ContainerKitWorkflowFailed\",alertstate=\"firing\",source=\"{failure_source}\"}}"
    );
    wait_until("the failure alert", Duration::from_secs(30), || {
        !query(&prometheus, &alert).is_empty()
    });
    let success_source = logs.join("success.log").display().to_string();
    let no_alert =
        format!("ALERTS{{alertname=\"ContainerKitWorkflowFailed\",source=\"{success_source}\"}}");
    assert!(
        query(&prometheus, &no_alert).is_empty(),
        "the successful workflow raised an alert"
    );
}
