//! An event as the server understands it once a transport has decoded it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{domain::grouping::stacktrace, error::Error};

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses the names clients use, case-insensitively ("warn" and "critical" included).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" => Some(Level::Debug),
            "info" | "log" | "notice" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" | "err" => Some(Level::Error),
            "fatal" | "critical" | "crit" => Some(Level::Fatal),
            _ => None,
        }
    }
}

/// Triage state of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl GroupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "unresolved",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<GroupStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unresolved" => Some(GroupStatus::Unresolved),
            "resolved" => Some(GroupStatus::Resolved),
            "ignored" => Some(GroupStatus::Ignored),
            _ => None,
        }
    }
}

/// One stack frame. Line and column never take part in grouping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filename: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub function: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub module: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lineno: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub colno: u32,
    /// `None` when the client did not say; the grouping code then classifies the frame by its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context_line: String,
    /// The frame as the client sent it, in a minified file, when a source map of the event's
    /// release placed it in the original source (this frame). Set by the server, never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minified: Option<Box<Frame>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The exception part of an event after parsing: frames are oldest call first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionData {
    pub r#type: String,
    pub value: String,
    pub module: String,
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// The stack trace text as received, when it came as text.
    pub raw_stacktrace: String,
    /// The frames were parsed from `raw_stacktrace`, not sent as frames. Stored data leaves
    /// them out and parses the text again when read (`store::blob`): they were a third of
    /// what each event compressed. Not serialized: stored data without frames but with text
    /// says the same.
    #[serde(skip)]
    pub frames_from_text: bool,
    /// How the exception was caught (Sentry `mechanism.type`), when the client said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mechanism: String,
    /// Made up by the SDK (e.g. from a signal): the type says nothing about the bug.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
    /// The other exceptions of a chain, oldest first (this one is the last, the main one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chained: Vec<ExceptionData>,
}

impl ExceptionData {
    /// Drops the frames that were parsed from the text, the whole chain: what storage keeps
    /// (`store::blob`); `restore_frames` undoes it.
    pub fn leave_out_parsed_frames(&mut self) {
        if self.frames_from_text {
            self.frames = Vec::new();
        }
        self.chained
            .iter_mut()
            .for_each(ExceptionData::leave_out_parsed_frames);
    }

    /// Parses the frames again where storage left them out, classifying them as
    /// `ingest::prepare` did; the whole chain. Frames are left out only when they came from
    /// the text, so an exception stored with text and no frames had them parsed from it (or
    /// its text held none, and parsing finds none again).
    pub fn restore_frames(&mut self) {
        if self.frames.is_empty() && !self.raw_stacktrace.is_empty() {
            self.frames = stacktrace::parse(&self.raw_stacktrace).frames;
            classify_frames(&mut self.frames);
            self.frames_from_text = true;
        }
        self.chained
            .iter_mut()
            .for_each(ExceptionData::restore_frames);
    }
}

/// Marks each frame the client did not classify as the application's or not, by its path.
pub fn classify_frames(frames: &mut [Frame]) {
    for f in frames {
        if f.in_app.is_none() {
            f.in_app = Some(stacktrace::is_in_app(f));
        }
    }
}

/// An event ready for the writer: parsed, validated, fingerprinted and encoded, not yet stored.
/// It holds only what the writer writes, so a full queue holds compressed events.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Uuid,
    pub project_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub code: String,
    pub exception_type: String,
    pub release: String,
    pub environment: String,
    pub user_id: String,
    pub tags: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    /// The primary grouping key; a new group is stored under it.
    pub fingerprint: String,
    pub grouping_version: u32,
    /// Every key of the event's grouping version, the primary first: the event joins the group
    /// any of them names, and they are all recorded for that group.
    pub hashes: Vec<String>,
    /// Keys of older grouping versions: they only find groups stored before, and are never
    /// recorded for new groups.
    pub legacy_hashes: Vec<String>,
    pub title: String,
    pub culprit: String,
    /// Lower-cased text the free-text search runs over.
    pub search_text: String,
    /// Exception, grouping explanation and original payload, compressed (`store::blob`).
    pub data: Vec<u8>,
}

/// Bounds on what one event may carry; beyond them the event is rejected with a field error.
pub mod limits {
    pub const MESSAGE_MAX: usize = 64 * 1024;
    pub const SHORT_FIELD_MAX: usize = 256;
    pub const TAGS_MAX: usize = 100;
    pub const TAG_KEY_MAX: usize = 64;
    pub const TAG_VALUE_MAX: usize = 256;
    pub const FINGERPRINT_PARTS_MAX: usize = 32;
    pub const FRAMES_MAX: usize = 500;
    pub const CHAINED_MAX: usize = 32;
    pub const PLATFORM_MAX: usize = 64;
}

/// Checks the free-form string fields shared by every capture path.
pub fn validate_common(
    release: &str,
    environment: &str,
    user_id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let mut violations = Vec::new();
    for (name, value) in [
        ("release", release),
        ("environment", environment),
        ("user_id", user_id),
    ] {
        if value.len() > limits::SHORT_FIELD_MAX {
            violations.push(crate::error::FieldViolation::new(
                name,
                format!("must be at most {} bytes", limits::SHORT_FIELD_MAX),
                "TOO_LONG",
            ));
        }
    }
    if tags.len() > limits::TAGS_MAX {
        violations.push(crate::error::FieldViolation::new(
            "tags",
            format!("at most {} tags", limits::TAGS_MAX),
            "TOO_MANY",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > limits::TAG_KEY_MAX {
            violations.push(crate::error::FieldViolation::new(
                format!("tags.{k}"),
                format!("tag keys must be 1 to {} bytes", limits::TAG_KEY_MAX),
                "INVALID_TAG",
            ));
        } else if v.len() > limits::TAG_VALUE_MAX {
            violations.push(crate::error::FieldViolation::new(
                format!("tags.{k}"),
                format!("tag values must be at most {} bytes", limits::TAG_VALUE_MAX),
                "TOO_LONG",
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(violations))
    }
}
