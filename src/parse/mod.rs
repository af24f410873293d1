//! The parser: turns one whole, cleaned line into a `ProgressEvent`, `None` for noise, or a
//! `ParseError` for a PROGRESS line that is broken.
//!
//! It sits between the line reader (which frames bytes into lines) and the workflow recorder.

use crate::event::{ParseError, ProgressEvent};

/// Cheap byte-level check run on every raw line before anything else: false means the line
/// cannot be a PROGRESS line.
pub fn may_be_progress(raw: &[u8]) -> bool {
    memchr::memmem::find(raw, b"PROGRESS").is_some()
}

/// Parses one line whose ANSI escapes are already removed.
pub fn parse_line(_line: &str) -> Result<Option<ProgressEvent>, ParseError> {
    Ok(None)
}

/// Placeholder until the parser branch lands.
pub mod duration {
    pub fn parse_go_duration(text: &str) -> Option<i64> {
        let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
            (n, 1_000_000)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, 1_000_000_000)
        } else {
            return None;
        };
        number.parse::<i64>().ok().map(|n| n * scale)
    }

    pub fn format_go_duration(d: std::time::Duration) -> String {
        format!("{}s", d.as_secs_f64())
    }
}
