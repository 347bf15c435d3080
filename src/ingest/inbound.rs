//! A project's inbound filters (`domain::inbound`) applied to the events Sentry SDKs send, and
//! the count of what they dropped, kept here until it is stored (`FLUSH`, and at shutdown).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::prepare::{CaptureInput, ExceptionInput};
use crate::{
    domain::inbound::{Facts, InboundFilters, Reason},
    store::Store,
};

/// How often the counts are stored.
pub const FLUSH: Duration = Duration::from_secs(2);

/// Events dropped and not yet counted in the database: (project, day, reason) → events.
#[derive(Debug, Default)]
pub struct Filtered {
    pending: Mutex<BTreeMap<(Uuid, i64, Reason), u64>>,
}

impl Filtered {
    pub fn new() -> Arc<Filtered> {
        Arc::new(Filtered::default())
    }

    /// Counts one event `reason` dropped for `project` today.
    pub fn note(&self, project: Uuid, reason: Reason) {
        let day = chrono::Utc::now().timestamp().div_euclid(86_400);
        if let Ok(mut p) = self.pending.lock() {
            *p.entry((project, day, reason)).or_default() += 1;
        }
    }

    /// Adds the counts noted so far to the database; kept for the next time when it fails.
    pub async fn flush(&self, store: &Store) {
        let taken = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() => std::mem::take(&mut *p),
            _ => return,
        };
        if let Err(e) = store.add_filtered(&taken).await {
            tracing::warn!(error = %e, "could not store the counts of filtered events; kept for later");
            if let Ok(mut p) = self.pending.lock() {
                for (k, n) in taken {
                    *p.entry(k).or_default() += n;
                }
            }
        }
    }

    /// Stores the counts every `FLUSH` until the task is aborted.
    pub async fn run(self: Arc<Self>, store: Store) {
        let mut tick = tokio::time::interval(FLUSH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush(&store).await;
        }
    }
}

/// The parts of a Sentry event's payload that only the localhost and web-crawler filters read.
#[derive(Deserialize, Default)]
struct RequestFacts {
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    user: Option<Value>,
}

/// Why `filters` drop the event, if they do.
pub fn rejects(filters: &InboundFilters, input: &CaptureInput) -> Option<Reason> {
    if filters.is_empty() {
        return None;
    }
    let exceptions: Vec<&ExceptionInput> = input
        .chained
        .iter()
        .chain(input.exception.as_ref())
        .collect();
    let throwing_files = exceptions
        .iter()
        .filter_map(|e| {
            e.frames
                .iter()
                .rev()
                .map(|f| f.filename.as_str())
                .find(|f| !f.is_empty())
        })
        .collect();
    let mut messages: Vec<String> = exceptions
        .iter()
        .map(|e| match (e.r#type.trim(), e.message.trim()) {
            ("", m) => m.to_owned(),
            (t, "") => t.to_owned(),
            (t, m) => format!("{t}: {m}"),
        })
        .filter(|m| !m.is_empty())
        .collect();
    if !input.message.trim().is_empty() {
        messages.push(input.message.trim().to_owned());
    }
    let url = input.tags.get("url").map(String::as_str).unwrap_or("");
    let payload: RequestFacts = if filters.reads_request() {
        serde_json::from_str(&input.payload_json).unwrap_or_default()
    } else {
        RequestFacts::default()
    };
    let request = payload.request.as_ref();
    let url = match request.and_then(|r| r.get("url")).and_then(Value::as_str) {
        Some(u) if url.is_empty() => u,
        _ => url,
    };
    let ip_address = payload
        .user
        .as_ref()
        .and_then(|u| u.get("ip_address"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let user_agent = request
        .and_then(|r| r.get("headers"))
        .and_then(|h| header(h, "user-agent"))
        .unwrap_or("");
    filters.rejects(&Facts {
        throwing_files,
        messages,
        release: &input.release,
        url,
        ip_address,
        user_agent,
    })
}

/// A header of a Sentry `request.headers`: an object, or a list of `[name, value]` pairs.
fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    match headers {
        Value::Object(o) => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str()),
        Value::Array(pairs) => pairs.iter().find_map(|p| {
            let pair = p.as_array()?;
            let (k, v) = (pair.first()?.as_str()?, pair.get(1)?.as_str()?);
            k.eq_ignore_ascii_case(name).then_some(v)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Frame;

    /// The filters read a Sentry event as the SDKs send it: the throwing frame of each
    /// exception, its `Type: value`, the request's URL and headers (object or pairs) and the
    /// user's address.
    #[test]
    fn sentry_events_are_read_for_the_filters() {
        let all = InboundFilters {
            browser_extensions: true,
            localhost: true,
            web_crawlers: true,
            error_messages: vec!["TypeError: *undefined*".into()],
            releases: vec![],
        };
        let throwing = |file: &str| CaptureInput {
            exception: Some(ExceptionInput {
                r#type: "Error".into(),
                message: "boom".into(),
                frames: vec![
                    Frame {
                        filename: "https://shop.example.com/app.js".into(),
                        ..Default::default()
                    },
                    Frame {
                        filename: file.into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            payload_json: "{}".into(),
            ..Default::default()
        };
        assert_eq!(
            rejects(&all, &throwing("chrome-extension://abc/inject.js")),
            Some(Reason::BrowserExtension)
        );
        assert_eq!(
            rejects(&all, &throwing("https://cdn.example.com/x.js")),
            None
        );
        let typed = CaptureInput {
            exception: Some(ExceptionInput {
                r#type: "TypeError".into(),
                message: "x is undefined".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(rejects(&all, &typed), Some(Reason::ErrorMessage));
        let from = |payload: Value| CaptureInput {
            message: "hello".into(),
            payload_json: payload.to_string(),
            ..Default::default()
        };
        assert_eq!(
            rejects(
                &all,
                &from(serde_json::json!({"request": {"url": "http://127.0.0.1:8000/"}}))
            ),
            Some(Reason::Localhost)
        );
        assert_eq!(
            rejects(
                &all,
                &from(serde_json::json!({"user": {"ip_address": "::1"}}))
            ),
            Some(Reason::Localhost)
        );
        assert_eq!(
            rejects(
                &all,
                &from(
                    serde_json::json!({"request": {"headers": [["User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0)"]]}})
                )
            ),
            Some(Reason::WebCrawler)
        );
        assert_eq!(
            rejects(
                &all,
                &from(
                    serde_json::json!({"request": {"headers": {"user-agent": "Mozilla/5.0 Firefox/120.0"}}, "user": "odd"})
                )
            ),
            None
        );
    }
}
