//! Where a Sentry SDK puts its public key: `X-Sentry-Auth: Sentry sentry_key=…, …` (or the
//! same in `Authorization`), `?sentry_key=` in the query (browsers), the envelope header's
//! `dsn`, or (the crash-report dialog) the query's `dsn`. Parsing only; the lookup of the key is the capture handler's.

/// The `sentry_key` of an `X-Sentry-Auth` (or `Authorization: Sentry …`) header value.
pub fn key_from_auth_header(value: &str) -> Option<String> {
    let v = value.trim();
    let rest = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sentry ") => &v[7..],
        _ => v,
    };
    rest.split(',')
        .filter_map(|part| part.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sentry_key"))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|k| !k.is_empty())
}

/// The `sentry_key` of a query string.
pub fn key_from_query(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "sentry_key")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|k| !k.is_empty())
}

/// The public key of a DSN, `scheme://<public_key>[:<secret>]@host/…/<project>`.
pub fn key_from_dsn(dsn: &str) -> Option<String> {
    let (_, rest) = dsn.trim().split_once("://")?;
    let (user, _) = rest.split_once('@')?;
    let key = user.split(':').next().unwrap_or("");
    (!key.is_empty()).then(|| key.to_owned())
}

/// The project of a DSN: the last segment of its path (`…/<project>`).
pub fn project_from_dsn(dsn: &str) -> Option<String> {
    let (_, rest) = dsn.trim().split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    let project = path.split(['?', '#']).next()?.trim_end_matches('/');
    let project = project.rsplit('/').next().unwrap_or("");
    (!project.is_empty()).then(|| project.to_owned())
}

/// The public key of the DSN in a query's `dsn` parameter (the crash-report dialog's).
fn key_from_dsn_query(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "dsn")
        .and_then(|(_, v)| key_from_dsn(&v))
}

/// The key a request carries in its headers or query, first found first.
pub fn key_from_request(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(key_from_auth_header)
    };
    header(http::HeaderName::from_static("x-sentry-auth"))
        .or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.trim_start().to_ascii_lowercase().starts_with("sentry "))
                .and_then(key_from_auth_header)
        })
        .or_else(|| query.and_then(key_from_query))
        .or_else(|| query.and_then(key_from_dsn_query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_every_place() {
        assert_eq!(
            key_from_auth_header("Sentry sentry_key=abc, sentry_version=7, sentry_client=x/1")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            key_from_auth_header("sentry_version=7,sentry_key= def ").as_deref(),
            Some("def")
        );
        assert_eq!(key_from_auth_header("Sentry sentry_version=7"), None);
        assert_eq!(
            key_from_query("sentry_version=7&sentry_key=q1").as_deref(),
            Some("q1")
        );
        assert_eq!(
            key_from_dsn("https://pk:sk@o1.ingest.example/42").as_deref(),
            Some("pk")
        );
        assert_eq!(
            key_from_dsn("http://pk@127.0.0.1:8080/1").as_deref(),
            Some("pk")
        );
        assert_eq!(key_from_dsn("nonsense"), None);
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Sentry sentry_key=fromauth".parse().unwrap(),
        );
        assert_eq!(
            key_from_request(&h, Some("sentry_key=q")).as_deref(),
            Some("fromauth")
        );
        assert_eq!(
            key_from_request(&http::HeaderMap::new(), Some("sentry_key=q")).as_deref(),
            Some("q")
        );
        // The crash-report dialog's query names the whole DSN.
        assert_eq!(
            key_from_request(
                &http::HeaderMap::new(),
                Some("eventId=1&dsn=http%3A%2F%2Fpk%40127.0.0.1%3A8080%2F7")
            )
            .as_deref(),
            Some("pk")
        );
        for (dsn, project) in [
            ("http://pk@127.0.0.1:8080/7", Some("7")),
            ("https://pk@o1.ingest.example/sub/path/42/", Some("42")),
            ("http://pk@host", None),
            ("http://pk@host/", None),
            ("nonsense", None),
        ] {
            assert_eq!(project_from_dsn(dsn).as_deref(), project, "{dsn}");
        }
    }
}
