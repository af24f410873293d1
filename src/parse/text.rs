//! Forms A (slog text: logfmt with the message in `msg`) and B (console: a skipped prefix,
//! then `EMOJI PROGRESS` and logfmt pairs).
//!
//! One pass over the logfmt tokens decides the form. Whichever comes first settles it: a
//! `msg` pair makes the line form A, a PROGRESS message among the loose words makes it
//! form B. Until then, pairs are kept as if the line were form A.

use std::borrow::Cow;

use super::fields::{Fields, Value};
use super::logfmt::{Kind, Lexer, Token};
use super::recognise::{self, Message, WORD};
use crate::event::{Emoji, ParseError, ProgressEvent};

/// Reads a text line (forms A and B).
///
/// Form A: the message is the value of the last `msg` pair; every pair on the line is a
/// field, loose words are ignored, and a broken token anywhere makes a PROGRESS line
/// `malformed`. A `msg` whose value is broken still counts as a PROGRESS message when its
/// text as written is one (`msg="🔄 PROGRESS` cut short by truncation is `malformed`).
///
/// Form B: the message is the first status emoji word followed, after one or more spaces,
/// by the word `PROGRESS`, with both outside any quoted value. Everything before it is a
/// prefix and is skipped, broken tokens included; only the pairs after it are fields, and
/// a later `msg` pair is an ordinary unknown key. The prefix's date and level are not
/// read: an event's `time` and `level` come only from pairs after the message.
///
/// The bare word `PROGRESS` (no emoji in front) is the form B message only when a
/// `key=value` pair comes right after it, so prose such as `retrying PROGRESS update` or
/// `made PROGRESS` stays noise. Prose that happens to be followed by a pair
/// (`failed PROGRESS step=3`) is read as a PROGRESS line and will usually be counted as a
/// parse error; the rule cannot tell it from a real line.
pub(super) fn parse(line: &str) -> Result<Option<ProgressEvent>, ParseError> {
    let mut scan = Scan::default();
    for token in Lexer::new(line) {
        scan.take(line, token);
    }
    scan.finish()
}

/// The message of a form A line as the `msg` pair gave it.
enum Msg<'a> {
    Decoded(Cow<'a, str>),
    /// The pair is broken; this is its text as written.
    Broken(&'a str),
}

#[derive(Default)]
enum Form<'a> {
    /// No `msg` pair and no console message yet.
    #[default]
    Undecided,
    Slog(Msg<'a>),
    Console(Message),
}

#[derive(Default)]
struct Scan<'a> {
    form: Form<'a>,
    fields: Fields<'a>,
    /// The first broken token of the part of the line that counts.
    fault: Option<&'static str>,
    /// The previous token was a status emoji word ending at this byte.
    emoji_before: Option<(Emoji, usize)>,
    /// The previous token was the bare word `PROGRESS`.
    word_before: bool,
}

impl<'a> Scan<'a> {
    fn take(&mut self, line: &str, token: Token<'a>) {
        if matches!(self.form, Form::Undecided) {
            self.look_for_console_message(line, &token);
        }
        match token.kind {
            Kind::Pair { key, value } => {
                if key == "msg" && !matches!(self.form, Form::Console(_)) {
                    self.form = Form::Slog(Msg::Decoded(value));
                } else {
                    self.fields.set(&key, Some(Value::Text(value)));
                }
            }
            Kind::Broken {
                key,
                raw_value,
                reason,
            } => {
                self.fault.get_or_insert(reason);
                if key.as_deref() == Some("msg") && !matches!(self.form, Form::Console(_)) {
                    self.form = Form::Slog(Msg::Broken(raw_value));
                }
            }
            Kind::Word(_) | Kind::QuotedWord => {}
        }
    }

    /// Watches the loose words for a console message and switches to form B at it.
    fn look_for_console_message(&mut self, line: &str, token: &Token<'a>) {
        let emoji_before = self.emoji_before.take();
        let word_before = std::mem::take(&mut self.word_before);
        match &token.kind {
            Kind::Word(word) if *word == WORD => match emoji_before {
                Some((emoji, end)) if line[end..token.start].bytes().all(|b| b == b' ') => {
                    self.start_console(Some(emoji));
                }
                _ => self.word_before = true,
            },
            Kind::Word(word) => {
                self.emoji_before = recognise::emoji_word(word).map(|emoji| (emoji, token.end));
            }
            Kind::Pair { .. } if word_before => self.start_console(None),
            _ => {}
        }
    }

    /// Form B begins: what was seen so far is prefix, and does not count.
    fn start_console(&mut self, emoji: Option<Emoji>) {
        self.form = Form::Console(Message { emoji });
        self.fields = Fields::default();
        self.fault = None;
    }

    fn finish(self) -> Result<Option<ProgressEvent>, ParseError> {
        let message = match &self.form {
            Form::Undecided => None,
            Form::Slog(Msg::Decoded(text)) => recognise::message(text),
            Form::Slog(Msg::Broken(text)) => recognise::message(text),
            Form::Console(message) => Some(*message),
        };
        let Some(message) = message else {
            return Ok(None);
        };
        if let Some(reason) = self.fault {
            return Err(ParseError::Malformed(reason));
        }
        self.fields.into_event(message.emoji).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;
    use crate::parse::logfmt::{TEXT_AFTER_QUOTE, UNKNOWN_ESCAPE, UNTERMINATED_QUOTE};

    const FIELDS: &str = "step=1 total=4 step_name=build_image";

    fn emoji_and_status(line: &str) -> Option<(Option<Emoji>, Status)> {
        match parse(line) {
            Ok(Some(event)) => Some((event.emoji, event.status)),
            Ok(None) => None,
            Err(err) => panic!("{line:?} gave {err:?}"),
        }
    }

    #[test]
    fn a_bare_word_is_the_message_when_a_pair_follows_it() {
        assert_eq!(
            emoji_and_status(&format!("INFO PROGRESS {FIELDS} status=Running")),
            Some((None, Status::Running))
        );
        assert_eq!(
            emoji_and_status(&format!("PROGRESS {FIELDS} status=failed")),
            Some((None, Status::Failed))
        );
    }

    #[test]
    fn a_bare_word_in_prose_is_noise() {
        for line in [
            "WARN retrying PROGRESS update attempt=1".to_owned(),
            "INFO made PROGRESS".to_owned(),
            "PROGRESS".to_owned(),
            format!("INFO PROGRESS: {FIELDS} status=running"),
            format!("INFO \"PROGRESS\" {FIELDS} status=running"),
            format!("INFO PROGRESS \"quoted\" {FIELDS} status=running"),
            format!("INFO PROGRESS= {FIELDS} status=running"),
        ] {
            assert_eq!(parse(&line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn the_first_console_message_counts() {
        let line = format!("WARN retrying PROGRESS update; now 🔄 PROGRESS {FIELDS}");
        assert_eq!(
            emoji_and_status(&line),
            Some((Some(Emoji::Cycle), Status::Running))
        );
        let line = format!("INFO 🔄 PROGRESS {FIELDS} note=✅ PROGRESS");
        assert_eq!(
            emoji_and_status(&line),
            Some((Some(Emoji::Cycle), Status::Running))
        );
    }

    #[test]
    fn the_emoji_needs_spaces_before_the_word() {
        // With a tab between them the emoji is not part of the message, and the bare word
        // rule applies instead.
        assert_eq!(
            emoji_and_status(&format!("INFO 🔄\tPROGRESS {FIELDS} status=running")),
            Some((None, Status::Running))
        );
        assert_eq!(
            parse(&format!("INFO 🔄\tPROGRESS {FIELDS}")),
            Err(ParseError::MissingField("status"))
        );
    }

    #[test]
    fn a_variation_selector_may_follow_the_emoji() {
        assert_eq!(
            emoji_and_status(&format!("INFO ✅\u{FE0F} PROGRESS {FIELDS}")),
            Some((Some(Emoji::Check), Status::Completed))
        );
        assert_eq!(
            emoji_and_status(&format!("level=INFO msg=\"❌\u{FE0F} PROGRESS\" {FIELDS}")),
            Some((Some(Emoji::Cross), Status::Failed))
        );
    }

    #[test]
    fn a_msg_pair_before_any_message_makes_the_line_slog_text() {
        assert_eq!(parse(&format!("msg=hello 🔄 PROGRESS {FIELDS}")), Ok(None));
        assert_eq!(
            emoji_and_status(&format!("msg=PROGRESS {FIELDS} status=started")),
            Some((None, Status::Started))
        );
    }

    #[test]
    fn a_msg_pair_after_a_console_message_is_an_unknown_key() {
        assert_eq!(
            emoji_and_status(&format!("INFO 🔄 PROGRESS {FIELDS} msg=hello")),
            Some((Some(Emoji::Cycle), Status::Running))
        );
    }

    #[test]
    fn the_last_msg_wins() {
        assert_eq!(
            parse(&format!("msg=\"🔄 PROGRESS\" {FIELDS} msg=other")),
            Ok(None)
        );
        assert_eq!(
            emoji_and_status(&format!("msg=other {FIELDS} msg=\"🔄 PROGRESS\"")),
            Some((Some(Emoji::Cycle), Status::Running))
        );
    }

    #[test]
    fn slog_text_reads_pairs_before_msg_and_ignores_loose_words() {
        let line = "step=2 stray words level=DEBUG msg=\"🔄 PROGRESS\" total=4 step_name=x";
        let event = parse(line).unwrap().unwrap();
        assert_eq!(
            (event.step, event.total, event.level.as_deref()),
            (2, 4, Some("DEBUG"))
        );
    }

    #[test]
    fn console_fields_come_only_after_the_message() {
        let line = "step=9 level=DEBUG INFO 🔄 PROGRESS step=1 total=4 step_name=x";
        let event = parse(line).unwrap().unwrap();
        assert_eq!((event.step, event.level), (1, None));
        assert_eq!(
            parse("step=1 total=4 step_name=x INFO 🔄 PROGRESS"),
            Err(ParseError::MissingField("step"))
        );
    }

    #[test]
    fn broken_tokens_in_a_console_prefix_are_skipped() {
        let line = format!("\"odd\"prefix k=\"\\q\" 🔄 PROGRESS {FIELDS}");
        assert_eq!(
            emoji_and_status(&line),
            Some((Some(Emoji::Cycle), Status::Running))
        );
        // An unterminated quote in the prefix hides the rest of the line.
        assert_eq!(
            parse(&format!("INFO \"oops 🔄 PROGRESS {FIELDS}")),
            Ok(None)
        );
    }

    #[test]
    fn broken_tokens_make_a_progress_line_malformed() {
        let cases = [
            (
                format!("INFO 🔄 PROGRESS {FIELDS} message=\"cut"),
                UNTERMINATED_QUOTE,
            ),
            (
                format!("INFO 🔄 PROGRESS {FIELDS} message=\"a\\qb\""),
                UNKNOWN_ESCAPE,
            ),
            (
                format!("INFO 🔄 PROGRESS {FIELDS} message=\"a\"b"),
                TEXT_AFTER_QUOTE,
            ),
            (
                format!("time=\"x\"y msg=\"🔄 PROGRESS\" {FIELDS}"),
                TEXT_AFTER_QUOTE,
            ),
            (format!("msg=\"🔄 PROGRESS\"x {FIELDS}"), TEXT_AFTER_QUOTE),
            (
                "level=INFO msg=\"🔄 PROGRESS".to_owned(),
                UNTERMINATED_QUOTE,
            ),
            (
                format!("INFO 🔄 PROGRESS \"a\\'\" {FIELDS}"),
                UNKNOWN_ESCAPE,
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(parse(&line), Err(ParseError::Malformed(reason)), "{line:?}");
        }
    }

    #[test]
    fn a_broken_line_whose_msg_is_something_else_is_noise() {
        assert_eq!(
            parse(&format!("msg=\"retrying {FIELDS} error=\"PROGRESS")),
            Ok(None)
        );
        assert_eq!(parse("msg=\"retry\" error=\"PROGRESS lost"), Ok(None));
        assert_eq!(parse("msg=\"🔄 PROGRESS\\q\" step=1"), Ok(None));
    }

    #[test]
    fn escaped_multi_line_error_is_decoded() {
        let line = format!(
            "msg=\"❌ PROGRESS\" {FIELDS} error=\"build failed:\\n\\t\\\"exit status 1\\\"\\n\""
        );
        let event = parse(&line).unwrap().unwrap();
        assert_eq!(
            event.error.as_deref(),
            Some("build failed:\n\t\"exit status 1\"\n")
        );
    }
}
