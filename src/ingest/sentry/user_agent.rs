//! A browser's `User-Agent` header read into the browser, operating system and device Sentry
//! derives from it. Sentry's browser SDKs send no `browser` or `os` context: they send the
//! page's request with its `User-Agent`, and Sentry's ingestion reads the contexts (and from
//! them the `browser` and `os` tags) out of that header. The names follow the ua-parser
//! families Sentry shows (`Chrome`, `Mobile Safari`, `Mac OS X`, `Chrome OS`); versions keep at
//! most three parts (`Chrome 120.0.6099`). What is not recognised is left out rather than
//! guessed.

/// What a `User-Agent` names; each part only when recognised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// Browser name and version (the version may be empty).
    pub browser: Option<(String, String)>,
    /// Operating system name and version (the version may be empty).
    pub os: Option<(String, String)>,
    /// Device family: `iPhone`, `iPad`, `Mac`, or an Android device's model.
    pub device_family: Option<String>,
}

/// Reads a `User-Agent` header.
pub fn parse(ua: &str) -> UserAgent {
    let os = os(ua);
    let ios = os.as_ref().is_some_and(|(name, _)| name == "iOS");
    UserAgent {
        browser: browser(ua, ios),
        device_family: device_family(ua, os.as_ref().map(|(name, _)| name.as_str())),
        os,
    }
}

/// The version that follows `token` (`Chrome/` → `120.0.6099.71`), to at most three parts.
fn version_after(ua: &str, token: &str) -> Option<String> {
    let at = ua.find(token)? + token.len();
    Some(short_version(&ua[at..], '.'))
}

/// The leading run of digits and `sep`s of `s`, as at most three dot-separated parts.
fn short_version(s: &str, sep: char) -> String {
    let run: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == sep)
        .collect();
    run.split(sep)
        .filter(|p| !p.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(".")
}

fn browser(ua: &str, ios: bool) -> Option<(String, String)> {
    let android = ua.contains("Android");
    let mobile = ua.contains("Mobile");
    // Opera Mini, and Opera before 15 (Presto: `Opera/9.80 (…) Version/12.16`, or the version
    // after `Opera/` itself before 10).
    if let Some(v) = version_after(ua, "Opera Mini/") {
        return Some(("Opera Mini".to_owned(), v));
    }
    if ua.starts_with("Opera/") {
        let v = version_after(ua, "Version/").or_else(|| version_after(ua, "Opera/"));
        return Some(("Opera".to_owned(), v.unwrap_or_default()));
    }
    if let Some(v) = version_after(ua, "IEMobile/") {
        return Some(("IE Mobile".to_owned(), v));
    }
    // Most specific first: Edge, Opera, Samsung and the rest also say `Chrome/` and `Safari/`.
    let by_token: [(&str, &str); 12] = [
        ("Edg/", "Edge"),
        ("EdgA/", "Edge Mobile"),
        ("EdgiOS/", "Edge Mobile"),
        ("Edge/", "Edge"),
        ("OPR/", if mobile { "Opera Mobile" } else { "Opera" }),
        ("OPiOS/", "Opera Mini"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("YaBrowser/", "Yandex Browser"),
        ("Vivaldi/", "Vivaldi"),
        ("Electron/", "Electron"),
        ("CriOS/", "Chrome Mobile iOS"),
        ("FxiOS/", "Firefox iOS"),
    ];
    for (token, name) in by_token {
        if let Some(v) = version_after(ua, token) {
            return Some((name.to_owned(), v));
        }
    }
    if let Some(v) = version_after(ua, "Firefox/") {
        let name = if android || mobile {
            "Firefox Mobile"
        } else {
            "Firefox"
        };
        return Some((name.to_owned(), v));
    }
    if let Some(v) = version_after(ua, "HeadlessChrome/") {
        return Some(("HeadlessChrome".to_owned(), v));
    }
    if let Some(v) = version_after(ua, "Chrome/") {
        let name = match (android, ua.contains("; wv)")) {
            (true, true) => "Chrome Mobile WebView",
            (true, false) => "Chrome Mobile",
            _ => "Chrome",
        };
        return Some((name.to_owned(), v));
    }
    if let Some(v) = version_after(ua, "Chromium/") {
        return Some(("Chromium".to_owned(), v));
    }
    // Android's own browser before Chrome: `Version/4.0 … Safari/`, named by Android's version.
    if android && ua.contains("Safari/") && ua.contains("Version/") {
        let v = version_after(ua, "Android ").unwrap_or_default();
        return Some(("Android".to_owned(), v));
    }
    if ua.contains("Safari/") || ios {
        let version = version_after(ua, "Version/");
        return match (ios, version) {
            (true, Some(v)) => Some(("Mobile Safari".to_owned(), v)),
            // An app's web view on iOS names no Safari version.
            (true, None) => Some(("Mobile Safari UI/WKWebView".to_owned(), String::new())),
            (false, Some(v)) => Some(("Safari".to_owned(), v)),
            (false, None) => None,
        };
    }
    if let Some(v) = version_after(ua, "MSIE ") {
        return Some(("IE".to_owned(), v));
    }
    if ua.contains("Trident/") {
        return Some((
            "IE".to_owned(),
            version_after(ua, "rv:").unwrap_or_default(),
        ));
    }
    None
}

fn os(ua: &str) -> Option<(String, String)> {
    if let Some(v) = version_after(ua, "Windows NT ") {
        let name = match v.as_str() {
            "10.0" => "10",
            "6.3" => "8.1",
            "6.2" => "8",
            "6.1" => "7",
            "6.0" => "Vista",
            "5.1" | "5.2" => "XP",
            _ => "",
        };
        return Some(("Windows".to_owned(), name.to_owned()));
    }
    if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        let version = ["iPhone OS ", "CPU OS "]
            .iter()
            .find_map(|t| ua.find(t).map(|at| short_version(&ua[at + t.len()..], '_')))
            .unwrap_or_default();
        return Some(("iOS".to_owned(), version));
    }
    if let Some(v) = version_after(ua, "Android ") {
        return Some(("Android".to_owned(), v));
    }
    if ua.contains("Android") {
        return Some(("Android".to_owned(), String::new()));
    }
    if ua.contains("CrOS ") {
        return Some(("Chrome OS".to_owned(), String::new()));
    }
    if let Some(at) = ua.find("Mac OS X ") {
        let v = short_version(&ua[at + "Mac OS X ".len()..].replace('_', "."), '.');
        return Some(("Mac OS X".to_owned(), v));
    }
    if ua.contains("Macintosh") {
        return Some(("Mac OS X".to_owned(), String::new()));
    }
    if ua.contains("Ubuntu") {
        return Some(("Ubuntu".to_owned(), String::new()));
    }
    if ua.contains("Linux") || ua.contains("X11") {
        return Some(("Linux".to_owned(), String::new()));
    }
    None
}

fn device_family(ua: &str, os: Option<&str>) -> Option<String> {
    for apple in ["iPhone", "iPad", "iPod"] {
        if ua.contains(apple) {
            return Some(apple.to_owned());
        }
    }
    match os {
        Some("Mac OS X") => Some("Mac".to_owned()),
        Some("Android") => {
            // `(Linux; Android 14; Pixel 8 Build/…)` or `(Linux; Android 14; Pixel 8)`: the part
            // after the version. Chrome's reduced header says only `K`.
            let inside = &ua[ua.find('(')? + 1..];
            let inside = &inside[..inside.find(')')?];
            // Old ones put a locale first: `(Linux; U; Android 2.3.6; en-us; Nexus S Build/…)`.
            let locale = |p: &str| {
                let b = p.as_bytes();
                (b.len() == 2 || (b.len() == 5 && matches!(b[2], b'-' | b'_')))
                    && b[..2].iter().all(u8::is_ascii_lowercase)
            };
            let model = inside
                .split(';')
                .map(str::trim)
                .skip_while(|p| !p.starts_with("Android"))
                .skip(1)
                .find(|p| !locale(p))?;
            let model = model.split(" Build/").next().unwrap_or(model).trim();
            (!model.is_empty() && model != "K" && model != "wv").then(|| model.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(ua: &str) -> (String, String, String) {
        let parsed = parse(ua);
        let join = |p: Option<(String, String)>| {
            p.map(|(n, v)| format!("{n} {v}").trim_end().to_owned())
                .unwrap_or_default()
        };
        (
            join(parsed.browser),
            join(parsed.os),
            parsed.device_family.unwrap_or_default(),
        )
    }

    #[test]
    fn common_browsers_are_named_as_sentry_names_them() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36",
                ("Chrome 120.0.6099", "Windows 10", ""),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                ("Safari 17.1", "Mac OS X 10.15.7", "Mac"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
                ("Mobile Safari 17.1.2", "iOS 17.1.2", "iPhone"),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
                ("Chrome Mobile iOS 119.0.6045", "iOS 16.6", "iPad"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                ("Firefox 121.0", "Linux", ""),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
                ("Edge 120.0.2210", "Windows 10", ""),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
                ("Chrome Mobile 120.0.6099", "Android 14", "Pixel 8"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
                ("Samsung Internet 23.0", "Android 10", ""),
            ),
            (
                "Mozilla/5.0 (Linux; Android 9; SM-G960F Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/74.0.3729.157 Mobile Safari/537.36",
                ("Chrome Mobile WebView 74.0.3729", "Android 9", "SM-G960F"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 OPR/105.0.0.0",
                ("Opera 105.0.0", "Windows 10", ""),
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                ("Chrome 120.0.0", "Chrome OS", ""),
            ),
            (
                "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
                ("IE 11.0", "Windows 7", ""),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
                ("Mobile Safari UI/WKWebView", "iOS 15.0", "iPhone"),
            ),
            // Old ones, as the legacy-browsers inbound filter needs them.
            (
                "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.229 Version/11.62",
                ("Opera 11.62", "Windows 7", ""),
            ),
            (
                "Opera/9.80 (J2ME/MIDP; Opera Mini/7.1.32052/29.3417; U; en) Presto/2.8.119 Version/11.10",
                ("Opera Mini 7.1.32052", "", ""),
            ),
            (
                "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)",
                ("IE Mobile 10.0", "", ""),
            ),
            (
                "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)",
                ("IE 8.0", "Windows XP", ""),
            ),
            (
                "Mozilla/5.0 (Linux; U; Android 2.3.6; en-us; Nexus S Build/GRK39F) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
                ("Android 2.3.6", "Android 2.3.6", "Nexus S"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.18362",
                ("Edge 18.18362", "Windows 10", ""),
            ),
        ];
        for (ua, (browser, os, device)) in cases {
            assert_eq!(
                read(ua),
                (browser.to_owned(), os.to_owned(), device.to_owned()),
                "{ua}"
            );
        }
    }

    #[test]
    fn what_is_not_a_browser_is_left_out() {
        for ua in [
            "",
            "curl/8.4.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
        ] {
            assert_eq!(parse(ua), UserAgent::default(), "{ua:?}");
        }
        // Odd bytes and cut-off headers read as far as they go, without a panic.
        for ua in [
            "Chrome/",
            "Mozilla/5.0 (Linux; Android",
            "(Linux; Android 14;",
            "iPhone OS ",
            "Firefox/ä",
            "Mac OS X _",
        ] {
            let _ = parse(ua);
        }
    }
}
