//! The `stdin` source: reads standard input to its end, then keeps the metrics served.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::source::{Pipeline, pump};

/// Reads standard input under the label `source` until it closes or `shutdown` comes.
pub async fn read_stdin(
    source: &str,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    max_line_bytes: usize,
    shutdown: CancellationToken,
) {
    let mut pipeline = Pipeline::new(source, metrics, max_line_bytes);
    readiness.source_opened();
    tracing::info!(source, "reading standard input");
    match pump(tokio::io::stdin(), &mut pipeline, &shutdown).await {
        Ok(()) if shutdown.is_cancelled() => {}
        Ok(()) => tracing::info!(source, "standard input closed; still serving metrics"),
        Err(error) => tracing::error!(source, error = %error, "reading standard input failed"),
    }
}
