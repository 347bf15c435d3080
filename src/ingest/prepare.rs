//! Turns a decoded capture into a `NewEvent`: validates it, parses the stack trace into
//! frames, computes the grouping key, title and culprit. Runs in the request handler, before
//! the queue, so the writer only writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{
        ExceptionData, Frame, Level, NewEvent,
        event::{limits, validate_common},
        grouping::{self, GroupingInput, stacktrace},
    },
    error::{Error, FieldViolation},
    store,
};

/// An exception as a client sent it; the stack may come as text, lines or frames.
#[derive(Debug, Clone, Default)]
pub struct ExceptionInput {
    pub r#type: String,
    pub message: String,
    pub module: String,
    pub stacktrace: String,
    pub stacktrace_lines: Vec<String>,
    pub frames: Vec<Frame>,
}

/// Everything a capture path can carry, already decoded from its transport.
#[derive(Debug, Clone, Default)]
pub struct CaptureInput {
    pub message: String,
    pub code: String,
    /// Stack trace text sent beside `message` (not inside an exception).
    pub stack: String,
    pub exception: Option<ExceptionInput>,
    pub level: Option<Level>,
    pub release: String,
    pub environment: String,
    pub user_id: String,
    pub tags: BTreeMap<String, String>,
    pub fingerprint: Vec<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    /// The original payload, JSON text, stored with the event.
    pub payload_json: String,
}

/// Validates and fingerprints a capture. `default_level` applies when the client sent none.
pub fn prepare(
    project_id: Uuid,
    input: CaptureInput,
    default_level: Level,
    now: DateTime<Utc>,
) -> Result<NewEvent, Error> {
    let input = super::scrub::scrub(project_id, input);
    let CaptureInput {
        message,
        code,
        stack,
        exception,
        level,
        release,
        environment,
        user_id,
        tags,
        fingerprint,
        timestamp,
        idempotency_key,
        payload_json,
    } = input;

    validate_common(&release, &environment, &user_id, &tags)?;
    let mut violations = Vec::new();
    if message.len() > limits::MESSAGE_MAX {
        violations.push(FieldViolation::new(
            "message",
            format!("must be at most {} bytes", limits::MESSAGE_MAX),
            "TOO_LONG",
        ));
    }
    if code.len() > limits::SHORT_FIELD_MAX {
        violations.push(FieldViolation::new(
            "code",
            format!("must be at most {} bytes", limits::SHORT_FIELD_MAX),
            "TOO_LONG",
        ));
    }
    if fingerprint.len() > limits::FINGERPRINT_PARTS_MAX
        || fingerprint
            .iter()
            .any(|p| p.len() > limits::SHORT_FIELD_MAX)
    {
        violations.push(FieldViolation::new(
            "fingerprint",
            format!(
                "at most {} entries of at most {} bytes",
                limits::FINGERPRINT_PARTS_MAX,
                limits::SHORT_FIELD_MAX
            ),
            "TOO_LONG",
        ));
    }
    if let Some(key) = &idempotency_key {
        if key.is_empty() || key.len() > limits::SHORT_FIELD_MAX {
            violations.push(FieldViolation::new(
                "idempotency_key",
                format!("must be 1 to {} bytes", limits::SHORT_FIELD_MAX),
                "INVALID",
            ));
        }
    }

    let exception = match exception {
        Some(e) => Some(exception_data(e, &mut violations)),
        None if !stack.trim().is_empty() => {
            let parsed = stacktrace::parse(&stack);
            Some(ExceptionData {
                r#type: parsed.exception_type.unwrap_or_default(),
                value: parsed
                    .exception_value
                    .unwrap_or_else(|| first_line(&message).to_owned()),
                module: String::new(),
                frames: parsed.frames,
                raw_stacktrace: stack,
            })
        }
        None => None,
    };
    let has_exception_content = exception
        .as_ref()
        .is_some_and(|e| !e.r#type.is_empty() || !e.value.is_empty() || !e.frames.is_empty());
    if message.trim().is_empty() && !has_exception_content {
        violations.push(FieldViolation::new(
            "message",
            "is required (or send an exception)",
            "REQUIRED",
        ));
    }
    if !violations.is_empty() {
        return Err(Error::invalid(violations));
    }

    // Frames the client did not classify are classified once here, so what is stored and
    // shown says which frames counted as the application's.
    let mut exception = exception;
    if let Some(e) = exception.as_mut() {
        for f in &mut e.frames {
            if f.in_app.is_none() {
                f.in_app = Some(stacktrace::is_in_app(f));
            }
        }
    }
    let (exc_type, exc_value, frames): (&str, &str, &[Frame]) = match &exception {
        Some(e) => (
            &e.r#type,
            if e.value.is_empty() {
                &message
            } else {
                &e.value
            },
            &e.frames,
        ),
        None => ("", &message, &[]),
    };
    let grouping = grouping::compute(&GroupingInput {
        exception_type: exc_type,
        message: exc_value,
        frames,
        client_fingerprint: &fingerprint,
    });
    let (title, culprit) = grouping::title_and_culprit(exc_type, exc_value, frames);
    let message = if message.trim().is_empty() {
        title.clone()
    } else {
        message
    };

    let search_text = search_text(&message, exception.as_ref());
    let data = store::blob::encode(exception.as_ref(), &grouping, &payload_json);
    Ok(NewEvent {
        id: Uuid::now_v7(),
        project_id,
        timestamp: timestamp.unwrap_or(now),
        received_at: now,
        level: level.unwrap_or(default_level),
        message,
        code,
        exception_type: exception.map(|e| e.r#type).unwrap_or_default(),
        release,
        environment,
        user_id,
        tags,
        idempotency_key,
        fingerprint: grouping.fingerprint,
        grouping_version: grouping.version,
        title,
        culprit,
        search_text,
        data,
    })
}

/// Lower-cased text the free-text search runs over: message, exception type and value, and
/// the stack as its frames' modules, functions and files (the raw text is in the payload;
/// line numbers and source lines would only bloat it).
fn search_text(message: &str, exception: Option<&ExceptionData>) -> String {
    let mut s = String::with_capacity(message.len() + 256);
    s.push_str(message);
    if let Some(e) = exception {
        for part in [&e.r#type, &e.value] {
            s.push('\n');
            s.push_str(part);
        }
        for f in &e.frames {
            s.push('\n');
            s.push_str(&f.module);
            s.push(' ');
            s.push_str(&f.function);
            s.push(' ');
            s.push_str(&f.filename);
        }
    }
    s.to_lowercase()
}

fn exception_data(e: ExceptionInput, violations: &mut Vec<FieldViolation>) -> ExceptionData {
    let ExceptionInput {
        r#type,
        message,
        module,
        stacktrace: text,
        stacktrace_lines,
        frames,
    } = e;
    let (parsed_type, parsed_value, frames) = if !frames.is_empty() {
        (None, None, frames)
    } else if !stacktrace_lines.is_empty() {
        let p = stacktrace::parse_lines(&stacktrace_lines);
        (p.exception_type, p.exception_value, p.frames)
    } else {
        let p = stacktrace::parse(&text);
        (p.exception_type, p.exception_value, p.frames)
    };
    if frames.len() > limits::FRAMES_MAX {
        violations.push(FieldViolation::new(
            "exception.stacktrace",
            format!("at most {} frames", limits::FRAMES_MAX),
            "TOO_LONG",
        ));
    }
    if r#type.len() > limits::SHORT_FIELD_MAX {
        violations.push(FieldViolation::new(
            "exception.type",
            format!("must be at most {} bytes", limits::SHORT_FIELD_MAX),
            "TOO_LONG",
        ));
    }
    if message.len() > limits::MESSAGE_MAX {
        violations.push(FieldViolation::new(
            "exception.message",
            format!("must be at most {} bytes", limits::MESSAGE_MAX),
            "TOO_LONG",
        ));
    }
    let raw = if text.is_empty() {
        stacktrace_lines.join("\n")
    } else {
        text
    };
    ExceptionData {
        r#type: if r#type.trim().is_empty() {
            parsed_type.unwrap_or_default()
        } else {
            r#type.trim().to_owned()
        },
        value: if message.is_empty() {
            parsed_value.unwrap_or_default()
        } else {
            message
        },
        module,
        frames,
        raw_stacktrace: raw,
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}
