//! User feedback, as Sentry has it: what a user wrote about an error (the crash-report dialog,
//! the feedback widget, `captureUserFeedback`), linked to the event it is about when it names
//! one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, FieldViolation};

/// Longest comments kept, in characters.
pub const COMMENTS_MAX: usize = 10_000;
/// Longest name or email, in characters.
pub const NAME_MAX: usize = 200;
/// Longest page URL, in characters.
pub const URL_MAX: usize = 2_000;

/// A report as it arrives, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// The event it is about: Faultline's event id or the Sentry event id.
    pub event_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub comments: String,
    /// The page the user was on.
    pub url: String,
    /// Reports with the same key are one: the later replaces the earlier (an SDK sending its
    /// envelope again, or Sentry's one `user_report` per event).
    pub dedup_key: Option<String>,
}

impl NewReport {
    /// The same report, one of those that share `key`.
    pub fn dedup(self, key: Option<String>) -> NewReport {
        NewReport {
            dedup_key: key,
            ..self
        }
    }

    /// Trimmed and checked: the comments are required; each field has its length.
    pub fn new(
        event_id: Option<Uuid>,
        name: &str,
        email: &str,
        comments: &str,
        url: &str,
    ) -> Result<NewReport, Error> {
        let mut v = Vec::new();
        let mut field = |name: &str, value: &str, max: usize, required: bool| {
            let value = value.trim();
            if required && value.is_empty() {
                v.push(FieldViolation::new(name, "is required", "REQUIRED"));
            } else if value.chars().count() > max {
                v.push(FieldViolation::new(
                    name,
                    format!("must be at most {max} characters"),
                    "TOO_LONG",
                ));
            } else if value.contains('\0') {
                v.push(FieldViolation::new(
                    name,
                    "must not contain the NUL character",
                    "INVALID",
                ));
            }
            value.to_owned()
        };
        let report = NewReport {
            event_id,
            name: field("name", name, NAME_MAX, false),
            email: field("email", email, NAME_MAX, false),
            comments: field("comments", comments, COMMENTS_MAX, true),
            url: field("url", url, URL_MAX, false),
            dedup_key: None,
        };
        if v.is_empty() {
            Ok(report)
        } else {
            Err(Error::invalid(v))
        }
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    pub id: Uuid,
    pub project_id: Uuid,
    pub event_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub comments: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// The stored event it is about (Faultline's id) and that event's group, while the event
    /// is kept.
    pub event: Option<(Uuid, Uuid)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_required_and_fields_bounded() {
        let r = NewReport::new(None, " Ana ", "", "  It broke when I paid.  ", "").unwrap();
        assert_eq!(
            (r.name.as_str(), r.comments.as_str()),
            ("Ana", "It broke when I paid.")
        );
        let e = NewReport::new(None, "", "", "   ", "").unwrap_err();
        assert!(format!("{e:?}").contains("comments"), "{e:?}");
        let long = "x".repeat(NAME_MAX + 1);
        let e = NewReport::new(None, &long, "", "ok", "").unwrap_err();
        assert!(format!("{e:?}").contains("TOO_LONG"), "{e:?}");
    }
}
