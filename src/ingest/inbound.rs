//! A project's inbound filters (`domain::inbound`) applied to the events Sentry SDKs send, and
//! the count of what they dropped, kept here until it is stored (`FLUSH`, and at shutdown).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use uuid::Uuid;

use super::{
    prepare::{CaptureInput, ExceptionInput},
    sentry::event::Origin,
};
use crate::{
    domain::inbound::{Facts, InboundFilters, Reason, day_of},
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
        let day = day_of(chrono::Utc::now());
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

/// Why `filters` drop the event, if they do: its exceptions and message, release, and where it
/// came from (read when the Sentry event was parsed).
pub fn rejects(filters: &InboundFilters, input: &CaptureInput, origin: &Origin) -> Option<Reason> {
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
    // The browser, only for the filter that needs it.
    let agent = (!filters.legacy_browsers.is_empty())
        .then(|| super::sentry::user_agent::parse(&origin.user_agent).browser)
        .flatten();
    let browser = agent.as_ref().and_then(|(family, version)| {
        let major = version.split('.').next()?.parse().ok()?;
        Some((family.as_str(), major))
    });
    filters.rejects(&Facts {
        throwing_files,
        messages,
        release: &input.release,
        url: &origin.url,
        ip_address: &origin.ip_address,
        user_agent: &origin.user_agent,
        browser,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Frame;

    /// The filters read the throwing frame of each exception, its `Type: value`, and where the
    /// event came from.
    #[test]
    fn events_are_read_for_the_filters() {
        let all = InboundFilters {
            browser_extensions: true,
            localhost: true,
            web_crawlers: true,
            legacy_browsers: vec!["ie9".into(), "android_pre_4".into()],
            error_messages: vec!["TypeError: *undefined*".into()],
            releases: vec![],
        };
        let nowhere = Origin::default();
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
            ..Default::default()
        };
        assert_eq!(
            rejects(
                &all,
                &throwing("chrome-extension://abc/inject.js"),
                &nowhere
            ),
            Some(Reason::BrowserExtension)
        );
        assert_eq!(
            rejects(&all, &throwing("https://cdn.example.com/x.js"), &nowhere),
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
        assert_eq!(rejects(&all, &typed, &nowhere), Some(Reason::ErrorMessage));
        let hello = CaptureInput {
            message: "hello".into(),
            ..Default::default()
        };
        let from = |origin: Origin| rejects(&all, &hello, &origin);
        assert_eq!(
            from(Origin {
                url: "http://127.0.0.1:8000/".into(),
                ..Default::default()
            }),
            Some(Reason::Localhost)
        );
        assert_eq!(
            from(Origin {
                ip_address: "::1".into(),
                ..Default::default()
            }),
            Some(Reason::Localhost)
        );
        assert_eq!(
            from(Origin {
                user_agent: "Mozilla/5.0 (compatible; bingbot/2.0)".into(),
                ..Default::default()
            }),
            Some(Reason::WebCrawler)
        );
        for (agent, dropped) in [
            (
                "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
                true,
            ),
            (
                "Mozilla/5.0 (Linux; U; Android 2.3.6; en-us; Nexus S Build/GRK39F) \
                 AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
                true,
            ),
            (
                "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
                false,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
                false,
            ),
        ] {
            assert_eq!(
                from(Origin {
                    user_agent: agent.into(),
                    ..Default::default()
                }),
                dropped.then_some(Reason::LegacyBrowser),
                "{agent}"
            );
        }
        assert_eq!(
            from(Origin {
                url: "https://shop.example.com/".into(),
                user_agent: "Mozilla/5.0 Firefox/120.0".into(),
                ip_address: "{{auto}}".into(),
            }),
            None
        );
    }
}
