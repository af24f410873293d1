//! The HTTP side of the real binary: content negotiation, probes, index page and a custom
//! telemetry path.

mod common;

use std::time::Duration;

use common::{Exporter, http_get, parse_exposition, value};

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[test]
fn metrics_default_to_the_0_0_4_text_format() {
    let exporter = Exporter::start(&["stdin"]);
    let response = exporter.get("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!response.body.contains("# EOF"));
    let samples = parse_exposition(&response.body);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &samples,
            &format!("containerkit_exporter_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0)
    );
    let stdin_lines = "containerkit_exporter_lines_read_total{source=\"stdin\"}";
    let read = exporter.wait_for(Duration::from_secs(10), |s| value(s, stdin_lines).is_some());
    assert_eq!(read.map(|s| value(&s, stdin_lines)), Ok(Some(0.0)));
}

#[test]
fn prometheus_accept_header_gets_openmetrics() {
    let exporter = Exporter::start(&["stdin"]);
    let response = http_get(exporter.address, "/metrics", Some(PROMETHEUS_ACCEPT));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(response.body.ends_with("# EOF\n"), "{}", response.body);
}

#[test]
fn probes_and_index_answer() {
    let exporter = Exporter::start(&["stdin"]);
    assert_eq!(exporter.get("/healthz").status, 200);
    let ready = exporter.wait_ready();
    assert_eq!(ready, 200);
    let index = exporter.get("/");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("href=\"/metrics\""), "{}", index.body);
    assert_eq!(exporter.get("/nowhere").status, 404);
}

#[test]
fn custom_telemetry_path_replaces_metrics() {
    let exporter = Exporter::start(&["--web.telemetry-path=/custom/path", "stdin"]);
    assert_eq!(exporter.get("/custom/path").status, 200);
    assert_eq!(exporter.get("/metrics").status, 404);
    assert!(exporter.get("/").body.contains("href=\"/custom/path\""));
}

#[test]
fn readiness_waits_for_a_missing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("later.log");
    let path_arg = path.to_str().expect("UTF-8 path");
    let exporter = Exporter::start(&["--tail.poll-interval=50ms", "tail", path_arg]);
    assert_eq!(exporter.get("/readyz").status, 503);
    std::fs::write(&path, b"").expect("create the file");
    assert_eq!(exporter.wait_ready(), 200);
}

trait WaitReady {
    fn wait_ready(&self) -> u16;
}

impl WaitReady for Exporter {
    /// `/readyz` status once it is 200, or the last one after 10 s.
    fn wait_ready(&self) -> u16 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let status = self.get("/readyz").status;
            if status == 200 || std::time::Instant::now() >= deadline {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
