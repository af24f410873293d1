//! The MCP progress tokens that have series: bounded, the token updated least recently is
//! evicted first, and its series go with it.
//!
//! Part of the MCP observer (`mcp`), which hands it each valid notification.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::Value;

use crate::metrics::SourceLabels;
use crate::metrics::run::{RunMetrics, TokenLabels};

/// Progress tokens that keep series at one time.
pub const MAX_PROGRESS_TOKENS: usize = 64;

/// Longest `token` label value; longer tokens are cut at a character boundary.
pub const MAX_TOKEN_LABEL_BYTES: usize = 128;

/// The `token` label of a progress token: a string as it is (cut to its bound), a number
/// as its JSON text; other JSON values are not valid tokens.
pub fn token_label(token: &Value) -> Option<String> {
    let mut text = match token {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    if text.len() > MAX_TOKEN_LABEL_BYTES {
        let mut end = MAX_TOKEN_LABEL_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

/// The tokens that have series, bounded: the least recently updated one is evicted first.
pub struct TokenTable {
    source: Arc<str>,
    max: usize,
    /// Each live token and the sequence number of its latest update.
    live: HashMap<Arc<str>, u64>,
    updates: u64,
    progress: Family<TokenLabels, FloatGauge>,
    target: Family<TokenLabels, FloatGauge>,
    evicted: Counter,
}

type FloatGauge = Gauge<f64, AtomicU64>;

impl TokenTable {
    pub fn new(source: Arc<str>, metrics: &RunMetrics, max: usize) -> TokenTable {
        let evicted = metrics
            .mcp_tokens_evicted
            .get_or_create_owned(&SourceLabels {
                source: source.clone(),
            });
        TokenTable {
            source,
            max,
            live: HashMap::new(),
            updates: 0,
            progress: metrics.mcp_progress.clone(),
            target: metrics.mcp_progress_target.clone(),
            evicted,
        }
    }

    /// Records a notification of `token`; `total: None` removes the token's target.
    pub fn update(&mut self, token: &str, progress: f64, total: Option<f64>) {
        self.updates += 1;
        let token: Arc<str> = match self.live.get_key_value(token) {
            Some((known, _)) => known.clone(),
            None => {
                if self.live.len() >= self.max {
                    self.evict_oldest();
                }
                Arc::from(token)
            }
        };
        self.live.insert(token.clone(), self.updates);

        let labels = self.labels(token);
        self.progress.get_or_create(&labels).set(progress);
        match total {
            Some(total) => {
                self.target.get_or_create(&labels).set(total);
            }
            None => {
                self.target.remove(&labels);
            }
        }
    }

    fn evict_oldest(&mut self) {
        let Some(oldest) = self
            .live
            .iter()
            .min_by_key(|(_, update)| **update)
            .map(|(token, _)| token.clone())
        else {
            return;
        };
        self.live.remove(&oldest);
        let labels = self.labels(oldest);
        self.progress.remove(&labels);
        self.target.remove(&labels);
        self.evicted.inc();
    }

    fn labels(&self, token: Arc<str>) -> TokenLabels {
        TokenLabels {
            source: self.source.clone(),
            token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_TOKEN_LABEL_BYTES);
        let label = token_label(&Value::from(long)).unwrap();
        assert_eq!(label.len(), MAX_TOKEN_LABEL_BYTES);
        assert!(label.chars().all(|c| c == 'é'));
    }
}
