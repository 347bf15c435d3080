//! Export: JSON and CSV documents over REST (streamed body) and gRPC (server stream of chunks).

use std::collections::HashSet;

use faultline::pb;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const CSV_HEADER: [&str; 13] = [
    "id",
    "group_id",
    "timestamp",
    "received_at",
    "level",
    "message",
    "code",
    "exception_type",
    "culprit",
    "release",
    "environment",
    "user_id",
    "tags",
];

async fn export_rest(app: &TestApp, body: Value) -> (String, String) {
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/export").json(&body))
        .await;
    assert_eq!(r.status.as_u16(), 200, "export {body}: {}", r.text);
    (r.header("content-type").unwrap_or("").to_owned(), r.text)
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = rd
        .headers()
        .expect("CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = rd
        .records()
        .map(|r| r.expect("CSV record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_json_and_csv_over_rest() {
    let app = spawn_app().await;
    let mut ids_prod = HashSet::new();
    let mut all = HashSet::new();
    for i in 0..5 {
        let env = if i < 3 { "prod" } else { "dev" };
        let b = app
            .capture(json!({"message": format!("export me, \"quoted\" #{i}"), "code": "E9", "environment": env,
                "release": "7.0", "user_id": "u", "tags": {"k": if i == 0 { "special" } else { "v" }}}))
            .await;
        all.insert(s(&b["event_id"]));
        if env == "prod" {
            ids_prod.insert(s(&b["event_id"]));
        }
    }

    // JSON (the default format).
    let (ct, text) = export_rest(&app, json!({})).await;
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("export is not JSON ({e}): {text}"));
    let recs = arr(&doc);
    assert_eq!(recs.len(), 5, "{text}");
    let got: HashSet<String> = recs.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(got, all);
    for r in recs {
        uuid_str(&r["group_id"]);
        let _ = time(&r["timestamp"]);
        assert_eq!(r["level"], json!("error"));
        assert_eq!(r["code"], json!("E9"));
        assert_eq!(r["release"], json!("7.0"));
        assert!(s(&r["message"]).starts_with("export me"), "{r}");
        assert!(r["tags"].is_object());
    }
    let (_, text) = export_rest(&app, json!({"format": "json"})).await;
    assert_eq!(arr(&serde_json::from_str::<Value>(&text).unwrap()).len(), 5);

    // With a filter.
    let (_, text) = export_rest(
        &app,
        json!({"filter": {"environment": "prod"}, "format": "json"}),
    )
    .await;
    let got: HashSet<String> = arr(&serde_json::from_str::<Value>(&text).unwrap())
        .iter()
        .map(|r| s(&r["id"]))
        .collect();
    assert_eq!(got, ids_prod, "the filter applies to the export");
    let (_, text) = export_rest(&app, json!({"filter": {"tags": {"k": "special"}}})).await;
    assert_eq!(arr(&serde_json::from_str::<Value>(&text).unwrap()).len(), 1);
    let (_, text) = export_rest(&app, json!({"filter": {"environment": "nowhere"}})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([]),
        "an empty export is an empty array"
    );

    // CSV.
    let (ct, text) = export_rest(&app, json!({"format": "csv"})).await;
    assert!(ct.starts_with("text/csv"), "content-type {ct:?}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 6, "header + 5 rows: {text}");
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, CSV_HEADER);
    assert_eq!(rows.len(), 5);
    let got: HashSet<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(got, all);
    for r in &rows {
        assert!(
            r[5].starts_with("export me, \"quoted\""),
            "CSV quoting keeps the message: {r:?}"
        );
        assert_eq!(r[4], "error");
        assert_eq!(r[6], "E9");
        assert_eq!(r[11], "u");
        let tags: Value = serde_json::from_str(&r[12])
            .unwrap_or_else(|e| panic!("tags column is not JSON ({e}): {:?}", r[12]));
        assert!(tags["k"].is_string());
    }
    let (_, text) = export_rest(
        &app,
        json!({"format": "csv", "filter": {"environment": "dev"}}),
    )
    .await;
    assert_eq!(text.lines().filter(|l| !l.is_empty()).count(), 3);
    let (_, text) = export_rest(
        &app,
        json!({"format": "csv", "filter": {"environment": "nowhere"}}),
    )
    .await;
    assert_eq!(
        text.lines().filter(|l| !l.is_empty()).count(),
        1,
        "just the header: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_many_events_over_rest_and_grpc() {
    const N: usize = 510;
    let app = spawn_app().await;
    let client = app.capture_client().await;
    let acked: Vec<String> = futures::stream::iter(0..N)
        .map(|i| {
            let mut c = client.clone();
            let r = app.req(pb::CaptureMessageRequest {
                text: format!("streamed export {i}"),
                environment: if i % 2 == 0 {
                    "even".into()
                } else {
                    "odd".into()
                },
                ..Default::default()
            });
            async move {
                c.capture_message(r)
                    .await
                    .expect("capture")
                    .into_inner()
                    .event_id
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let acked: HashSet<String> = acked.into_iter().collect();
    assert_eq!(acked.len(), N);

    // REST, JSON.
    let (_, text) = export_rest(&app, json!({"format": "json"})).await;
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("export is not JSON: {e}"));
    let recs = arr(&doc);
    assert_eq!(recs.len(), N);
    let got: HashSet<String> = recs.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(got, acked, "every event exactly once");

    // gRPC, JSON: the chunks concatenate to the document.
    let mut groups = app.groups_client().await;
    let mut stream = groups
        .export_events(app.req(pb::ExportEventsRequest {
            filter: None,
            format: pb::ExportFormat::Json as i32,
        }))
        .await
        .expect("ExportEvents")
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(c) = stream.message().await.expect("export chunk") {
        chunks.push(c);
    }
    assert!(
        chunks.len() >= 2,
        "a large export comes in several chunks, got {}",
        chunks.len()
    );
    assert_eq!(chunks[0].content_type, "application/json");
    let doc: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
    let doc: Value = serde_json::from_slice(&doc)
        .unwrap_or_else(|e| panic!("concatenated chunks are not JSON: {e}"));
    let got: HashSet<String> = arr(&doc).iter().map(|r| s(&r["id"])).collect();
    assert_eq!(arr(&doc).len(), N);
    assert_eq!(got, acked);

    // gRPC, CSV with a filter.
    let mut stream = groups
        .export_events(app.req(pb::ExportEventsRequest {
            filter: Some(pb::EventFilter {
                environment: "even".into(),
                ..Default::default()
            }),
            format: pb::ExportFormat::Csv as i32,
        }))
        .await
        .expect("ExportEvents")
        .into_inner();
    let mut bytes = Vec::new();
    let mut first_type = None;
    while let Some(c) = stream.message().await.expect("export chunk") {
        first_type.get_or_insert(c.content_type.clone());
        bytes.extend(c.data);
    }
    assert!(first_type.unwrap_or_default().starts_with("text/csv"));
    let text = String::from_utf8(bytes).expect("UTF-8 CSV");
    assert_eq!(text.lines().filter(|l| !l.is_empty()).count(), N / 2 + 1);
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, CSV_HEADER);
    assert!(rows.iter().all(|r| r[10] == "even"));

    // gRPC export errors.
    let st = groups
        .export_events(app.req(pb::ExportEventsRequest {
            filter: None,
            format: 9,
        }))
        .await
        .expect_err("unknown format");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("format"),
    );
}
