//! Go duration text: reading it the way Go's `time.ParseDuration` does and writing it the
//! way Go's `time.Duration.String` does.
//!
//! Container Kit logs `duration` with Go's formatting, and `replay --output events` prints
//! durations back in the same text, so both directions have to agree with Go to the
//! nanosecond, overflow cases included.

use std::time::Duration;

/// One nanosecond less than 2^63: the largest duration Go can hold.
const MAX_NANOS: u64 = i64::MAX as u64;

/// 2^63 nanoseconds: the magnitude of the most negative duration, which Go's parser
/// allows while it accumulates.
const LIMIT_NANOS: u64 = 1 << 63;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;

/// Parses Go duration text such as `1h2m3.5s`, `850.5µs` or `-2m3.4s` into signed
/// nanoseconds.
///
/// Returns `None` exactly where Go's `time.ParseDuration` returns an error: empty text, a
/// number without a unit (only a bare `0` is allowed), an unknown unit, or a value outside
/// ±(2^63 − 1) ns (with `-9223372036854775808ns` still allowed, as in Go). Fractions are
/// scaled with the same float arithmetic Go uses, so results match to the nanosecond.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let mut rest = text.as_bytes();

    // An optional sign, then the special case of a lone zero.
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    if rest == b"0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }

    // One or more `number unit` pieces, summed as an unsigned magnitude.
    let mut magnitude: u64 = 0;
    while !rest.is_empty() {
        let (piece, after) = parse_piece(rest)?;
        rest = after;
        // Go adds without an overflow check here: two pieces of exactly 2^63 wrap to zero,
        // and Go then carries on. Wrapping keeps that behaviour.
        magnitude = magnitude.wrapping_add(piece);
        if magnitude > LIMIT_NANOS {
            return None;
        }
    }

    if negative {
        // 2^63 wraps to i64::MIN, which is the value Go gives.
        Some((magnitude as i64).wrapping_neg())
    } else if magnitude > MAX_NANOS {
        None
    } else {
        Some(magnitude as i64)
    }
}

/// Reads one `[0-9]*(\.[0-9]*)?unit` piece and returns its magnitude in nanoseconds, at
/// most 2^63, with the rest of the text.
fn parse_piece(text: &[u8]) -> Option<(u64, &[u8])> {
    if !(text[0] == b'.' || text[0].is_ascii_digit()) {
        return None;
    }

    // The whole part overflows as an error; the fraction only stops gaining precision.
    let (whole, rest) = leading_int(text)?;
    let has_whole = rest.len() != text.len();
    let (mut fraction, mut scale, mut has_fraction, mut rest) = (0, 1.0, false, rest);
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let (digits, digits_scale, after) = leading_fraction(after_dot);
        (fraction, scale, has_fraction) = (digits, digits_scale, after.len() != after_dot.len());
        rest = after;
    }
    if !has_whole && !has_fraction {
        return None;
    }

    // The unit is everything up to the next digit or dot.
    let unit_len = rest
        .iter()
        .position(|&b| b == b'.' || b.is_ascii_digit())
        .unwrap_or(rest.len());
    let unit = unit_nanos(&rest[..unit_len])?;
    let rest = &rest[unit_len..];

    if whole > LIMIT_NANOS / unit {
        return None;
    }
    let mut nanos = whole * unit;
    if fraction > 0 {
        // Go multiplies in float64 to stay exact for fractions of an hour; the product is
        // below one unit, so the cast only truncates.
        nanos += (fraction as f64 * (unit as f64 / scale)) as u64;
        if nanos > LIMIT_NANOS {
            return None;
        }
    }
    Some((nanos, rest))
}

/// Reads leading decimal digits; `None` when the number passes 2^63.
fn leading_int(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut value: u64 = 0;
    for &b in &text[..digits] {
        if value > LIMIT_NANOS / 10 {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
        if value > LIMIT_NANOS {
            return None;
        }
    }
    Some((value, &text[digits..]))
}

/// Reads the digits after a decimal point as `value / scale`; digits that would overflow
/// are consumed but ignored.
fn leading_fraction(text: &[u8]) -> (u64, f64, &[u8]) {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let (mut value, mut scale) = (0u64, 1.0f64);
    for &b in &text[..digits] {
        if value > MAX_NANOS / 10 {
            break;
        }
        let next = value * 10 + u64::from(b - b'0');
        if next > LIMIT_NANOS {
            break;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &text[digits..])
}

/// Nanoseconds in one of Go's units; both the micro sign (U+00B5) and the Greek mu
/// (U+03BC) spell microseconds.
fn unit_nanos(unit: &[u8]) -> Option<u64> {
    match unit {
        b"ns" => Some(1),
        // "µs" (U+00B5) and "μs" (U+03BC) in UTF-8.
        b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => Some(NANOS_PER_MICRO),
        b"ms" => Some(NANOS_PER_MILLI),
        b"s" => Some(NANOS_PER_SECOND),
        b"m" => Some(NANOS_PER_MINUTE),
        b"h" => Some(NANOS_PER_HOUR),
        _ => None,
    }
}

/// Writes a duration the way Go's `time.Duration.String` does: `0s`, `850ns`, `1.5µs`,
/// `2.9ms`, `45.2s`, `1m47.302118455s`, `1h0m0s`.
///
/// Below one second the largest fitting unit among ns, µs (U+00B5) and ms is used; from
/// one second up the text is hours, minutes and seconds, with trailing zeros of the
/// fraction dropped. Go cannot hold more than `i64::MAX` ns; a longer `Duration` is written
/// by the same rules, in hours that Go itself could not read back.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }

    let mut text = String::new();
    if nanos < u128::from(NANOS_PER_SECOND) {
        // Below a second: one unit, with a fraction of up to 6 digits.
        let (digits, unit) = if nanos < u128::from(NANOS_PER_MICRO) {
            (0, "ns")
        } else if nanos < u128::from(NANOS_PER_MILLI) {
            (3, "µs")
        } else {
            (6, "ms")
        };
        push_decimal(&mut text, nanos, digits);
        text.push_str(unit);
        return text;
    }

    // A second or more: whole hours and minutes when present, then seconds.
    let seconds_total = nanos / u128::from(NANOS_PER_SECOND);
    let minutes_total = seconds_total / 60;
    let hours = minutes_total / 60;
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes_total > 0 {
        text.push_str(&format!("{}m", minutes_total % 60));
    }
    push_decimal(&mut text, nanos % (60 * u128::from(NANOS_PER_SECOND)), 9);
    text.push('s');
    text
}

/// Writes `value / 10^digits` with its fraction's trailing zeros (and a then bare point)
/// left out.
fn push_decimal(text: &mut String, value: u128, digits: u32) {
    let scale = 10u128.pow(digits);
    text.push_str(&(value / scale).to_string());
    let fraction = value % scale;
    if fraction > 0 {
        let padded = format!("{fraction:0width$}", width = digits as usize);
        text.push('.');
        text.push_str(padded.trim_end_matches('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;

    #[test]
    fn accepts_what_go_accepts_with_go_values() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5s", 5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-5s", -5 * SECOND),
            ("5.s", 5 * SECOND),
            (".5s", SECOND / 2),
            ("1.004s", SECOND + 4_000_000),
            ("1.0040s", SECOND + 4_000_000),
            ("100.00100s", 100 * SECOND + 1_000_000),
            ("10.5s4m", 4 * MINUTE + 10 * SECOND + SECOND / 2),
            ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                HOUR + 2 * MINUTE + 3 * SECOND + 4_005_006,
            ),
            (
                "39h9m14.425s",
                39 * HOUR + 9 * MINUTE + 14 * SECOND + 425_000_000,
            ),
            ("52763797000ns", 52_763_797_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("1us", 1_000),
            ("850.5µs", 850_500),
            ("2.9ms", 2_900_000),
            ("45.2s", 45_200_000_000),
            ("1m47.302118455s", MINUTE + 47 * SECOND + 302_118_455),
            ("1h2m3.5s", HOUR + 2 * MINUTE + 3 * SECOND + SECOND / 2),
            ("0.3333333333333333333h", 20 * MINUTE),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE),
            (
                "0.830103483285477580700h",
                49 * MINUTE + 48 * SECOND + 372_539_827,
            ),
        ];
        for &(text, nanos) in cases {
            assert_eq!(parse_go_duration(text), Some(nanos), "{text:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        let cases = [
            "",
            "3",
            "-",
            "+",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "00",
            "1d",
            "1 s",
            "1s ",
            "1S",
            "1.5",
            "5s3",
            "\u{85}\u{85}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "3000000h",
            "-3000000h",
            "2562047h47m16.854775808s",
            "99999999999999999999s",
        ];
        for text in cases {
            assert_eq!(parse_go_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn wraps_like_go_when_two_pieces_of_two_to_the_63_add_up() {
        // Go's sum wraps to zero here and it returns 0 without an error.
        assert_eq!(
            parse_go_duration("9223372036854775808ns9223372036854775808ns"),
            Some(0)
        );
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (1_500, "1.5µs"),
            (850_500, "850.5µs"),
            (2_200_000, "2.2ms"),
            (2_900_000, "2.9ms"),
            (3_300_000_000, "3.3s"),
            (45_200_000_000, "45.2s"),
            (4 * 60_000_000_000 + 5_000_000_000, "4m5s"),
            (4 * 60_000_000_000 + 5_001_000_000, "4m5.001s"),
            (107_302_118_455, "1m47.302118455s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (
                5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_001_000_000,
                "5h6m7.001s",
            ),
            (8 * 3_600_000_000_000 + 1, "8h0m0.000000001s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ];
        for &(nanos, text) in cases {
            assert_eq!(
                format_go_duration(Duration::from_nanos(nanos)),
                text,
                "{nanos}"
            );
        }
    }

    #[test]
    fn formats_beyond_go_range_by_the_same_rules() {
        let d = Duration::from_nanos(u64::MAX);
        assert_eq!(format_go_duration(d), "5124095h34m33.709551615s");
    }

    proptest! {
        #[test]
        fn formatted_durations_parse_back(nanos in 0..=i64::MAX) {
            let text = format_go_duration(Duration::from_nanos(nanos as u64));
            prop_assert_eq!(parse_go_duration(&text), Some(nanos));
        }

        #[test]
        fn small_durations_parse_back(nanos in 0i64..10_000_000_000) {
            let text = format_go_duration(Duration::from_nanos(nanos as u64));
            prop_assert_eq!(parse_go_duration(&text), Some(nanos));
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_go_duration(&text);
        }

        #[test]
        fn never_panics_on_duration_like_text(
            text in "[-+]?([0-9.]{0,22}(ns|us|µs|μs|ms|s|m|h|x)){1,4}",
        ) {
            let _ = parse_go_duration(&text);
        }
    }
}
