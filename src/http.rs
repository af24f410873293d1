//! The HTTP side: an axum router serving the registry on the telemetry path, health and
//! readiness probes, and a small index page.
//!
//! It is the last step of the flow: it only reads the shared `Metrics`, never the sources.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;

/// Content type of the Prometheus 0.0.4 text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics 1.0.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counts the sources that are not open yet; `/readyz` answers 200 when none is left.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: AtomicUsize,
}

impl Readiness {
    /// Readiness that waits for `sources` sources to call `source_opened`.
    pub fn waiting_for(sources: usize) -> Readiness {
        Readiness {
            pending: AtomicUsize::new(sources),
        }
    }

    /// One more source must open before the exporter is ready.
    pub fn add_source(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// A source that was waited for is now open.
    pub fn source_opened(&self) {
        // Saturate at zero so that a source opened twice cannot wrap the count.
        let _ = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn is_ready(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    telemetry_path: Arc<str>,
}

/// Builds the router: the registry on `telemetry_path`, `/healthz`, `/readyz` and `/`.
pub fn router(metrics: Arc<Metrics>, readiness: Arc<Readiness>, telemetry_path: &str) -> Router {
    let state = AppState {
        metrics,
        readiness,
        telemetry_path: Arc::from(telemetry_path),
    };
    Router::new()
        .route(telemetry_path, get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readiness))
        .route("/", get(serve_index))
        .with_state(state)
}

async fn serve_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let openmetrics = accept.is_some_and(prefers_openmetrics);
    match encode(&state.metrics, openmetrics) {
        Ok(body) => {
            let content_type = if openmetrics {
                OPENMETRICS_CONTENT_TYPE
            } else {
                TEXT_CONTENT_TYPE
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(error) => {
            tracing::error!(error = %error, "encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

/// Encodes the registry in OpenMetrics or in the 0.0.4 text format.
pub fn encode(metrics: &Metrics, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut body = String::with_capacity(16 * 1024);
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, &metrics.registry)?;
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, &metrics.registry)?;
    }
    Ok(body)
}

async fn serve_readiness(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for sources to open\n",
        )
            .into_response()
    }
}

async fn serve_index(State(state): State<AppState>) -> Html<String> {
    let path = html_escape(&state.telemetry_path);
    Html(format!(
        "<!doctype html>\n<html><head><title>containerkit-exporter</title></head><body>\n\
         <h1>containerkit-exporter</h1>\n<p>Prometheus metrics from Container Kit workflows.</p>\n\
         <ul>\n<li><a href=\"{path}\">{path}</a></li>\n<li><a href=\"/healthz\">/healthz</a></li>\n\
         <li><a href=\"/readyz\">/readyz</a></li>\n</ul>\n<p>Version {}</p>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether an `Accept` header asks for OpenMetrics: it must name
/// `application/openmetrics-text` with a weight above zero and no lower than the weight it
/// gives `text/plain`. Wildcards alone get the 0.0.4 format, which every scraper reads.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let mut openmetrics: Option<f32> = None;
    let mut text: f32 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, value)| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            openmetrics = Some(openmetrics.map_or(weight, |w| w.max(weight)));
        } else if media.eq_ignore_ascii_case("text/plain") {
            text = text.max(weight);
        }
    }
    openmetrics.is_some_and(|weight| weight > 0.0 && weight >= text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_header_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(prefers_openmetrics(accept));
    }

    #[test]
    fn plain_and_wildcard_accept_headers_get_text() {
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics("text/plain"));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;q=0.2, text/plain;q=0.9"
        ));
    }

    #[test]
    fn readiness_counts_down_and_saturates() {
        let readiness = Readiness::waiting_for(2);
        readiness.source_opened();
        assert!(!readiness.is_ready());
        readiness.source_opened();
        readiness.source_opened();
        assert!(readiness.is_ready());
        readiness.add_source();
        assert!(!readiness.is_ready());
    }
}
