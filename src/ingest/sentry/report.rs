//! Sentry's user feedback items: `user_report` (`{event_id, name, email, comments}`: older SDKs'
//! `captureUserFeedback` and the crash-report dialog) and `feedback` (an event whose
//! `contexts.feedback` holds `message`, `name`, `contact_email`, `url` and
//! `associated_event_id`: the feedback widget and `captureFeedback`). Unreadable ones are left
//! out, never failing their envelope.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::event::parse_event_id;

/// A report as an SDK sent it, not yet checked (`domain::feedback::NewReport`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportInput {
    pub event_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub comments: String,
    pub url: String,
    /// Reports with the same key are one: `user_report:<event id>` (Sentry keeps one per
    /// event), `feedback:<the feedback event's own id>`.
    pub dedup_key: Option<String>,
}

fn text(o: &Map<String, Value>, key: &str) -> String {
    o.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn object(payload: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(payload).ok()? {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// A `user_report` item.
pub fn user_report(payload: &[u8]) -> Option<ReportInput> {
    let o = object(payload)?;
    Some(ReportInput {
        event_id: o
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(parse_event_id),
        name: text(&o, "name"),
        email: text(&o, "email"),
        comments: text(&o, "comments"),
        url: String::new(),
        dedup_key: o
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(parse_event_id)
            .map(|id| format!("user_report:{}", id.simple())),
    })
}

/// A `feedback` item.
pub fn feedback(payload: &[u8]) -> Option<ReportInput> {
    let o = object(payload)?;
    let f = o.get("contexts")?.get("feedback")?.as_object()?;
    Some(ReportInput {
        event_id: f
            .get("associated_event_id")
            .and_then(Value::as_str)
            .and_then(parse_event_id),
        name: text(f, "name"),
        email: text(f, "contact_email"),
        comments: text(f, "message"),
        url: text(f, "url"),
        dedup_key: o
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(parse_event_id)
            .map(|id| format!("feedback:{}", id.simple())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_are_read_and_garbage_is_left_out() {
        let r = user_report(
            br#"{"event_id":"fc6d8c0c43fc4630ad850ee518f1b9d0","name":"Ana","email":"ana@example.com","comments":"It broke."}"#,
        )
        .unwrap();
        assert_eq!(
            r.event_id.unwrap().simple().to_string(),
            "fc6d8c0c43fc4630ad850ee518f1b9d0"
        );
        assert_eq!((r.name.as_str(), r.comments.as_str()), ("Ana", "It broke."));
        assert_eq!(
            r.dedup_key.as_deref(),
            Some("user_report:fc6d8c0c43fc4630ad850ee518f1b9d0")
        );
        let f = feedback(
            br#"{"type":"feedback","event_id":"0d5a4c3b2a1f4e9d8c7b6a5f4e3d2c1b","contexts":{"feedback":{"message":"Slow","contact_email":"b@example.com","url":"https://shop.example.com/","associated_event_id":"not an id"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (f.email.as_str(), f.url.as_str(), f.event_id),
            ("b@example.com", "https://shop.example.com/", None)
        );
        assert_eq!(
            f.dedup_key.as_deref(),
            Some("feedback:0d5a4c3b2a1f4e9d8c7b6a5f4e3d2c1b")
        );
        assert_eq!(user_report(b"[1,2]"), None);
        assert_eq!(feedback(br#"{"type":"feedback"}"#), None);
        assert_eq!(feedback(b"\xff"), None);
    }
}
