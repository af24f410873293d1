//! One workflow, two channels: merges the events read from the child's stderr PROGRESS
//! lines and from its MCP progress notifications into the one recorder of its source.
//!
//! Container Kit may report the same step on both channels, in either order, a few
//! microseconds apart. Each event is applied once: an event whose copy already came from
//! the other channel is dropped. Copies are matched by step, total, step name and status;
//! each channel keeps the events it applied that the other has not matched yet, in order,
//! and a match also retires the older ones before it (the other channel has moved past
//! them). A channel that reports alone is applied as it is.
//!
//! An MCP event equal to the MCP event just before it is a repeat (Container Kit resends
//! its state as a heartbeat) and is not applied again.
//!
//! When the copy that arrives second carries a `duration` the first lacked (an MCP message
//! rarely has one), its duration is still observed. A failed workflow's own duration needs
//! the times of its 🚀 and ❌, which only log lines carry; when the MCP copy of either came
//! first, that one duration is not observed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::event::{ProgressEvent, Status, Transition};
use crate::lines::{Frame, LineFramer};
use crate::metrics::{Metrics, StatusLabels, StepLabels};
use crate::recorder::{Outcome, Recorder};

/// Events of one channel that wait for their copy from the other, at most.
pub const MAX_UNMATCHED_EVENTS: usize = 32;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A PROGRESS line on the child's stderr.
    Log,
    /// An MCP progress notification on the child's stdout.
    Mcp,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Log => 0,
            Channel::Mcp => 1,
        }
    }

    fn other(self) -> Channel {
        match self {
            Channel::Log => Channel::Mcp,
            Channel::Mcp => Channel::Log,
        }
    }
}

/// What makes two events copies of each other.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EventKey {
    step: u32,
    total: u32,
    step_name: String,
    status: Status,
}

impl EventKey {
    fn of(event: &ProgressEvent) -> EventKey {
        EventKey {
            step: event.step,
            total: event.total,
            step_name: event.step_name.clone(),
            status: event.status,
        }
    }
}

/// An applied event that waits for its copy, and whether it carried a duration.
#[derive(Debug)]
struct Applied {
    key: EventKey,
    had_duration: bool,
}

struct Inner {
    recorder: Recorder,
    unmatched: [VecDeque<Applied>; 2],
    last_mcp: Option<EventKey>,
}

/// The child's workflow, fed from both channels; shared by the stderr and stdout threads.
pub struct MergedWorkflow {
    source: Arc<str>,
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
}

impl MergedWorkflow {
    pub fn new(source: &str, metrics: Arc<Metrics>) -> MergedWorkflow {
        MergedWorkflow {
            source: Arc::from(source),
            inner: Mutex::new(Inner {
                recorder: Recorder::new(source, metrics.clone()),
                unmatched: [VecDeque::new(), VecDeque::new()],
                last_mcp: None,
            }),
            metrics,
        }
    }

    /// Frames a chunk of the child's stderr and records its lines and events.
    pub fn read_log(&self, framer: &mut LineFramer, chunk: &[u8]) {
        let mut inner = self.lock();
        inner.recorder.count_bytes(chunk.len());
        framer.push(chunk, &mut |frame| self.read_log_line(&mut inner, frame));
    }

    /// Records the child's last stderr line when it has no newline.
    pub fn finish_log(&self, framer: &mut LineFramer) {
        let mut inner = self.lock();
        framer.finish(&mut |frame| self.read_log_line(&mut inner, frame));
    }

    /// Offers an event from an MCP progress notification; true when it was applied.
    pub fn offer_mcp(&self, event: &ProgressEvent) -> bool {
        let mut inner = self.lock();
        let key = EventKey::of(event);
        if inner.last_mcp.as_ref() == Some(&key) {
            return false;
        }
        inner.last_mcp = Some(key);
        self.offer(&mut inner, Channel::Mcp, event)
    }

    fn read_log_line(&self, inner: &mut Inner, frame: Frame<'_>) {
        if let Outcome::Event(event) = inner.recorder.read(frame) {
            self.offer(inner, Channel::Log, &event);
        }
    }

    fn offer(&self, inner: &mut Inner, channel: Channel, event: &ProgressEvent) -> bool {
        let key = EventKey::of(event);

        // The other channel sent this one already: retire it and what came before it.
        let other = &mut inner.unmatched[channel.other().index()];
        if let Some(at) = other.iter().position(|applied| applied.key == key) {
            let had_duration = other[at].had_duration;
            other.drain(..=at);
            if !had_duration {
                self.observe_late_duration(event);
            }
            return false;
        }

        let own = &mut inner.unmatched[channel.index()];
        if own.len() == MAX_UNMATCHED_EVENTS {
            own.pop_front();
        }
        own.push_back(Applied {
            key,
            had_duration: event.duration.is_some(),
        });
        inner.recorder.apply(event, SystemTime::now());
        true
    }

    /// Observes the duration of a dropped copy whose applied twin had none, in the
    /// histogram the recorder would have used.
    fn observe_late_duration(&self, event: &ProgressEvent) {
        let Some(duration) = event.duration else {
            return;
        };
        let seconds = duration.as_secs_f64();
        match event.transition() {
            Transition::StepCompleted | Transition::StepFailed => self
                .metrics
                .step_duration
                .get_or_create(&StepLabels {
                    source: self.source.clone(),
                    step_name: self.metrics.step_name(&event.step_name),
                    status: event.status.as_str(),
                })
                .observe(seconds),
            Transition::WorkflowCompleted => self
                .metrics
                .workflow_duration
                .get_or_create(&StatusLabels {
                    source: self.source.clone(),
                    status: "completed",
                })
                .observe(seconds),
            Transition::WorkflowStarted | Transition::StepRunning => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The recorder's state stays consistent between events; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::encode;

    fn event(step: u32, step_name: &str, status: Status) -> ProgressEvent {
        ProgressEvent::new(step, 3, step_name, status)
    }

    fn timed(mut event: ProgressEvent, seconds: u64) -> ProgressEvent {
        event.duration = Some(Duration::from_secs(seconds));
        event
    }

    fn workflow() -> (Arc<Metrics>, MergedWorkflow) {
        let metrics = Arc::new(Metrics::new(10));
        let merged = MergedWorkflow::new("child", metrics.clone());
        (metrics, merged)
    }

    fn offer_log(merged: &MergedWorkflow, event: &ProgressEvent) -> bool {
        let mut inner = merged.lock();
        merged.offer(&mut inner, Channel::Log, event)
    }

    fn exposition(metrics: &Metrics) -> String {
        encode(metrics, false).unwrap()
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn copies_from_both_channels_count_once_in_either_order() {
        let (metrics, merged) = workflow();
        let start = event(0, "workflow_start", Status::Started);
        let build = event(1, "build_image", Status::Running);
        let built = timed(event(1, "build_image", Status::Completed), 4);

        assert!(offer_log(&merged, &start));
        assert!(!merged.offer_mcp(&start));
        assert!(merged.offer_mcp(&build));
        assert!(!offer_log(&merged, &build));
        assert!(offer_log(&merged, &built));
        assert!(!merged.offer_mcp(&event(1, "build_image", Status::Completed)));

        let text = exposition(&metrics);
        assert!(has(
            &text,
            r#"containerkit_workflows_total{source="child",status="started"} 1"#
        ));
        assert!(has(
            &text,
            r#"containerkit_workflows_total{source="child",status="abandoned"} 0"#
        ));
        assert!(has(
            &text,
            r#"containerkit_steps_total{source="child",step_name="build_image",status="running"} 1"#
        ));
        assert!(has(
            &text,
            r#"containerkit_step_duration_seconds_count{source="child",step_name="build_image",status="completed"} 1"#
        ));
    }

    #[test]
    fn a_late_copy_with_a_duration_still_times_the_step() {
        let (metrics, merged) = workflow();
        assert!(merged.offer_mcp(&event(1, "build_image", Status::Completed)));
        assert!(!offer_log(
            &merged,
            &timed(event(1, "build_image", Status::Completed), 4)
        ));
        let text = exposition(&metrics);
        assert!(has(
            &text,
            r#"containerkit_step_duration_seconds_sum{source="child",step_name="build_image",status="completed"} 4.0"#
        ));
    }

    #[test]
    fn a_match_retires_the_older_unmatched_events() {
        let (metrics, merged) = workflow();
        // The log reports a step the MCP channel skips, then one both report.
        assert!(offer_log(
            &merged,
            &event(1, "analyze_repository", Status::Running)
        ));
        assert!(offer_log(
            &merged,
            &event(2, "build_image", Status::Running)
        ));
        assert!(!merged.offer_mcp(&event(2, "build_image", Status::Running)));
        // A later MCP report of the skipped step is a new event, not a late copy.
        assert!(merged.offer_mcp(&event(1, "analyze_repository", Status::Running)));
        let text = exposition(&metrics);
        assert!(has(
            &text,
            r#"containerkit_steps_total{source="child",step_name="analyze_repository",status="running"} 2"#
        ));
    }

    #[test]
    fn a_repeated_mcp_event_is_a_heartbeat_but_a_repeated_line_counts() {
        let (metrics, merged) = workflow();
        let build = event(1, "build_image", Status::Running);
        assert!(merged.offer_mcp(&build));
        assert!(!merged.offer_mcp(&build));
        assert!(!merged.offer_mcp(&build));
        let deploy = event(2, "deploy", Status::Running);
        assert!(offer_log(&merged, &deploy));
        assert!(offer_log(&merged, &deploy));
        let text = exposition(&metrics);
        assert!(has(
            &text,
            r#"containerkit_steps_total{source="child",step_name="build_image",status="running"} 1"#
        ));
        assert!(has(
            &text,
            r#"containerkit_steps_total{source="child",step_name="deploy",status="running"} 2"#
        ));
    }

    #[test]
    fn unmatched_events_are_bounded() {
        let (_, merged) = workflow();
        for step in 0..(MAX_UNMATCHED_EVENTS as u32 + 5) {
            offer_log(&merged, &event(step % 3, "step", Status::Running));
        }
        assert_eq!(merged.lock().unmatched[0].len(), MAX_UNMATCHED_EVENTS);
    }
}
