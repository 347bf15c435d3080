//! The export document formats (JSON array, CSV), written incrementally: a caller feeds
//! events page by page and sends each chunk on, so an export never holds every event.

use serde_json::{Value, json};

use super::model::StoredEvent;

/// Export document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

const CSV_COLUMNS: [&str; 13] = [
    "id",
    "group_id",
    "timestamp",
    "received_at",
    "level",
    "message",
    "code",
    "exception_type",
    "culprit",
    "release",
    "environment",
    "user_id",
    "tags",
];

/// One event as an export record (and as a line of the retention job's JSON Lines file).
pub fn event_record(e: &StoredEvent) -> Value {
    let payload: Value = e
        .payload_json
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": e.id,
        "event_id": e.id,
        "group_id": e.group_id,
        "project_id": e.project_id,
        "fingerprint": e.grouping.fingerprint,
        "timestamp": rfc3339(e.timestamp),
        "received_at": rfc3339(e.received_at),
        "level": e.level.as_str(),
        "message": e.message,
        "code": e.code,
        "exception": e.exception,
        "culprit": e.culprit,
        "release": e.release,
        "environment": e.environment,
        "user_id": e.user_id,
        "tags": e.tags,
        "payload": payload,
    })
}

/// Writes an export document chunk by chunk.
pub struct Writer {
    format: Format,
    written: u64,
}

impl Writer {
    pub fn new(format: Format) -> Self {
        Self { format, written: 0 }
    }

    /// The opening of the document.
    pub fn start(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json => b"[".to_vec(),
            Format::Csv => csv_line(CSV_COLUMNS.iter().map(|s| s.to_string())),
        }
    }

    /// A chunk holding `events`.
    pub fn chunk(&mut self, events: &[StoredEvent]) -> Vec<u8> {
        let mut out = Vec::with_capacity(events.len() * 1024);
        for e in events {
            match self.format {
                Format::Json => {
                    if self.written > 0 {
                        out.push(b',');
                    }
                    out.push(b'\n');
                    out.extend(serde_json::to_vec(&event_record(e)).unwrap_or_default());
                }
                Format::Csv => out.extend(csv_line([
                    e.id.to_string(),
                    e.group_id.to_string(),
                    rfc3339(e.timestamp),
                    rfc3339(e.received_at),
                    e.level.as_str().to_owned(),
                    e.message.clone(),
                    e.code.clone(),
                    e.exception
                        .as_ref()
                        .map(|x| x.r#type.clone())
                        .unwrap_or_default(),
                    e.culprit.clone(),
                    e.release.clone(),
                    e.environment.clone(),
                    e.user_id.clone(),
                    serde_json::to_string(&e.tags).unwrap_or_default(),
                ])),
            }
            self.written += 1;
        }
        out
    }

    /// The end of the document.
    pub fn finish(&mut self) -> Vec<u8> {
        match self.format {
            Format::Json => b"\n]\n".to_vec(),
            Format::Csv => Vec::new(),
        }
    }
}

/// Times as the REST API writes them: UTC, milliseconds, `Z`.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn csv_line(fields: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(fields.into_iter().map(|f| neutralise_formula(&f)));
    w.into_inner().unwrap_or_default()
}

/// Spreadsheet programs execute cells starting with = + - @; a leading quote keeps them text.
fn neutralise_formula(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{s}"),
        _ => s.to_owned(),
    }
}
