//! The recorder: one per source, it takes framed lines, parses the PROGRESS ones and turns
//! each event into metric updates through the source's workflow state.
//!
//! It sits after the line framer and the parser, and writes into the shared `Metrics`. A line
//! that cannot be a PROGRESS line costs two atomic increments and the parser's byte scan.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};

use crate::event::{ParseError, ProgressEvent, Status, Transition};
use crate::lines::{Frame, clean};
use crate::metrics::{
    FloatGauge, Metrics, ProgressLabels, ReasonLabels, SourceLabels, StatusLabels, StepLabels,
    WORKFLOW_OUTCOMES, WORKFLOW_STATES,
};
use crate::parse;

/// The state of a source's current workflow, as `containerkit_workflow_status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Started,
    Running,
    Completed,
    Failed,
    Abandoned,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Started => "started",
            Phase::Running => "running",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Abandoned => "abandoned",
        }
    }

    /// Whether the workflow is still under way (a 🚀 now would abandon it).
    pub fn is_open(self) -> bool {
        matches!(self, Phase::Started | Phase::Running)
    }
}

/// What a source remembers of its current workflow; saved in checkpoints so that the
/// gauges are right at once after a restart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// `None` until the source's first event.
    pub phase: Option<Phase>,
    /// Step and total of the current `containerkit_workflow_progress` series.
    pub step: u32,
    pub total: u32,
    pub percentage: u8,
    /// The own time of the 🚀 that began the current workflow, when it carried one.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// Unix seconds of the newest event.
    pub last_event_seconds: f64,
}

/// What happened to one framed line.
#[derive(Debug)]
pub enum Outcome {
    /// Ordinary noise, or an overlong line.
    Noise,
    Event(Box<ProgressEvent>),
    Error(ParseError),
}

/// Turns one source's lines into metrics.
pub struct Recorder {
    source: Arc<str>,
    metrics: Arc<Metrics>,
    // Handles to this source's children, taken once so that each line costs no lock.
    lines_read: Counter,
    bytes_read: Counter,
    progress_events: Counter,
    overlong_lines: Counter,
    parse_errors: [Counter; ParseError::REASONS.len()],
    line_number: u64,
    state: WorkflowState,
    /// Created at the source's first event: before it, the source has no workflow series.
    series: Option<WorkflowSeries>,
    /// Step names this source has named, whose series exist.
    step_names: HashSet<Arc<str>>,
}

/// The statuses of step events, each with its `containerkit_steps_total` series.
const STEP_STATUSES: [Status; 3] = [Status::Running, Status::Completed, Status::Failed];

/// Handles to one source's workflow series whose labels never change, taken once.
struct WorkflowSeries {
    /// In the order of `WORKFLOW_STATES`.
    status: [Gauge; WORKFLOW_STATES.len()],
    started: Counter,
    completed: Counter,
    failed: Counter,
    abandoned: Counter,
    last_event: FloatGauge,
}

impl WorkflowSeries {
    /// Creates the series, the counters at zero so that they exist before they first move.
    fn create(metrics: &Metrics, source: &Arc<str>) -> WorkflowSeries {
        let labels = |status| StatusLabels {
            source: source.clone(),
            status,
        };
        let [started, completed, failed, abandoned] =
            WORKFLOW_OUTCOMES.map(|status| metrics.workflows.get_or_create_owned(&labels(status)));
        for status in ["completed", "failed"] {
            let _ = metrics.workflow_duration.get_or_create(&labels(status));
        }
        WorkflowSeries {
            status: WORKFLOW_STATES
                .map(|state| metrics.workflow_status.get_or_create_owned(&labels(state))),
            started,
            completed,
            failed,
            abandoned,
            last_event: metrics.last_event.get_or_create_owned(&SourceLabels {
                source: source.clone(),
            }),
        }
    }
}

/// Unix seconds of an event: its own time, else the time it was read.
fn event_seconds(time: Option<DateTime<FixedOffset>>, read_at: SystemTime) -> f64 {
    match time {
        Some(time) => time.timestamp_micros() as f64 / 1e6,
        None => read_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or(0.0),
    }
}

impl Recorder {
    /// A recorder for `source`; its self-metric series appear at zero right away.
    pub fn new(source: &str, metrics: Arc<Metrics>) -> Recorder {
        let source: Arc<str> = Arc::from(source);
        let labels = SourceLabels {
            source: source.clone(),
        };
        let parse_errors = ParseError::REASONS.map(|reason| {
            metrics.parse_errors.get_or_create_owned(&ReasonLabels {
                source: source.clone(),
                reason,
            })
        });
        Recorder {
            lines_read: metrics.lines_read.get_or_create_owned(&labels),
            bytes_read: metrics.bytes_read.get_or_create_owned(&labels),
            progress_events: metrics.progress_events.get_or_create_owned(&labels),
            overlong_lines: metrics.overlong_lines.get_or_create_owned(&labels),
            parse_errors,
            source,
            metrics,
            line_number: 0,
            state: WorkflowState::default(),
            series: None,
            step_names: HashSet::new(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn state(&self) -> &WorkflowState {
        &self.state
    }

    /// Counts bytes read from the source (newlines and skipped bytes included).
    pub fn count_bytes(&self, bytes: usize) {
        self.bytes_read.inc_by(bytes as u64);
    }

    /// Handles one framed line: parses it and records what it yields.
    pub fn record(&mut self, frame: Frame<'_>) -> Outcome {
        let outcome = self.read(frame);
        if let Outcome::Event(event) = &outcome {
            self.apply(event, SystemTime::now());
        }
        outcome
    }

    /// Counts and parses one framed line, leaving its event (if any) for the caller to
    /// `apply`, as `run` does to merge events from the child's two output streams.
    pub fn read(&mut self, frame: Frame<'_>) -> Outcome {
        self.line_number += 1;
        self.lines_read.inc();
        let raw = match frame {
            Frame::Line(raw) => raw,
            Frame::Overlong => {
                self.overlong_lines.inc();
                tracing::debug!(source = %self.source, line = self.line_number, "skipped overlong line");
                return Outcome::Noise;
            }
        };
        if !parse::may_be_progress(raw) {
            return Outcome::Noise;
        }
        match parse::parse_line(&clean(raw)) {
            Ok(None) => Outcome::Noise,
            Ok(Some(event)) => {
                self.progress_events.inc();
                Outcome::Event(Box::new(event))
            }
            Err(error) => {
                if let Some(index) = ParseError::REASONS
                    .iter()
                    .position(|r| *r == error.reason())
                {
                    self.parse_errors[index].inc();
                }
                tracing::debug!(
                    source = %self.source,
                    line = self.line_number,
                    reason = error.reason(),
                    error = %error,
                    "PROGRESS line not parsed"
                );
                Outcome::Error(error)
            }
        }
    }

    /// Turns one event into metric updates; `read_at` stands in for a missing event time.
    pub fn apply(&mut self, event: &ProgressEvent, read_at: SystemTime) {
        let previous = self.state.phase;
        if self.series.is_none() {
            self.series = Some(WorkflowSeries::create(&self.metrics, &self.source));
        }
        let Some(series) = &self.series else {
            return;
        };

        let phase = match event.transition() {
            Transition::WorkflowStarted => {
                if previous.is_some_and(Phase::is_open) {
                    series.abandoned.inc();
                    tracing::debug!(source = %self.source, "workflow abandoned by a new start");
                }
                series.started.inc();
                self.state.started_at = event.time;
                Phase::Started
            }
            Transition::StepRunning | Transition::StepCompleted => {
                if !previous.is_some_and(Phase::is_open) {
                    // The stream began mid-workflow, or a step came after the end: the
                    // workflow runs without a counted start.
                    self.state.started_at = None;
                }
                Phase::Running
            }
            Transition::StepFailed => {
                series.failed.inc();
                if let (Some(start), Some(end)) = (self.state.started_at, event.time) {
                    let seconds = (end - start).as_seconds_f64();
                    if seconds >= 0.0 {
                        self.observe_workflow("failed", seconds);
                    }
                }
                self.state.started_at = None;
                Phase::Failed
            }
            Transition::WorkflowCompleted => {
                series.completed.inc();
                if let Some(duration) = event.duration {
                    self.observe_workflow("completed", duration.as_secs_f64());
                }
                self.state.started_at = None;
                Phase::Completed
            }
        };

        // Step events: counted by name; finished ones also timed.
        let step_status = match event.transition() {
            Transition::StepRunning => Some(Status::Running),
            Transition::StepCompleted => Some(Status::Completed),
            Transition::StepFailed => Some(Status::Failed),
            Transition::WorkflowStarted | Transition::WorkflowCompleted => None,
        };
        if let Some(status) = step_status {
            let metrics = &*self.metrics;
            let step_name = metrics.step_name(&event.step_name);
            if self.step_names.insert(step_name.clone()) {
                self.create_step_series(&step_name);
            }
            let labels = StepLabels {
                source: self.source.clone(),
                step_name,
                status: status.as_str(),
            };
            metrics.steps.get_or_create(&labels).inc();
            if let (Some(duration), Status::Completed | Status::Failed) = (event.duration, status) {
                metrics
                    .step_duration
                    .get_or_create(&labels)
                    .observe(duration.as_secs_f64());
            }
        }

        self.set_phase(phase);
        self.set_progress(event.step, event.total, event.percentage);
        self.set_last_event(event_seconds(event.time, read_at));
    }

    /// Creates every series of a step the source names for the first time, at zero, so that
    /// `increase()` sees its first completion or failure (a series that is born at 1 shows
    /// no increase).
    fn create_step_series(&self, step_name: &Arc<str>) {
        let metrics = &*self.metrics;
        for status in STEP_STATUSES {
            let labels = StepLabels {
                source: self.source.clone(),
                step_name: step_name.clone(),
                status: status.as_str(),
            };
            let _ = metrics.steps.get_or_create(&labels);
            if status != Status::Running {
                let _ = metrics.step_duration.get_or_create(&labels);
            }
        }
    }

    /// Removes every series of this source from the registry, as when its file is gone for
    /// good, and ends the recorder (its handles would count into removed series). What is
    /// removed is what the recorder created; the source's other families (such as a
    /// follower's) are its owner's to remove.
    pub fn forget(mut self) {
        let metrics = &*self.metrics;
        let source = SourceLabels {
            source: self.source.clone(),
        };
        for family in [
            &metrics.lines_read,
            &metrics.bytes_read,
            &metrics.progress_events,
            &metrics.overlong_lines,
        ] {
            family.remove(&source);
        }
        metrics.last_event.remove(&source);
        for reason in ParseError::REASONS {
            metrics.parse_errors.remove(&ReasonLabels {
                source: self.source.clone(),
                reason,
            });
        }
        for status in WORKFLOW_STATES.iter().chain(&WORKFLOW_OUTCOMES) {
            let labels = self.status_labels(status);
            metrics.workflow_status.remove(&labels);
            metrics.workflows.remove(&labels);
            metrics.workflow_duration.remove(&labels);
        }
        for step_name in self.step_names.drain() {
            for status in STEP_STATUSES {
                let labels = StepLabels {
                    source: self.source.clone(),
                    step_name: step_name.clone(),
                    status: status.as_str(),
                };
                metrics.steps.remove(&labels);
                metrics.step_duration.remove(&labels);
            }
        }
        if self.state.total != 0 {
            metrics.workflow_progress.remove(&self.progress_labels());
        }
    }

    fn observe_workflow(&self, status: &'static str, seconds: f64) {
        self.metrics
            .workflow_duration
            .get_or_create(&self.status_labels(status))
            .observe(seconds);
    }

    fn set_phase(&mut self, phase: Phase) {
        self.state.phase = Some(phase);
        if let Some(series) = &self.series {
            for (state, gauge) in WORKFLOW_STATES.iter().zip(&series.status) {
                gauge.set(i64::from(*state == phase.as_str()));
            }
        }
    }

    fn set_progress(&mut self, step: u32, total: u32, percentage: u8) {
        let had_series = self.state.total != 0;
        if had_series && (self.state.step, self.state.total) != (step, total) {
            self.metrics
                .workflow_progress
                .remove(&self.progress_labels());
        }
        self.state.step = step;
        self.state.total = total;
        self.state.percentage = percentage;
        self.metrics
            .workflow_progress
            .get_or_create(&self.progress_labels())
            .set(i64::from(percentage));
    }

    fn set_last_event(&mut self, seconds: f64) {
        self.state.last_event_seconds = seconds;
        if let Some(series) = &self.series {
            series.last_event.set(seconds);
        }
    }

    fn status_labels(&self, status: &'static str) -> StatusLabels {
        StatusLabels {
            source: self.source.clone(),
            status,
        }
    }

    fn progress_labels(&self) -> ProgressLabels {
        ProgressLabels {
            source: self.source.clone(),
            step: self.state.step,
            total: self.state.total,
        }
    }

    /// Restores a saved workflow state (from a checkpoint) and sets the gauges from it.
    pub fn restore(&mut self, state: WorkflowState) {
        let Some(phase) = state.phase else {
            return;
        };
        if self.series.is_none() {
            self.series = Some(WorkflowSeries::create(&self.metrics, &self.source));
        }
        self.state = WorkflowState {
            step: 0,
            total: 0,
            percentage: 0,
            ..state.clone()
        };
        self.set_phase(phase);
        if state.total != 0 {
            self.set_progress(state.step, state.total, state.percentage);
        }
        self.set_last_event(state.last_event_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(recorder: &mut Recorder, text: &str) {
        for line in text.lines() {
            recorder.record(Frame::Line(line.as_bytes()));
        }
    }

    const WORKFLOW: &str =
        "msg=\"🚀 PROGRESS\" step=0 total=2 step_name=workflow_start status=started
msg=\"🔄 PROGRESS\" step=1 total=2 step_name=build_image status=running
msg=\"❌ PROGRESS\" step=1 total=2 step_name=build_image status=failed duration=2s";

    #[test]
    fn a_step_seen_running_has_its_completed_and_failed_series_at_zero() {
        let metrics = Arc::new(Metrics::new(10));
        let mut recorder = Recorder::new("a.log", metrics.clone());
        feed(
            &mut recorder,
            WORKFLOW
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join("\n")
                .as_str(),
        );
        let text = crate::http::encode(&metrics, false).expect("encode");
        for status in ["running\"} 1", "completed\"} 0", "failed\"} 0"] {
            let series = format!(
                "containerkit_steps_total{{source=\"a.log\",step_name=\"build_image\",status=\"{status}"
            );
            assert!(text.contains(&series), "{series} missing from\n{text}");
        }
        assert!(text.contains(
            "containerkit_step_duration_seconds_count{source=\"a.log\",step_name=\"build_image\",status=\"failed\"} 0"
        ));
        assert!(text.contains(
            "containerkit_workflow_duration_seconds_count{source=\"a.log\",status=\"failed\"} 0"
        ));
    }

    #[test]
    fn forget_removes_every_series_of_the_source_and_no_other() {
        let metrics = Arc::new(Metrics::new(10));
        let mut gone = Recorder::new("gone.log", metrics.clone());
        let mut kept = Recorder::new("kept.log", metrics.clone());
        feed(&mut gone, WORKFLOW);
        feed(&mut kept, WORKFLOW);
        gone.forget();
        let text = crate::http::encode(&metrics, false).expect("encode");
        assert!(!text.contains("gone.log"), "{text}");
        assert!(
            text.contains("containerkit_workflows_total{source=\"kept.log\",status=\"failed\"} 1")
        );
        // A forgotten source that comes back starts afresh.
        let mut gone = Recorder::new("gone.log", metrics.clone());
        feed(&mut gone, WORKFLOW);
        let text = crate::http::encode(&metrics, false).expect("encode");
        assert!(
            text.contains("containerkit_workflows_total{source=\"gone.log\",status=\"failed\"} 1")
        );
    }
}
