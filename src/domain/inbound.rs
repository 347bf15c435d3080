//! Inbound filters, as Sentry's project settings have them: events from Sentry SDKs that a
//! project does not want (thrown by a browser extension, sent from a developer's machine or by
//! a web crawler, with an error message or of a release it lists) are dropped when they arrive.
//! The SDK is answered as for any event; the project counts what was dropped, by reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Days the per-day counts of dropped events are shown for, today included.
const COUNTS_SHOWN_DAYS: i64 = 30;
/// Days they are kept.
const COUNTS_KEPT_DAYS: i64 = 90;

/// The UTC day (since the epoch) an event dropped at `t` is counted in.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// The first day whose counts are shown at `now` (30 days, today included).
pub fn first_shown_day(now: DateTime<Utc>) -> i64 {
    day_of(now) - (COUNTS_SHOWN_DAYS - 1)
}

/// The first day whose counts are kept at `now` (90 days).
pub fn first_kept_day(now: DateTime<Utc>) -> i64 {
    day_of(now) - COUNTS_KEPT_DAYS
}

/// What a project filters out. Off and empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboundFilters {
    /// Errors thrown in a browser extension's code: the frame that threw is in an extension's
    /// file (`chrome-extension://`, `moz-extension://`, `safari-web-extension://`, …).
    pub browser_extensions: bool,
    /// Events from a page or server on `localhost` (or a loopback address), or whose user's IP
    /// address is a loopback one.
    pub localhost: bool,
    /// Events whose request came from a known web crawler (by its User-Agent).
    pub web_crawlers: bool,
    /// Events from old browsers (by the request's User-Agent), as Sentry's legacy-browsers
    /// filter: the names of [`LEGACY_BROWSERS`] that are on.
    pub legacy_browsers: Vec<String>,
    /// Glob patterns (`*` any run of characters, `?` one; case-insensitive) matched against
    /// each exception's `Type: value` and the message.
    pub error_messages: Vec<String>,
    /// Glob patterns matched against the event's release.
    pub releases: Vec<String>,
}

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    BrowserExtension,
    Localhost,
    WebCrawler,
    LegacyBrowser,
    ErrorMessage,
    Release,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::BrowserExtension,
        Reason::Localhost,
        Reason::WebCrawler,
        Reason::LegacyBrowser,
        Reason::ErrorMessage,
        Reason::Release,
    ];

    /// The name stored and shown (the filter's field name).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BrowserExtension => "browser_extensions",
            Reason::Localhost => "localhost",
            Reason::WebCrawler => "web_crawlers",
            Reason::LegacyBrowser => "legacy_browsers",
            Reason::ErrorMessage => "error_messages",
            Reason::Release => "releases",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What the filters look at in one event.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// The file of the frame that threw (the innermost with a file), of each exception.
    pub throwing_files: Vec<&'a str>,
    /// Each exception's `Type: value` (or whichever it has), and the message.
    pub messages: Vec<String>,
    pub release: &'a str,
    /// The request's URL.
    pub url: &'a str,
    /// The user's IP address.
    pub ip_address: &'a str,
    /// The request's User-Agent.
    pub user_agent: &'a str,
    /// The browser the User-Agent names (ua-parser's family, such as `IE` or `Opera Mini`) and
    /// its major version; read only when the legacy-browsers filter is on.
    pub browser: Option<(&'a str, u32)>,
}

/// One part of the legacy-browsers filter: Sentry's name for it, the browser family it takes
/// and which of its major versions.
pub struct LegacyBrowser {
    pub name: &'static str,
    family: &'static str,
    taken: fn(u32) -> bool,
}

const fn legacy(name: &'static str, family: &'static str, taken: fn(u32) -> bool) -> LegacyBrowser {
    LegacyBrowser {
        name,
        family,
        taken,
    }
}

/// The legacy-browsers filter's parts.
pub const LEGACY_BROWSERS: [LegacyBrowser; 9] = [
    legacy("ie_pre_9", "IE", |v| v <= 8),
    legacy("ie9", "IE", |v| v == 9),
    legacy("ie10", "IE", |v| v == 10),
    legacy("ie11", "IE", |v| v == 11),
    legacy("edge_pre_79", "Edge", |v| v < 79),
    legacy("safari_pre_6", "Safari", |v| v < 6),
    legacy("opera_pre_15", "Opera", |v| v < 15),
    legacy("opera_mini_pre_8", "Opera Mini", |v| v < 8),
    legacy("android_pre_4", "Android", |v| v < 4),
];

/// Whether `name` is one of [`LEGACY_BROWSERS`].
pub fn is_legacy_browser_filter(name: &str) -> bool {
    LEGACY_BROWSERS.iter().any(|b| b.name == name)
}

/// URL schemes of browser extensions' files (and of the browser's own code).
const EXTENSION_SCHEMES: [&str; 8] = [
    "chrome-extension://",
    "moz-extension://",
    "safari-extension://",
    "safari-web-extension://",
    "ms-browser-extension://",
    "webkit-masked-url://",
    "chrome://",
    "resource://",
];

/// Parts of the User-Agent of web crawlers, lower case.
const CRAWLERS: [&str; 22] = [
    "googlebot",
    "adsbot-google",
    "mediapartners-google",
    "google-inspectiontool",
    "bingbot",
    "bingpreview",
    "yandexbot",
    "baiduspider",
    "duckduckbot",
    "slurp",
    "facebookexternalhit",
    "twitterbot",
    "linkedinbot",
    "applebot",
    "petalbot",
    "semrushbot",
    "ahrefsbot",
    "mj12bot",
    "dotbot",
    "ia_archiver",
    "crawler",
    "spider",
];

impl InboundFilters {
    pub fn is_empty(&self) -> bool {
        !self.browser_extensions
            && !self.localhost
            && !self.web_crawlers
            && self.legacy_browsers.is_empty()
            && self.error_messages.is_empty()
            && self.releases.is_empty()
    }

    /// Whether the filters need the request's URL, the user's address and the User-Agent.
    pub fn reads_request(&self) -> bool {
        self.localhost || self.web_crawlers || !self.legacy_browsers.is_empty()
    }

    /// Why the event is dropped, if it is (the first filter that takes it, in the order of
    /// [`Reason::ALL`]).
    pub fn rejects(&self, f: &Facts<'_>) -> Option<Reason> {
        if self.browser_extensions
            && f.throwing_files.iter().any(|file| {
                let file = file.trim_start().to_ascii_lowercase();
                EXTENSION_SCHEMES.iter().any(|s| file.starts_with(s))
            })
        {
            return Some(Reason::BrowserExtension);
        }
        if self.localhost && (is_local_url(f.url) || is_loopback(f.ip_address)) {
            return Some(Reason::Localhost);
        }
        if self.web_crawlers && !f.user_agent.is_empty() {
            let ua = f.user_agent.to_ascii_lowercase();
            if CRAWLERS.iter().any(|c| ua.contains(c)) {
                return Some(Reason::WebCrawler);
            }
        }
        if let Some((family, major)) = f.browser {
            // IE Mobile counts as IE, as in Sentry.
            let family = if family == "IE Mobile" { "IE" } else { family };
            let legacy = LEGACY_BROWSERS.iter().any(|b| {
                b.family == family
                    && (b.taken)(major)
                    && self.legacy_browsers.iter().any(|n| n == b.name)
            });
            if legacy {
                return Some(Reason::LegacyBrowser);
            }
        }
        if self
            .error_messages
            .iter()
            .any(|p| f.messages.iter().any(|m| glob_matches(p, m)))
        {
            return Some(Reason::ErrorMessage);
        }
        if !f.release.is_empty() && self.releases.iter().any(|p| glob_matches(p, f.release)) {
            return Some(Reason::Release);
        }
        None
    }
}

fn is_loopback(ip: &str) -> bool {
    ip.trim()
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback())
}

/// A URL whose host is `localhost` (or a name under it) or a loopback address.
fn is_local_url(url: &str) -> bool {
    let Some((_, rest)) = url.trim().split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || is_loopback(&host)
}

/// Whether `text` matches the glob `pattern` as a whole: `*` is any run of characters (none
/// too), `?` one character; letters match in any case.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    // The classic two-pointer match, backtracking to the last `*` only.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts are kept per UTC day; 30 of them are shown (today included), 90 kept.
    #[test]
    fn count_days_are_utc_days() {
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let day = day_of(at("2026-12-07T23:59:59Z"));
        assert_eq!(day, day_of(at("2026-12-07T00:00:00Z")));
        assert_eq!(day + 1, day_of(at("2026-12-08T00:00:00Z")));
        assert_eq!(day_of(at("1969-12-31T23:00:00Z")), -1);
        assert_eq!(first_shown_day(at("2026-12-07T12:00:00Z")), day - 29);
        assert_eq!(first_kept_day(at("2026-12-07T12:00:00Z")), day - 90);
    }

    #[test]
    fn globs_match_the_whole_text_in_any_case() {
        for (p, t) in [
            (
                "*ResizeObserver loop*",
                "Error: ResizeObserver loop limit exceeded",
            ),
            ("TypeError: *", "typeerror: x is undefined"),
            ("a?c", "abc"),
            ("*", ""),
            ("web@1.*", "WEB@1.2.3"),
            ("**x", "x"),
        ] {
            assert!(glob_matches(p, t), "{p} ~ {t}");
        }
        for (p, t) in [
            ("ResizeObserver", "ResizeObserver loop"),
            ("a?c", "ac"),
            ("web@1.*", "web@2.0"),
            ("", "x"),
        ] {
            assert!(!glob_matches(p, t), "{p} !~ {t}");
        }
    }

    #[test]
    fn each_filter_takes_only_what_it_names() {
        let all = InboundFilters {
            browser_extensions: true,
            localhost: true,
            web_crawlers: true,
            legacy_browsers: vec!["ie_pre_9".into(), "ie10".into(), "opera_mini_pre_8".into()],
            error_messages: vec!["*Script error*".into()],
            releases: vec!["*-dev".into()],
        };
        let plain = Facts {
            throwing_files: vec!["https://shop.example.com/app.js"],
            messages: vec!["TypeError: x is undefined".into()],
            release: "web@1.0",
            url: "https://shop.example.com/cart",
            ip_address: "203.0.113.9",
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            browser: Some(("Firefox", 120)),
        };
        assert_eq!(all.rejects(&plain), None);
        let with = |change: &dyn Fn(&mut Facts<'static>)| {
            let mut f = plain.clone();
            change(&mut f);
            all.rejects(&f)
        };
        assert_eq!(
            with(&|f| f.throwing_files = vec!["chrome-extension://abcdef/content.js"]),
            Some(Reason::BrowserExtension)
        );
        assert_eq!(
            with(&|f| f.url = "http://localhost:3000/cart"),
            Some(Reason::Localhost)
        );
        assert_eq!(
            with(&|f| f.url = "http://[::1]:8080/"),
            Some(Reason::Localhost)
        );
        assert_eq!(
            with(&|f| f.ip_address = "127.0.0.1"),
            Some(Reason::Localhost)
        );
        assert_eq!(
            with(&|f| f.url = "https://localhost.example.com/"),
            None,
            "a host that only starts with localhost"
        );
        assert_eq!(
            with(&|f| f.user_agent =
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            Some(Reason::WebCrawler)
        );
        // Only the parts that are on: IE 8 and 10 (IE Mobile 10 too), Opera Mini 7; not IE 9
        // or 11, nor old versions of the others.
        for (browser, dropped) in [
            (("IE", 8), true),
            (("IE", 6), true),
            (("IE", 10), true),
            (("IE Mobile", 10), true),
            (("Opera Mini", 7), true),
            (("IE", 9), false),
            (("IE", 11), false),
            (("Opera Mini", 8), false),
            (("Safari", 5), false),
            (("Chrome", 3), false),
        ] {
            assert_eq!(
                with(&|f| f.browser = Some(browser)),
                dropped.then_some(Reason::LegacyBrowser),
                "{browser:?}"
            );
        }
        assert_eq!(
            with(&|f| f.messages = vec!["Script error.".into()]),
            Some(Reason::ErrorMessage)
        );
        assert_eq!(with(&|f| f.release = "web-dev"), Some(Reason::Release));
        assert_eq!(
            InboundFilters::default().rejects(&Facts {
                throwing_files: vec!["moz-extension://x/y.js"],
                url: "http://localhost/",
                ..plain.clone()
            }),
            None,
            "nothing is filtered unless asked"
        );
    }
}
