//! Where a Sentry SDK puts its public key: `X-Sentry-Auth: Sentry sentry_key=…, …` (or the
//! same in `Authorization`), `?sentry_key=` in the query (browsers), or the envelope header's
//! `dsn`. Parsing only; the lookup of the key is the capture handler's.

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
    }
}
