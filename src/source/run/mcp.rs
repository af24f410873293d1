//! The MCP progress observer: reads a copy of the child's stdout after it was forwarded,
//! finds `notifications/progress` messages, and exports them.
//!
//! The MCP stdio transport sends one JSON-RPC message per line. The observer frames the
//! copy into lines, keeping at most `MAX_OBSERVED_MESSAGE_BYTES` of a line that spans
//! reads (a longer message, such as a tool result of megabytes, is skipped as it streams
//! by, never held). Only a line that contains `progressToken` is parsed as JSON.
//!
//! Each notification sets `containerkit_mcp_progress{source,token}` (its `progress`) and
//! `containerkit_mcp_progress_target{source,token}` (its `total`, removed when a later
//! notification of the token has none). At most `MAX_PROGRESS_TOKENS` tokens keep series;
//! a new token beyond that evicts the token updated least recently (see `tokens`).
//!
//! A notification that carries Container Kit's step fields also feeds the workflow
//! metrics, through the merge with the stderr PROGRESS lines (see `merge`). The fields are
//! those of a PROGRESS line in JSON form (`step`, `total`, `step_name`, `status`, and
//! optionally `percentage`, `duration`, `error`, `message`, `image_ref`, `namespace`), read
//! from the first of `params.metadata` (where Container Kit puts them), `params._meta` or
//! `params` itself that has a `step_name`; `step` and `total` default to the notification's
//! `progress` and `total`. Without such fields, a `message` that is itself a PROGRESS line
//! is read as one. A message marked `"kind":"heartbeat"` only moves the token's gauges.

use std::iter;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::event::ProgressEvent;
use crate::lines::{Frame, LineFramer, clean};
use crate::metrics::SourceLabels;
use crate::metrics::run::RunMetrics;
use crate::parse;

use super::merge::MergedWorkflow;
use super::tokens::{MAX_PROGRESS_TOKENS, TokenTable, token_label};

/// Longest message the observer parses; longer ones pass through unobserved.
pub const MAX_OBSERVED_MESSAGE_BYTES: usize = 64 * 1024;

const PROGRESS_METHOD: &str = "notifications/progress";

/// The parts of a JSON-RPC message the observer reads; the rest is skipped unparsed.
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Map<String, Value>>,
}

/// Watches the child's stdout for MCP progress.
pub struct McpObserver {
    framer: LineFramer,
    handler: Handler,
}

struct Handler {
    tokens: TokenTable,
    notifications: Counter,
    workflow: Arc<MergedWorkflow>,
}

impl McpObserver {
    pub fn new(source: &str, metrics: &RunMetrics, workflow: Arc<MergedWorkflow>) -> McpObserver {
        let source: Arc<str> = Arc::from(source);
        let labels = SourceLabels {
            source: source.clone(),
        };
        McpObserver {
            framer: LineFramer::new(MAX_OBSERVED_MESSAGE_BYTES),
            handler: Handler {
                tokens: TokenTable::new(source, metrics, MAX_PROGRESS_TOKENS),
                notifications: metrics.mcp_notifications.get_or_create_owned(&labels),
                workflow,
            },
        }
    }

    /// Observes bytes that were already forwarded.
    pub fn observe(&mut self, chunk: &[u8]) {
        let handler = &mut self.handler;
        self.framer.push(chunk, &mut |frame| handler.frame(frame));
    }

    /// Observes a last message that has no newline, at the end of the stream.
    pub fn finish(&mut self) {
        let handler = &mut self.handler;
        self.framer.finish(&mut |frame| handler.frame(frame));
    }
}

impl Handler {
    fn frame(&mut self, frame: Frame<'_>) {
        let Frame::Line(line) = frame else {
            return;
        };
        if memchr::memmem::find(line, b"progressToken").is_none() {
            return;
        }
        let batch = line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        let messages: Vec<Message> = if batch {
            serde_json::from_slice(line).unwrap_or_default()
        } else {
            serde_json::from_slice(line).map_or_else(|_| Vec::new(), |message| vec![message])
        };
        for message in messages {
            if message.method.as_deref() == Some(PROGRESS_METHOD)
                && let Some(params) = message.params
            {
                self.progress(&params);
            }
        }
    }

    fn progress(&mut self, params: &Map<String, Value>) {
        let token = params.get("progressToken").and_then(token_label);
        let progress = params.get("progress").and_then(Value::as_f64);
        let (Some(token), Some(progress)) = (token, progress) else {
            tracing::debug!("MCP progress notification without a valid token or progress");
            return;
        };
        let total = params.get("total").and_then(Value::as_f64);
        self.notifications.inc();
        self.tokens.update(&token, progress, total);
        if let Some(event) = step_event(params) {
            self.workflow.offer_mcp(&event);
        }
    }
}

/// The workflow event a notification carries, if it carries Container Kit's step fields.
fn step_event(params: &Map<String, Value>) -> Option<ProgressEvent> {
    let nested = ["metadata", "_meta"]
        .into_iter()
        .filter_map(|key| params.get(key).and_then(Value::as_object));
    let Some(fields) = nested
        .chain(iter::once(params))
        .find(|fields| fields.contains_key("step_name"))
    else {
        let message = params.get("message").and_then(Value::as_str)?;
        return parse_progress_text(message);
    };
    if fields.get("kind").and_then(Value::as_str) == Some("heartbeat") {
        return None;
    }

    // Read the fields as the parser reads a PROGRESS line in JSON form, so that both
    // channels follow the same rules for numbers, durations and statuses.
    let mut line = fields.clone();
    line.insert("msg".to_owned(), Value::from("PROGRESS"));
    for (field, fallback) in [
        ("step", "progress"),
        ("total", "total"),
        ("message", "message"),
    ] {
        if !line.contains_key(field)
            && let Some(value) = params.get(fallback)
        {
            line.insert(field.to_owned(), value.clone());
        }
    }
    let text = Value::Object(line).to_string();
    match parse::parse_line(&text) {
        Ok(event) => event,
        Err(error) => {
            tracing::debug!(
                reason = error.reason(),
                error = %error,
                "MCP progress step fields not parsed"
            );
            None
        }
    }
}

fn parse_progress_text(message: &str) -> Option<ProgressEvent> {
    if !parse::may_be_progress(message.as_bytes()) {
        return None;
    }
    match parse::parse_line(&clean(message.as_bytes())) {
        Ok(event) => event,
        Err(error) => {
            tracing::debug!(
                reason = error.reason(),
                error = %error,
                "PROGRESS text in an MCP progress message not parsed"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::encode;
    use crate::metrics::Metrics;

    fn observer() -> (Arc<Metrics>, McpObserver) {
        let metrics = Arc::new(Metrics::new(10));
        let workflow = Arc::new(MergedWorkflow::new("child", metrics.clone()));
        let observer = McpObserver::new("child", &metrics.run, workflow);
        (metrics, observer)
    }

    fn series(metrics: &Metrics, prefix: &str) -> Vec<String> {
        let text = encode(metrics, false).unwrap();
        let mut found: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        // A family's series come out in hash order.
        found.sort();
        found
    }

    fn notification(token: &str, progress: u32, total: Option<u32>) -> String {
        let total = total.map_or(String::new(), |t| format!(",\"total\":{t}"));
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":\
             {{\"progressToken\":\"{token}\",\"progress\":{progress}{total}}}}}\n"
        )
    }

    #[test]
    fn exports_the_latest_progress_and_total_of_each_token() {
        let (metrics, mut observer) = observer();
        observer.observe(notification("a", 1, Some(4)).as_bytes());
        observer.observe(notification("a", 3, Some(4)).as_bytes());
        observer.observe(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":7,\"progress\":0.5}}\n");
        assert_eq!(
            series(&metrics, "containerkit_mcp_progress"),
            [
                r#"containerkit_mcp_progress_target{source="child",token="a"} 4.0"#,
                r#"containerkit_mcp_progress{source="child",token="7"} 0.5"#,
                r#"containerkit_mcp_progress{source="child",token="a"} 3.0"#,
            ]
        );
        assert_eq!(
            series(
                &metrics,
                "containerkit_exporter_mcp_progress_notifications_total"
            ),
            [r#"containerkit_exporter_mcp_progress_notifications_total{source="child"} 3"#]
        );
    }

    #[test]
    fn a_notification_without_total_removes_the_target() {
        let (metrics, mut observer) = observer();
        observer.observe(notification("a", 1, Some(4)).as_bytes());
        observer.observe(notification("a", 2, None).as_bytes());
        assert!(series(&metrics, "containerkit_mcp_progress_target").is_empty());
    }

    #[test]
    fn messages_split_across_reads_and_a_last_one_without_newline_are_seen() {
        let (metrics, mut observer) = observer();
        let first = notification("a", 1, None);
        let (head, tail) = first.split_at(20);
        observer.observe(head.as_bytes());
        observer.observe(tail.as_bytes());
        let last = notification("b", 2, None);
        observer.observe(last.trim_end().as_bytes());
        observer.finish();
        assert_eq!(series(&metrics, "containerkit_mcp_progress{").len(), 2);
    }

    #[test]
    fn other_messages_batches_and_broken_json_are_handled() {
        let (metrics, mut observer) = observer();
        observer.observe(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"progressToken\":\"x\"}}\n");
        observer
            .observe(b"{\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\n");
        observer.observe(b"\xff\xfe progressToken \x00\n");
        observer.observe(b"{\"method\":\"notifications/progress\",\"params\":{\"progressToken\":null,\"progress\":1}}\n");
        observer.observe(b"[{\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"in-batch\",\"progress\":1}}]\n");
        assert_eq!(
            series(&metrics, "containerkit_mcp_progress{"),
            [r#"containerkit_mcp_progress{source="child",token="in-batch"} 1.0"#]
        );
    }

    #[test]
    fn an_overlong_message_is_skipped_without_being_held() {
        let (metrics, mut observer) = observer();
        let big = vec![b'x'; MAX_OBSERVED_MESSAGE_BYTES];
        observer.observe(b"{\"progressToken\":\"");
        observer.observe(&big);
        assert!(observer.framer.pending_bytes() <= MAX_OBSERVED_MESSAGE_BYTES);
        observer.observe(b"\"}\n");
        observer.observe(notification("after", 1, None).as_bytes());
        assert_eq!(series(&metrics, "containerkit_mcp_progress{").len(), 1);
    }

    #[test]
    fn tokens_are_bounded_and_the_least_recently_updated_is_evicted() {
        let (metrics, mut observer) = observer();
        for token in 0..MAX_PROGRESS_TOKENS {
            observer.observe(notification(&format!("t{token}"), 1, Some(2)).as_bytes());
        }
        // Touch t0 so that t1 is now the least recently updated.
        observer.observe(notification("t0", 2, Some(2)).as_bytes());
        observer.observe(notification("new", 1, Some(2)).as_bytes());
        let progress = series(&metrics, "containerkit_mcp_progress{");
        assert_eq!(progress.len(), MAX_PROGRESS_TOKENS);
        assert!(progress.iter().any(|s| s.contains("token=\"t0\"")));
        assert!(progress.iter().any(|s| s.contains("token=\"new\"")));
        assert!(!progress.iter().any(|s| s.contains("token=\"t1\"")));
        assert_eq!(
            series(&metrics, "containerkit_mcp_progress_target{").len(),
            MAX_PROGRESS_TOKENS
        );
        assert_eq!(
            series(
                &metrics,
                "containerkit_exporter_mcp_progress_tokens_evicted_total"
            ),
            [r#"containerkit_exporter_mcp_progress_tokens_evicted_total{source="child"} 1"#]
        );
    }

    #[test]
    fn a_heartbeat_moves_only_the_token() {
        let params: Map<String, Value> = serde_json::from_str(
            r#"{"progressToken":"a","progress":3,"metadata":{"step":3,"total":10,
                "step_name":"build_image","status":"running","kind":"heartbeat"}}"#,
        )
        .unwrap();
        assert_eq!(step_event(&params), None);
    }

    fn params(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn container_kit_step_fields_in_metadata_become_an_event() {
        let event = step_event(&params(
            r#"{"progressToken":"a","progress":2,"total":10,"message":"[20%] Generating",
                "metadata":{"step":2,"total":10,"percentage":20,"message":"Generating",
                "status":"running","step_name":"generate_dockerfile","trace_id":"t",
                "started_at":"2025-07-11T20:14:10Z"}}"#,
        ))
        .unwrap();
        assert_eq!((event.step, event.total, event.percentage), (2, 10, 20));
        assert_eq!(event.step_name, "generate_dockerfile");
        assert_eq!(event.status, crate::event::Status::Running);
        assert_eq!(event.message.as_deref(), Some("Generating"));
        assert_eq!(event.time, None);
    }

    #[test]
    fn step_fields_in_meta_or_params_take_step_and_total_from_the_notification() {
        for json in [
            r#"{"progressToken":"a","progress":4,"total":8,"_meta":{"step_name":"push_image",
                "status":"completed","duration":"2.5s"}}"#,
            r#"{"progressToken":"a","progress":4,"total":8,"step_name":"push_image",
                "status":"completed","duration":2500000000}"#,
        ] {
            let event = step_event(&params(json)).unwrap();
            assert_eq!(
                (event.step, event.total, event.percentage),
                (4, 8, 50),
                "{json}"
            );
            assert_eq!(event.step_name, "push_image");
            assert_eq!(event.duration, Some(std::time::Duration::from_millis(2500)));
        }
    }

    #[test]
    fn a_progress_line_as_the_message_becomes_an_event() {
        let event = step_event(&params(
            r#"{"progressToken":"a","progress":1,"message":"INFO ✅ PROGRESS step=1 total=4 step_name=build_image status=completed duration=3s"}"#,
        ))
        .unwrap();
        assert_eq!((event.step, event.total), (1, 4));
        assert_eq!(event.duration, Some(std::time::Duration::from_secs(3)));
    }

    #[test]
    fn notifications_without_valid_step_fields_carry_no_event() {
        for json in [
            r#"{"progressToken":"a","progress":1,"total":3,"message":"Building"}"#,
            r#"{"progressToken":"a","progress":1,"metadata":{"step":1,"total":3}}"#,
            r#"{"progressToken":"a","progress":1,"metadata":{"step":1,"total":3,
                "step_name":"x","status":"sleeping"}}"#,
            r#"{"progressToken":"a","progress":0.5,"metadata":{"step_name":"x",
                "status":"running"}}"#,
        ] {
            assert_eq!(step_event(&params(json)), None, "{json}");
        }
    }
}
