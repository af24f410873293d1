//! The byte scan that runs on every raw line before anything else is done with it.
//!
//! It answers one question cheaply, without allocating: could this line, once its ANSI
//! escape sequences are removed, contain the word `PROGRESS`? Only lines that could go on
//! to UTF-8 conversion and the parser proper.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The word every PROGRESS message contains.
pub(super) const WORD: &[u8] = super::recognise::WORD.as_bytes();

const ESC: u8 = 0x1b;

/// Built once: building a searcher costs as much as running it on a short line.
static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(WORD));

/// True when `raw` contains `PROGRESS`, either as it stands or once ANSI escape sequences
/// (ESC `[`, parameter bytes, one final byte in 0x40–0x7E) are taken out of it.
///
/// The second scan only runs when the first misses and the line holds an ESC byte, so a
/// colourless line costs one `memmem` search. It skips what the line reader removes: a
/// sequence whose final byte never comes runs to the end of the line, and an ESC not
/// followed by `[` is skipped by itself. Skipping a byte the reader kept would at worst
/// let a line through needlessly; keeping one it removed could hide a PROGRESS line.
pub(super) fn contains_word(raw: &[u8]) -> bool {
    if contains_plain_word(raw) {
        return true;
    }
    may_split_the_word(raw) && contains_word_between_escapes(raw)
}

/// True when `raw` contains `PROGRESS` as it stands.
pub(super) fn contains_plain_word(raw: &[u8]) -> bool {
    FINDER.find(raw).is_some()
}

/// Whether an escape sequence could stand inside the word: a match with an ESC in it has a
/// first such ESC, and the bytes right before that ESC are a non-empty start of the word.
/// Colour codes in ordinary lines sit between words, so this usually ends the scan.
fn may_split_the_word(raw: &[u8]) -> bool {
    memchr::memchr_iter(ESC, raw).any(|esc| {
        let before = &raw[..esc];
        (1..WORD.len()).any(|k| before.ends_with(&WORD[..k]))
    })
}

/// Matches `PROGRESS` against the bytes that remain after escape sequences are skipped.
fn contains_word_between_escapes(raw: &[u8]) -> bool {
    let mut matched = 0;
    let mut i = 0;
    while i < raw.len() {
        // Skip a whole escape sequence, or a lone ESC; neither extends nor breaks a partial
        // match.
        if raw[i] == ESC {
            if raw.get(i + 1) == Some(&b'[') {
                i += 2;
                while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }

        // `PROGRESS` has no prefix that is also its suffix, so after a mismatch only the
        // current byte can start a new match.
        if raw[i] == WORD[matched] {
            matched += 1;
        } else {
            matched = usize::from(raw[i] == WORD[0]);
        }
        if matched == WORD.len() {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_plain_word() {
        assert!(contains_word(b"INFO \xf0\x9f\x94\x84 PROGRESS step=1"));
        assert!(contains_word(b"PROGRESS"));
        assert!(!contains_word(b"INFO progress step=1"));
        assert!(!contains_word(b"PROGRES"));
        assert!(!contains_word(b""));
    }

    #[test]
    fn finds_the_word_split_by_colour_codes() {
        assert!(contains_word(b"\x1b[32mPRO\x1b[1;4mGRESS\x1b[0m step=1"));
        assert!(contains_word(
            b"P\x1b[0mR\x1b[0mO\x1b[0mG\x1b[0mR\x1b[0mE\x1b[0mS\x1b[0mS"
        ));
        assert!(contains_word(b"PPRO\x1b[mGRESS"));
        assert!(contains_word(b"\x1b[1mPROGRES\x1b[38;5;196mS"));
    }

    #[test]
    fn skips_a_lone_escape() {
        assert!(contains_word(b"PRO\x1bGRESS"));
        assert!(contains_word(b"\x1bPROGRES\x1b\x1bS"));
    }

    #[test]
    fn does_not_join_across_other_bytes() {
        // An unfinished sequence swallows the rest of the line.
        assert!(!contains_word(b"PRO\x1b[12;GRESS"));
        assert!(!contains_word(b"PRO \x1b[0mGRESS"));
        assert!(!contains_word(b"\x1b[0m"));
    }

    #[test]
    fn the_final_byte_ends_the_sequence() {
        // `G` (0x47) is a final byte, so it belongs to the sequence and is not matched.
        assert!(!contains_word(b"PRO\x1b[GRESS"));
        assert!(contains_word(b"PRO\x1b[GGRESS"));
    }
}
