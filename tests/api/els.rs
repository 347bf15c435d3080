//! The Error Logging System API: `/health`, `/api/errors` CRUD with its `{data,status}` and
//! `{error,status:"error"}` envelopes, statistics, analytics and monitoring computed from
//! stored events and the server's own counters.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use faultline::pb;

/// The example body of `POST /api/errors`.
fn documented_error() -> Value {
    json!({
        "level": "error",
        "message": "Database connection failed",
        "stack_trace": "Error: Connection timeout\n    at Database.connect(db.js:45)\n    at main(app.js:12)",
        "context": {"user_id": "12345", "session_id": "abc-def-ghi", "request_id": "req-789", "additional_data": "any value"},
        "source": "backend",
        "environment": "production",
        "url": "https://api.example.com/users"
    })
}

fn els(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.anon(method, path).header("X-API-Key", &app.key)
}

/// `{"error": "<message>", "status": "error"}` with the given HTTP status.
pub(crate) fn assert_envelope_error(r: &Resp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body["status"], json!("error"), "{}", r.text);
    assert!(
        r.body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

pub(crate) fn data(r: &Resp) -> &Value {
    assert_eq!(r.body["status"], json!("success"), "{}", r.text);
    &r.body["data"]
}

#[tokio::test]
async fn health_needs_no_key_and_reports_ok() {
    let app = spawn_app().await;
    let r = app.send(app.anon(Method::GET, "/health")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], json!("ok"));
    let _ = time(&r.body["timestamp"]);
}

#[tokio::test]
async fn create_then_get_list_resolve_delete() {
    let app = spawn_app().await;
    let r = app
        .send(
            els(&app, Method::POST, "/api/errors")
                .header("User-Agent", "Mozilla/5.0 test")
                .json(&documented_error()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d = data(&r).clone();
    let id = uuid_str(&d["id"]);
    assert_eq!(d["level"], json!("error"));
    assert_eq!(d["message"], json!("Database connection failed"));
    assert_eq!(d["source"], json!("backend"));
    assert_eq!(d["environment"], json!("production"));
    assert_eq!(d["user_agent"], json!("Mozilla/5.0 test"));
    assert_eq!(d["ip_address"], json!("127.0.0.1"));
    assert_eq!(d["url"], json!("https://api.example.com/users"));
    assert_eq!(d["context"]["session_id"], json!("abc-def-ghi"));
    assert_eq!(d["resolved"], json!(false));
    assert_eq!(d["count"], json!(1));
    assert!(d["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    for k in [
        "timestamp",
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
    ] {
        let _ = time(&d[k]);
    }

    // The same error again aggregates; defaults apply (level error, environment production).
    let r = app
        .send(els(&app, Method::POST, "/api/errors").json(&json!({"message": "Database connection failed", "source": "backend",
            "stack_trace": "Error: Connection timeout\n    at Database.connect(db.js:45)\n    at main(app.js:12)"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(data(&r)["id"], json!(id));
    assert_eq!(data(&r)["count"], json!(2));
    assert_eq!(data(&r)["environment"], json!("production"));
    assert_eq!(data(&r)["level"], json!("error"));

    // A frontend warning is another error.
    let r = app
        .send(
            els(&app, Method::POST, "/api/errors")
                .json(&json!({"level": "warning", "message": "slow paint", "source": "frontend"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let warn_id = s(&data(&r)["id"]);

    let r = app
        .send(els(&app, Method::GET, &format!("/api/errors/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let d = data(&r);
    assert_eq!(d["id"], json!(id));
    assert_eq!(d["count"], json!(2));
    assert_eq!(d["source"], json!("backend"));
    assert!(
        d["stack_trace"]
            .as_str()
            .is_some_and(|t| t.contains("Database.connect"))
    );

    let r = app
        .send(els(&app, Method::GET, "/api/errors?limit=20&offset=0"))
        .await;
    let d = data(&r);
    assert_eq!(d["total"], json!(2));
    assert_eq!(d["page"], json!(1));
    assert_eq!(d["limit"], json!(20));
    assert_eq!(arr(&d["errors"]).len(), 2);
    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/errors?level=error&source=backend",
        ))
        .await;
    let d = data(&r);
    assert_eq!(d["total"], json!(1), "{d}");
    assert_eq!(d["errors"][0]["id"], json!(id));
    let r = app
        .send(els(&app, Method::GET, "/api/errors?limit=1&offset=1"))
        .await;
    let d = data(&r);
    assert_eq!(
        (d["total"].clone(), d["page"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(arr(&d["errors"]).len(), 1);
    let r = app
        .send(els(&app, Method::GET, "/api/errors?source=frontend"))
        .await;
    assert_eq!(data(&r)["errors"][0]["id"], json!(warn_id));

    // Visible natively and over gRPC as the same group.
    let g = app.group(&id).await;
    assert_eq!(g["count"], json!(2));
    let got = app
        .groups_client()
        .await
        .get_group(app.req(pb::GetGroupRequest {
            group_id: id.clone(),
        }))
        .await
        .expect("gRPC GetGroup")
        .into_inner();
    assert_eq!(got.group.map(|g| g.count), Some(2));

    let r = app
        .send(els(&app, Method::PUT, &format!("/api/errors/{id}/resolve")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"data": {"status": "resolved"}, "status": "success"})
    );
    let r = app
        .send(els(&app, Method::GET, &format!("/api/errors/{id}")))
        .await;
    assert_eq!(data(&r)["resolved"], json!(true));

    let r = app
        .send(els(&app, Method::DELETE, &format!("/api/errors/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(r.text.is_empty());
    let r = app
        .send(els(&app, Method::GET, &format!("/api/errors/{id}")))
        .await;
    assert_envelope_error(&r, 404);
}

#[tokio::test]
async fn bad_input_gets_the_error_envelope() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::GET, format!("/api/errors/{unknown}")),
        (Method::PUT, format!("/api/errors/{unknown}/resolve")),
        (Method::DELETE, format!("/api/errors/{unknown}")),
    ] {
        let r = app.send(els(&app, method, &path)).await;
        assert_envelope_error(&r, 404);
    }
    for (method, path) in [
        (Method::GET, "/api/errors/not-a-uuid"),
        (Method::PUT, "/api/errors/not-a-uuid/resolve"),
        (Method::DELETE, "/api/errors/not-a-uuid"),
    ] {
        let r = app.send(els(&app, method, path)).await;
        assert_envelope_error(&r, 400);
    }
    // Missing source, bad level, malformed JSON.
    let r = app
        .send(els(&app, Method::POST, "/api/errors").json(&json!({"message": "x"})))
        .await;
    assert_envelope_error(&r, 400);
    assert_eq!(r.body["details"][0]["field"], json!("source"), "{}", r.text);
    let r = app
        .send(
            els(&app, Method::POST, "/api/errors")
                .json(&json!({"message": "x", "source": "api", "level": "loud"})),
        )
        .await;
    assert_envelope_error(&r, 400);
    let r = app
        .send(
            els(&app, Method::POST, "/api/errors")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_envelope_error(&r, 400);
    for q in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "offset=-1",
        "level=loud",
    ] {
        let r = app
            .send(els(&app, Method::GET, &format!("/api/errors?{q}")))
            .await;
        assert_envelope_error(&r, 400);
    }
    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/analytics/trends?period=decade",
        ))
        .await;
    assert_envelope_error(&r, 400);
    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/analytics/trends?group_by=minute",
        ))
        .await;
    assert_envelope_error(&r, 400);
    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/monitoring/metrics?timeframe=2h",
        ))
        .await;
    assert_envelope_error(&r, 400);
    // Every route but /health needs the key.
    for path in [
        "/api/errors",
        "/api/stats",
        "/api/analytics/trends",
        "/api/analytics/performance",
        "/api/monitoring/services",
        "/api/monitoring/metrics",
        "/api/monitoring/uptime",
    ] {
        let r = app.send(app.anon(Method::GET, path)).await;
        assert_envelope_error(&r, 401);
    }
}

#[tokio::test]
async fn stats_and_trends_come_from_stored_events() {
    let app = spawn_app().await;
    let r = app.send(els(&app, Method::GET, "/api/stats")).await;
    let d = data(&r).clone();
    assert_eq!(d["total_errors"], json!(0));
    assert_eq!(d["avg_resolution_time"], Value::Null);

    for i in 0..3 {
        let r = app
            .send(els(&app, Method::POST, "/api/errors").json(&json!({"message": format!("failure number {i}"), "source": "api", "stack_trace": format!("Error: e{i}\n    at f{i}(x{i}.js:1)")})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let fatal = app
        .capture(json!({"exception": {"type": "Crash", "message": "down"}, "level": "fatal"}))
        .await;
    app.post_ok(
        &format!("/v1/errors/resolve/{}", s(&fatal["group_id"])),
        &json!({}),
    )
    .await;

    // The cache is dropped on writes: the new figures show at once.
    let r = app.send(els(&app, Method::GET, "/api/stats")).await;
    let d = data(&r);
    assert_eq!(d["total_errors"], json!(4), "{d}");
    assert_eq!(d["resolved_errors"], json!(1));
    assert_eq!(d["errors_today"], json!(4));
    assert_eq!(d["errors_this_week"], json!(4));
    assert_eq!(d["errors_this_month"], json!(4));
    assert_eq!(d["resolution_rate"], json!(25.0));
    // 4 events in the last 24 hours.
    assert_eq!(d["error_rate_24h"], json!(round2(4.0 / 24.0)));
    assert!(
        d["avg_resolution_time"]
            .as_str()
            .is_some_and(|t| t.ends_with('s') || t.ends_with('m')),
        "{d}"
    );

    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/analytics/trends?period=week&group_by=day",
        ))
        .await;
    let d = data(&r);
    assert_eq!(d["period"], json!("week"));
    let points = arr(&d["data_points"]);
    assert!(points.len() >= 8, "{d}");
    let sum = |k: &str| points.iter().map(|p| n(&p[k])).sum::<u64>();
    assert_eq!(sum("error_count"), 4);
    assert_eq!(sum("resolved_count"), 1);
    assert_eq!(sum("critical_count"), 1);
    let last = points.last().unwrap();
    assert_eq!(
        n(&last["error_count"]),
        4,
        "all of today's events in today's bucket: {d}"
    );
    let _ = time(&last["timestamp"]);

    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/analytics/trends?period=day&group_by=hour",
        ))
        .await;
    let points = arr(&data(&r)["data_points"]).clone();
    assert!((24..=26).contains(&points.len()), "{}", points.len());
    assert_eq!(points.iter().map(|p| n(&p["error_count"])).sum::<u64>(), 4);

    // The same figures over gRPC.
    let channel = app.channel().await;
    let mut insights = pb::insights_service_client::InsightsServiceClient::new(channel);
    let st = insights
        .get_stats(app.req(pb::GetStatsRequest {}))
        .await
        .expect("GetStats")
        .into_inner();
    assert_eq!((st.total_errors, st.resolved_errors), (4, 1));
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[tokio::test]
async fn performance_and_monitoring_report_the_server_itself() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.send(app.anon(Method::GET, "/health")).await;
    }
    let r = app
        .send(els(&app, Method::GET, "/api/analytics/performance"))
        .await;
    let d = data(&r);
    assert!(
        d["avg_response_time"].as_f64().is_some_and(|v| v >= 0.0),
        "{d}"
    );
    assert!(
        d["throughput_rpm"].as_f64().is_some_and(|v| v >= 5.0),
        "{d}"
    );
    assert_eq!(d["error_rate_percent"], json!(0.0));
    assert_eq!(d["availability_percent"], json!(100.0));
    assert_eq!(d["performance_score"], json!(10.0));

    let r = app
        .send(els(&app, Method::GET, "/api/monitoring/services"))
        .await;
    let d = data(&r);
    assert_eq!(d["overall_health"], json!("healthy"), "{d}");
    let names: Vec<String> = arr(&d["services"])
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Database", "Ingest queue", "Ingest writer"]);
    let queue = &d["services"][1];
    assert_eq!(queue["details"]["depth"], json!(0));
    assert!(n(&queue["details"]["capacity"]) > 0);
    let _ = time(&d["services"][0]["last_checked"]);

    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/monitoring/metrics?timeframe=24h",
        ))
        .await;
    let d = data(&r);
    assert_eq!(d["timeframe"], json!("24h"));
    for k in [
        "cpu_usage_percent",
        "memory_usage_percent",
        "disk_usage_percent",
    ] {
        let v = d[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {d}"));
        assert!((0.0..=100.0).contains(&v), "{k}={v}");
    }
    assert!(d["memory_usage_percent"].as_f64().unwrap() > 0.0);
    assert!(d["disk_usage_percent"].as_f64().unwrap() > 0.0);
    assert!(n(&d["process_rss_bytes"]) > 1_000_000);
    assert!(
        n(&d["active_connections"]) >= 1,
        "this request is in flight: {d}"
    );
    assert!(d["requests_per_minute"].as_f64().unwrap() >= 6.0, "{d}");
    assert!(d["network_io"]["bytes_in"].is_u64());

    let r = app
        .send(els(&app, Method::GET, "/api/monitoring/uptime"))
        .await;
    let d = data(&r);
    assert_eq!(d["uptime_percent_24h"], json!(100.0), "{d}");
    assert_eq!(d["incidents_count"], json!(0));
    assert_eq!(d["last_downtime"], Value::Null);
    assert!(d["current_uptime_hours"].as_f64().is_some_and(|h| h < 1.0));
}

#[tokio::test]
async fn uptime_counts_the_time_between_two_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_database_url().await;
    let first = spawn_app_on(db.clone(), dir.path()).await;
    let key = first.key.clone();
    first.stop().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut second = spawn_app_on(db, dir.path()).await;
    second.key = key;
    let r = second
        .send(els(&second, Method::GET, "/api/monitoring/uptime"))
        .await;
    let d = data(&r);
    assert_eq!(d["incidents_count"], json!(1), "{d}");
    let down = time(&d["last_downtime"]);
    assert!(chrono::Utc::now() - down < chrono::Duration::minutes(1));
    let pct = d["uptime_percent_24h"].as_f64().unwrap();
    assert!(pct < 100.0 && pct > 0.0, "{d}");
}

#[tokio::test]
async fn health_is_degraded_when_the_database_is_gone() {
    let app = spawn_app().await;
    match &app.database_url {
        Some(url) => {
            // Drop the database from under the server (FORCE ends its connections).
            use sea_orm::ConnectionTrait;
            let name = url.rsplit('/').next().unwrap().to_owned();
            let admin = url.replace(&format!("/{name}"), "/postgres");
            let conn = sea_orm::Database::connect(admin).await.expect("connect");
            conn.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await
                .expect("drop the test database");
        }
        None => {
            // Replace the SQLite file by one that is not a database.
            let db = app.data_dir.join("faultline.db");
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(app.data_dir.join(format!("faultline.db{ext}")));
            }
            std::fs::remove_file(&db).expect("remove the database file");
            std::fs::create_dir(&db).expect("a directory where the file was");
        }
    }
    let r = app.send(app.anon(Method::GET, "/health")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["status"], json!("degraded"));
    let _ = time(&r.body["timestamp"]);
}

#[tokio::test]
async fn an_ingest_only_caller_gets_what_the_capture_told() {
    let app = spawn_app().await;
    let (st, b) = app
        .put(
            "/v1/errors/ingest_policy/set",
            &json!({"anonymous_loopback_ingest": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // Keyless from loopback: may store, may not read the group back.
    let r = app
        .send(
            app.anon(Method::POST, "/api/errors")
                .json(&documented_error()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let d = data(&r);
    let id = uuid_str(&d["id"]);
    assert_eq!(d["message"], json!("Database connection failed"));
    assert!(d["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));
    assert_eq!(app.group(&id).await["count"], json!(1));
    let r = app
        .send(app.anon(Method::GET, &format!("/api/errors/{id}")))
        .await;
    assert_envelope_error(&r, 401);
}

#[tokio::test]
async fn insights_over_grpc_agree_with_rest() {
    let app = spawn_app().await;
    let r = app
        .send(els(&app, Method::POST, "/api/errors").json(&documented_error()))
        .await;
    let id = s(&data(&r)["id"]);
    let mut insights = pb::insights_service_client::InsightsServiceClient::new(app.channel().await);
    // Health needs no key.
    let h = insights
        .get_health(tonic::Request::new(pb::GetHealthRequest {}))
        .await
        .expect("GetHealth")
        .into_inner();
    assert_eq!((h.status.as_str(), h.database_ok), ("ok", true));
    let page = insights
        .query_groups(app.req(pb::QueryGroupsRequest {
            limit: 10,
            offset: 0,
            level: pb::Level::Error as i32,
            source: "backend".into(),
        }))
        .await
        .expect("QueryGroups")
        .into_inner();
    assert_eq!(page.total, 1);
    assert_eq!(page.groups[0].id, id);
    let st = insights
        .query_groups(app.req(pb::QueryGroupsRequest {
            limit: 101,
            ..Default::default()
        }))
        .await
        .expect_err("limit above 100");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("limit"),
    );
    let st = insights
        .get_stats(tonic::Request::new(pb::GetStatsRequest {}))
        .await
        .expect_err("no key");
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    let t = insights
        .get_trends(app.req(pb::GetTrendsRequest {
            period: "day".into(),
            group_by: "hour".into(),
        }))
        .await
        .expect("GetTrends")
        .into_inner();
    assert_eq!(t.data_points.iter().map(|p| p.error_count).sum::<u64>(), 1);
    let u = insights
        .get_uptime(app.req(pb::GetUptimeRequest {}))
        .await
        .expect("GetUptime")
        .into_inner();
    assert_eq!(u.incidents_count, 0);
}

/// Refusals made before a route's handler runs (the rate limit, the body limit, an unknown
/// path under the API) answer in this API's envelope too, not in the native one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_handler_use_the_envelope() {
    let app = spawn_app_with(|c| {
        c.limits.rate.analytics_per_minute = 1;
        c.body_limit = 4096;
    })
    .await;
    let trends = || els(&app, Method::GET, "/api/analytics/trends?period=week");
    assert_eq!(app.send(trends()).await.status, StatusCode::OK);
    let r = app.send(trends()).await;
    assert_envelope_error(&r, 429);
    assert_eq!(r.body["code"], json!("RATE_LIMITED"), "{}", r.text);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);

    let huge = json!({"message": "x".repeat(8192), "source": "backend"});
    let r = app
        .send(els(&app, Method::POST, "/api/errors").json(&huge))
        .await;
    assert_envelope_error(&r, 413);

    let r = app
        .send(els(&app, Method::GET, "/api/errors/1/unknown"))
        .await;
    assert_envelope_error(&r, 404);

    // The native API keeps its own format.
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/capture").json(&huge))
        .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE", "POST", "/v1/errors/capture");
}
