//! A lenient logfmt lexer: splits a text line into `key=value` pairs, loose words and
//! broken tokens, decoding quoted text with Go's escapes.
//!
//! Forms A and B are both read through it; deciding which tokens make up the message and
//! which are fields is left to the `text` module. The lexer never gives up on a line: a
//! broken token is reported as such and lexing resumes at the next space, so a caller can
//! still find the message after it.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::{escaped, is_not, take_till, take_till1, take_while_m_n};
use nom::character::complete::{anychar, char, one_of};
use nom::combinator::{all_consuming, map, map_opt, opt, recognize};
use nom::multi::fold_many0;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// Why a token is broken; the text becomes the `malformed` error's detail.
pub(super) const UNTERMINATED_QUOTE: &str = "unterminated quote";
pub(super) const UNKNOWN_ESCAPE: &str = "unknown escape in quoted text";
pub(super) const TEXT_AFTER_QUOTE: &str = "text directly after a quoted value";

/// One token of a line, with its byte range in the line.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token<'a> {
    pub start: usize,
    pub end: usize,
    pub kind: Kind<'a>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind<'a> {
    /// `key=value`, either side bare or quoted; the value may be empty.
    Pair {
        key: Cow<'a, str>,
        value: Cow<'a, str>,
    },
    /// Text without `=` after its first run of key characters, as written.
    Word(&'a str),
    /// A quoted string standing alone.
    QuotedWord,
    /// A token that is not valid logfmt. `key` is known when the fault is in the value;
    /// `raw_value` is the value's text as written, without its quotes (up to the end of
    /// the line when the closing quote is missing).
    Broken {
        key: Option<Cow<'a, str>>,
        raw_value: &'a str,
        reason: &'static str,
    },
}

/// Iterates over the tokens of one line. Tokens are separated by runs of spaces and tabs.
pub(super) struct Lexer<'a> {
    line: &'a str,
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(line: &'a str) -> Lexer<'a> {
        Lexer { line, rest: line }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = self.rest.trim_start_matches(is_space);
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        let (after, kind) = token(rest);
        self.rest = after;
        Some(Token {
            start: self.line.len() - rest.len(),
            end: self.line.len() - after.len(),
            kind,
        })
    }
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Reads one token from text that starts with a non-space character.
fn token(input: &str) -> (&str, Kind<'_>) {
    // A quoted string is a key when `=` follows it, a word on its own otherwise.
    if input.starts_with('"') {
        let (rest, body, decoded) = quoted(input);
        return match decoded {
            Err(reason) => broken(None, body, reason, rest),
            Ok(key) => match rest.strip_prefix('=') {
                Some(value_text) => value(key, value_text),
                None if ends_token(rest) => (rest, Kind::QuotedWord),
                None => broken(None, body, TEXT_AFTER_QUOTE, rest),
            },
        };
    }

    // Key characters followed by `=` make a pair; anything else is a word up to the next
    // space. Quotes inside a bare word are kept as they are.
    if let Ok((rest, key)) = bare_key(input)
        && let Some(value_text) = rest.strip_prefix('=')
    {
        return value(Cow::Borrowed(key), value_text);
    }
    let (rest, word) = bare_text(input);
    (rest, Kind::Word(word))
}

/// Reads the value after `key=`: quoted, or bare up to the next space (possibly empty).
fn value<'a>(key: Cow<'a, str>, input: &'a str) -> (&'a str, Kind<'a>) {
    if !input.starts_with('"') {
        let (rest, text) = bare_text(input);
        return (
            rest,
            Kind::Pair {
                key,
                value: Cow::Borrowed(text),
            },
        );
    }
    let (rest, body, decoded) = quoted(input);
    match decoded {
        Err(reason) => broken(Some(key), body, reason, rest),
        Ok(_) if !ends_token(rest) => broken(Some(key), body, TEXT_AFTER_QUOTE, rest),
        Ok(value) => (rest, Kind::Pair { key, value }),
    }
}

/// Reports a broken token and skips what is left of it, up to the next space.
fn broken<'a>(
    key: Option<Cow<'a, str>>,
    raw_value: &'a str,
    reason: &'static str,
    rest: &'a str,
) -> (&'a str, Kind<'a>) {
    let (rest, _) = bare_text(rest);
    (
        rest,
        Kind::Broken {
            key,
            raw_value,
            reason,
        },
    )
}

fn ends_token(rest: &str) -> bool {
    rest.chars().next().is_none_or(is_space)
}

fn bare_key(input: &str) -> IResult<&str, &str> {
    take_till1(|c| is_space(c) || c == '=' || c == '"').parse_complete(input)
}

/// Text up to the next space or tab; never fails.
fn bare_text(input: &str) -> (&str, &str) {
    let found: IResult<&str, &str> = take_till(is_space).parse_complete(input);
    found.unwrap_or((input, ""))
}

/// Reads a double-quoted string at the start of `input`. Returns the rest of the input, the
/// body as written (between the quotes), and the decoded text or why it cannot be decoded.
/// A string without its closing quote takes the rest of the line as its body.
fn quoted(input: &str) -> (&str, &str, Result<Cow<'_, str>, &'static str>) {
    // First find where the string ends: any character may follow a backslash here; which
    // escapes are valid is checked when decoding.
    let body = recognize(opt(escaped(is_not("\"\\"), '\\', anychar)));
    let extent: IResult<&str, &str> = delimited(char('"'), body, char('"')).parse_complete(input);
    match extent {
        Ok((rest, body)) => (rest, body, unescape(body)),
        Err(_) => {
            let body = input.get(1..).unwrap_or_default();
            ("", body, Err(UNTERMINATED_QUOTE))
        }
    }
}

/// A decoded part of a quoted string.
enum Piece<'a> {
    Text(&'a str),
    Char(char),
    /// `\xNN` and octal escapes give single bytes, which may be part of a UTF-8 sequence.
    Byte(u8),
}

/// Decodes the body of a quoted string the way Go's `strconv.Unquote` does. Borrows when
/// there is no backslash. Bytes from `\x` and octal escapes that do not form valid UTF-8
/// are replaced by U+FFFD, as the line reader does with invalid input.
fn unescape(body: &str) -> Result<Cow<'_, str>, &'static str> {
    if !body.contains('\\') {
        return Ok(Cow::Borrowed(body));
    }
    let pieces = fold_many0(
        alt((map(is_not("\\"), Piece::Text), escape)),
        || Vec::with_capacity(body.len()),
        |mut bytes: Vec<u8>, piece| {
            match piece {
                Piece::Text(text) => bytes.extend_from_slice(text.as_bytes()),
                Piece::Char(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                Piece::Byte(b) => bytes.push(b),
            }
            bytes
        },
    );
    let decoded: IResult<&str, Vec<u8>> = all_consuming(pieces).parse_complete(body);
    match decoded {
        Ok((_, bytes)) => Ok(Cow::Owned(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
        })),
        Err(_) => Err(UNKNOWN_ESCAPE),
    }
}

/// One backslash escape that Go accepts inside a double-quoted string: `\a \b \f \n \r \t
/// \v \\ \"`, `\xNN`, `\uNNNN`, `\UNNNNNNNN` (a valid Unicode scalar value) and three octal
/// digits up to `\377`. `\'` is Go's only for single-quoted runes, so it is refused here.
fn escape(input: &str) -> IResult<&str, Piece<'_>> {
    let simple = map(one_of("abfnrtv\\\""), |c| {
        Piece::Char(match c {
            'a' => '\u{07}',
            'b' => '\u{08}',
            'f' => '\u{0C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{0B}',
            other => other,
        })
    });
    let hex_byte = map_opt(preceded(char('x'), hex_digits(2)), |digits| {
        u8::from_str_radix(digits, 16).ok().map(Piece::Byte)
    });
    let short_unicode = map_opt(preceded(char('u'), hex_digits(4)), scalar);
    let long_unicode = map_opt(preceded(char('U'), hex_digits(8)), scalar);
    let octal_byte = map_opt(take_while_m_n(3, 3, |c: char| c.is_digit(8)), |digits| {
        u8::from_str_radix(digits, 8).ok().map(Piece::Byte)
    });
    preceded(
        char('\\'),
        alt((simple, hex_byte, short_unicode, long_unicode, octal_byte)),
    )
    .parse_complete(input)
}

fn hex_digits<'a>(
    count: usize,
) -> impl Parser<&'a str, Output = &'a str, Error = nom::error::Error<&'a str>> {
    take_while_m_n(count, count, |c: char| c.is_ascii_hexdigit())
}

/// A Unicode scalar value from hex digits; surrogates and values past U+10FFFF fail.
fn scalar(digits: &str) -> Option<Piece<'_>> {
    let code = u32::from_str_radix(digits, 16).ok()?;
    char::from_u32(code).map(Piece::Char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<Kind<'_>> {
        Lexer::new(line).map(|token| token.kind).collect()
    }

    fn pair<'a>(key: &'a str, value: &'a str) -> Kind<'a> {
        Kind::Pair {
            key: Cow::Borrowed(key),
            value: Cow::Borrowed(value),
        }
    }

    /// The decoded value of `k="<body>"`, or the reason it is broken.
    fn decode(body: &str) -> Result<String, &'static str> {
        let line = format!("k=\"{body}\"");
        match kinds(&line).as_slice() {
            [Kind::Pair { value, .. }] => Ok(value.to_string()),
            [Kind::Broken { reason, .. }] => Err(reason),
            other => panic!("{body:?} lexed as {other:?}"),
        }
    }

    #[test]
    fn splits_pairs_words_and_quoted_words() {
        assert_eq!(
            kinds("a=1 b=\"x y\"\tc= \"q w\" word =x"),
            vec![
                pair("a", "1"),
                pair("b", "x y"),
                pair("c", ""),
                Kind::QuotedWord,
                Kind::Word("word"),
                Kind::Word("=x"),
            ]
        );
        assert_eq!(kinds("   "), vec![]);
        assert_eq!(kinds(""), vec![]);
    }

    #[test]
    fn reports_byte_ranges() {
        let ranges: Vec<(usize, usize)> = Lexer::new(" ab  c=\"d\" ")
            .map(|token| (token.start, token.end))
            .collect();
        assert_eq!(ranges, vec![(1, 3), (5, 10)]);
    }

    #[test]
    fn values_may_hold_equals_signs_quotes_and_emoji() {
        assert_eq!(
            kinds("k=a=b m=\"x=1 🚀 y\" q=say\"hi\" e=🎉"),
            vec![
                pair("k", "a=b"),
                pair("m", "x=1 🚀 y"),
                pair("q", "say\"hi\""),
                pair("e", "🎉")
            ]
        );
    }

    #[test]
    fn a_quoted_key_is_a_key() {
        assert_eq!(
            kinds("\"my key\"=v \"k\"=\"w\""),
            vec![pair("my key", "v"), pair("k", "w")]
        );
    }

    #[test]
    fn a_quoted_value_without_backslash_is_borrowed() {
        let kinds = kinds("k=\"plain text\" e=\"esc\\taped\"");
        assert!(matches!(
            &kinds[0],
            Kind::Pair {
                value: Cow::Borrowed("plain text"),
                ..
            }
        ));
        assert!(matches!(&kinds[1], Kind::Pair { value: Cow::Owned(v), .. } if v == "esc\taped"));
    }

    #[test]
    fn decodes_go_escapes() {
        assert_eq!(
            decode(r#"a\nb\tc\rd\"e\\f"#),
            Ok("a\nb\tc\rd\"e\\f".to_owned())
        );
        assert_eq!(
            decode(r"\a\b\f\v"),
            Ok("\u{07}\u{08}\u{0C}\u{0B}".to_owned())
        );
        assert_eq!(decode(r"\x41\x7a"), Ok("Az".to_owned()));
        assert_eq!(decode(r"\xc3\xa9"), Ok("é".to_owned()));
        assert_eq!(decode(r"\u00e9\u2705"), Ok("é✅".to_owned()));
        assert_eq!(decode(r"\U0001F680"), Ok("🚀".to_owned()));
        assert_eq!(decode(r"\101\000\377x"), Ok("A\u{0}\u{FFFD}x".to_owned()));
        assert_eq!(decode(r"\xff"), Ok("\u{FFFD}".to_owned()));
        assert_eq!(decode(""), Ok(String::new()));
    }

    #[test]
    fn refuses_escapes_go_does_not_know() {
        for body in [
            r"\'",
            r"\q",
            r"\x4",
            r"\x4g",
            r"\u12",
            r"\ud800",
            r"\U00110000",
            r"\400",
            r"\08",
            r"\0",
            r"\ ",
            r"\é",
        ] {
            assert_eq!(decode(body), Err(UNKNOWN_ESCAPE), "{body:?}");
        }
    }

    #[test]
    fn an_unterminated_quote_takes_the_rest_of_the_line() {
        assert_eq!(
            kinds("a=1 msg=\"🔄 PROGRESS step=3"),
            vec![
                pair("a", "1"),
                Kind::Broken {
                    key: Some(Cow::Borrowed("msg")),
                    raw_value: "🔄 PROGRESS step=3",
                    reason: UNTERMINATED_QUOTE,
                },
            ]
        );
        // The backslash escapes the last quote, so the string never ends.
        assert!(matches!(
            kinds("k=\"abc\\\"").as_slice(),
            [Kind::Broken {
                reason: UNTERMINATED_QUOTE,
                ..
            }]
        ));
        assert!(matches!(
            kinds("\"abc").as_slice(),
            [Kind::Broken {
                key: None,
                reason: UNTERMINATED_QUOTE,
                ..
            }]
        ));
    }

    #[test]
    fn text_right_after_a_closing_quote_is_broken_and_lexing_resumes() {
        assert_eq!(
            kinds("k=\"v\"tail next=1 \"w\"x=1 last"),
            vec![
                Kind::Broken {
                    key: Some(Cow::Borrowed("k")),
                    raw_value: "v",
                    reason: TEXT_AFTER_QUOTE,
                },
                pair("next", "1"),
                Kind::Broken {
                    key: None,
                    raw_value: "w",
                    reason: TEXT_AFTER_QUOTE
                },
                Kind::Word("last"),
            ]
        );
    }

    #[test]
    fn lexing_resumes_after_a_bad_escape() {
        assert_eq!(
            kinds("k=\"a\\qb c\" n=2"),
            vec![
                Kind::Broken {
                    key: Some(Cow::Borrowed("k")),
                    raw_value: "a\\qb c",
                    reason: UNKNOWN_ESCAPE,
                },
                pair("n", "2"),
            ]
        );
    }
}
