//! The families only `run` updates: the wrapped child's lifecycle, the bytes passed
//! through it, and the MCP progress read from its standard output.
//!
//! They are registered with the rest in `Metrics::new`; in other modes no series of them
//! is ever created, so they do not appear. One exporter runs one child, so the child and
//! passthrough metrics have no `source` label; the MCP ones have, like the workflow metrics.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::metrics::SourceLabels;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The child's metrics: one child per exporter, no labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildLabels {}

/// `containerkit_exporter_passthrough_bytes_total`: one of the three streams.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: &'static str,
}

/// The MCP progress gauges: one source, one progress token.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub source: Arc<str>,
    pub token: Arc<str>,
}

/// Every family of the `run` mode.
#[derive(Default)]
pub struct RunMetrics {
    pub child_running: Family<ChildLabels, Gauge>,
    pub child_last_exit_code: Family<ChildLabels, Gauge>,
    pub child_start_time: Family<ChildLabels, FloatGauge>,
    pub passthrough_bytes: Family<DirectionLabels, Counter>,

    pub mcp_progress: Family<TokenLabels, FloatGauge>,
    pub mcp_progress_target: Family<TokenLabels, FloatGauge>,
    pub mcp_notifications: Family<SourceLabels, Counter>,
    pub mcp_tokens_evicted: Family<SourceLabels, Counter>,
}

impl RunMetrics {
    /// Registers every family: the MCP gauges beside the workflow metrics, the rest under
    /// the `containerkit_exporter_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "containerkit_mcp_progress",
            "Latest progress value of each MCP progress token the child reported",
            self.mcp_progress.clone(),
        );
        registry.register(
            "containerkit_mcp_progress_target",
            "Latest total of each MCP progress token, while its latest notification gave one",
            self.mcp_progress_target.clone(),
        );

        let own = registry.sub_registry_with_prefix("containerkit_exporter");
        own.register(
            "child_running",
            "Whether the command started by run is running (1) or has exited (0)",
            self.child_running.clone(),
        );
        own.register(
            "child_last_exit_code",
            "Exit code of the command started by run; 128 plus the signal number if a \
             signal ended it",
            self.child_last_exit_code.clone(),
        );
        own.register_with_unit(
            "child_start_time",
            "Unix time at which the command started by run was started",
            Unit::Seconds,
            self.child_start_time.clone(),
        );
        own.register(
            "passthrough_bytes",
            "Bytes copied between the exporter's and the child's standard streams",
            self.passthrough_bytes.clone(),
        );
        own.register(
            "mcp_progress_notifications",
            "MCP notifications/progress messages read from the child's standard output",
            self.mcp_notifications.clone(),
        );
        own.register(
            "mcp_progress_tokens_evicted",
            "MCP progress tokens whose series were removed to keep the number of tokens bounded",
            self.mcp_tokens_evicted.clone(),
        );
    }
}
