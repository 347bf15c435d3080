//! Data scrubbing, checked where it matters: the rows on disk. The event is sent with
//! secrets in tags, message, context, request headers and data and extra; the test then
//! reads the database directly (events, their compressed blob, tags, group stats, groups)
//! and requires that no secret is there and the harmless values are.

use faultline::store::blob;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use crate::helpers::*;

const SECRETS: &[&str] = &[
    "hunter2",
    "4111 1111 1111 1111",
    "4111111111111111",
    "5500-0000-0000-0004",
    "tok-xyz-123",
    "sess-abc-999",
    "key-live-777",
    "pw-in-form",
    "999-88-7777",
    "cookie-monster",
    "xtra-token-1",
];

async fn all_text_on_disk(app: &TestApp) -> String {
    let db = Database::connect(app.db_url())
        .await
        .expect("open the database");
    let backend = db.get_database_backend();
    let mut out = String::new();
    for row in db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT message, tags, search_text, data FROM events",
        ))
        .await
        .expect("read events")
    {
        for col in ["message", "tags", "search_text"] {
            out.push_str(&row.try_get::<String>("", col).unwrap());
            out.push('\n');
        }
        let data: Vec<u8> = row.try_get("", "data").unwrap();
        let b = blob::decode(&data, true).expect("the stored blob decodes");
        out.push_str(&b.payload);
        out.push('\n');
        out.push_str(&serde_json::to_string(&b.exception).unwrap());
        out.push('\n');
    }
    for (sql, cols) in [
        ("SELECT key, value FROM event_tags", &["key", "value"][..]),
        ("SELECT dim, value FROM group_stats", &["dim", "value"][..]),
        (
            "SELECT title, culprit FROM groups",
            &["title", "culprit"][..],
        ),
    ] {
        for row in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("read a table")
        {
            for col in cols {
                out.push_str(&row.try_get::<String>("", col).unwrap());
                out.push('\n');
            }
        }
    }
    let _ = db.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_database() {
    let app = spawn_app().await;
    let r = app
        .send(app.authed(Method::PUT, "/v1/settings/policy").json(&json!({
            "scrub_fields": ["ssn"]
        })))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let b = app
        .capture(json!({
            "message": "payment with 4111 1111 1111 1111 failed for order 1234567890123",
            "tags": {"password": "hunter2", "region": "eu-west", "card": "5500-0000-0000-0004"},
            "exception": {
                "type": "PaymentError",
                "message": "card 4111111111111111 declined",
                "stacktrace": "PaymentError: card declined\n  at pay (src/pay.js:10:5)"
            },
            "context": {"session_id": "sess-abc-999", "user": {"api_key": "key-live-777", "name": "bob"}},
            "request": {
                "url": "https://shop.test/checkout",
                "headers": {"Authorization": "Bearer tok-xyz-123", "Accept": "application/json",
                            "Cookie": "id=cookie-monster"},
                "data": {"passwd": "pw-in-form", "ssn": "999-88-7777", "qty": 3}
            },
            "extra": {"csrf_token": "xtra-token-1", "note": "kept as sent"}
        }))
        .await;
    let event_id = s(&b["event_id"]);

    let disk = all_text_on_disk(&app).await;
    for secret in SECRETS {
        assert!(
            !disk.contains(secret),
            "{secret:?} reached the database:\n{disk}"
        );
    }
    for kept in [
        "eu-west",
        "bob",
        "application/json",
        "kept as sent",
        "1234567890123",
        "PaymentError",
    ] {
        assert!(disk.contains(kept), "{kept:?} should be stored:\n{disk}");
    }
    assert!(disk.contains("[Filtered]"));

    // What the API shows is what was stored.
    let ev = app.event(&event_id).await;
    let shown = ev.to_string();
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{secret:?} is shown: {shown}");
    }
    assert_eq!(ev["tags"]["password"], json!("[Filtered]"), "{ev}");
    assert_eq!(ev["tags"]["region"], json!("eu-west"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projects_extra_fields_apply_from_the_next_event() {
    let app = spawn_app().await;
    app.capture(json!({"message": "before", "tags": {"tenant_code": "acme-1"}}))
        .await;
    let r = app
        .send(app.authed(Method::PUT, "/v1/settings/policy").json(&json!({
            "scrub_fields": ["Tenant-Code"]
        })))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["scrub_fields"], json!(["Tenant-Code"]));
    app.capture(json!({"message": "after", "tags": {"tenant_code": "acme-2"}}))
        .await;
    let disk = all_text_on_disk(&app).await;
    assert!(disk.contains("acme-1"), "scrubbing is not retroactive");
    assert!(
        !disk.contains("acme-2"),
        "the new field was not scrubbed:\n{disk}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_captures_are_scrubbed_the_same_way() {
    use faultline::pb;
    let app = spawn_app().await;
    let mut capture = app.capture_client().await;
    let extra: prost_types::Struct = prost_types::Struct {
        fields: [
            (
                "request".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StructValue(prost_types::Struct {
                        fields: [(
                            "Authorization".to_owned(),
                            prost_types::Value {
                                kind: Some(prost_types::value::Kind::StringValue(
                                    "Bearer tok-xyz-123".into(),
                                )),
                            },
                        )]
                        .into(),
                    })),
                },
            ),
            (
                "note".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("kept as sent".into())),
                },
            ),
        ]
        .into(),
    };
    capture
        .capture(app.req(pb::CaptureRequest {
            message: "card 5500-0000-0000-0004 declined".into(),
            tags: [("session".to_owned(), "sess-abc-999".to_owned())].into(),
            extra: Some(extra),
            ..Default::default()
        }))
        .await
        .expect("capture");
    let disk = all_text_on_disk(&app).await;
    for secret in ["tok-xyz-123", "sess-abc-999", "5500-0000-0000-0004"] {
        assert!(
            !disk.contains(secret),
            "{secret:?} reached the database:\n{disk}"
        );
    }
    assert!(disk.contains("kept as sent"), "{disk}");
}
