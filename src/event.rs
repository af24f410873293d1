//! The `ProgressEvent` that every accepted line form turns into, and the errors a
//! broken PROGRESS line yields.
//!
//! This module owns the vocabulary shared by the parser (which produces events), the
//! workflow recorder (which turns them into metrics) and `replay --output events`
//! (which prints them).

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

/// The status of a PROGRESS event, from its `status` field or implied by its emoji.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Started,
    Running,
    Completed,
    Failed,
}

impl Status {
    /// The lowercase name used in logs, labels and printed events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    /// Matches a `status` value without regard to case.
    pub fn from_field(value: &str) -> Option<Status> {
        [
            Status::Started,
            Status::Running,
            Status::Completed,
            Status::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(value))
    }
}

/// The status emoji in front of `PROGRESS`; absent when the message is the bare word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Emoji {
    /// 🚀 a workflow begins.
    Rocket,
    /// 🔄 a step begins.
    Cycle,
    /// ✅ a step succeeded.
    Check,
    /// ❌ a step failed.
    Cross,
    /// 🎉 the workflow succeeded.
    Party,
}

impl Emoji {
    /// Recognises one of the five status emoji (without any U+FE0F that follows it).
    pub fn from_char(c: char) -> Option<Emoji> {
        match c {
            '🚀' => Some(Emoji::Rocket),
            '🔄' => Some(Emoji::Cycle),
            '✅' => Some(Emoji::Check),
            '❌' => Some(Emoji::Cross),
            '🎉' => Some(Emoji::Party),
            _ => None,
        }
    }

    /// The status this emoji implies when the line has no `status` field.
    pub fn implied_status(self) -> Status {
        match self {
            Emoji::Rocket => Status::Started,
            Emoji::Cycle => Status::Running,
            Emoji::Check | Emoji::Party => Status::Completed,
            Emoji::Cross => Status::Failed,
        }
    }
}

/// What an event means for the workflow of its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A workflow begins (`status=started`, whatever the emoji).
    WorkflowStarted,
    /// A step begins.
    StepRunning,
    /// A step succeeded.
    StepCompleted,
    /// A step failed; this ends the workflow.
    StepFailed,
    /// The whole workflow succeeded.
    WorkflowCompleted,
}

/// The step name that marks the end of a successful workflow.
pub const WORKFLOW_COMPLETE_STEP: &str = "workflow_complete";

/// One PROGRESS line, whichever of the three forms it came in.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    pub emoji: Option<Emoji>,
    pub step: u32,
    pub total: u32,
    /// 0 to 100; step × 100 / total rounded down when the line has none.
    pub percentage: u8,
    pub step_name: String,
    pub status: Status,
    pub message: Option<String>,
    pub error: Option<String>,
    /// Never negative: a negative duration is an `invalid_duration` error.
    pub duration: Option<Duration>,
    pub image_ref: Option<String>,
    pub namespace: Option<String>,
    pub component: Option<String>,
    pub level: Option<String>,
    /// The line's own `time`; `None` when it has none or it is not RFC 3339.
    pub time: Option<DateTime<FixedOffset>>,
}

impl ProgressEvent {
    /// An event with only its required fields, its percentage worked out from step and total
    /// as for a line that has none (`total` must be at least 1).
    pub fn new(step: u32, total: u32, step_name: &str, status: Status) -> ProgressEvent {
        ProgressEvent {
            emoji: None,
            step,
            total,
            percentage: (u64::from(step) * 100 / u64::from(total.max(1))).min(100) as u8,
            step_name: step_name.to_owned(),
            status,
            message: None,
            error: None,
            duration: None,
            image_ref: None,
            namespace: None,
            component: None,
            level: None,
            time: None,
        }
    }

    /// What the event means, from its status, emoji and step name (FORMAT.md, "Meaning").
    pub fn transition(&self) -> Transition {
        match self.status {
            Status::Started => Transition::WorkflowStarted,
            Status::Running => Transition::StepRunning,
            Status::Failed => Transition::StepFailed,
            Status::Completed
                if self.emoji == Some(Emoji::Party) || self.step_name == WORKFLOW_COMPLETE_STEP =>
            {
                Transition::WorkflowCompleted
            }
            Status::Completed => Transition::StepCompleted,
        }
    }
}

/// Why a PROGRESS line could not become an event. Each variant is one `reason` label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing required field {0}")]
    MissingField(&'static str),
    #[error("field {0} is not a valid number")]
    InvalidNumber(&'static str),
    #[error("duration is not a valid non-negative Go duration")]
    InvalidDuration,
    #[error("status is not one of started, running, completed, failed")]
    InvalidStatus,
    #[error("malformed line: {0}")]
    Malformed(&'static str),
}

impl ParseError {
    /// Every reason label, so that counters can exist at zero before the first error.
    pub const REASONS: [&'static str; 5] = [
        "missing_field",
        "invalid_number",
        "invalid_duration",
        "invalid_status",
        "malformed",
    ];

    /// The `reason` label value of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::MissingField(_) => "missing_field",
            ParseError::InvalidNumber(_) => "invalid_number",
            ParseError::InvalidDuration => "invalid_duration",
            ParseError::InvalidStatus => "invalid_status",
            ParseError::Malformed(_) => "malformed",
        }
    }
}
