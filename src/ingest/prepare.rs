//! Turns a decoded capture into a `NewEvent`: validates it, parses the stack trace into
//! frames, computes the grouping key, title and culprit. Runs in the request handler, before
//! the queue, so the writer only writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{
        ExceptionData, Frame, Level, NewEvent,
        event::{classify_frames, limits, validate_common},
        grouping::{self, EventInput, ExceptionPart, stacktrace},
    },
    error::{Error, FieldViolation},
    store,
};

use super::sourcemaps::ReleaseMaps;

/// An exception as a client sent it; the stack may come as text, lines or frames.
#[derive(Debug, Clone, Default)]
pub struct ExceptionInput {
    pub r#type: String,
    pub message: String,
    pub module: String,
    pub stacktrace: String,
    pub stacktrace_lines: Vec<String>,
    pub frames: Vec<Frame>,
    /// Sentry `mechanism.synthetic`: the SDK made the exception up, its type says nothing.
    pub synthetic: bool,
    /// Sentry `mechanism.type` ("generic", "onerror", …).
    pub mechanism: String,
}

/// Everything a capture path can carry, already decoded from its transport.
#[derive(Debug, Clone, Default)]
pub struct CaptureInput {
    pub message: String,
    pub code: String,
    /// Stack trace text sent beside `message` (not inside an exception).
    pub stack: String,
    pub exception: Option<ExceptionInput>,
    /// The other exceptions of a chain, oldest first; `exception` is the main (last) one.
    pub chained: Vec<ExceptionInput>,
    /// "python", "javascript", "node", …; empty: inferred from the stack trace format.
    pub platform: String,
    /// The route or task the event happened in (`{{ transaction }}` in fingerprints).
    pub transaction: String,
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
    /// Minified files and the debug ids of their source maps (Sentry `debug_meta.images`).
    pub debug_images: Vec<(String, String)>,
}

/// Validates and fingerprints a capture. `default_level` applies when the client sent none.
pub fn prepare(
    project_id: Uuid,
    input: CaptureInput,
    default_level: Level,
    now: DateTime<Utc>,
) -> Result<NewEvent, Error> {
    prepare_placed(project_id, input, default_level, now, None)
}

/// [`prepare`], with the frames that `maps` (the source maps of the event's release) cover
/// placed in the original source first: grouping, title, culprit, search and the stored
/// frames are then the original code's, and each placed frame keeps the frame as sent.
pub fn prepare_placed(
    project_id: Uuid,
    input: CaptureInput,
    default_level: Level,
    now: DateTime<Utc>,
    maps: Option<&ReleaseMaps>,
) -> Result<NewEvent, Error> {
    let input = super::scrub::scrub(project_id, input);
    let CaptureInput {
        message,
        code,
        stack,
        exception,
        chained,
        platform,
        transaction,
        level,
        release,
        environment,
        user_id,
        tags,
        fingerprint,
        timestamp,
        idempotency_key,
        payload_json,
        debug_images: _,
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
    if chained.len() > limits::CHAINED_MAX {
        violations.push(FieldViolation::new(
            "chained",
            format!("at most {} exceptions", limits::CHAINED_MAX),
            "TOO_LONG",
        ));
    }
    if platform.len() > limits::PLATFORM_MAX {
        violations.push(FieldViolation::new(
            "platform",
            format!("must be at most {} bytes", limits::PLATFORM_MAX),
            "TOO_LONG",
        ));
    }
    if transaction.len() > limits::SHORT_FIELD_MAX {
        violations.push(FieldViolation::new(
            "transaction",
            format!("must be at most {} bytes", limits::SHORT_FIELD_MAX),
            "TOO_LONG",
        ));
    }
    if let Some(key) = &idempotency_key
        && (key.is_empty() || key.len() > limits::SHORT_FIELD_MAX)
    {
        violations.push(FieldViolation::new(
            "idempotency_key",
            format!("must be 1 to {} bytes", limits::SHORT_FIELD_MAX),
            "INVALID",
        ));
    }

    // The platform named by the first trace format the parser recognised, when not sent.
    let mut parsed_platform = None;
    let exception = match exception {
        Some(e) => Some(exception_data(e, &mut violations, &mut parsed_platform)),
        None if !stack.trim().is_empty() => {
            let parsed = stacktrace::parse(&stack);
            parsed_platform = parsed.platform;
            Some(ExceptionData {
                r#type: parsed.exception_type.unwrap_or_default(),
                value: parsed
                    .exception_value
                    .unwrap_or_else(|| first_line(&message).to_owned()),
                frames: parsed.frames,
                raw_stacktrace: stack,
                frames_from_text: true,
                ..ExceptionData::default()
            })
        }
        None => None,
    };
    let mut chained: Vec<ExceptionData> = chained
        .into_iter()
        .take(limits::CHAINED_MAX)
        .map(|e| exception_data(e, &mut violations, &mut parsed_platform))
        .collect();
    // A chain without its main exception: the newest one is the main one.
    let exception = match exception {
        Some(mut e) => {
            e.chained = chained;
            Some(e)
        }
        None => chained.pop().map(|mut main| {
            main.chained = chained;
            main
        }),
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

    let mut exception = exception;
    if let (Some(maps), Some(e)) = (maps, exception.as_mut()) {
        maps.place_exception(e);
    }
    // Frames the client did not classify are classified once here, so what is stored and
    // shown says which frames counted as the application's.
    if let Some(e) = exception.as_mut() {
        classify_frames(&mut e.frames);
        for c in &mut e.chained {
            classify_frames(&mut c.frames);
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
    let level = level.unwrap_or(default_level);
    let mut parts: Vec<ExceptionPart<'_>> = Vec::new();
    if let Some(e) = &exception {
        parts.reserve(e.chained.len() + 1);
        parts.extend(e.chained.iter().map(|c| ExceptionPart {
            r#type: &c.r#type,
            value: &c.value,
            frames: &c.frames,
            synthetic: c.synthetic,
        }));
        parts.push(ExceptionPart {
            r#type: exc_type,
            value: exc_value,
            frames,
            synthetic: e.synthetic,
        });
    }
    let grouping = grouping::compute(&EventInput {
        exceptions: &parts,
        message: &message,
        platform: if platform.is_empty() {
            parsed_platform.unwrap_or_default()
        } else {
            &platform
        },
        client_fingerprint: &fingerprint,
        transaction: &transaction,
        level: level.as_str(),
        tags: Some(&tags),
    });
    let (title, culprit) = grouping::title_and_culprit(exc_type, exc_value, frames);
    let message = if message.trim().is_empty() {
        title.clone()
    } else {
        message
    };

    let search_text = search_text(&message, exception.as_ref());
    // Frames parsed from text are not stored: reading parses the text again.
    if let Some(e) = exception.as_mut() {
        e.leave_out_parsed_frames();
    }
    let data = store::blob::encode(exception.as_ref(), &grouping, &payload_json);
    Ok(NewEvent {
        id: Uuid::now_v7(),
        project_id,
        timestamp: timestamp.unwrap_or(now),
        received_at: now,
        level,
        message: without_nul(message),
        code: without_nul(code),
        exception_type: without_nul(exception.map(|e| e.r#type).unwrap_or_default()),
        release: without_nul(release),
        environment: without_nul(environment),
        user_id: without_nul(user_id),
        tags: if tags
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            tags.into_iter()
                .map(|(k, v)| (without_nul(k), without_nul(v)))
                .collect()
        } else {
            tags
        },
        idempotency_key: idempotency_key.map(without_nul),
        hashes: event_hashes(&grouping, grouping.version),
        legacy_hashes: event_hashes(&grouping, grouping::fingerprint::GROUPING_VERSION),
        fingerprint: without_nul(grouping.fingerprint),
        grouping_version: grouping.version,
        title: without_nul(title),
        culprit: without_nul(culprit),
        search_text: without_nul(search_text),
        data,
    })
}

/// The files a capture's frames name, structured or in stack trace text, each once: which
/// source maps of its release [`prepare_placed`] may need.
pub fn frame_files(input: &CaptureInput) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |frames: &[Frame]| {
        for f in frames {
            if f.lineno > 0 && !f.filename.is_empty() && !out.contains(&f.filename) {
                out.push(f.filename.clone());
            }
        }
    };
    for e in input.exception.iter().chain(&input.chained) {
        if !e.frames.is_empty() {
            add(&e.frames);
        } else if !e.stacktrace_lines.is_empty() {
            add(&stacktrace::parse_lines(&e.stacktrace_lines).frames);
        } else if !e.stacktrace.is_empty() {
            add(&stacktrace::parse(&e.stacktrace).frames);
        }
    }
    if input.exception.is_none() && !input.stack.trim().is_empty() {
        add(&stacktrace::parse(&input.stack).frames);
    }
    out
}

/// Text as the event's text columns hold it: NUL (valid in JSON as `\u0000`) becomes U+FFFD.
/// PostgreSQL text cannot hold NUL at all: such an event failed its batch and then alone,
/// and its client was told to retry what could never be stored. SQLite could store it, so
/// both databases now store the same. The stored payload keeps the original.
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// Lower-cased text the free-text search runs over: message, exception type and value, and
/// the stack as its frames' modules, functions and files (the raw text is in the payload;
/// line numbers and source lines would only bloat it).
fn search_text(message: &str, exception: Option<&ExceptionData>) -> String {
    let mut s = String::with_capacity(message.len() + 256);
    s.push_str(message);
    // The causes of a chain are searched like the main exception.
    for e in exception
        .into_iter()
        .flat_map(|e| e.chained.iter().chain([e]))
    {
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

/// The distinct hashes of one grouping version, in the order of the variants (primary first).
fn event_hashes(g: &grouping::Grouping, version: u32) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(g.variants.len());
    for v in g.variants.iter().filter(|v| v.version == version) {
        if !out.contains(&v.hash) {
            out.push(v.hash.clone());
        }
    }
    out
}

fn exception_data(
    e: ExceptionInput,
    violations: &mut Vec<FieldViolation>,
    platform: &mut Option<&'static str>,
) -> ExceptionData {
    let ExceptionInput {
        r#type,
        message,
        module,
        stacktrace: text,
        stacktrace_lines,
        frames,
        synthetic,
        mechanism,
    } = e;
    // Frames parsed from one text, which storage can parse again (`frames_from_text`); not
    // from lines, whose fallback frames depend on how the text was cut.
    let frames_from_text = frames.is_empty() && stacktrace_lines.is_empty();
    let (parsed_type, parsed_value, frames) = if !frames.is_empty() {
        (None, None, frames)
    } else {
        let p = if stacktrace_lines.is_empty() {
            stacktrace::parse(&text)
        } else {
            stacktrace::parse_lines(&stacktrace_lines)
        };
        if platform.is_none() {
            *platform = p.platform;
        }
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
    if mechanism.len() > limits::SHORT_FIELD_MAX {
        violations.push(FieldViolation::new(
            "exception.mechanism",
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
        frames_from_text,
        mechanism,
        synthetic,
        chained: Vec::new(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}
