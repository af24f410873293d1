//! What a PROGRESS message looks like: an optional status emoji, then the word.
//!
//! The text and JSON forms find a candidate message in their own way (the `msg` value, or
//! the first emoji-and-word outside quotes) and ask this module whether it is one.

use crate::event::Emoji;

/// The word that makes a message a PROGRESS message.
pub(super) const WORD: &str = "PROGRESS";

/// The emoji variation selector that may follow a status emoji.
const VARIATION_SELECTOR: char = '\u{FE0F}';

/// A recognised PROGRESS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Message {
    /// The status emoji in front of the word; `None` for the bare word.
    pub emoji: Option<Emoji>,
}

/// Recognises a whole message: a status emoji (optionally followed by U+FE0F), one or more
/// spaces, then `PROGRESS`; or `PROGRESS` alone.
///
/// The match is exact and case-sensitive: no other text before or after, no tab in place
/// of the spaces, and another emoji (`⏳ PROGRESS`) is not a PROGRESS message.
pub(super) fn message(text: &str) -> Option<Message> {
    if text == WORD {
        return Some(Message { emoji: None });
    }
    let (emoji, rest) = leading_emoji(text)?;
    let word = rest.trim_start_matches(' ');
    (word.len() < rest.len() && word == WORD).then_some(Message { emoji: Some(emoji) })
}

/// Recognises a word that is a status emoji and nothing else (U+FE0F allowed after it).
pub(super) fn emoji_word(word: &str) -> Option<Emoji> {
    match leading_emoji(word)? {
        (emoji, "") => Some(emoji),
        _ => None,
    }
}

/// Splits a status emoji, and the U+FE0F after it if any, off the front of `text`.
fn leading_emoji(text: &str) -> Option<(Emoji, &str)> {
    let mut chars = text.chars();
    let emoji = Emoji::from_char(chars.next()?)?;
    let rest = chars.as_str();
    Some((emoji, rest.strip_prefix(VARIATION_SELECTOR).unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emoji_of(text: &str) -> Option<Option<Emoji>> {
        message(text).map(|m| m.emoji)
    }

    #[test]
    fn recognises_each_status_emoji() {
        assert_eq!(emoji_of("🚀 PROGRESS"), Some(Some(Emoji::Rocket)));
        assert_eq!(emoji_of("🔄 PROGRESS"), Some(Some(Emoji::Cycle)));
        assert_eq!(emoji_of("✅ PROGRESS"), Some(Some(Emoji::Check)));
        assert_eq!(emoji_of("❌ PROGRESS"), Some(Some(Emoji::Cross)));
        assert_eq!(emoji_of("🎉 PROGRESS"), Some(Some(Emoji::Party)));
    }

    #[test]
    fn recognises_the_bare_word_and_variation_selector_and_several_spaces() {
        assert_eq!(emoji_of("PROGRESS"), Some(None));
        assert_eq!(emoji_of("✅\u{FE0F} PROGRESS"), Some(Some(Emoji::Check)));
        assert_eq!(emoji_of("❌\u{FE0F}   PROGRESS"), Some(Some(Emoji::Cross)));
        assert_eq!(emoji_of("🔄    PROGRESS"), Some(Some(Emoji::Cycle)));
    }

    #[test]
    fn rejects_anything_else() {
        for text in [
            "",
            "progress",
            "Progress",
            "🔄PROGRESS",
            "🔄\tPROGRESS",
            "🔄 PROGRESS ",
            " PROGRESS",
            "PROGRESS ",
            "🔄 PROGRESS update",
            "⏳ PROGRESS",
            "🔄🔄 PROGRESS",
            "✅\u{FE0F}\u{FE0F} PROGRESS",
            "\u{FE0F} PROGRESS",
            "retrying PROGRESS update",
            "🔄 ",
            "🔄",
        ] {
            assert_eq!(message(text), None, "{text:?}");
        }
    }

    #[test]
    fn emoji_words() {
        assert_eq!(emoji_word("🔄"), Some(Emoji::Cycle));
        assert_eq!(emoji_word("✅\u{FE0F}"), Some(Emoji::Check));
        assert_eq!(emoji_word("🔄x"), None);
        assert_eq!(emoji_word("x🔄"), None);
        assert_eq!(emoji_word(""), None);
        assert_eq!(emoji_word("INFO"), None);
    }
}
