//! The line reader: frames a byte stream into whole lines, and cleans a line for the parser.
//!
//! Every source (file, pipe, child) pushes the bytes it reads into a `LineFramer`, which
//! hands out raw lines without copying them where it can. Only a line that passed the
//! parser's prefilter is cleaned (`clean`) of colour codes and invalid UTF-8.

use std::borrow::Cow;

/// The default of `--max-line-bytes`: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

const ESC: u8 = 0x1b;

/// One framed line, as the framer hands it out.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole line: its `\n` and one trailing `\r` removed, a leading run of NUL bytes
    /// skipped.
    Line(&'a [u8]),
    /// A line longer than the maximum; its bytes were dropped.
    Overlong,
}

/// Turns pushed bytes into `Frame`s.
///
/// A line is the bytes up to a `\n`. A line whose bytes (without the `\n`) exceed the maximum
/// is never held in memory: its bytes are dropped as they come and it is reported once as
/// `Overlong` when its `\n` (or the end of input) arrives. The bytes after the last `\n` are
/// held until more come or `finish` flushes them.
#[derive(Debug)]
pub struct LineFramer {
    max_line_bytes: usize,
    partial: Vec<u8>,
    /// Inside an overlong line: drop bytes until the next `\n`.
    skipping: bool,
    /// Bytes pushed before the current chunk.
    pushed: u64,
    /// Bytes through the last `\n` framed.
    consumed: u64,
    leading_nul_bytes: u64,
}

impl LineFramer {
    pub fn new(max_line_bytes: usize) -> LineFramer {
        LineFramer {
            max_line_bytes,
            partial: Vec::new(),
            skipping: false,
            pushed: 0,
            consumed: 0,
            leading_nul_bytes: 0,
        }
    }

    /// Frames `bytes`, calling `sink` for each line they complete.
    pub fn push(&mut self, chunk: &[u8], sink: &mut impl FnMut(Frame<'_>)) {
        let mut bytes = chunk;
        while let Some(newline) = memchr::memchr(b'\n', bytes) {
            let (head, rest) = (&bytes[..newline], &bytes[newline + 1..]);
            self.consumed = self.pushed + (chunk.len() - rest.len()) as u64;
            if self.skipping {
                self.skipping = false;
                sink(Frame::Overlong);
            } else if self.partial.is_empty() {
                self.emit(head, sink);
            } else if self.partial.len() + head.len() > self.max_line_bytes {
                self.partial.clear();
                sink(Frame::Overlong);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.emit(&line, sink);
                // Give the allocation back so that the next partial line reuses it.
                line.clear();
                self.partial = line;
            }
            bytes = rest;
        }

        self.pushed += chunk.len() as u64;

        // What is left has no newline: hold it, or drop it once the line is too long.
        if self.skipping || bytes.is_empty() {
            return;
        }
        if self.partial.len() + bytes.len() > self.max_line_bytes {
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// Flushes a last line that has no `\n`, at the end of input.
    pub fn finish(&mut self, sink: &mut impl FnMut(Frame<'_>)) {
        if self.skipping {
            self.skipping = false;
            sink(Frame::Overlong);
        } else if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, sink);
        }
    }

    /// Bytes held for a line whose `\n` has not come yet.
    pub fn pending_bytes(&self) -> usize {
        self.partial.len()
    }

    /// Whether an overlong line is being dropped; its bytes are not in `pending_bytes`.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// Bytes consumed through the last complete line (the `\n` included).
    pub fn consumed_bytes(&self) -> u64 {
        self.consumed
    }

    /// NUL bytes skipped at the start of lines so far (copytruncate leaves them).
    pub fn leading_nul_bytes(&self) -> u64 {
        self.leading_nul_bytes
    }

    /// Forgets a held partial line and any overlong line in progress, as when the file
    /// behind the stream was replaced and its bytes will not continue.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
    }

    fn emit(&mut self, line: &[u8], sink: &mut impl FnMut(Frame<'_>)) {
        if line.len() > self.max_line_bytes {
            sink(Frame::Overlong);
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let nuls = line.iter().take_while(|&&b| b == 0).count();
        self.leading_nul_bytes += nuls as u64;
        sink(Frame::Line(&line[nuls..]));
    }
}

/// The text of a raw line for the parser: ANSI escape sequences (`ESC [` parameters, then a
/// final byte from `@` to `~`) removed wherever they appear, and invalid UTF-8 replaced as
/// `String::from_utf8_lossy` does. Borrows when there is nothing to change.
pub fn clean(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr(ESC, raw).is_none() {
        // Valid UTF-8 is the rule; the strict check is faster than the lossy one.
        return match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let mut kept = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(esc) = memchr::memchr(ESC, rest) {
        kept.extend_from_slice(&rest[..esc]);
        rest = &rest[esc..];
        rest = match rest.get(1) {
            Some(b'[') => skip_csi(&rest[2..]),
            // A lone ESC that starts no sequence is dropped by itself.
            _ => &rest[1..],
        };
    }
    kept.extend_from_slice(rest);
    match String::from_utf8(kept) {
        Ok(text) => Cow::Owned(text),
        Err(invalid) => Cow::Owned(String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
    }
}

/// The bytes after a control sequence whose `ESC [` is already consumed. A sequence cut off
/// by the end of the line takes the rest of the line with it.
pub fn skip_csi(after_bracket: &[u8]) -> &[u8] {
    match after_bracket.iter().position(|b| (0x40..=0x7e).contains(b)) {
        Some(end) => &after_bracket[end + 1..],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames all `chunks` in order and renders each frame as text, `<overlong>` for skips.
    fn frame_all(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        let mut sink = |frame: Frame<'_>| {
            out.push(match frame {
                Frame::Line(line) => String::from_utf8_lossy(line).into_owned(),
                Frame::Overlong => "<overlong>".to_owned(),
            })
        };
        for chunk in chunks {
            framer.push(chunk, &mut sink);
        }
        framer.finish(&mut sink);
        out
    }

    #[test]
    fn splits_on_newline_and_drops_one_carriage_return() {
        assert_eq!(frame_all(100, &[b"a\r\nb\r\r\nc\n"]), ["a", "b\r", "c"]);
    }

    #[test]
    fn joins_lines_split_across_pushes() {
        assert_eq!(
            frame_all(100, &[b"ab", b"c\nd", b"e", b"\n"]),
            ["abc", "de"]
        );
    }

    #[test]
    fn flushes_last_line_without_newline_at_finish() {
        assert_eq!(frame_all(100, &[b"one\ntwo"]), ["one", "two"]);
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(frame_all(100, &[b"\n\nx\n"]), ["", "", "x"]);
    }

    #[test]
    fn skips_leading_nul_run_and_counts_it() {
        let mut framer = LineFramer::new(100);
        let mut lines = Vec::new();
        framer.push(b"\0\0\0abc\0\n", &mut |f| lines.push(format!("{f:?}")));
        assert_eq!(lines, [format!("{:?}", Frame::Line(b"abc\0"))]);
        assert_eq!(framer.leading_nul_bytes(), 3);
    }

    #[test]
    fn line_of_exactly_max_bytes_is_kept() {
        assert_eq!(frame_all(4, &[b"abcd\n"]), ["abcd"]);
        assert_eq!(frame_all(4, &[b"ab", b"cd\n"]), ["abcd"]);
    }

    #[test]
    fn overlong_line_is_skipped_once_and_reading_resumes() {
        assert_eq!(frame_all(4, &[b"abcde\nok\n"]), ["<overlong>", "ok"]);
        assert_eq!(
            frame_all(4, &[b"ab", b"cde", b"fgh", b"ij\nok\n"]),
            ["<overlong>", "ok"]
        );
        assert_eq!(frame_all(4, &[b"abc", b"de\nok"]), ["<overlong>", "ok"]);
    }

    #[test]
    fn overlong_last_line_is_reported_at_finish() {
        assert_eq!(frame_all(4, &[b"ok\nabcdefgh"]), ["ok", "<overlong>"]);
    }

    #[test]
    fn carriage_return_counts_toward_the_length() {
        assert_eq!(frame_all(4, &[b"abcd\r\n"]), ["<overlong>"]);
    }

    #[test]
    fn partial_line_is_never_held_past_the_maximum() {
        let mut framer = LineFramer::new(8);
        framer.push(&[b'x'; 100], &mut |_| {});
        assert_eq!(framer.pending_bytes(), 0);
        assert!(framer.is_skipping());
    }

    #[test]
    fn consumed_bytes_stop_at_the_last_newline() {
        let mut framer = LineFramer::new(100);
        framer.push(b"ab\ncd\nef", &mut |_| {});
        assert_eq!(framer.consumed_bytes(), 6);
        assert_eq!(framer.pending_bytes(), 2);
        framer.push(b"g", &mut |_| {});
        framer.push(b"h\nij", &mut |_| {});
        assert_eq!(framer.consumed_bytes(), 11);
    }

    #[test]
    fn clean_borrows_plain_text() {
        assert!(matches!(clean(b"plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn clean_removes_colour_codes_anywhere() {
        assert_eq!(
            clean(b"\x1b[32mINFO\x1b[0m PRO\x1b[1;4mGRESS step=1\x1b[m"),
            "INFO PROGRESS step=1"
        );
    }

    #[test]
    fn clean_drops_lone_escape_and_cut_sequence() {
        assert_eq!(clean(b"a\x1bb"), "ab");
        assert_eq!(clean(b"a\x1b[12;3"), "a");
    }

    #[test]
    fn clean_replaces_invalid_utf8() {
        assert_eq!(clean(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(clean(b"\x1b[0ma\xffb"), "a\u{fffd}b");
    }
    /// What framing must give, computed the plain way on the whole input at once.
    fn reference(input: &[u8], max: usize) -> Vec<String> {
        let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|last| last.is_empty()) {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|line| {
                if line.len() > max {
                    return "<overlong>".to_owned();
                }
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let start = line.iter().take_while(|&&b| b == 0).count();
                String::from_utf8_lossy(&line[start..]).into_owned()
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn any_split_of_any_bytes_frames_like_the_reference(
            input in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'\n', b'\r', 0u8, 0x1b, 0xff, b'P']),
                0..300,
            ),
            cuts in proptest::collection::vec(0usize..300, 0..8),
            max in 1usize..40,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&input[start..cut]);
                start = cut;
            }
            chunks.push(&input[start..]);
            proptest::prop_assert_eq!(frame_all(max, &chunks), reference(&input, max));
        }

        #[test]
        fn clean_never_panics_and_leaves_no_csi(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let text = clean(&raw);
            proptest::prop_assert!(!text.contains(char::from(ESC)), "escape left in {:?}", text);
        }
    }
}
