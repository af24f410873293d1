//! Property tests over `parse_line` and `may_be_progress` as a whole: no input makes them
//! panic, the prefilter never hides a PROGRESS line, and the three line forms agree.
//!
//! Test-only; the unit tests of each rule live beside the code that applies it.

use proptest::prelude::*;
use serde_json::json;

use super::duration::format_go_duration;
use super::{may_be_progress, parse_line};
use crate::event::{ParseError, ProgressEvent};

/// Removes ANSI sequences the way FORMAT.md describes, as the line reader does.
fn cleaned(raw: &[u8]) -> String {
    let mut kept = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b {
            if raw.get(i + 1) == Some(&b'[') {
                i += 2;
                while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        kept.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[test]
fn colour_codes_around_the_message_are_seen_by_the_prefilter() {
    let raw = b"\x1b[32mINFO\x1b[0m \xf0\x9f\x94\x84 PRO\x1b[1mGRESS\x1b[0m step=1 total=2 \
        step_name=x";
    assert!(may_be_progress(raw));
    assert!(parse_line(&cleaned(raw)).is_ok_and(|event| event.is_some_and(|e| e.step == 1)));
}

/// Lines made of the pieces PROGRESS lines are built from, so that random cases often
/// come close to real ones.
fn line_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("PROGRESS".to_owned()),
        Just("🔄".to_owned()),
        Just("✅\u{FE0F}".to_owned()),
        Just("msg=".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("{\"msg\":".to_owned()),
        Just("step=".to_owned()),
        Just("total=".to_owned()),
        Just("step_name=".to_owned()),
        Just("duration=".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        "[0-9]{1,3}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn never_panics_on_any_text(line in "\\PC*") {
        let _ = parse_line(&line);
    }

    #[test]
    fn never_panics_on_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let line = cleaned(&raw);
        let result = parse_line(&line);
        if result != Ok(None) {
            prop_assert!(may_be_progress(&raw), "{:?} gave {:?}", line, result);
        }
    }

    #[test]
    fn the_prefilter_never_hides_a_progress_line(line in line_like()) {
        let result = parse_line(&line);
        if result != Ok(None) {
            prop_assert!(may_be_progress(line.as_bytes()), "{:?} gave {:?}", line, result);
        }
    }

    #[test]
    fn the_prefilter_sees_through_colour_codes(
        line in line_like(),
        cuts in proptest::collection::vec(
            (any::<prop::sample::Index>(), "\x1b\\[[0-9;]{0,4}[@-~]"),
            0..4,
        ),
    ) {
        // Put escape sequences at char boundaries of the line, then check the raw bytes.
        let boundaries: Vec<usize> =
            (0..=line.len()).filter(|&i| line.is_char_boundary(i)).collect();
        let mut cuts: Vec<(usize, String)> = cuts
            .into_iter()
            .map(|(at, sequence)| (boundaries[at.index(boundaries.len())], sequence))
            .collect();
        cuts.sort();
        let mut raw = String::new();
        let mut from = 0;
        for (at, sequence) in cuts {
            raw.push_str(&line[from..at]);
            raw.push_str(&sequence);
            from = at;
        }
        raw.push_str(&line[from..]);
        prop_assert_eq!(cleaned(raw.as_bytes()), line.clone());
        if parse_line(&line) != Ok(None) {
            prop_assert!(may_be_progress(raw.as_bytes()));
        }
    }
}

/// The data of one PROGRESS line, to be written in each of the three forms.
#[derive(Clone, Debug)]
struct Data {
    emoji: Option<&'static str>,
    step: u32,
    total: u32,
    percentage: Option<u32>,
    step_name: String,
    status: Option<String>,
    message: Option<String>,
    error: Option<String>,
    duration_nanos: Option<u64>,
}

/// Text with the characters that make quoting and escaping matter.
fn awkward_text() -> impl Strategy<Value = String> {
    "([a-z_]|[ =\"\\\\\n\t\r]|🚀|✅|\u{FE0F}|é|\u{7}|\u{A0}|PROGRESS){0,12}"
}

fn data() -> impl Strategy<Value = Data> {
    let emoji = prop_oneof![
        Just(None),
        Just(Some("🚀")),
        Just(Some("🔄")),
        Just(Some("✅\u{FE0F}")),
        Just(Some("❌")),
        Just(Some("🎉")),
    ];
    let status = prop_oneof![
        Just(None),
        Just(Some("running".to_owned())),
        Just(Some("Completed".to_owned())),
        Just(Some("FAILED".to_owned())),
        Just(Some("unknown".to_owned())),
    ];
    (
        emoji,
        0u32..12,
        0u32..12,
        proptest::option::of(0u32..120),
        awkward_text(),
        status,
        proptest::option::of(awkward_text()),
        proptest::option::of(awkward_text()),
        proptest::option::of(0u64..5_000_000_000_000),
    )
        .prop_map(
            |(emoji, step, total, percentage, step_name, status, message, error, nanos)| Data {
                emoji,
                step,
                total,
                percentage,
                step_name,
                status,
                message,
                error,
                duration_nanos: nanos,
            },
        )
}

/// Go-style double quoting, as slog's text handler writes it.
fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A value as slog writes it: bare unless it needs quoting.
fn slog_value(text: &str) -> String {
    let needs_quotes = text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if needs_quotes {
        quote(text)
    } else {
        text.to_owned()
    }
}

impl Data {
    /// The `key=value` pairs after the message, each value written by `write`.
    fn pairs(&self, write: fn(&str) -> String) -> String {
        let mut pairs = vec![
            format!("step={}", self.step),
            format!("total={}", self.total),
        ];
        if let Some(percentage) = self.percentage {
            pairs.push(format!("percentage={percentage}"));
        }
        pairs.push(format!("step_name={}", write(&self.step_name)));
        let texts = [
            ("status", &self.status),
            ("message", &self.message),
            ("error", &self.error),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                pairs.push(format!("{key}={}", write(value)));
            }
        }
        if let Some(nanos) = self.duration_nanos {
            let text = format_go_duration(std::time::Duration::from_nanos(nanos));
            pairs.push(format!("duration={}", write(&text)));
        }
        pairs.join(" ")
    }

    fn message(&self) -> String {
        match self.emoji {
            Some(emoji) => format!("{emoji} PROGRESS"),
            None => "PROGRESS".to_owned(),
        }
    }

    fn slog_text(&self) -> String {
        let msg = slog_value(&self.message());
        format!(
            "time=2025-07-11T20:14:10.357-04:00 msg={msg} {}",
            self.pairs(slog_value)
        )
    }

    fn console(&self) -> String {
        format!(
            "2025/07/11 20:14:10 INFO {} {}",
            self.message(),
            self.pairs(quote)
        )
    }

    fn json(&self) -> String {
        let mut object = json!({
            "time": "2025-07-11T20:14:10.357-04:00",
            "msg": self.message(),
            "step": self.step,
            "total": self.total,
            "percentage": self.percentage,
            "step_name": self.step_name,
            "status": self.status,
            "message": self.message,
            "error": self.error,
            "duration": self.duration_nanos,
        });
        if let Some(map) = object.as_object_mut() {
            map.retain(|_, value| !value.is_null());
        }
        object.to_string()
    }
}

proptest! {
    #[test]
    fn the_three_forms_agree(data in data()) {
        let slog = parse_line(&data.slog_text());
        let json = parse_line(&data.json());
        // The console form cannot carry the time in its prefix.
        let console = parse_line(&data.console())
            .map(|event| event.map(|event| ProgressEvent { time: slog_time(&slog), ..event }));
        prop_assert!(!matches!(slog, Ok(None)), "{:?} was noise", data.slog_text());
        prop_assert_eq!(&slog, &json, "{}\n{}", data.slog_text(), data.json());
        prop_assert_eq!(&slog, &console, "{}\n{}", data.slog_text(), data.console());
        if let Ok(Some(event)) = &slog {
            prop_assert_eq!(event.step, data.step);
            prop_assert_eq!(Some(event.step_name.as_str()), Some(data.step_name.as_str()));
        }
    }
}

fn slog_time(
    result: &Result<Option<ProgressEvent>, ParseError>,
) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    match result {
        Ok(Some(event)) => event.time,
        _ => None,
    }
}
