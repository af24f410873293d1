//! Form C: one JSON object per line, as slog's JSON handler writes it, with the message in
//! `msg`.
//!
//! serde_json reads the object; this module picks the message and hands the top-level
//! values to the shared field checks. A line that is not valid JSON is looked at byte by
//! byte to decide whether its `msg` was a PROGRESS message.

use memchr::memmem;
use serde_json::{Map, Value as JsonValue};

use super::fields::{Fields, Value};
use super::recognise::{self, Message};
use crate::event::{ParseError, ProgressEvent};

/// The `malformed` detail for a PROGRESS line that is not valid JSON.
pub(super) const BROKEN_JSON: &str = "broken JSON";

/// Reads a line that starts with `{`.
///
/// Only top-level keys count; nested objects (slog groups) are ignored. For a duplicate
/// key the last one wins, `msg` included. A valid object whose `msg` is missing or is not
/// a PROGRESS message is noise. When the line is not valid JSON, the last `"msg": "..."`
/// found in its bytes decides: a PROGRESS message makes the line `malformed`, another
/// message makes it noise, and with no `msg` at all the answer is `None`: the line may be
/// a text line that happens to start with `{`, and the caller reads it as text.
pub(super) fn parse(line: &str) -> Option<Result<Option<ProgressEvent>, ParseError>> {
    let object: Map<String, JsonValue> = match serde_json::from_str(line) {
        Ok(object) => object,
        Err(_) => {
            return message_in_broken_json(line).map(|message| match message {
                Some(_) => Err(ParseError::Malformed(BROKEN_JSON)),
                None => Ok(None),
            });
        }
    };

    let message = object
        .get("msg")
        .and_then(JsonValue::as_str)
        .and_then(recognise::message);
    let Some(message) = message else {
        return Some(Ok(None));
    };
    let mut fields = Fields::default();
    for (key, value) in &object {
        fields.set(key, Value::from_json(value));
    }
    Some(fields.into_event(message.emoji).map(Some))
}

/// Looks for `"msg"`, a colon and a string in text that serde_json refused. `None` when
/// there is no such key; otherwise whether the last one's string is a PROGRESS message. A
/// string cut off by the end of the line is read up to there.
fn message_in_broken_json(line: &str) -> Option<Option<Message>> {
    const KEY: &str = "\"msg\"";
    let mut found = None;
    for at in memmem::find_iter(line.as_bytes(), KEY) {
        let after_key = line[at + KEY.len()..].trim_start_matches(is_json_space);
        let Some(after_colon) = after_key.strip_prefix(':') else {
            continue;
        };
        let value = after_colon.trim_start_matches(is_json_space);
        if value.starts_with('"') {
            found = Some(string_prefix(value).and_then(|text| recognise::message(&text)));
        }
    }
    found
}

fn is_json_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Decodes the JSON string at the start of `text`, closing it at the end of the line if
/// its closing quote is missing. `None` when it is not a valid string even so.
fn string_prefix(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return serde_json::from_str(&text[..=i]).ok(),
            _ => i += 1,
        }
    }
    serde_json::from_str(&format!("{text}\"")).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::{Emoji, Status};

    fn event(line: &str) -> ProgressEvent {
        match parse(line) {
            Some(Ok(Some(event))) => event,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn result(line: &str) -> Result<Option<ProgressEvent>, ParseError> {
        parse(line).unwrap_or_else(|| panic!("{line:?} was not read as JSON"))
    }

    const FIELDS: &str = r#""step":1,"total":4,"step_name":"build_image""#;

    #[test]
    fn numbers_may_be_strings_or_integral_floats() {
        let e = event(
            r#"{"msg":"🔄 PROGRESS","step":"1","total":4.0,"percentage":"25.0","step_name":"x"}"#,
        );
        assert_eq!((e.step, e.total, e.percentage), (1, 4, 25));
        let e = event(r#"{"msg":"🔄 PROGRESS","step":1e0,"total":"4","step_name":"x"}"#);
        assert_eq!((e.step, e.total, e.percentage), (1, 4, 25));
    }

    #[test]
    fn non_integral_or_non_numeric_numbers_are_invalid() {
        for (step, field) in [
            (r#""step":1.5,"total":4"#, "step"),
            (r#""step":"1.5","total":4"#, "step"),
            (r#""step":true,"total":4"#, "step"),
            (r#""step":[1],"total":4"#, "step"),
            (r#""step":1,"total":"four""#, "total"),
            (r#""step":1,"total":1e300"#, "total"),
            (r#""step":-1,"total":4"#, "step"),
            (r#""step":999999999999999999999999,"total":4"#, "step"),
            (r#""step":4294967296,"total":4294967296"#, "step"),
            (r#""step":1,"total":0"#, "total"),
        ] {
            let line = format!(r#"{{"msg":"🔄 PROGRESS",{step},"step_name":"x"}}"#);
            assert_eq!(
                result(&line),
                Err(ParseError::InvalidNumber(field)),
                "{line}"
            );
        }
    }

    #[test]
    fn null_and_empty_strings_are_absent() {
        let line = concat!(
            r#"{"msg":"🔄 PROGRESS","step":1,"total":4,"step_name":"x","#,
            r#""message":null,"error":"","percentage":null}"#,
        );
        let e = event(line);
        assert_eq!((e.message, e.error, e.percentage), (None, None, 25));
        let line = r#"{"msg":"🔄 PROGRESS","step":null,"total":4,"step_name":"x"}"#;
        assert_eq!(result(line), Err(ParseError::MissingField("step")));
    }

    #[test]
    fn an_integer_duration_is_nanoseconds_and_a_string_is_go_text() {
        let with = |duration: &str| {
            result(&format!(
                r#"{{"msg":"✅ PROGRESS",{FIELDS},"duration":{duration}}}"#
            ))
            .map(|event| event.and_then(|event| event.duration))
        };
        assert_eq!(with("1500"), Ok(Some(Duration::from_nanos(1500))));
        assert_eq!(with("1500.0"), Ok(Some(Duration::from_nanos(1500))));
        assert_eq!(with(r#""1.5µs""#), Ok(Some(Duration::from_nanos(1500))));
        assert_eq!(with(r#""850us""#), Ok(Some(Duration::from_micros(850))));
        assert_eq!(with(r#""0s""#), Ok(Some(Duration::ZERO)));
        assert_eq!(with("null"), Ok(None));
        assert_eq!(with(r#""1500""#), Err(ParseError::InvalidDuration));
        assert_eq!(with("1.5"), Err(ParseError::InvalidDuration));
        assert_eq!(with("-1"), Err(ParseError::InvalidDuration));
        assert_eq!(with(r#""-1s""#), Err(ParseError::InvalidDuration));
        assert_eq!(with("true"), Err(ParseError::InvalidDuration));
        assert_eq!(
            with("18446744073709551615"),
            Err(ParseError::InvalidDuration)
        );
    }

    #[test]
    fn the_last_duplicate_key_wins() {
        let line = concat!(
            r#"{"msg":"🔄 PROGRESS","step":1,"total":4,"#,
            r#""step_name":"a","step_name":"b","step":2}"#,
        );
        let e = event(line);
        assert_eq!((e.step, e.step_name.as_str()), (2, "b"));
        let line = format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS},"msg":"done"}}"#);
        assert_eq!(result(&line), Ok(None));
        let line = format!(r#"{{"msg":"done",{FIELDS},"msg":"🎉 PROGRESS"}}"#);
        assert_eq!(event(&line).emoji, Some(Emoji::Party));
    }

    #[test]
    fn escaped_emoji_and_surrounding_space_are_fine() {
        let line = format!(" {{ \"msg\" : \"\\ud83d\\ude80 PROGRESS\" , {FIELDS} }} ");
        assert_eq!(event(&line).status, Status::Started);
    }

    #[test]
    fn other_json_values_in_text_fields_are_kept_as_json_text() {
        let line = concat!(
            r#"{"msg":"🔄 PROGRESS","step":1,"total":4,"#,
            r#""step_name":7,"error":{"code":1},"level":true}"#,
        );
        let e = event(line);
        assert_eq!(e.step_name, "7");
        assert_eq!(e.error.as_deref(), Some(r#"{"code":1}"#));
        assert_eq!(e.level.as_deref(), Some("true"));
    }

    #[test]
    fn status_must_be_a_known_string() {
        let line = format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS},"status":"COMPLETED"}}"#);
        assert_eq!(event(&line).status, Status::Completed);
        let line = format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS},"status":1}}"#);
        assert_eq!(result(&line), Err(ParseError::InvalidStatus));
    }

    #[test]
    fn a_time_that_is_not_rfc_3339_is_left_out() {
        for time in [r#""yesterday""#, "1752199800", r#""2025-07-11 20:14:10""#] {
            let line = format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS},"time":{time}}}"#);
            assert_eq!(event(&line).time, None, "{line}");
        }
    }

    #[test]
    fn broken_json_is_malformed_only_when_its_msg_is_a_progress_message() {
        for line in [
            format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS}"#),
            format!(r#"{{"msg": "🔄 PROGRESS", {FIELDS},}}"#),
            format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS}}} trailing"#),
            format!(r#"{{"msg":"other","msg" :"✅ PROGRESS",{FIELDS},"#),
            r#"{"time":"2025-07-12T02:05:03Z","msg":"🔄 PROGRESS"#.to_owned(),
            // serde_json refuses numbers beyond f64, so the line is not valid JSON.
            format!(r#"{{"msg":"🔄 PROGRESS",{FIELDS},"step":1e400}}"#),
        ] {
            assert_eq!(
                result(&line),
                Err(ParseError::Malformed(BROKEN_JSON)),
                "{line}"
            );
        }
        for line in [
            format!(r#"{{"msg":"retrying PROGRESS",{FIELDS}"#),
            format!(r#"{{"msg":"🔄 PROGRESS","msg":"done",{FIELDS}"#),
            r#"{"msg":"🔄 PROG"#.to_owned(),
        ] {
            assert_eq!(result(&line), Ok(None), "{line}");
        }
    }

    #[test]
    fn broken_json_without_msg_is_left_to_the_text_reader() {
        assert!(parse(r#"{main} INFO 🔄 PROGRESS step=1 total=4 step_name=x"#).is_none());
        assert!(parse(r#"{"note":"PROGRESS""#).is_none());
        // An escaped `\"msg\"` inside a string is not a key.
        let quoted_msg = r#"{"note":"\"msg\":\"🔄 PROGRESS\"","#;
        assert!(parse(quoted_msg).is_none());
        assert_eq!(crate::parse::parse_line(quoted_msg), Ok(None));
        assert!(
            crate::parse::parse_line("{main} INFO 🔄 PROGRESS step=1 total=4 step_name=x")
                .is_ok_and(|event| event.is_some())
        );
    }
}
