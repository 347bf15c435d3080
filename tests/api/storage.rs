//! How events are laid out in the database.

use serde_json::{Value, json};

use crate::helpers::*;

/// The size of the events table's TOAST relation on PostgreSQL (`None` on SQLite, which has
/// no such thing).
async fn toast_bytes(app: &TestApp) -> Option<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let url = app.database_url.as_deref()?;
    let db = sea_orm::Database::connect(url).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_relation_size(reltoastrelid) AS n FROM pg_class WHERE relname = 'events'",
        ))
        .await
        .expect("query")
        .expect("the events table");
    let n: i64 = row.try_get("", "n").expect("a size");
    db.close().await.expect("close");
    Some(n)
}

/// Text that compresses poorly, like a long stack dump of ids.
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x % 16) as usize])
        })
        .collect()
}

fn event_with(text: &str) -> Value {
    json!({
        "platform": "python",
        "message": format!("checkout failed: {text}"),
        "exception": {"type": "ValueError", "message": text, "stacktrace": [
            {"module": "shop.views", "function": "checkout", "filename": "shop/views.py", "lineno": 12, "in_app": true},
            {"module": "shop.pricing", "function": "parse_price", "filename": "shop/pricing.py", "lineno": 40, "in_app": true}
        ]},
        "tags": {"region": "eu"}
    })
}

/// On PostgreSQL a usual event (a few KB) is stored whole in its row, with no compression
/// attempt and nothing written to the TOAST table; a large one is still moved out of line. On
/// both databases both read back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usual_events_stay_in_their_row_and_large_ones_read_back_whole() {
    let app = spawn_app().await;
    let small_text = noise(1500);
    let small = app.capture(event_with(&small_text)).await;
    if let Some(n) = toast_bytes(&app).await {
        assert_eq!(n, 0, "a 3 KB event went to the TOAST table");
    }
    let large_text = noise(30_000);
    let large = app.capture(event_with(&large_text)).await;
    if let Some(n) = toast_bytes(&app).await {
        assert!(n > 0, "a 60 KB event stayed in its row");
    }
    for (id, text) in [
        (&small["event_id"], &small_text),
        (&large["event_id"], &large_text),
    ] {
        let e = app.event(id.as_str().expect("an event id")).await;
        assert_eq!(e["exception"]["value"].as_str(), Some(text.as_str()));
        assert_eq!(
            e["message"].as_str(),
            Some(format!("checkout failed: {text}").as_str())
        );
    }
}

/// NUL (`\u0000` in JSON) in an event's text is stored as U+FFFD in the text the event is
/// listed, searched and counted by, on both databases; the payload keeps the original.
/// PostgreSQL text cannot hold NUL: such an event failed, alone too, and its client got 503
/// "retry" for an event that could never be stored. In a batch it sinks nothing else.
/// Elsewhere, NUL that PostgreSQL refuses is the request's fault (422), not the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_event_text_is_stored_as_a_replacement_character() {
    let app = spawn_app().await;
    let sent = json!({
        "message": "bad\u{0}byte in checkout",
        "exception": {"type": "Value\u{0}Error", "message": "bad\u{0}byte", "stacktrace": [
            {"module": "shop\u{0}views", "function": "check\u{0}out", "filename": "shop/views.py", "lineno": 12, "in_app": true}
        ]},
        "tags": {"re\u{0}gion": "e\u{0}u"},
        "user_id": "user\u{0}17",
        "release": "shop@1\u{0}",
        "environment": "prod\u{0}",
    });
    let first = app.capture(sent.clone()).await;

    let e = app.event(&s(&first["event_id"])).await;
    assert_eq!(e["message"], json!("bad\u{FFFD}byte in checkout"));
    assert_eq!(e["tags"], json!({"re\u{FFFD}gion": "e\u{FFFD}u"}));
    assert_eq!(e["user_id"], json!("user\u{FFFD}17"));
    assert_eq!(e["release"], json!("shop@1\u{FFFD}"));
    assert_eq!(e["environment"], json!("prod\u{FFFD}"));
    assert_eq!(e["payload"], sent, "the payload is kept as sent");
    let found = app.list_all("q=bad%EF%BF%BDbyte").await;
    assert_eq!(ids(&found), vec![s(&first["event_id"])]);

    // An idempotency key holding NUL still finds its first event.
    let message = json!({"text": "nightly\u{0}sync", "idempotency_key": "sync\u{0}1"});
    let m = app.message(message.clone()).await;
    let again = app.message(message).await;
    assert_eq!(again["duplicate"], json!(true), "{again}");
    assert_eq!(again["event_id"], m["event_id"]);

    // One such event among others in a batch: all are stored, each once.
    let mut events: Vec<Value> = (0..5)
        .map(|i| json!({"message": format!("order {i} failed")}))
        .collect();
    events.insert(2, json!({"message": "nul\u{0}in a batch"}));
    let (status, body) = app
        .post("/v1/errors/capture/batch", &json!({"events": events}))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = arr(&body["results"]);
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r["ok"] == json!(true)), "{body}");
    assert_eq!(app.list_all("").await.len(), 8);

    // Other text PostgreSQL cannot store is refused as invalid, not a 500 (SQLite stores it).
    if app.database_url.is_some() {
        let (status, body) = app
            .post("/v1/projects/create", &json!({"name": "shop\u{0}eu"}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], json!("VALIDATION_ERROR"), "{body}");
    }
}

/// An event the database refuses does not sink the others it was batched with: the writer
/// commits them one by one, the refused one is answered "retry" (503 semantics), and no part
/// of it is stored. A trigger refuses the event whose message is "poison".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_sinks_nothing_else_in_its_batch() {
    let app = spawn_app().await;
    let triggers: &[&str] = if app.database_url.is_some() {
        &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.message = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW \
             EXECUTE FUNCTION refuse_poison()",
        ]
    } else {
        &["CREATE TRIGGER refuse_poison BEFORE INSERT ON events \
           WHEN NEW.message = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"]
    };
    app.run_sql(triggers).await;

    let messages = [
        "order 1 failed",
        "order 2 failed",
        "poison",
        "order 3 failed",
    ];
    let stored = capture_batch_refusing(&app, &messages, "poison").await;
    assert_eq!(
        stored,
        ["order 1 failed", "order 2 failed", "order 3 failed"]
    );
    // The refused event left no group behind either.
    let groups = app.get_ok("/v1/errors/groups").await;
    let total: u64 = arr(&groups["groups"]).iter().map(|g| n(&g["count"])).sum();
    assert_eq!(total, 3, "{groups}");
}

/// The same when the event breaks a constraint rather than meeting a trigger: on SQLite the
/// writer's inserts end the whole transaction at the first broken constraint (`OR ROLLBACK`,
/// no statement journal), so what the batch wrote before it, its group rows among them, must
/// be gone too before the events are committed one by one. A unique index admits one event
/// whose message is "only once".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_breaking_a_constraint_sinks_nothing_else_in_its_batch() {
    let app = spawn_app().await;
    app.run_sql(&[
        "CREATE UNIQUE INDEX only_once ON events (project_id) WHERE message = 'only once'",
    ])
    .await;

    let (status, body) = app
        .post("/v1/errors/capture", &json!({"message": "only once"}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Its group first, so that the batch updates that group's row before the event fails.
    let messages = [
        "only once",
        "order 1 failed",
        "order 2 failed",
        "order 3 failed",
    ];
    let stored = capture_batch_refusing(&app, &messages, "only once").await;
    assert_eq!(
        stored,
        [
            "only once",
            "order 1 failed",
            "order 2 failed",
            "order 3 failed"
        ]
    );
    // Every group counts only the events stored.
    let groups = app.get_ok("/v1/errors/groups").await;
    let mut counts: Vec<(String, u64)> = arr(&groups["groups"])
        .iter()
        .map(|g| (s(&g["title"]), n(&g["count"])))
        .collect();
    counts.sort();
    let total: u64 = counts.iter().map(|(_, c)| c).sum();
    assert_eq!(total, 4, "{groups}");
    assert!(counts.contains(&("only once".to_owned(), 1)), "{counts:?}");
}

/// Captures `messages` in one batch, checks that only the event whose message is `refused`
/// was answered "retry" (503 semantics), and returns the messages stored, sorted.
async fn capture_batch_refusing(app: &TestApp, messages: &[&str], refused: &str) -> Vec<String> {
    let events: Vec<Value> = messages.iter().map(|m| json!({"message": m})).collect();
    let (status, body) = app
        .post("/v1/errors/capture/batch", &json!({"events": events}))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = arr(&body["results"]);
    assert_eq!(results.len(), messages.len(), "{body}");
    for (m, r) in messages.iter().zip(results) {
        if *m == refused {
            assert_eq!(r["ok"], json!(false), "{body}");
            assert_eq!(r["error"]["code"], json!("SERVICE_UNAVAILABLE"), "{body}");
        } else {
            assert_eq!(r["ok"], json!(true), "{m}: {body}");
        }
    }
    stored_messages(app).await
}

/// Captures that arrive within `commit_interval` of a commit's start wait for the rest of it
/// and are committed together, in one transaction; the writer's counters (the monitoring
/// services' "Ingest writer") show the commits.
#[tokio::test]
async fn captures_within_the_commit_interval_are_committed_together() {
    use faultline::pb;
    use std::time::{Duration, Instant};
    const INTERVAL: Duration = Duration::from_millis(600);
    let app = spawn_app_with(|c| c.ingest.commit_interval = INTERVAL).await;

    let started = Instant::now();
    // The writer has not committed yet, so this one is committed at once.
    app.capture_text("the first").await;
    let first = started.elapsed();
    let three = futures::future::join3(
        app.capture_text("the second"),
        app.capture_text("the third"),
        app.capture_text("the fourth"),
    );
    three.await;
    let all = started.elapsed();
    assert!(
        all >= INTERVAL,
        "the next commit started {all:?} after the first capture was sent ({first:?} to answer it), within the {INTERVAL:?} interval"
    );

    let mut insights = pb::insights_service_client::InsightsServiceClient::new(app.channel().await);
    let services = insights
        .get_services(app.req(pb::GetServicesRequest {}))
        .await
        .expect("GetServices")
        .into_inner()
        .services;
    let writer = services
        .iter()
        .find(|s| s.name == "Ingest writer")
        .expect("the writer's health");
    assert_eq!(writer.details["committed"], 4, "{writer:?}");
    assert_eq!(writer.details["batches"], 2, "{writer:?}");
}

/// Migration 14 removes what deleted projects left behind (integrations with their
/// credentials, policies, group keys) and keeps what live projects have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_removes_rows_of_deleted_projects() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{
        ConnectionTrait, Database,
        sea_query::{Alias, Query},
    };
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let app = spawn_app_on(database_url.clone(), dir.path()).await;
    let key = app.key.clone();
    let r = app
        .send(
            app.authed(reqwest::Method::PUT, "/api/settings/integrations/webhook")
                .json(&json!({"config": {"url": "https://example.com/live"}})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let url = app.db_url();
    app.stop().await;

    let db = Database::connect(url.as_str()).await.expect("connect");
    // Back to before migration 14, however many came after it.
    let steps = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261206_000014_alerts")
        .expect("migration 14 is known")
        + 1;
    Migrator::down(&db, Some(steps as u32))
        .await
        .expect("roll back to before migration 14");
    // What an earlier version's project deletion left: rows of a project that is gone.
    let gone = uuid::Uuid::new_v4();
    let now = chrono::Utc::now().timestamp_millis();
    let orphans = [
        Query::insert()
            .into_table(Alias::new("integrations"))
            .columns(
                [
                    "project_id",
                    "name",
                    "config",
                    "status",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                gone.into(),
                "slack".into(),
                "{}".into(),
                "configured".into(),
                now.into(),
                now.into(),
            ])
            .to_owned(),
        Query::insert()
            .into_table(Alias::new("project_settings"))
            .columns(
                [
                    "project_id",
                    "scrub_fields",
                    "allowed_origins",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([gone.into(), "[]".into(), "[]".into(), now.into()])
            .to_owned(),
        Query::insert()
            .into_table(Alias::new("group_hashes"))
            .columns(["project_id", "hash", "group_id", "grouping_version"].map(Alias::new))
            .values_panic([
                gone.into(),
                "0123456789abcdef0123456789abcdef".into(),
                gone.into(),
                2.into(),
            ])
            .to_owned(),
    ];
    for stmt in &orphans {
        db.execute(stmt).await.expect("insert a left-behind row");
    }
    let count = |table: &'static str| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT COUNT(*) AS n FROM {table}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    assert_eq!(count("integrations").await, 2);
    assert_eq!(count("project_settings").await, 1);
    assert_eq!(count("group_hashes").await, 1);
    Migrator::up(&db, None).await.expect("migrate up again");
    assert_eq!(
        count("integrations").await,
        1,
        "the live project's channel stays"
    );
    assert_eq!(count("project_settings").await, 0);
    assert_eq!(count("group_hashes").await, 0);
    db.close().await.expect("close");

    let mut again = spawn_app_on(database_url, dir.path()).await;
    again.key = key;
    let r = again
        .send(again.authed(reqwest::Method::GET, "/api/settings/integrations"))
        .await;
    assert_eq!(arr(&r.body["data"]["integrations"]).len(), 1, "{}", r.text);
}

/// Migration 18 orders the releases already stored by their first event's arrival, so that
/// resolving in the next release after an upgrade names the latest of them, and a restarted
/// server keeps that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_orders_the_releases_already_stored() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database};
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let app = spawn_app_on(database_url.clone(), dir.path()).await;
    let key = app.key.clone();
    let mut group = String::new();
    for release in ["web@1", "web@2", "web@1"] {
        let r = app
            .capture(json!({"message": "checkout failed", "release": release}))
            .await;
        group = r["group_id"].as_str().unwrap().to_owned();
    }
    let url = app.db_url();
    app.stop().await;

    let db = Database::connect(url.as_str()).await.expect("connect");
    let rows = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "v").unwrap(),
                    r.try_get::<i64>("", "t").unwrap(),
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let first_events = rows(
        r#"SELECT "release" AS v, MIN("received_at") AS t FROM "events" GROUP BY "release" ORDER BY 2, 1"#,
    )
    .await;
    assert_eq!(first_events.len(), 2, "{first_events:?}");
    let steps = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261207_000018_release_order")
        .expect("migration 18 is known")
        + 1;
    Migrator::down(&db, Some(steps as u32))
        .await
        .expect("roll back to before migration 18");
    Migrator::up(&db, None).await.expect("migrate up again");
    let releases =
        rows(r#"SELECT "version" AS v, "first_seen" AS t FROM "releases" ORDER BY 2, 1"#).await;
    assert_eq!(releases, first_events);
    assert_eq!(releases[1].0, "web@2");
    // Migration 22 (rolled back and made again with the others) gives the group the release
    // of its first event.
    let firsts = rows(r#"SELECT "first_release" AS v, "times_seen" AS t FROM "groups""#).await;
    assert_eq!(firsts, [("web@1".to_owned(), 3)]);
    db.close().await.expect("close");

    let mut again = spawn_app_on(database_url, dir.path()).await;
    again.key = key;
    let r = again
        .post_ok(
            &format!("/v1/errors/resolve/{group}"),
            &json!({"in_next_release": true}),
        )
        .await;
    assert_eq!(r["resolved_in_release"], json!("web@2"), "{r}");
    // This server has not seen web@1 yet: it reads when web@1 was first seen (it does not
    // record it as new), so the older deploy leaves the issue resolved; web@3 reopens it.
    let old = json!({"message": "checkout failed", "release": "web@1"});
    again.capture(old).await;
    let g = again.group(&group).await;
    assert_eq!(
        (&g["status"], &g["resolved_in_release"]),
        (&json!("resolved"), &json!("web@2")),
        "{g}"
    );
    let next = json!({"message": "checkout failed", "release": "web@3"});
    again.capture(next).await;
    assert_eq!(again.group(&group).await["status"], json!("unresolved"));
}
