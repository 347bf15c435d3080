//! Extractors whose rejections are Faultline errors, so malformed input gets the documented
//! body: unreadable JSON → 400, readable JSON of the wrong shape → 422 naming the field,
//! a body over the limit → 413.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::error::{Error, FieldViolation};

/// A JSON body decoded with field-level error reporting.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        decode(&bytes).map(ApiJson).map_err(ApiError::from)
    }
}

/// The body as sent, within the configured limit (for routes that keep the original bytes).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        Bytes::from_request(req, state)
            .await
            // A body that arrived in one piece is a slice of the connection's read buffer and
            // would keep all of it (8 to 16 KiB) alive while the request waits for its
            // commit; a copy of just the body lets it go.
            .map(|b| RawBody(Bytes::copy_from_slice(&b)))
            .map_err(|rejection| {
                if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::from(Error::PayloadTooLarge { limit })
                } else {
                    ApiError::from(Error::malformed("body", rejection.body_text()))
                }
            })
    }
}

/// The configured body limit, put in the request extensions by the REST router so errors can name it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Runs `read` on an event body, and when that fails on a body holding escaped lone
/// surrogates (`domain::json_without_lone_surrogates`), once more on the body with each
/// replaced by U+FFFD, which is then the body the event keeps. Only a failing body is
/// scanned.
pub fn lenient<T>(raw: &[u8], read: impl Fn(&[u8]) -> Result<T, Error>) -> Result<T, Error> {
    match read(raw) {
        Err(e) => match crate::domain::json_without_lone_surrogates(raw) {
            Some(repaired) => read(&repaired),
            None => Err(e),
        },
        ok => ok,
    }
}

/// Decodes JSON, telling syntax errors (400) from shape errors (422, with the field path).
/// The path is tracked only when decoding fails: a second pass, with `serde_path_to_error`,
/// finds where. Tracking it on every body cost the request workers 1.6–3.5 µs per capture
/// (BENCHMARKS.md, session 17).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::malformed(
            "body",
            "the request body is empty; send a JSON object",
        ));
    }
    // Every body is an object, but serde reads a struct from an array too (its fields in
    // order): `["hello"]` was taken for an event, and `[{"message": "x"}]` was blamed at its
    // item `[0]`. A well-formed array is refused before it is read; a broken one is a syntax
    // error like any other (below).
    if bytes.trim_ascii_start().starts_with(b"[")
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(Error::invalid_field(
            "body",
            "invalid type: array, expected a JSON object",
            "INVALID_TYPE",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    if let Ok(v) = T::deserialize(&mut *de) {
        // Only whitespace may follow the value: a second event after the first (NDJSON sent to
        // a single-event route) would otherwise be dropped unseen.
        if let Err(e) = de.end() {
            return Err(Error::malformed("body", format!("malformed JSON: {e}")));
        }
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                // serde reports the first problem it meets; truncated or broken JSON can surface
                // as a type error first, so syntax is checked on its own before blaming a field.
                serde_json::error::Category::Data
                    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
                {
                    let msg = strip_position(&inner.to_string());
                    let field = missing_field(&msg)
                        .map(|f| {
                            if path == "." {
                                f.to_owned()
                            } else {
                                format!("{path}.{f}")
                            }
                        })
                        .unwrap_or_else(|| if path == "." { "body".to_owned() } else { path });
                    let code = if msg.starts_with("missing field") {
                        "REQUIRED"
                    } else {
                        "INVALID_TYPE"
                    };
                    Err(Error::invalid(vec![FieldViolation::new(field, msg, code)]))
                }
                _ => Err(Error::malformed(
                    "body",
                    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                        Err(syntax) => format!("malformed JSON: {syntax}"),
                        Ok(_) => format!("malformed JSON: {inner}"),
                    },
                )),
            }
        }
    }
}

fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// What a REST handler passes through to the gRPC handler: headers become metadata, and the
/// extensions carry the authenticated principal.
#[derive(Clone)]
pub struct Ctx {
    headers: http::HeaderMap,
    extensions: http::Extensions,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx {
            headers: parts.headers.clone(),
            extensions: parts.extensions.clone(),
        })
    }
}

impl Ctx {
    /// The gRPC request for `message`, as if it had arrived over gRPC with these headers.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.clone().into_request(message)
    }

    /// `request` without copying the headers and extensions, for the last (or only) call.
    pub fn into_request<T>(self, message: T) -> tonic::Request<T> {
        tonic::Request::from_parts(
            tonic::metadata::MetadataMap::from_headers(self.headers),
            self.extensions,
            message,
        )
    }
}

impl Ctx {
    /// The TCP peer of the request (never a forwarding header).
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::decode;
    use crate::error::Error;

    #[derive(Debug, Deserialize)]
    struct Outer {
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        n: u32,
    }

    /// The one violation of a 422, as (field, code).
    fn violation(bytes: &[u8]) -> (String, String) {
        match decode::<Outer>(bytes) {
            Err(e @ Error::Invalid { .. }) => {
                let v = &e.violations()[0];
                (v.field.clone(), v.code.to_string())
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_body_is_an_object_not_an_array() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Event {
            message: String,
        }
        assert!(decode::<Event>(br#" {"message": "x"}"#).is_ok());
        // Arrays that would read as an event and arrays that would not: the body is blamed,
        // not one of its items.
        for body in [&br#" ["x"]"#[..], br#"[{"message": "x"}]"#, b"[1]"] {
            match decode::<Event>(body) {
                Err(e @ Error::Invalid { .. }) => {
                    let v = &e.violations()[0];
                    assert_eq!(
                        (v.field.as_str(), v.code.as_str(), v.message.as_str()),
                        (
                            "body",
                            "INVALID_TYPE",
                            "invalid type: array, expected a JSON object"
                        ),
                        "{}",
                        String::from_utf8_lossy(body)
                    );
                }
                other => panic!("expected a 422, got {other:?}"),
            }
        }
        // A broken array is still a syntax error (400).
        assert!(matches!(
            decode::<Event>(br#"["x""#),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn a_failing_body_names_the_field_at_its_path() {
        assert_eq!(
            violation(br#"{"inner":[{"n":1},{"n":"x"}]}"#),
            ("inner[1].n".to_owned(), "INVALID_TYPE".to_owned())
        );
        assert_eq!(
            violation(br#"{"inner":[{}]}"#),
            ("inner[0].n".to_owned(), "REQUIRED".to_owned())
        );
        assert!(matches!(
            decode::<Outer>(br#"{"inner":[{"n":1}"#),
            Err(Error::Malformed { .. })
        ));
        // Only whitespace may follow the value.
        assert_eq!(
            decode::<Outer>(b"{\"inner\":[{\"n\":1}]} \n")
                .unwrap()
                .inner
                .len(),
            1
        );
        match decode::<Outer>(br#"{"inner":[{"n":1}]} {"inner":[]}"#) {
            Err(Error::Malformed { message, .. }) => {
                assert!(message.contains("trailing characters"), "{message}")
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }
}
