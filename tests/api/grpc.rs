//! The gRPC API: every capability over gRPC, and that gRPC and REST see the same data.

use std::collections::BTreeMap;

use chrono::{DurationRound, Utc};
use faultline::pb;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::{
    helpers::*,
    rest::{PY_TRACE, assert_event_shape},
};

fn frame(
    filename: &str,
    function: &str,
    module: &str,
    lineno: u32,
    in_app: Option<bool>,
) -> pb::Frame {
    pb::Frame {
        filename: filename.into(),
        function: function.into(),
        module: module.into(),
        lineno,
        colno: 0,
        in_app,
        context_line: String::new(),
        minified: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_capture_is_readable_over_rest_and_back() {
    let app = spawn_app().await;
    let mut capture = app.capture_client().await;
    let mut groups = app.groups_client().await;
    let at = (Utc::now() - chrono::Duration::minutes(10))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let extra = prost_types::Struct {
        fields: BTreeMap::from([(
            "build".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("abc123".into())),
            },
        )]),
    };
    let resp = capture
        .capture(app.req(pb::CaptureRequest {
            exception: Some(pb::ExceptionInput {
                r#type: "KeyError".into(),
                message: "'sku'".into(),
                frames: vec![
                    frame("/app/shop/cart.py", "add_item", "shop.cart", 12, Some(true)),
                    frame("/usr/lib/python3/json.py", "loads", "", 300, Some(false)),
                ],
                ..Default::default()
            }),
            level: pb::Level::Warning as i32,
            tags: [("region".to_owned(), "eu".to_owned())].into(),
            release: "shop@9".into(),
            environment: "production".into(),
            user_id: "user-9".into(),
            timestamp: Some(pb_ts(at)),
            extra: Some(extra),
            ..Default::default()
        }))
        .await
        .expect("gRPC Capture")
        .into_inner();
    uuid::Uuid::parse_str(&resp.event_id).expect("event id is a UUID");
    assert!(resp.new_group);
    assert_eq!(resp.fingerprint.len(), 32);

    // Read over REST.
    let e = app.event(&resp.event_id).await;
    assert_event_shape(&e);
    assert_eq!(e["group_id"], json!(resp.group_id));
    assert_eq!(e["fingerprint"], json!(resp.fingerprint));
    assert_eq!(e["level"], json!("warning"));
    assert_eq!(e["tags"], json!({"region": "eu"}));
    assert_eq!(e["release"], json!("shop@9"));
    assert_eq!(e["environment"], json!("production"));
    assert_eq!(e["user_id"], json!("user-9"));
    assert_eq!(time(&e["timestamp"]), at);
    assert_eq!(e["exception"]["type"], json!("KeyError"));
    assert_eq!(e["exception"]["value"], json!("'sku'"));
    assert_eq!(arr(&e["exception"]["frames"]).len(), 2);
    assert_eq!(e["culprit"], json!("shop.cart in add_item"));
    assert_eq!(
        e["payload"]["build"],
        json!("abc123"),
        "extra fields are kept in the payload: {}",
        e["payload"]
    );
    assert_eq!(e["grouping"]["source"], json!("stacktrace"));

    // And the same event over gRPC.
    let ev = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: resp.event_id.clone(),
        }))
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(ev.id, resp.event_id);
    assert_eq!(ev.level, pb::Level::Warning as i32);
    assert_eq!(pb_time(&ev.timestamp), at);
    assert_eq!(ev.culprit, "shop.cart in add_item");
    let g = ev.grouping.expect("GetEvent fills grouping");
    assert_eq!(g.source, "stacktrace");
    assert_eq!(g.fingerprint, resp.fingerprint);
    assert_eq!(
        json!(g.components),
        e["grouping"]["components"],
        "both transports show the same grouping"
    );
    let payload: Value = serde_json::from_str(&ev.payload_json).expect("payload_json is JSON");
    assert_eq!(payload["build"], json!("abc123"));
    // Sent without a payload: the stored one is made from the fields, beside `extra`.
    assert_eq!(payload["tags"], json!({"region": "eu"}), "{payload}");
    assert_eq!(payload["level"], json!("warning"));
    assert_eq!(payload["release"], json!("shop@9"));
    assert_eq!(payload["user_id"], json!("user-9"));
    assert_eq!(payload["exception"]["type"], json!("KeyError"));
    assert_eq!(time(&payload["timestamp"]), at);

    // Captured over REST, read over gRPC.
    let b = app
        .capture(json!({"message": "rest side", "code": "E1", "stack": PY_TRACE, "tags": {"k": "v"}, "level": "fatal"}))
        .await;
    let ev = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: s(&b["event_id"]),
        }))
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(ev.group_id, s(&b["group_id"]));
    assert_eq!(ev.message, "rest side");
    assert_eq!(ev.code, "E1");
    assert_eq!(ev.level, pb::Level::Fatal as i32);
    assert_eq!(ev.tags, [("k".to_owned(), "v".to_owned())].into());
    let x = ev.exception.expect("exception parsed from the stack");
    assert_eq!(x.r#type, "ZeroDivisionError");
    assert_eq!(x.frames.len(), 2);
    assert_eq!(x.raw_stacktrace, PY_TRACE);
    let payload: Value = serde_json::from_str(&ev.payload_json).expect("payload_json is JSON");
    assert_eq!(payload["message"], json!("rest side"));

    // The same error over both transports lands in one group.
    let r = capture
        .capture(app.req(pb::CaptureRequest {
            message: "rest side".into(),
            stack: PY_TRACE.into(),
            ..Default::default()
        }))
        .await
        .expect("Capture")
        .into_inner();
    assert_eq!(r.group_id, s(&b["group_id"]));
    assert!(!r.new_group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_capture_message_and_idempotency_shared_with_rest() {
    let app = spawn_app().await;
    let mut capture = app.capture_client().await;
    let msg = pb::CaptureMessageRequest {
        text: "deploy finished".into(),
        level: pb::Level::Info as i32,
        tags: [("deploy".to_owned(), "42".to_owned())].into(),
        user_id: "ci".into(),
        release: "3.1".into(),
        environment: "production".into(),
        idempotency_key: "deploy-42".into(),
        payload_json: String::new(),
    };
    let first = capture
        .capture_message(app.req(msg.clone()))
        .await
        .expect("CaptureMessage")
        .into_inner();
    assert!(!first.duplicate);
    assert!(first.new_group);
    let second = capture
        .capture_message(app.req(msg.clone()))
        .await
        .expect("CaptureMessage")
        .into_inner();
    assert!(second.duplicate, "same key again is a duplicate");
    assert_eq!(second.event_id, first.event_id);
    assert_eq!(second.group_id, first.group_id);
    // The same key over REST is the same message.
    let rest = app
        .message(json!({"text": "deploy finished", "idempotency_key": "deploy-42"}))
        .await;
    assert_eq!(
        rest["duplicate"],
        json!(true),
        "idempotency keys are shared by both transports: {rest}"
    );
    assert_eq!(rest["event_id"], json!(first.event_id));

    let all = app.list_all("").await;
    assert_eq!(ids(&all), vec![first.event_id.clone()], "one event stored");
    let e = app.event(&first.event_id).await;
    assert_eq!(e["message"], json!("deploy finished"));
    // Sent without a payload: the stored one is made from the fields.
    assert_eq!(
        e["payload"],
        json!({"text": "deploy finished", "level": "info", "tags": {"deploy": "42"},
               "user_id": "ci", "release": "3.1", "environment": "production",
               "idempotency_key": "deploy-42"})
    );
    assert_eq!(e["level"], json!("info"));
    assert_eq!(e["tags"], json!({"deploy": "42"}));

    // Unspecified level means info for messages; text is required.
    let r = capture
        .capture_message(app.req(pb::CaptureMessageRequest {
            text: "no level".into(),
            ..Default::default()
        }))
        .await
        .expect("CaptureMessage")
        .into_inner();
    assert_eq!(app.event(&r.event_id).await["level"], json!("info"));
    let st = capture
        .capture_message(app.req(pb::CaptureMessageRequest::default()))
        .await
        .expect_err("empty text");
    assert_status(&st, Code::InvalidArgument, "VALIDATION_ERROR", Some("text"));
    let st = capture
        .capture(app.req(pb::CaptureRequest::default()))
        .await
        .expect_err("empty capture");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("message"),
    );
    let st = capture
        .capture(app.req(pb::CaptureRequest {
            message: "x".into(),
            level: 99,
            ..Default::default()
        }))
        .await
        .expect_err("unknown level");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("level"),
    );

    // A gRPC client's payload_json is checked (REST's bodies are checked when decoded): it
    // must be a JSON object, alone and in a batch.
    for bad in ["{\"a\":", "[1]", "\"text\"", "{} trailing"] {
        let st = capture
            .capture(app.req(pb::CaptureRequest {
                message: "x".into(),
                payload_json: bad.into(),
                ..Default::default()
            }))
            .await
            .expect_err(bad);
        assert_status(
            &st,
            Code::InvalidArgument,
            "VALIDATION_ERROR",
            Some("payload_json"),
        );
        let batch = capture
            .capture_batch(app.req(pb::CaptureBatchRequest {
                events: vec![pb::CaptureRequest {
                    message: "x".into(),
                    payload_json: bad.into(),
                    ..Default::default()
                }],
            }))
            .await
            .expect("CaptureBatch")
            .into_inner();
        assert_eq!((batch.accepted, batch.rejected), (0, 1), "{bad}");
    }
    let r = capture
        .capture(app.req(pb::CaptureRequest {
            message: "with payload".into(),
            payload_json: r#"{"message": "with payload", "extra": {"k": 1}}"#.into(),
            ..Default::default()
        }))
        .await
        .expect("Capture with payload_json")
        .into_inner();
    assert_eq!(
        app.event(&r.event_id).await["payload"],
        json!({"message": "with payload", "extra": {"k": 1}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_list_search_and_get_match_rest() {
    let app = spawn_app().await;
    let mut groups = app.groups_client().await;
    for i in 0..5 {
        app.capture(json!({"message": format!("listing {i}"), "level": if i % 2 == 0 { "error" } else { "warning" },
            "environment": "prod", "tags": {"n": i.to_string()}}))
            .await;
    }
    app.capture(
        json!({"exception": {"type": "QuuxError", "message": "nope"}, "environment": "dev"}),
    )
    .await;

    // Paging over gRPC, compared with REST.
    let mut grpc_ids = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = groups
            .list_events(app.req(pb::ListEventsRequest {
                filter: None,
                cursor: cursor.clone(),
                limit: 4,
            }))
            .await
            .expect("ListEvents")
            .into_inner();
        assert!(r.events.len() <= 4);
        grpc_ids.extend(r.events.iter().map(|e| e.id.clone()));
        pages += 1;
        if r.next_cursor.is_empty() {
            break;
        }
        cursor = r.next_cursor;
        assert!(pages < 10);
    }
    assert_eq!(pages, 2);
    let rest_ids = ids(&app.list_all("").await);
    assert_eq!(
        grpc_ids, rest_ids,
        "both transports list the same events in the same order"
    );

    // Filters.
    let r = groups
        .list_events(app.req(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                level: pb::Level::Warning as i32,
                tags: [("n".to_owned(), "3".to_owned())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .expect("ListEvents")
        .into_inner();
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].message, "listing 3");
    assert_eq!(r.events[0].level, pb::Level::Warning as i32);
    let r = groups
        .list_events(app.req(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                environment: "dev".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .expect("ListEvents")
        .into_inner();
    assert_eq!(r.events.len(), 1);
    // ListEvents does not carry the payload.
    assert!(r.events[0].grouping.is_none());

    // Search.
    let r = groups
        .search_events(app.req(pb::SearchEventsRequest {
            q: "quuxerror".into(),
            ..Default::default()
        }))
        .await
        .expect("SearchEvents")
        .into_inner();
    assert_eq!(r.events.len(), 1);
    assert_eq!(
        r.events[0].exception.as_ref().map(|x| x.r#type.as_str()),
        Some("QuuxError")
    );
    let rest = app.get_ok("/v1/errors/search?q=quuxerror").await;
    assert_eq!(ids(arr(&rest["events"])), vec![r.events[0].id.clone()]);
    let st = groups
        .search_events(app.req(pb::SearchEventsRequest::default()))
        .await
        .expect_err("q required");
    assert_status(&st, Code::InvalidArgument, "VALIDATION_ERROR", Some("q"));

    // Errors.
    let st = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .expect_err("unknown event");
    assert_status(&st, Code::NotFound, "NOT_FOUND", None);
    let st = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: "nope".into(),
        }))
        .await
        .expect_err("bad uuid");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("event_id"),
    );
    let st = groups
        .list_events(app.req(pb::ListEventsRequest {
            cursor: "!!!".into(),
            ..Default::default()
        }))
        .await
        .expect_err("bad cursor");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("cursor"),
    );
    // Limits: 0 means 50, large is capped.
    let r = groups
        .list_events(app.req(pb::ListEventsRequest {
            limit: 1000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.events.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_groups_and_triage_cross_transport() {
    let app = spawn_app().await;
    let mut groups = app.groups_client().await;
    let (_, ga) = app.capture_text("grpc group A").await;
    app.capture(json!({"message": "grpc group A", "tags": {"t": "1"}, "user_id": "u1", "release": "r1", "environment": "e1"})).await;
    let (_, gb) = app.capture_text("grpc group B").await;

    // ListGroups / GetGroup / ListGroupEvents agree with REST.
    let r = groups
        .list_groups(app.req(pb::ListGroupsRequest {
            sort: pb::GroupSort::CountDesc as i32,
            ..Default::default()
        }))
        .await
        .expect("ListGroups")
        .into_inner();
    assert_eq!(
        r.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        vec![ga.clone(), gb.clone()]
    );
    assert_eq!(r.groups[0].count, 2);
    assert!(r.next_cursor.is_empty());
    let d = groups
        .get_group(app.req(pb::GetGroupRequest {
            group_id: ga.clone(),
        }))
        .await
        .expect("GetGroup")
        .into_inner();
    let rest = app.group(&ga).await;
    let g = d.group.expect("group");
    assert_eq!(g.count, n(&rest["count"]));
    assert_eq!(g.title, s(&rest["title"]));
    assert_eq!(g.fingerprint, s(&rest["fingerprint"]));
    assert_eq!(pb_time(&g.first_seen), time(&rest["first_seen"]));
    assert_eq!(d.users_affected, n(&rest["users_affected"]));
    assert_eq!(d.users_affected, 1);
    assert_eq!(d.releases, vec!["r1"]);
    assert_eq!(d.environments, vec!["e1"]);
    assert_eq!(d.trend.len(), 24);
    assert_eq!(d.trend.iter().map(|p| p.count).sum::<u64>(), 2);
    assert_eq!(d.top_tags.len(), 1);
    assert_eq!(
        (
            d.top_tags[0].key.as_str(),
            d.top_tags[0].value.as_str(),
            d.top_tags[0].count
        ),
        ("t", "1", 1)
    );
    let ev = groups
        .list_group_events(app.req(pb::ListGroupEventsRequest {
            group_id: ga.clone(),
            ..Default::default()
        }))
        .await
        .expect("ListGroupEvents")
        .into_inner();
    assert_eq!(ev.events.len(), 2);
    let rest_events = app.get_ok(&format!("/v1/errors/events/{ga}")).await;
    assert_eq!(
        ev.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids(arr(&rest_events["events"]))
    );

    // Resolve over REST, observe over gRPC.
    app.post_ok(&format!("/v1/errors/resolve/{ga}"), &json!({}))
        .await;
    let d = groups
        .get_group(app.req(pb::GetGroupRequest {
            group_id: ga.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.group.unwrap().status, pb::GroupStatus::Resolved as i32);
    let r = groups
        .list_groups(app.req(pb::ListGroupsRequest {
            status: pb::GroupStatus::Resolved as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        vec![ga.clone()]
    );
    // A new event over gRPC regresses it.
    let mut capture = app.capture_client().await;
    capture
        .capture(app.req(pb::CaptureRequest {
            message: "grpc group A".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let rest = app.group(&ga).await;
    assert_eq!(rest["status"], json!("unresolved"));
    assert_eq!(rest["regressed"], json!(true));
    let g = groups
        .get_group(app.req(pb::GetGroupRequest {
            group_id: ga.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert!(g.regressed);
    assert_eq!(g.status, pb::GroupStatus::Unresolved as i32);

    // Resolve / ignore / unresolve over gRPC, observe over REST.
    let g = groups
        .resolve_group(app.req(pb::ResolveGroupRequest {
            group_id: gb.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(g.status, pb::GroupStatus::Resolved as i32);
    assert_eq!(app.group(&gb).await["status"], json!("resolved"));
    let g = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: gb.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(g.status, pb::GroupStatus::Ignored as i32);
    assert_eq!(app.group(&gb).await["status"], json!("ignored"));
    let g = groups
        .unresolve_group(app.req(pb::UnresolveGroupRequest {
            group_id: gb.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(g.status, pb::GroupStatus::Unresolved as i32);
    assert_eq!(app.group(&gb).await["status"], json!("unresolved"));
    let missing = uuid::Uuid::new_v4().to_string();
    let st = groups
        .resolve_group(app.req(pb::ResolveGroupRequest {
            group_id: missing.clone(),
            ..Default::default()
        }))
        .await
        .expect_err("unknown");
    assert_status(&st, Code::NotFound, "NOT_FOUND", None);
    let st = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: "x".into(),
            ..Default::default()
        }))
        .await
        .expect_err("malformed");
    assert_status(&st, Code::InvalidArgument, "VALIDATION_ERROR", None);

    // Bulk over gRPC.
    let r = groups
        .bulk_update_groups(app.req(pb::BulkUpdateGroupsRequest {
            group_ids: vec![ga.clone(), missing.clone(), gb.clone()],
            action: pb::BulkAction::Ignore as i32,
            ..Default::default()
        }))
        .await
        .expect("BulkUpdateGroups")
        .into_inner();
    assert_eq!(r.action, pb::BulkAction::Ignore as i32);
    assert_eq!(r.succeeded, vec![ga.clone(), gb.clone()]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].group_id, missing);
    assert_eq!(r.failed[0].code, "NOT_FOUND");
    assert_eq!(app.group(&ga).await["status"], json!("ignored"));
    let st = groups
        .bulk_update_groups(app.req(pb::BulkUpdateGroupsRequest {
            group_ids: vec![ga.clone()],
            action: 0,
            ..Default::default()
        }))
        .await
        .expect_err("no action");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("action"),
    );

    // Delete over gRPC, observe over REST.
    let r = groups
        .delete_group(app.req(pb::DeleteGroupRequest {
            group_id: ga.clone(),
        }))
        .await
        .expect("DeleteGroup")
        .into_inner();
    assert_eq!(r.group_id, ga);
    assert_eq!(r.deleted_events, 3);
    let (st, _) = app.get(&format!("/v1/errors/group_detail/{ga}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let st = groups
        .get_group(app.req(pb::GetGroupRequest {
            group_id: ga.clone(),
        }))
        .await
        .expect_err("deleted");
    assert_status(&st, Code::NotFound, "NOT_FOUND", None);
    let st = groups
        .list_group_events(app.req(pb::ListGroupEventsRequest {
            group_id: ga.clone(),
            ..Default::default()
        }))
        .await
        .expect_err("deleted");
    assert_status(&st, Code::NotFound, "NOT_FOUND", None);
    assert_eq!(
        app.list_all("").await.len(),
        1,
        "only group B's event is left"
    );
    // Delete over REST, observe over gRPC.
    app.delete(&format!("/v1/errors/delete/{gb}")).await;
    let r = groups
        .list_groups(app.req(pb::ListGroupsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.groups.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_retention_settings_cross_transport() {
    let app = spawn_app().await;
    let mut settings = app.settings_client().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().to_str().unwrap().to_owned();

    let r = settings
        .set_retention(app.req(pb::SetRetentionRequest {
            days: 14,
            auto_export_before_cleanup: true,
            export_destination: dest.clone(),
        }))
        .await
        .expect("SetRetention")
        .into_inner()
        .retention
        .expect("retention");
    assert_eq!(
        (
            r.days,
            r.auto_export_before_cleanup,
            r.export_destination.as_str()
        ),
        (14, true, dest.as_str())
    );
    let rest = app.get_ok("/v1/errors/retention/get").await;
    assert_eq!(rest["days"], json!(14));
    assert_eq!(rest["auto_export_before_cleanup"], json!(true));
    assert_eq!(rest["export_destination"], json!(dest));

    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 0}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let r = settings
        .get_retention(app.req(pb::GetRetentionRequest {}))
        .await
        .expect("GetRetention")
        .into_inner()
        .retention
        .unwrap();
    assert_eq!(r.days, 0, "set over REST, read over gRPC");
    assert!(!r.auto_export_before_cleanup);

    let st = settings
        .set_retention(app.req(pb::SetRetentionRequest {
            days: 10,
            auto_export_before_cleanup: true,
            export_destination: String::new(),
        }))
        .await
        .expect_err("auto export without destination");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("export_destination"),
    );
    let st = settings
        .set_retention(app.req(pb::SetRetentionRequest {
            days: 10,
            auto_export_before_cleanup: false,
            export_destination: "relative/dir".into(),
        }))
        .await
        .expect_err("relative destination");
    assert_status(
        &st,
        Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("export_destination"),
    );
    let st = settings
        .set_retention(app.req(pb::SetRetentionRequest {
            days: 40_000,
            ..Default::default()
        }))
        .await
        .expect_err("too many days");
    assert_status(&st, Code::InvalidArgument, "VALIDATION_ERROR", Some("days"));
    // Rejected changes changed nothing.
    let r = settings
        .get_retention(app.req(pb::GetRetentionRequest {}))
        .await
        .unwrap()
        .into_inner()
        .retention
        .unwrap();
    assert_eq!(r.days, 0);
}

fn bad<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", "Bearer flt_bogus".parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requires_a_valid_key() {
    let app = spawn_app().await;
    let mut capture = app.capture_client().await;
    let mut groups = app.groups_client().await;
    let mut settings = app.settings_client().await;
    let st = capture
        .capture(tonic::Request::new(pb::CaptureRequest {
            message: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = capture
        .capture(bad(pb::CaptureRequest {
            message: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = capture
        .capture_message(tonic::Request::new(pb::CaptureMessageRequest {
            text: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = groups
        .list_events(tonic::Request::new(pb::ListEventsRequest::default()))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = groups
        .list_groups(bad(pb::ListGroupsRequest::default()))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = groups
        .export_events(tonic::Request::new(pb::ExportEventsRequest::default()))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = settings
        .get_retention(tonic::Request::new(pb::GetRetentionRequest {}))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    let st = settings
        .set_retention(bad(pb::SetRetentionRequest {
            days: 1,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(&st, Code::Unauthenticated, "UNAUTHORIZED", None);
    // x-api-key metadata works too.
    let mut r = tonic::Request::new(pb::GetRetentionRequest {});
    r.metadata_mut()
        .insert("x-api-key", app.key.parse().unwrap());
    settings.get_retention(r).await.expect("x-api-key metadata");
    assert!(
        app.list_all("").await.is_empty(),
        "nothing was captured without a key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_full_queue_is_resource_exhausted_with_retry_info() {
    use tonic_types::StatusExt;
    let app = spawn_app_with(|c| {
        c.ingest.queue_depth = 1;
        c.ingest.max_batch = 1;
    })
    .await;
    let client = app.capture_client().await;
    let mut saw = false;
    for _round in 0..10 {
        let results: Vec<_> = futures::stream::iter(0..64)
            .map(|i| {
                let mut c = client.clone();
                let r = app.req(pb::CaptureRequest {
                    message: format!("grpc burst {i}"),
                    ..Default::default()
                });
                async move { c.capture(r).await }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(_) => {}
                Err(st) => {
                    assert_status(&st, Code::ResourceExhausted, "RATE_LIMITED", None);
                    let retry = st
                        .get_error_details()
                        .retry_info()
                        .cloned()
                        .expect("RetryInfo on RESOURCE_EXHAUSTED");
                    assert!(
                        retry.retry_delay.is_some_and(|d| !d.is_zero()),
                        "retry delay: {retry:?}"
                    );
                    saw = true;
                }
            }
        }
        if saw {
            break;
        }
    }
    assert!(
        saw,
        "64 concurrent gRPC captures against a queue of depth 1 were never refused"
    );
    let (st, _) = app.get("/v1/errors/groups").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_message_over_the_limit_is_refused() {
    let app = spawn_app().await;
    let mut capture = app.capture_client().await;
    let st = capture
        .capture(app.req(pb::CaptureRequest {
            message: "x".repeat(1024 * 1024 + 512),
            ..Default::default()
        }))
        .await
        .expect_err("a message over 1 MiB is refused");
    assert_ne!(st.code(), Code::Ok);
    assert_ne!(st.code(), Code::Internal, "not an internal error: {st:?}");
    assert_ne!(st.code(), Code::Unknown, "not an unknown error: {st:?}");
    // The connection and the server are fine afterwards.
    capture
        .capture(app.req(pb::CaptureRequest {
            message: "small".into(),
            ..Default::default()
        }))
        .await
        .expect("a normal capture after the refused one");
    assert_eq!(
        app.list_all("").await.len(),
        1,
        "the oversized message was not stored"
    );
}
