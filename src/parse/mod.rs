//! The parser: turns one whole, cleaned line into a `ProgressEvent`, `None` for noise, or a
//! `ParseError` for a PROGRESS line that is broken.
//!
//! It sits between the line reader (which frames bytes into lines) and the workflow
//! recorder. Inside, `prefilter` screens raw bytes, `text` reads the slog text and console
//! forms through the `logfmt` lexer, `json` reads slog's JSON, `recognise` says what a
//! PROGRESS message is, and `fields` checks values the same way for every form.
//!
//! Where FORMAT.md leaves a choice open, the rule taken is written at the item that
//! applies it: recognition of each form in `text::parse` and `json::parse`, the order of
//! faults in `Fields::into_event`, what counts as a number in `fields::integer`.

pub mod duration;
mod fields;
mod json;
mod logfmt;
mod prefilter;
#[cfg(test)]
mod properties;
mod recognise;
mod text;

use crate::event::{ParseError, ProgressEvent};

/// Cheap byte-level check run on every raw line before anything else: false means the line
/// cannot be a PROGRESS line.
///
/// True whenever the line contains `PROGRESS` once ANSI escape sequences are removed, so it
/// never hides a line `parse_line` would report. It allocates nothing; a line without the
/// word costs one substring search, plus one escape-aware scan if it holds an ESC byte.
pub fn may_be_progress(raw: &[u8]) -> bool {
    prefilter::contains_word(raw)
}

/// Parses one line whose ANSI escapes, trailing `\r` and leading NUL bytes are already
/// removed.
///
/// Returns `Ok(None)` for ordinary noise, `Ok(Some(event))` for a PROGRESS line and
/// `Err(..)` for a PROGRESS line that is broken. A line that starts with `{` (after spaces)
/// is read as JSON (form C), any other as text (forms A and B); so is a line starting with
/// `{` that is not JSON and has no `msg` key at all.
///
/// A line must contain the word `PROGRESS` as written to be anything but noise: a message
/// that spells it only through escapes (`\u0050ROGRESS`) is not recognised. Container Kit
/// never writes it that way, and the rule means `may_be_progress` can never hide a line
/// this function would report.
pub fn parse_line(line: &str) -> Result<Option<ProgressEvent>, ParseError> {
    if !prefilter::contains_plain_word(line.as_bytes()) {
        return Ok(None);
    }
    if line.trim_start_matches([' ', '\t']).starts_with('{')
        && let Some(result) = json::parse(line)
    {
        return result;
    }
    text::parse(line)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::DateTime;

    use super::*;
    use crate::event::{Emoji, Status};

    /// An event with only the required fields set; tests fill in the rest.
    fn event(
        emoji: Option<Emoji>,
        step: u32,
        total: u32,
        name: &str,
        status: Status,
    ) -> ProgressEvent {
        ProgressEvent {
            emoji,
            ..ProgressEvent::new(step, total, name, status)
        }
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    fn parsed(line: &str) -> ProgressEvent {
        match parse_line(line) {
            Ok(Some(event)) => event,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn time(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
        Some(DateTime::parse_from_rfc3339(text).unwrap())
    }

    const NANOS: u64 = 1_000_000_000;

    #[test]
    fn slog_text_examples_from_the_contract() {
        let running = "time=2025-07-11T20:14:10.357-04:00 level=INFO msg=\"🔄 PROGRESS\" \
            component=mcp-server step=3 total=10 percentage=30 step_name=build_image \
            status=running message=\"[30%] Building Docker image\"";
        let base = ProgressEvent {
            message: some("[30%] Building Docker image"),
            component: some("mcp-server"),
            level: some("INFO"),
            ..event(Some(Emoji::Cycle), 3, 10, "build_image", Status::Running)
        };
        assert_eq!(
            parsed(running),
            ProgressEvent {
                time: time("2025-07-11T20:14:10.357-04:00"),
                ..base.clone()
            }
        );

        let completed = "time=2025-07-11T20:15:57.659-04:00 level=INFO msg=\"✅ PROGRESS\" \
            component=mcp-server step=3 total=10 percentage=30 step_name=build_image \
            status=completed message=\"[30%] Building Docker image\" duration=1m47.302118455s";
        assert_eq!(
            parsed(completed),
            ProgressEvent {
                emoji: Some(Emoji::Check),
                status: Status::Completed,
                duration: Some(Duration::from_nanos(107 * NANOS + 302_118_455)),
                time: time("2025-07-11T20:15:57.659-04:00"),
                ..base.clone()
            }
        );

        let failed = "time=2025-07-11T21:03:56.736-04:00 level=ERROR msg=\"❌ PROGRESS\" \
            component=mcp-server step=3 total=10 percentage=30 step_name=build_image \
            status=failed error=\"docker build failed:\\n \\\"exit status 1\\\"\" \
            duration=1m12.408113927s";
        assert_eq!(
            parsed(failed),
            ProgressEvent {
                emoji: Some(Emoji::Cross),
                status: Status::Failed,
                message: None,
                error: some("docker build failed:\n \"exit status 1\""),
                duration: Some(Duration::from_nanos(72 * NANOS + 408_113_927)),
                level: some("ERROR"),
                time: time("2025-07-11T21:03:56.736-04:00"),
                ..base
            }
        );
    }

    #[test]
    fn console_examples_from_the_contract() {
        let base = ProgressEvent {
            message: some("[30%] Building Docker image"),
            ..event(Some(Emoji::Cycle), 3, 10, "build_image", Status::Running)
        };
        let running = "INFO 🔄 PROGRESS step=3 total=10 percentage=30 step_name=\"build_image\" \
            status=\"running\" message=\"[30%] Building Docker image\"";
        assert_eq!(parsed(running), base);

        let completed = "INFO ✅ PROGRESS step=3 total=10 percentage=30 \
            step_name=\"build_image\" status=\"completed\" \
            message=\"[30%] Building Docker image\" duration=\"45.2s\"";
        assert_eq!(
            parsed(completed),
            ProgressEvent {
                emoji: Some(Emoji::Check),
                status: Status::Completed,
                duration: Some(Duration::from_millis(45_200)),
                ..base.clone()
            }
        );

        let failed = "INFO ❌ PROGRESS step=3 total=10 percentage=30 step_name=\"build_image\" \
            status=\"failed\" error=\"docker build failed\" duration=\"12.1s\"";
        assert_eq!(
            parsed(failed),
            ProgressEvent {
                emoji: Some(Emoji::Cross),
                status: Status::Failed,
                message: None,
                error: some("docker build failed"),
                duration: Some(Duration::from_millis(12_100)),
                ..base
            }
        );
    }

    #[test]
    fn console_prefixes_are_skipped() {
        let expected = event(Some(Emoji::Cycle), 3, 10, "build_image", Status::Running);
        for line in [
            "2025/07/11 20:14:10 INFO 🔄 PROGRESS step=3 total=10 step_name=build_image",
            "2025-07-11T20:14:10.357-04:00 INF 🔄 PROGRESS step=3 total=10 step_name=build_image",
            "[mcp] time=\"now\" level=info 🔄 PROGRESS step=3 total=10 step_name=build_image",
            "🔄 PROGRESS step=3 total=10 step_name=build_image",
            "  WARN   🔄   PROGRESS   step=3\ttotal=10   step_name=build_image  ",
        ] {
            assert_eq!(parsed(line), expected, "{line:?}");
        }
    }

    #[test]
    fn json_example_from_the_contract() {
        let line = concat!(
            r#"{"time":"2025-07-12T02:05:03.1286508Z","level":"INFO","msg":"🔄 PROGRESS","#,
            r#""component":"mcp-server","step":3,"total":10,"percentage":30,"#,
            r#""step_name":"build_image","status":"running","#,
            r#""message":"[30%] Building Docker image"}"#,
        );
        assert_eq!(
            parsed(line),
            ProgressEvent {
                message: some("[30%] Building Docker image"),
                component: some("mcp-server"),
                level: some("INFO"),
                time: time("2025-07-12T02:05:03.1286508Z"),
                ..event(Some(Emoji::Cycle), 3, 10, "build_image", Status::Running)
            }
        );
    }

    #[test]
    fn the_three_forms_give_the_same_event_for_the_same_data() {
        let slog = "time=2025-07-11T21:03:56.736-04:00 level=ERROR msg=\"❌ PROGRESS\" \
            component=mcp-server step=4 total=7 step_name=deploy_to_k8s status=failed \
            error=\"kubectl apply:\\n\\tforbidden (a=b) 🚫\" duration=2.9ms";
        let console = "2025/07/11 21:03:56 ERROR ❌ PROGRESS time=2025-07-11T21:03:56.736-04:00 \
            level=ERROR component=\"mcp-server\" step=\"4\" total=7 step_name=deploy_to_k8s \
            status=\"failed\" error=\"kubectl apply:\\n\\tforbidden (a=b) 🚫\" \
            duration=\"2.9ms\"";
        let json = concat!(
            r#"{"time":"2025-07-11T21:03:56.736-04:00","level":"ERROR","msg":"❌ PROGRESS","#,
            r#""component":"mcp-server","step":"4","total":7.0,"step_name":"deploy_to_k8s","#,
            r#""status":"failed","error":"kubectl apply:\n\tforbidden (a=b) 🚫","#,
            r#""duration":2900000}"#,
        );
        let expected = ProgressEvent {
            error: some("kubectl apply:\n\tforbidden (a=b) 🚫"),
            duration: Some(Duration::from_micros(2_900)),
            component: some("mcp-server"),
            level: some("ERROR"),
            time: time("2025-07-11T21:03:56.736-04:00"),
            ..event(Some(Emoji::Cross), 4, 7, "deploy_to_k8s", Status::Failed)
        };
        assert_eq!(expected.percentage, 57);
        assert_eq!(parsed(slog), expected);
        assert_eq!(parsed(console), expected);
        assert_eq!(parsed(json), expected);
    }

    #[test]
    fn workflow_start_and_completion() {
        let start = "time=2025-07-11T20:10:00.000Z level=INFO msg=\"🚀 PROGRESS\" step=0 \
            total=10 step_name=workflow_start";
        let done = concat!(
            r#"{"msg":"🎉 PROGRESS","step":10,"total":10,"step_name":"workflow_complete","#,
            r#""duration":"1h2m3.5s","image_ref":"localhost/app:latest","namespace":"default"}"#,
        );
        assert_eq!(
            parsed(start),
            ProgressEvent {
                level: some("INFO"),
                time: time("2025-07-11T20:10:00.000Z"),
                ..event(
                    Some(Emoji::Rocket),
                    0,
                    10,
                    "workflow_start",
                    Status::Started
                )
            }
        );
        assert_eq!(
            parsed(done),
            ProgressEvent {
                duration: Some(Duration::from_millis(3_723_500)),
                image_ref: some("localhost/app:latest"),
                namespace: some("default"),
                ..event(
                    Some(Emoji::Party),
                    10,
                    10,
                    "workflow_complete",
                    Status::Completed
                )
            }
        );
    }

    #[test]
    fn ordinary_lines_are_noise() {
        for line in [
            "",
            "time=2025-07-11T20:14:00.000-04:00 level=INFO \
                msg=\"Starting Container Kit MCP server\" version=1.2.3",
            "Container Kit MCP server v1.2.3 — PROGRESS reporting enabled",
            "time=2025-07-11T20:14:12.000-04:00 level=WARN \
                msg=\"Operation failed, retrying\" attempt=1 error=\"PROGRESS update lost\"",
            "2025/07/11 20:14:12 WARN Operation failed, retrying PROGRESS update attempt=1",
            "2025/07/11 20:14:12 INFO we made PROGRESS",
            "INFO note=\"🔄 PROGRESS step=3 total=10\" step_name=x",
            "INFO 🔄PROGRESS step=3 total=10 step_name=x",
            "INFO ⏳ PROGRESS: step=3",
            "INFO progress step=3 total=10 step_name=x",
            "level=INFO msg=\"🔄 PROGRESS now\" step=3 total=10 step_name=x",
            r#"{"level":"WARN","msg":"retrying","note":"🔄 PROGRESS","step":3,"total":10}"#,
            r#"{"level":"INFO","step":3,"total":10,"step_name":"x","note":"PROGRESS"}"#,
            r#"{"msg":{"text":"🔄 PROGRESS"},"step":3,"total":10,"step_name":"x"}"#,
        ] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn broken_progress_lines_are_malformed() {
        for line in [
            "level=INFO msg=\"🔄 PROGRESS\" step=3 total=10 step_name=x message=\"cut off",
            "level=INFO msg=\"🔄 PROGRESS",
            "level=INFO msg=\"🔄 PROGRESS\" step=3 total=10 step_name=x error=\"bad \\q escape\"",
            "level=INFO msg=\"🔄 PROGRESS\" step=3 total=10 step_name=\"x\"y",
            "INFO 🔄 PROGRESS step=3 total=10 step_name=x error=\"\\'\"",
            r#"{"msg":"🔄 PROGRESS","step":3,"total":10,"step_name":"x""#,
            r#"{"msg":"🔄 PROGRESS","step":3,"total":10,,}"#,
        ] {
            assert!(
                matches!(parse_line(line), Err(ParseError::Malformed(_))),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_missing_field_is_reported_by_name() {
        assert_eq!(
            parse_line("INFO PROGRESS step=3 total=10 step_name=x"),
            Err(ParseError::MissingField("status"))
        );
        assert_eq!(
            parse_line(r#"{"msg":"✅ PROGRESS","step":3,"step_name":"x"}"#),
            Err(ParseError::MissingField("total"))
        );
    }
}
