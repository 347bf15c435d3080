//! Retention: the settings round trip and validation, and the cleanup job doing its work
//! (the test config runs it every 200 ms).

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn assert_retention_shape(r: &Value) {
    let _ = n(&r["days"]);
    assert!(r["auto_export_before_cleanup"].is_boolean(), "{r}");
    assert!(r["export_destination"].is_string(), "{r}");
    assert!(
        r["last_cleanup"].is_null() || r["last_cleanup"].is_string(),
        "{r}"
    );
    if r["last_cleanup"].is_string() {
        let _ = time(&r["last_cleanup"]);
    }
    let _ = n(&r["last_cleanup_deleted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_settings_round_trip_and_validation() {
    let app = spawn_app().await;
    let initial = app.get_ok("/v1/errors/retention/get").await;
    assert_retention_shape(&initial);

    let dest = tempfile::tempdir().unwrap();
    let dest_s = dest.path().to_str().unwrap().to_owned();
    let (st, set) = app
        .put(
            "/v1/errors/retention/set",
            &json!({"days": 30, "auto_export_before_cleanup": true, "export_destination": dest_s}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{set}");
    assert_retention_shape(&set);
    assert_eq!(set["days"], json!(30));
    assert_eq!(set["auto_export_before_cleanup"], json!(true));
    assert_eq!(set["export_destination"], json!(dest_s));
    let got = app.get_ok("/v1/errors/retention/get").await;
    assert_eq!(got["days"], json!(30));
    assert_eq!(got["auto_export_before_cleanup"], json!(true));
    assert_eq!(got["export_destination"], json!(dest_s));

    // days = 0 keeps events forever; the optional fields default to off / empty.
    let (st, set) = app
        .put("/v1/errors/retention/set", &json!({"days": 0}))
        .await;
    assert_eq!(st, StatusCode::OK, "{set}");
    assert_eq!(set["days"], json!(0));
    assert_eq!(set["auto_export_before_cleanup"], json!(false));
    assert_eq!(
        app.get_ok("/v1/errors/retention/get").await["days"],
        json!(0)
    );

    // Validation.
    let path = "/v1/errors/retention/set";
    for (body, field) in [
        (json!({"days": -1}), "days"),
        (json!({"days": 36501}), "days"),
        (
            json!({"days": 7, "auto_export_before_cleanup": true}),
            "export_destination",
        ),
        (
            json!({"days": 7, "auto_export_before_cleanup": true, "export_destination": ""}),
            "export_destination",
        ),
        (
            json!({"days": 7, "auto_export_before_cleanup": true, "export_destination": "exports"}),
            "export_destination",
        ),
    ] {
        let r = app.send(app.authed(Method::PUT, path).json(&body)).await;
        let e = assert_error(&r, 422, "VALIDATION_ERROR", "PUT", path);
        assert_detail_field(e, field);
    }
    assert_eq!(
        app.get_ok("/v1/errors/retention/get").await["days"],
        json!(0),
        "rejected changes are not stored"
    );
    // The maximum is accepted.
    let (st, set) = app.put(path, &json!({"days": 36500})).await;
    assert_eq!(st, StatusCode::OK, "{set}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_exports_then_deletes_expired_events() {
    let app = spawn_app().await;
    let dest = tempfile::tempdir().unwrap();
    let dest_s = dest.path().to_str().unwrap().to_owned();
    let (st, b) = app
        .put(
            "/v1/errors/retention/set",
            &json!({"days": 1, "auto_export_before_cleanup": true, "export_destination": dest_s}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    let three_days_ago =
        (Utc::now() - chrono::Duration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let old = app
        .capture(json!({"message": "ancient failure", "timestamp": three_days_ago}))
        .await;
    let new = app.capture(json!({"message": "fresh failure"})).await;
    let (old_id, old_group) = (s(&old["event_id"]), s(&old["group_id"]));
    let (new_id, new_group) = (s(&new["event_id"]), s(&new["group_id"]));
    assert_ne!(old_group, new_group);

    // Dated before the retention period but just received: it is kept (the job runs every
    // 200 ms here) instead of being acknowledged and then deleted.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.event(&old_id).await["message"],
        json!("ancient failure")
    );
    assert_eq!(n(&app.group(&old_group).await["count"]), 1);
    // User feedback about each: the old one's is backdated with it below.
    for (event, comments) in [(&old_id, "old feedback"), (&new_id, "new feedback")] {
        let (st, b) = app
            .post(
                "/v1/errors/feedback",
                &json!({"event_id": event, "comments": comments}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    // Once it has also been held for the period, it expires.
    app.run_sql(&[
        &format!(
            "UPDATE events SET received_at = received_at - {} WHERE message = 'ancient failure'",
            3 * 86_400_000
        ),
        &format!(
            "UPDATE user_reports SET created_at = created_at - {} WHERE comments = 'old feedback'",
            3 * 86_400_000
        ),
    ])
    .await;

    poll_until(
        Duration::from_secs(10),
        "the expired event to be deleted",
        || {
            let app = &app;
            let path = format!("/v1/errors/get/{old_id}");
            async move { (app.get(&path).await.0 == StatusCode::NOT_FOUND).then_some(()) }
        },
    )
    .await;

    // The job deletes the events first and the emptied groups right after: poll for both.
    let group_path = format!("/v1/errors/group_detail/{old_group}");
    poll_until(
        Duration::from_secs(10),
        "the group left empty to be deleted",
        || {
            let app = &app;
            let path = group_path.clone();
            async move { (app.get(&path).await.0 == StatusCode::NOT_FOUND).then_some(()) }
        },
    )
    .await;
    let e = app.event(&new_id).await;
    assert_eq!(e["id"], json!(new_id), "the recent event stays");
    assert_eq!(n(&app.group(&new_group).await["count"]), 1);
    assert_eq!(ids(&app.list_all("").await), vec![new_id.clone()]);
    // Feedback is kept as long as events (deleted in the same run, right after them).
    let comments = poll_until(Duration::from_secs(10), "the old feedback to go", || {
        let app = &app;
        async move {
            let feedback = app.get_ok("/v1/errors/feedback").await;
            let comments: Vec<String> = arr(&feedback["feedback"])
                .iter()
                .map(|f| s(&f["comments"]))
                .collect();
            (comments.len() == 1).then_some(comments)
        }
    })
    .await;
    assert_eq!(comments, ["new feedback"]);

    // The export was written before the delete.
    let mut exported = Vec::new();
    for entry in std::fs::read_dir(dest.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            exported.push(std::fs::read_to_string(&p).unwrap());
        }
    }
    assert!(!exported.is_empty(), "no .jsonl export in {dest_s}");
    let records: Vec<Value> = exported
        .iter()
        .flat_map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        })
        .collect();
    assert!(
        records.iter().any(|r| r["id"] == json!(old_id)),
        "the export holds the deleted event: {records:?}"
    );
    assert!(
        !records.iter().any(|r| r["id"] == json!(new_id)),
        "the export holds only expired events"
    );
    let rec = records.iter().find(|r| r["id"] == json!(old_id)).unwrap();
    assert_eq!(rec["message"], json!("ancient failure"));

    let r = app.get_ok("/v1/errors/retention/get").await;
    assert_retention_shape(&r);
    assert!(
        r["last_cleanup"].is_string(),
        "last_cleanup is set after a run: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_forever_deletes_nothing() {
    let app = spawn_app().await;
    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 0}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // A cleanup run that started before the change may still use the old policy: let it end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let long_ago =
        (Utc::now() - chrono::Duration::days(4000)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let old = app
        .capture(json!({"message": "from the archives", "timestamp": long_ago}))
        .await;
    // Several job runs (every 200 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.event(&s(&old["event_id"])).await;

    // With days = 1 (no export) it goes, once it has been held for a day.
    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 1}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    app.run_sql(&[&format!(
        "UPDATE events SET received_at = received_at - {} WHERE message = 'from the archives'",
        2 * 86_400_000
    )])
    .await;
    let path = format!("/v1/errors/get/{}", s(&old["event_id"]));
    poll_until(
        Duration::from_secs(10),
        "the expired event to be deleted",
        || {
            let app = &app;
            let path = path.clone();
            async move { (app.get(&path).await.0 == StatusCode::NOT_FOUND).then_some(()) }
        },
    )
    .await;
}
