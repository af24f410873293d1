//! The fields of a recognised PROGRESS line, and their checks on the way to a
//! `ProgressEvent`.
//!
//! Both the text forms and JSON collect raw values here, so every form is held to the same
//! rules: which fields are required, what counts as a number, and which fault is reported
//! when a line has several.

use std::borrow::Cow;
use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::DateTime;

use super::duration::parse_go_duration;
use crate::event::{Emoji, ParseError, ProgressEvent, Status};

/// A field's value as the line gave it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value<'a> {
    /// logfmt text, or a JSON string.
    Text(Cow<'a, str>),
    /// A JSON number.
    Number(&'a serde_json::Number),
    /// A JSON boolean, array or object.
    Json(&'a serde_json::Value),
}

impl<'a> Value<'a> {
    /// A JSON value as a field value; `null` is absent.
    pub(super) fn from_json(value: &'a serde_json::Value) -> Option<Value<'a>> {
        match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(Value::Text(Cow::Borrowed(text))),
            serde_json::Value::Number(number) => Some(Value::Number(number)),
            other => Some(Value::Json(other)),
        }
    }
}

/// The known fields of one line; unknown keys are never stored.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    step: Option<Value<'a>>,
    total: Option<Value<'a>>,
    percentage: Option<Value<'a>>,
    step_name: Option<Value<'a>>,
    status: Option<Value<'a>>,
    duration: Option<Value<'a>>,
    time: Option<Value<'a>>,
    message: Option<Value<'a>>,
    error: Option<Value<'a>>,
    image_ref: Option<Value<'a>>,
    namespace: Option<Value<'a>>,
    component: Option<Value<'a>>,
    level: Option<Value<'a>>,
}

/// Integers in events are `u32`; wider values are invalid numbers.
const MAX_COUNT: i64 = u32::MAX as i64;

impl<'a> Fields<'a> {
    /// Stores a field; `None` or empty text means absent. The last value of a key wins,
    /// even when it is empty: `step=3 step=` has no step.
    pub(super) fn set(&mut self, key: &str, value: Option<Value<'a>>) {
        let slot = match key {
            "step" => &mut self.step,
            "total" => &mut self.total,
            "percentage" => &mut self.percentage,
            "step_name" => &mut self.step_name,
            "status" => &mut self.status,
            "duration" => &mut self.duration,
            "time" => &mut self.time,
            "message" => &mut self.message,
            "error" => &mut self.error,
            "image_ref" => &mut self.image_ref,
            "namespace" => &mut self.namespace,
            "component" => &mut self.component,
            "level" => &mut self.level,
            _ => return,
        };
        *slot = value.filter(|value| !matches!(value, Value::Text(text) if text.is_empty()));
    }

    /// Checks the fields and builds the event. `emoji` is the one in the message, if any.
    ///
    /// Faults are looked for in a fixed order and the first one found is reported. A
    /// `malformed` line never gets here: the form readers report it first. Then come
    /// `step`, `total`, then `step ≤ total` (reported against `step`), `percentage`,
    /// `step_name`, `status`, `duration`. A field that is missing and one that is invalid
    /// count alike at their place in that order. `time` is never a fault: when it is not
    /// RFC 3339 text the event simply has no time.
    pub(super) fn into_event(self, emoji: Option<Emoji>) -> Result<ProgressEvent, ParseError> {
        let step = integer(required(self.step, "step")?, "step", 0..=MAX_COUNT)?;
        let total = integer(required(self.total, "total")?, "total", 1..=MAX_COUNT)?;
        if step > total {
            return Err(ParseError::InvalidNumber("step"));
        }
        let percentage = match self.percentage {
            Some(value) => integer(value, "percentage", 0..=100)?,
            None => step * 100 / total,
        };
        let step_name = text(required(self.step_name, "step_name")?);
        let status = match (self.status, emoji) {
            (Some(value), _) => status(value)?,
            (None, Some(emoji)) => emoji.implied_status(),
            (None, None) => return Err(ParseError::MissingField("status")),
        };
        let duration = self.duration.map(duration).transpose()?;

        // The casts are lossless: each value was checked against a range that fits.
        Ok(ProgressEvent {
            emoji,
            step: step as u32,
            total: total as u32,
            percentage: percentage as u8,
            step_name,
            status,
            message: self.message.map(text),
            error: self.error.map(text),
            duration,
            image_ref: self.image_ref.map(text),
            namespace: self.namespace.map(text),
            component: self.component.map(text),
            level: self.level.map(text),
            time: match self.time {
                Some(Value::Text(time)) => DateTime::parse_from_rfc3339(&time).ok(),
                _ => None,
            },
        })
    }
}

fn required<'a>(value: Option<Value<'a>>, field: &'static str) -> Result<Value<'a>, ParseError> {
    value.ok_or(ParseError::MissingField(field))
}

/// An integer within `range`. Text must spell a number (`3`, `+3`, `3.0`, `3e0`); JSON
/// numbers may be integral floats. Anything else is an invalid number.
fn integer(
    value: Value<'_>,
    field: &'static str,
    range: RangeInclusive<i64>,
) -> Result<i64, ParseError> {
    let number = match value {
        Value::Text(text) => integer_text(&text),
        Value::Number(number) => json_integer(number),
        Value::Json(_) => None,
    };
    number
        .filter(|n| range.contains(n))
        .ok_or(ParseError::InvalidNumber(field))
}

fn integer_text(text: &str) -> Option<i64> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    // Rust's float syntax also takes `inf` and `NaN`; only digits, signs, a point and an
    // exponent may reach it.
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    numeric
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .and_then(integral)
}

fn json_integer(number: &serde_json::Number) -> Option<i64> {
    number
        .as_i64()
        .or_else(|| number.as_f64().and_then(integral))
}

/// A float with no fraction that fits in an `i64`.
fn integral(value: f64) -> Option<i64> {
    // 2^63 is exactly representable; everything below it and at least -2^63 fits.
    let fits = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&value);
    (fits && value.fract() == 0.0).then_some(value as i64)
}

/// A non-negative duration: Go text, or (from JSON) a number of nanoseconds.
fn duration(value: Value<'_>) -> Result<Duration, ParseError> {
    let nanos = match value {
        Value::Text(text) => parse_go_duration(&text),
        Value::Number(number) => json_integer(number),
        Value::Json(_) => None,
    };
    match nanos.map(u64::try_from) {
        Some(Ok(nanos)) => Ok(Duration::from_nanos(nanos)),
        _ => Err(ParseError::InvalidDuration),
    }
}

fn status(value: Value<'_>) -> Result<Status, ParseError> {
    match value {
        Value::Text(text) => Status::from_field(&text).ok_or(ParseError::InvalidStatus),
        _ => Err(ParseError::InvalidStatus),
    }
}

/// A text field. A JSON number, boolean, array or object is kept as its JSON text.
fn text(value: Value<'_>) -> String {
    match value {
        Value::Text(text) => text.into_owned(),
        Value::Number(number) => number.to_string(),
        Value::Json(json) => json.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    /// Parses a console line with the 🔄 emoji and the given pairs.
    fn with_emoji(pairs: &str) -> Result<ProgressEvent, ParseError> {
        read(&format!("INFO 🔄 PROGRESS {pairs}"))
    }

    /// Parses a console line with the bare word and the given pairs.
    fn bare(pairs: &str) -> Result<ProgressEvent, ParseError> {
        read(&format!("INFO PROGRESS {pairs}"))
    }

    fn read(line: &str) -> Result<ProgressEvent, ParseError> {
        parse_line(line).map(|event| event.unwrap_or_else(|| panic!("{line:?} was noise")))
    }

    #[test]
    fn percentage_defaults_to_step_share_rounded_down() {
        let share = |pairs: &str| with_emoji(pairs).map(|e| e.percentage);
        assert_eq!(share("step=0 total=10 step_name=x"), Ok(0));
        assert_eq!(share("step=1 total=3 step_name=x"), Ok(33));
        assert_eq!(share("step=2 total=3 step_name=x"), Ok(66));
        assert_eq!(share("step=7 total=7 step_name=x"), Ok(100));
        assert_eq!(
            share("step=4294967295 total=4294967295 step_name=x"),
            Ok(100)
        );
        assert_eq!(share("step=1 total=3 step_name=x percentage=90"), Ok(90));
        assert_eq!(share("step=1 total=3 step_name=x percentage=0"), Ok(0));
        assert_eq!(share("step=1 total=3 step_name=x percentage=100"), Ok(100));
        assert_eq!(share("step=1 total=3 step_name=x percentage="), Ok(33));
    }

    #[test]
    fn numbers_out_of_range_are_invalid() {
        for (pairs, field) in [
            ("step=-1 total=10", "step"),
            ("step=11 total=10", "step"),
            ("step=0 total=0", "total"),
            ("step=0 total=-3", "total"),
            ("step=1 total=4294967296", "total"),
            ("step=1 total=10 percentage=101", "percentage"),
            ("step=1 total=10 percentage=-1", "percentage"),
            ("step=1 total=10 percentage=12.5", "percentage"),
        ] {
            assert_eq!(
                with_emoji(&format!("{pairs} step_name=x")),
                Err(ParseError::InvalidNumber(field)),
                "{pairs}"
            );
        }
    }

    #[test]
    fn number_text() {
        for (text, expected) in [
            ("3", Some(3)),
            ("+3", Some(3)),
            ("-0", Some(0)),
            ("3.0", Some(3)),
            ("3.", Some(3)),
            ("3e0", Some(3)),
            ("30E-1", Some(3)),
            ("3.5", None),
            (".5", None),
            (" 3", None),
            ("3 ", None),
            ("0x3", None),
            ("inf", None),
            ("NaN", None),
            ("e", None),
            ("three", None),
            ("1e19", None),
        ] {
            assert_eq!(integer_text(text), expected, "{text:?}");
        }
    }

    #[test]
    fn status_is_matched_without_case_and_wins_over_the_emoji() {
        let status = |pairs: &str| with_emoji(pairs).map(|e| e.status);
        assert_eq!(status("step=1 total=2 step_name=x"), Ok(Status::Running));
        assert_eq!(
            status("step=1 total=2 step_name=x status=FAILED"),
            Ok(Status::Failed)
        );
        assert_eq!(
            status("step=1 total=2 step_name=x status=Completed"),
            Ok(Status::Completed)
        );
        assert_eq!(
            status("step=1 total=2 step_name=x status=done"),
            Err(ParseError::InvalidStatus)
        );
        assert_eq!(
            status("step=1 total=2 step_name=x status="),
            Ok(Status::Running)
        );
        assert_eq!(
            bare("step=1 total=2 step_name=x").map(|e| e.status),
            Err(ParseError::MissingField("status"))
        );
        assert_eq!(
            bare("step=1 total=2 step_name=x status=started").map(|e| (e.emoji, e.status)),
            Ok((None, Status::Started))
        );
    }

    #[test]
    fn durations_in_go_text() {
        let duration = |text: &str| {
            with_emoji(&format!("step=1 total=2 step_name=x duration={text}")).map(|e| e.duration)
        };
        assert_eq!(duration("45.2s"), Ok(Some(Duration::from_millis(45_200))));
        assert_eq!(
            duration("\"1h2m3.5s\""),
            Ok(Some(Duration::from_millis(3_723_500)))
        );
        assert_eq!(duration("850.5µs"), Ok(Some(Duration::from_nanos(850_500))));
        assert_eq!(duration("850.5μs"), Ok(Some(Duration::from_nanos(850_500))));
        assert_eq!(duration("850us"), Ok(Some(Duration::from_micros(850))));
        assert_eq!(duration("2.9ms"), Ok(Some(Duration::from_micros(2_900))));
        assert_eq!(duration("0s"), Ok(Some(Duration::ZERO)));
        assert_eq!(duration("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(duration("-0s"), Ok(Some(Duration::ZERO)));
        assert_eq!(duration("\"\""), Ok(None));
        assert_eq!(duration("-1s"), Err(ParseError::InvalidDuration));
        assert_eq!(duration("1500"), Err(ParseError::InvalidDuration));
        assert_eq!(duration("1d"), Err(ParseError::InvalidDuration));
        assert_eq!(duration("\"1 s\""), Err(ParseError::InvalidDuration));
    }

    #[test]
    fn empty_values_are_absent_and_the_last_duplicate_wins() {
        assert_eq!(
            with_emoji("step=1 total=2 step_name=\"\"").map(|e| e.step_name),
            Err(ParseError::MissingField("step_name"))
        );
        assert_eq!(
            with_emoji("step=1 step= total=2 step_name=x"),
            Err(ParseError::MissingField("step"))
        );
        let e =
            with_emoji("step=9 step=1 total=2 step_name=a step_name=b message= error=e").unwrap();
        assert_eq!(
            (e.step, e.step_name.as_str(), e.message, e.error.as_deref()),
            (1, "b", None, Some("e"))
        );
    }

    #[test]
    fn text_fields_are_kept() {
        let e = with_emoji(
            "step=10 total=10 step_name=workflow_complete image_ref=\"registry.local/app:1.0\" \
             namespace=prod component=mcp-server level=INFO message=\"all=done 🎉\" other=x",
        )
        .unwrap();
        assert_eq!(e.image_ref.as_deref(), Some("registry.local/app:1.0"));
        assert_eq!(e.namespace.as_deref(), Some("prod"));
        assert_eq!(e.component.as_deref(), Some("mcp-server"));
        assert_eq!(e.level.as_deref(), Some("INFO"));
        assert_eq!(e.message.as_deref(), Some("all=done 🎉"));
    }

    #[test]
    fn time_is_rfc_3339_or_nothing() {
        let time = |text: &str| {
            with_emoji(&format!("step=1 total=2 step_name=x time={text}")).map(|e| e.time)
        };
        assert_eq!(
            time("2025-07-11T20:14:10.357-04:00"),
            Ok(Some(
                DateTime::parse_from_rfc3339("2025-07-11T20:14:10.357-04:00").unwrap()
            ))
        );
        assert!(time("2025-07-12T02:05:03.1286508Z").is_ok_and(|t| t.is_some()));
        assert_eq!(time("\"2025/07/11 20:14:10\""), Ok(None));
        assert_eq!(time("yesterday"), Ok(None));
    }

    #[test]
    fn the_first_fault_in_field_order_is_reported() {
        // Each line fixes the fault the previous one reported, and nothing else.
        let steps = [
            (
                "step=x total=0 percentage=200 status=odd duration=-1s",
                ParseError::InvalidNumber("step"),
            ),
            (
                "step=5 total=0 percentage=200 status=odd duration=-1s",
                ParseError::InvalidNumber("total"),
            ),
            (
                "step=5 total=4 percentage=200 status=odd duration=-1s",
                ParseError::InvalidNumber("step"),
            ),
            (
                "step=4 total=4 percentage=200 status=odd duration=-1s",
                ParseError::InvalidNumber("percentage"),
            ),
            (
                "step=4 total=4 percentage=100 status=odd duration=-1s",
                ParseError::MissingField("step_name"),
            ),
            (
                "step=4 total=4 percentage=100 status=odd duration=-1s step_name=x",
                ParseError::InvalidStatus,
            ),
            (
                "step=4 total=4 percentage=100 status=failed duration=-1s step_name=x",
                ParseError::InvalidDuration,
            ),
        ];
        for (pairs, fault) in steps {
            assert_eq!(bare(pairs), Err(fault), "{pairs}");
        }
        assert!(
            bare("step=4 total=4 percentage=100 status=failed duration=1s step_name=x").is_ok()
        );
        assert_eq!(bare("time=now"), Err(ParseError::MissingField("step")));
        assert_eq!(
            bare("step=1 time=now"),
            Err(ParseError::MissingField("total"))
        );
    }

    #[test]
    fn a_syntax_fault_comes_before_every_field_fault() {
        assert_eq!(
            bare("step=x error=\"\\z\""),
            Err(ParseError::Malformed(crate::parse::logfmt::UNKNOWN_ESCAPE))
        );
    }
}
