//! The metric families the exporter serves, registered once in one `Registry`.
//!
//! This module owns metric names, help texts, label sets and histogram buckets. The recorder
//! and the sources update the families; the HTTP layer and `replay` encode the registry.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub mod run;

use run::RunMetrics;

/// Upper bounds of the duration histograms, in seconds: a millisecond to an hour.
pub const DURATION_BUCKETS_SECONDS: [f64; 19] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1200.0, 1800.0, 3600.0,
];

/// The step name that stands for every name past the `--max-step-names` cap, and for names
/// too long to be a label value.
pub const OVERFLOW_STEP_NAME: &str = "other";

/// Longest step name kept as a label value. Each name is repeated on every histogram bucket
/// of every scrape, so a runaway name must not reach the exposition.
pub const MAX_STEP_NAME_BYTES: usize = 128;

/// The workflow states of `containerkit_workflow_status`, in exposition order.
pub const WORKFLOW_STATES: [&str; 5] = ["started", "running", "completed", "failed", "abandoned"];

/// The `status` values of `containerkit_workflows_total`.
pub const WORKFLOW_OUTCOMES: [&str; 4] = ["started", "completed", "failed", "abandoned"];

/// A metric whose only label is the source.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: Arc<str>,
}

/// `containerkit_workflow_progress`: the step and total of the current workflow.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProgressLabels {
    pub source: Arc<str>,
    pub step: u32,
    pub total: u32,
}

/// A per-source metric split by a status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub source: Arc<str>,
    pub status: &'static str,
}

/// A per-source, per-step metric split by a status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub source: Arc<str>,
    pub step_name: Arc<str>,
    pub status: &'static str,
}

/// Parse errors of one source by reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub source: Arc<str>,
    pub reason: &'static str,
}

/// Rotations or truncations of one followed file, by kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub source: Arc<str>,
    pub kind: &'static str,
}

/// No label: for a series that exists only when a feature is configured (an empty family
/// shows nothing; its one series is created when the feature starts).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoLabels {}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A gauge holding a float, such as a Unix time in seconds.
pub type FloatGauge = Gauge<f64, AtomicU64>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_SECONDS)
}

/// Every family the exporter updates, plus the registry that encodes them.
pub struct Metrics {
    pub registry: Registry,

    pub workflow_progress: Family<ProgressLabels, Gauge>,
    pub workflow_status: Family<StatusLabels, Gauge>,
    pub step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    pub workflow_duration: Family<StatusLabels, Histogram, fn() -> Histogram>,
    pub steps: Family<StepLabels, Counter>,
    pub workflows: Family<StatusLabels, Counter>,
    pub last_event: Family<SourceLabels, FloatGauge>,

    pub lines_read: Family<SourceLabels, Counter>,
    pub bytes_read: Family<SourceLabels, Counter>,
    pub progress_events: Family<SourceLabels, Counter>,
    pub parse_errors: Family<ReasonLabels, Counter>,
    pub overlong_lines: Family<SourceLabels, Counter>,
    pub step_name_overflows: Counter,
    pub rotations: Family<KindLabels, Counter>,
    pub truncations: Family<KindLabels, Counter>,
    pub open_errors: Family<SourceLabels, Counter>,
    pub files_open: Gauge,
    pub file_offset: Family<SourceLabels, Gauge>,
    pub file_size: Family<SourceLabels, Gauge>,
    pub leading_nul_bytes: Family<SourceLabels, Counter>,
    pub checkpoint_write_errors: Family<NoLabels, Counter>,

    /// The families of the `run` mode.
    pub run: RunMetrics,

    step_names: StepNames,
}

impl Metrics {
    /// Registers every family; `max_step_names` caps distinct step names across all sources.
    pub fn new(max_step_names: usize) -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Registry::default(),
            workflow_progress: Family::default(),
            workflow_status: Family::default(),
            step_duration: Family::new_with_constructor(duration_histogram),
            workflow_duration: Family::new_with_constructor(duration_histogram),
            steps: Family::default(),
            workflows: Family::default(),
            last_event: Family::default(),
            lines_read: Family::default(),
            bytes_read: Family::default(),
            progress_events: Family::default(),
            parse_errors: Family::default(),
            overlong_lines: Family::default(),
            step_name_overflows: Counter::default(),
            rotations: Family::default(),
            truncations: Family::default(),
            open_errors: Family::default(),
            files_open: Gauge::default(),
            file_offset: Family::default(),
            file_size: Family::default(),
            leading_nul_bytes: Family::default(),
            checkpoint_write_errors: Family::default(),
            run: RunMetrics::default(),
            step_names: StepNames::new(max_step_names),
        };

        registry.register(
            "containerkit_workflow_progress",
            "Percentage (0-100) of the current workflow of each source",
            metrics.workflow_progress.clone(),
        );
        registry.register(
            "containerkit_workflow_status",
            "State of the current workflow of each source: exactly one status is 1",
            metrics.workflow_status.clone(),
        );
        registry.register_with_unit(
            "containerkit_step_duration",
            "Duration of completed and failed workflow steps",
            Unit::Seconds,
            metrics.step_duration.clone(),
        );
        registry.register_with_unit(
            "containerkit_workflow_duration",
            "Duration of whole completed and failed workflows",
            Unit::Seconds,
            metrics.workflow_duration.clone(),
        );
        registry.register(
            "containerkit_steps",
            "Workflow step events by step name and status",
            metrics.steps.clone(),
        );
        registry.register(
            "containerkit_workflows",
            "Workflows started, completed, failed and abandoned",
            metrics.workflows.clone(),
        );
        registry.register_with_unit(
            "containerkit_workflow_last_event_timestamp",
            "Unix time of the newest PROGRESS event read from each source",
            Unit::Seconds,
            metrics.last_event.clone(),
        );

        let own = registry.sub_registry_with_prefix("containerkit_exporter");
        own.register(
            "lines_read",
            "Lines read from each source, overlong ones included",
            metrics.lines_read.clone(),
        );
        own.register(
            "bytes_read",
            "Bytes read from each source",
            metrics.bytes_read.clone(),
        );
        own.register(
            "progress_events",
            "PROGRESS lines parsed into events",
            metrics.progress_events.clone(),
        );
        own.register(
            "parse_errors",
            "PROGRESS lines that could not be parsed, by reason",
            metrics.parse_errors.clone(),
        );
        own.register(
            "overlong_lines",
            "Lines skipped because they exceed --max-line-bytes",
            metrics.overlong_lines.clone(),
        );
        own.register(
            "step_name_overflows",
            "Step events recorded under the name 'other': past --max-step-names, or a name over 128 bytes",
            metrics.step_name_overflows.clone(),
        );
        own.register(
            "rotations",
            "Followed files that were replaced, by kind (rename, delete, symlink)",
            metrics.rotations.clone(),
        );
        own.register(
            "truncations",
            "Followed files that were truncated in place, by how it was seen (shrunk: size \
             below the read offset; rewritten: bytes before the offset changed)",
            metrics.truncations.clone(),
        );
        own.register(
            "open_errors",
            "Failed attempts to open or read a source",
            metrics.open_errors.clone(),
        );
        own.register(
            "files_open",
            "Files the tail source holds open, rotated ones still being drained included",
            metrics.files_open.clone(),
        );
        own.register_with_unit(
            "file_offset",
            "Bytes read so far from the file each followed path names now",
            Unit::Bytes,
            metrics.file_offset.clone(),
        );
        own.register_with_unit(
            "file_size",
            "Size of the file each followed path names now, as last checked",
            Unit::Bytes,
            metrics.file_size.clone(),
        );
        own.register(
            "leading_nul_bytes",
            "NUL bytes skipped at the start of lines (left by copytruncate)",
            metrics.leading_nul_bytes.clone(),
        );
        own.register(
            "checkpoint_write_errors",
            "Failed writes of the tail checkpoint (--tail.checkpoint-file); shown when one is \
             configured",
            metrics.checkpoint_write_errors.clone(),
        );
        let build_info: Family<BuildLabels, Gauge> = Family::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        own.register(
            "build_info",
            "Version of containerkit-exporter; the value is always 1",
            build_info,
        );
        metrics.run.register(&mut registry);

        Metrics {
            registry,
            ..metrics
        }
    }

    /// The label value to use for `step_name`: the name itself while fewer than the cap
    /// are known, `other` after that or for a name longer than `MAX_STEP_NAME_BYTES` (each
    /// such event counted).
    pub fn step_name(&self, name: &str) -> Arc<str> {
        let interned = if name.len() <= MAX_STEP_NAME_BYTES {
            self.step_names.intern(name)
        } else {
            None
        };
        match interned {
            Some(name) => name,
            None => {
                self.step_name_overflows.inc();
                Arc::from(OVERFLOW_STEP_NAME)
            }
        }
    }
}

/// The distinct step names seen so far, shared by every source.
struct StepNames {
    max: usize,
    known: Mutex<HashSet<Arc<str>>>,
}

impl StepNames {
    fn new(max: usize) -> StepNames {
        StepNames {
            max,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// The shared copy of `name`, or `None` when it is new and the cap is reached.
    fn intern(&self, name: &str) -> Option<Arc<str>> {
        // A poisoned lock only means another thread panicked mid-insert; the set is still
        // a valid set, so keep using it.
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(existing) = known.get(name) {
            return Some(existing.clone());
        }
        if known.len() >= self.max {
            return None;
        }
        let name: Arc<str> = Arc::from(name);
        known.insert(name.clone());
        Some(name)
    }
}
