//! Two servers on one database, capturing the same error at once: one group, every event counted.

use std::collections::HashSet;

use faultline::pb;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

const TASKS_PER_SERVER: usize = 4;
const CAPTURES_PER_TASK: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_one_database_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let a = spawn_app_on(database_url.clone(), dir.path()).await;
    assert!(!a.key.is_empty(), "the first server bootstrapped a key");
    let mut b = spawn_app_on(database_url.clone(), dir.path()).await;
    b.key = a.key.clone();
    assert_ne!(a.addr, b.addr);

    let body = json!({"message": "Inventory sync failed for warehouse 17", "stack": crate::rest::PY_TRACE, "tags": {"svc": "inventory"}});
    let mut tasks = Vec::new();
    for (si, app) in [&a, &b].into_iter().enumerate() {
        for t in 0..TASKS_PER_SERVER {
            let client = app.client.clone();
            let url = app.url("/v1/errors/capture");
            let key = app.key.clone();
            let body = body.clone();
            let use_grpc = t % 2 == 1;
            let grpc = if use_grpc {
                Some(app.capture_client().await)
            } else {
                None
            };
            let req_key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..CAPTURES_PER_TASK {
                    if let Some(mut c) = grpc.clone() {
                        let mut r = tonic::Request::new(pb::CaptureRequest {
                            message: "Inventory sync failed for warehouse 17".into(),
                            stack: crate::rest::PY_TRACE.into(),
                            tags: [("svc".to_owned(), "inventory".to_owned())].into(),
                            ..Default::default()
                        });
                        r.metadata_mut().insert(
                            "authorization",
                            format!("Bearer {req_key}").parse().unwrap(),
                        );
                        let resp = c
                            .capture(r)
                            .await
                            .unwrap_or_else(|e| {
                                panic!("server {si} task {t} gRPC capture {i}: {e:?}")
                            })
                            .into_inner();
                        out.push((resp.event_id, resp.group_id));
                    } else {
                        let r = client
                            .post(&url)
                            .bearer_auth(&key)
                            .json(&body)
                            .send()
                            .await
                            .unwrap_or_else(|e| panic!("server {si} task {t} capture {i}: {e:?}"));
                        let status = r.status();
                        let text = r.text().await.unwrap();
                        assert_eq!(
                            status.as_u16(),
                            200,
                            "server {si} task {t} capture {i}: {text}"
                        );
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        out.push((s(&v["event_id"]), s(&v["group_id"])));
                    }
                }
                out
            }));
        }
    }
    let mut event_ids = HashSet::new();
    let mut group_ids = HashSet::new();
    for t in tasks {
        for (e, g) in t.await.expect("capture task") {
            event_ids.insert(e);
            group_ids.insert(g);
        }
    }
    let total = 2 * TASKS_PER_SERVER * CAPTURES_PER_TASK;
    assert_eq!(event_ids.len(), total, "every capture got its own event id");
    assert_eq!(
        group_ids.len(),
        1,
        "every capture was acknowledged with one group: {group_ids:?}"
    );

    for app in [&a, &b] {
        let r = app.send(app.authed(Method::GET, "/v1/errors/groups")).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        let groups = arr(&r.body["groups"]);
        assert_eq!(
            groups.len(),
            1,
            "exactly one group, seen from {}: {}",
            app.base_url,
            r.text
        );
        assert_eq!(
            n(&groups[0]["count"]),
            total as u64,
            "group count seen from {}",
            app.base_url
        );
        assert_eq!(group_ids.iter().next().unwrap(), &s(&groups[0]["id"]));
    }
    let listed: HashSet<String> = ids(&a.list_all("").await).into_iter().collect();
    assert_eq!(
        listed, event_ids,
        "the listing holds exactly the acknowledged events"
    );
    let detail = b.group(group_ids.iter().next().unwrap()).await;
    assert_eq!(n(&detail["count"]), total as u64);
    assert_eq!(detail["top_tags"][0]["count"], json!(total));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_sent_to_two_servers_at_once_stores_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let a = spawn_app_on(database_url.clone(), dir.path()).await;
    let mut b = spawn_app_on(database_url.clone(), dir.path()).await;
    b.key = a.key.clone();
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let key = format!("dual-{round}");
        let send = |app: &TestApp, body: serde_json::Value| {
            let rb = app.authed(Method::POST, "/v1/errors/message").json(&body);
            async move {
                let r = rb.send().await.expect("request");
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
        };
        let keyed = json!({"text": "dual delivery", "idempotency_key": key});
        let other = json!({"text": format!("bystander {round}")});
        let results = futures::future::join_all([
            send(&a, keyed.clone()),
            send(&b, keyed.clone()),
            send(&a, other.clone()),
            send(&b, other.clone()),
        ])
        .await;
        let what = [
            "keyed message to server A",
            "keyed message to server B",
            "unrelated message to server A",
            "unrelated message to server B",
        ];
        let failed: Vec<String> = results
            .iter()
            .zip(what)
            .filter(|((status, _), _)| *status != 200)
            .map(|((status, text), w)| format!("{w}: HTTP {status} {text}"))
            .collect();
        assert!(
            failed.is_empty(),
            "round {round}: {} of 4 concurrent messages failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|(_, t)| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(
            v[0]["event_id"], v[1]["event_id"],
            "round {round}: one key, one event: {v:?}"
        );
        assert_eq!(
            [&v[0], &v[1]]
                .iter()
                .filter(|x| x["duplicate"] == json!(false))
                .count(),
            1,
            "round {round}: exactly one original: {v:?}"
        );
    }
    let all = a.list_all("").await;
    assert_eq!(
        all.len(),
        ROUNDS * 3,
        "one keyed event and two bystanders per round"
    );
    b.stop().await;
    a.stop().await;
}

/// Two servers on one database receive variants of one error at once: half of them mark a
/// frame as library code, so their in-app keys differ while every event shares the full-stack
/// key. Whichever server records that key first makes the group; the other joins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_overlapping_keys_one_group() {
    const PER_TASK: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let a = spawn_app_on(database_url.clone(), dir.path()).await;
    let mut b = spawn_app_on(database_url.clone(), dir.path()).await;
    b.key = a.key.clone();

    let body = |helper_in_app: bool| {
        json!({"platform": "python", "exception": {"type": "KeyError", "message": "'sku'", "stacktrace": [
            {"module": "flask.app", "function": "dispatch_request", "in_app": false, "context_line": "return view()"},
            {"module": "shop.views", "function": "cart", "in_app": true, "context_line": "add(item)"},
            {"module": "shop.helpers", "function": "add", "in_app": helper_in_app, "context_line": "cart[k] += 1"},
        ]}})
    };
    let mut tasks = Vec::new();
    for (si, app) in [&a, &b].into_iter().enumerate() {
        for t in 0..TASKS_PER_SERVER {
            let client = app.client.clone();
            let url = app.url("/v1/errors/capture");
            let key = app.key.clone();
            let bodies = [body(true), body(false)];
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..PER_TASK {
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&bodies[(i + t + si) % 2])
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("server {si} task {t} capture {i}: {e:?}"));
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap();
                    assert_eq!(status, 200, "server {si} task {t} capture {i}: {text}");
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    out.push(s(&v["group_id"]));
                }
                out
            }));
        }
    }
    let mut group_ids = HashSet::new();
    for t in tasks {
        group_ids.extend(t.await.expect("capture task"));
    }
    assert_eq!(group_ids.len(), 1, "one group: {group_ids:?}");
    let groups = a.get_ok("/v1/errors/groups").await;
    let groups = arr(&groups["groups"]);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        n(&groups[0]["count"]),
        (2 * TASKS_PER_SERVER * PER_TASK) as u64
    );
    b.stop().await;
    a.stop().await;
}

/// Starts `tasks` tasks that each capture `captures` events over REST, taking `bodies` in
/// turn, and require 200 for each; every task ends with the event ids it was answered.
fn capture_from_tasks(
    app: &TestApp,
    tasks: usize,
    captures: usize,
    bodies: &[serde_json::Value],
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..tasks)
        .map(|t| {
            let (client, url, key) = (
                app.client.clone(),
                app.url("/v1/errors/capture"),
                app.key.clone(),
            );
            let bodies = bodies.to_vec();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..captures {
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&bodies[(t + i) % bodies.len()])
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("task {t} capture {i}: {e:?}"));
                    let status = r.status();
                    let text = r.text().await.unwrap();
                    assert_eq!(status.as_u16(), 200, "task {t} capture {i}: {text}");
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    acked.push(s(&v["event_id"]));
                }
                acked
            })
        })
        .collect()
}

/// Two issues of one event each, and the bodies that make them: (event id, group id) each.
async fn two_issues(app: &TestApp) -> ([serde_json::Value; 2], Vec<(String, String)>) {
    let bodies = [
        json!({"exception": {"type": "KeyError", "message": "'cart'"}}),
        json!({"exception": {"type": "LookupError", "message": "no cart"}}),
    ];
    let mut seeded = Vec::new();
    for body in &bodies {
        let b = app.capture(body.clone()).await;
        seeded.push((s(&b["event_id"]), s(&b["group_id"])));
    }
    (bodies, seeded)
}

/// Merges the two issues of `two_issues`; the id of the one kept.
async fn merge_both(app: &TestApp, seeded: &[(String, String)]) -> String {
    let r = app
        .post_ok(
            "/v1/errors/merge",
            &json!({"error_group_ids": [seeded[0].1, seeded[1].1]}),
        )
        .await;
    s(&r["error_group"]["id"])
}

/// Captures into two groups while they are merged: every capture is answered 200, every
/// acknowledged event is stored in the one group left, and its count adds up (on either
/// database; on PostgreSQL a batch that had looked up the merged group before the merge
/// committed used to make it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_while_capturing_loses_nothing() {
    const TASKS: usize = 4;
    const CAPTURES: usize = 40;
    let app = spawn_app().await;
    let (bodies, seeded) = two_issues(&app).await;
    let tasks = capture_from_tasks(&app, TASKS, CAPTURES, &bodies);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let kept = merge_both(&app, &seeded).await;
    let mut acked: HashSet<String> = seeded.iter().map(|(e, _)| e.clone()).collect();
    for t in tasks {
        acked.extend(t.await.expect("capture task"));
    }
    assert_eq!(acked.len(), 2 + TASKS * CAPTURES);
    let listed: HashSet<String> = ids(&app.list_all("").await).into_iter().collect();
    assert_eq!(
        listed, acked,
        "the listing holds exactly the acknowledged events"
    );
    let groups = app.get_ok("/v1/errors/groups").await;
    let total: u64 = arr(&groups["groups"]).iter().map(|g| n(&g["count"])).sum();
    assert_eq!(total, acked.len() as u64, "{groups}");
    assert_eq!(
        arr(&groups["groups"]).len(),
        1,
        "a batch counting into a group as it was merged did not make it again: {groups}"
    );
    // Later events of either kind join the kept group.
    for body in &bodies {
        assert_eq!(s(&app.capture(body.clone()).await["group_id"]), kept);
    }
}

/// Captures of two issues into one merged group while one issue's keys are unmerged: every
/// capture is answered 200 and stored once, and afterwards each issue's events are all in its
/// own group, whose count is its events: none that arrived during the unmerge was left behind
/// (on PostgreSQL a batch whose look-up waited for the unmerge still read the moved keys as the
/// old group's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmerge_while_capturing_splits_every_event() {
    const TASKS: usize = 4;
    const CAPTURES: usize = 40;
    let app = spawn_app().await;
    let (bodies, seeded) = two_issues(&app).await;
    let moving = event_keys(&app, &seeded[1].0).await;
    let kept = merge_both(&app, &seeded).await;
    let tasks = capture_from_tasks(&app, TASKS, CAPTURES, &bodies);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let r = app
        .post_ok(
            &format!("/v1/errors/unmerge/{kept}"),
            &json!({"hashes": moving}),
        )
        .await;
    let new = s(&r["new_error_group"]["id"]);
    let mut acked: HashSet<String> = seeded.iter().map(|(e, _)| e.clone()).collect();
    for t in tasks {
        acked.extend(t.await.expect("capture task"));
    }
    assert_eq!(acked.len(), 2 + TASKS * CAPTURES);
    let listed = app.list_all("").await;
    assert_eq!(
        ids(&listed).into_iter().collect::<HashSet<_>>(),
        acked,
        "the listing holds exactly the acknowledged events"
    );
    let mut per_group: std::collections::HashMap<String, u64> = Default::default();
    for e in &listed {
        let want = if e["exception"]["type"] == json!("LookupError") {
            &new
        } else {
            &kept
        };
        assert_eq!(&s(&e["group_id"]), want, "{e}");
        *per_group.entry(s(&e["group_id"])).or_default() += 1;
    }
    let groups = app.get_ok("/v1/errors/groups").await;
    assert_eq!(arr(&groups["groups"]).len(), 2, "{groups}");
    for g in arr(&groups["groups"]) {
        assert_eq!(
            Some(&n(&g["count"])),
            per_group.get(&s(&g["id"])),
            "{groups}"
        );
    }
}

/// Captures into a group while it is deleted: every capture is answered 200, and afterwards
/// every stored event belongs to a group that exists, whose count is its events (on
/// PostgreSQL a batch that committed into the group while the delete ran used to leave
/// events behind whose group was gone: listed, but counted nowhere and never deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_while_capturing_leaves_no_event_without_its_group() {
    const TASKS: usize = 4;
    const CAPTURES: usize = 100;
    let app = spawn_app().await;
    let body = json!({"exception": {"type": "KeyError", "message": "'basket'"}});
    let doomed = s(&app.capture(body.clone()).await["group_id"]);
    let tasks = capture_from_tasks(&app, TASKS, CAPTURES, std::slice::from_ref(&body));
    // Three rounds: the captures after a delete make a new group, which is deleted in turn.
    let mut deleted = vec![doomed];
    for round in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        let doomed = deleted.last().unwrap();
        let (status, answer) = app.delete(&format!("/v1/errors/delete/{doomed}")).await;
        assert_eq!(status.as_u16(), 200, "round {round}: {answer}");
        if round < 2 {
            let next = s(&app.capture(body.clone()).await["group_id"]);
            assert!(!deleted.contains(&next), "a new group after the delete");
            deleted.push(next);
        }
    }
    for t in tasks {
        t.await.expect("capture task");
    }
    let events = app.list_all("").await;
    let mut per_group: std::collections::HashMap<String, u64> = Default::default();
    for e in &events {
        *per_group.entry(s(&e["group_id"])).or_default() += 1;
    }
    for doomed in &deleted {
        assert!(
            !per_group.contains_key(doomed),
            "no event of a deleted group is left: {} of {}",
            per_group[doomed],
            events.len()
        );
    }
    for (group, stored) in &per_group {
        let (status, detail) = app.get(&format!("/v1/errors/group_detail/{group}")).await;
        assert_eq!(
            status.as_u16(),
            200,
            "the group of {stored} stored events: {detail}"
        );
        assert_eq!(n(&detail["count"]), *stored, "{detail}");
    }
    let groups = app.get_ok("/v1/errors/groups").await;
    let counted: u64 = arr(&groups["groups"]).iter().map(|g| n(&g["count"])).sum();
    assert_eq!(counted, events.len() as u64, "{groups}");
}

/// The retention job deletes a group left without events only if none has arrived: on
/// PostgreSQL a batch that has looked the group up holds a key-share lock on its row until it
/// commits, and the job must then see that batch's events (its one `DELETE … WHERE NOT
/// EXISTS` judged by its own snapshot and took the group, leaving the events without one).
/// Here the test plays the batch, with the writer's lock and an event row of its own, so the
/// interleaving is certain. SQLite has one writer at a time, so there is no such interleaving
/// there and the test has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_a_group_whose_batch_commits_while_it_runs() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = spawn_app().await;
    if app.database_url.is_none() {
        return;
    }
    let old = app.capture(json!({"message": "retention race"})).await;
    let (old_id, group) = (s(&old["event_id"]), s(&old["group_id"]));
    let db = sea_orm::Database::connect(app.db_url()).await.unwrap();
    let batch = db.begin().await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for sql in [
        format!("SELECT id FROM groups WHERE id = '{group}' FOR KEY SHARE OF groups"),
        format!("CREATE TEMP TABLE arriving AS SELECT * FROM events WHERE id = '{old_id}'"),
        format!(
            "UPDATE arriving SET id = gen_random_uuid(), \
             seq = nextval(pg_get_serial_sequence('events', 'seq')), \
             received_at = {now}, timestamp = {now}"
        ),
        "INSERT INTO events SELECT * FROM arriving".to_owned(),
    ] {
        batch.execute_unprepared(&sql).await.expect(&sql);
    }
    let (status, answer) = app
        .put("/v1/errors/retention/set", &json!({"days": 1}))
        .await;
    assert_eq!(status.as_u16(), 200, "{answer}");
    app.run_sql(&[&format!(
        "UPDATE events SET received_at = received_at - {d}, timestamp = timestamp - {d} \
         WHERE id = '{old_id}'",
        d = 3 * 86_400_000
    )])
    .await;
    // The job (every 200 ms here) deletes the expired event, finds the group without a
    // committed event, and waits for the lock.
    let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    poll_until(
        std::time::Duration::from_secs(10),
        "the retention job to wait for the batch's lock",
        || {
            let db = &db;
            async move {
                let row = db
                    .query_one_raw(sea_orm::Statement::from_string(
                        db.get_database_backend(),
                        waiting,
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                (row.try_get::<i64>("", "n").unwrap() > 0).then_some(())
            }
        },
    )
    .await;
    batch.commit().await.unwrap();
    assert_eq!(
        app.get(&format!("/v1/errors/get/{old_id}"))
            .await
            .0
            .as_u16(),
        404,
        "the expired event is gone"
    );
    // A few more runs of the job: the group has an event, so it stays.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (status, detail) = app.get(&format!("/v1/errors/group_detail/{group}")).await;
    assert_eq!(
        status.as_u16(),
        200,
        "the group with the batch's event: {detail}"
    );
    let listed = app.list_all("").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(s(&listed[0]["group_id"]), group);
    db.close().await.unwrap();
}

/// Captures into a project while it is deleted: afterwards nothing of it is left, not even
/// the events of a batch that was committing as the delete ran (they were left behind,
/// counted nowhere and out of reach of every cleanup, or the delete deadlocked with the
/// batch on PostgreSQL). Captures answer 200 until the key is gone, then 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_deleted_while_capturing_leaves_nothing_behind() {
    use sea_orm::ConnectionTrait;
    const TASKS: usize = 4;
    let app = spawn_app().await;
    let project = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "doomed"}))
        .await["id"]);
    let (_, key) = crate::auth_matrix::make_key(
        &app,
        json!({"name": "doomed", "permissions": ["ingest"], "project_id": project}),
    )
    .await;
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (client, url, key, gone) = (
            app.client.clone(),
            app.url("/v1/errors/capture"),
            key.clone(),
            gone.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0.. {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"exception": {"type": "KeyError", "message": format!("'k{}'", i % 3)}}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("task {t} capture {i}: {e:?}"));
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                match status {
                    200 => ok += 1,
                    // The key is gone; or the event's batch met the project gone (not
                    // acknowledged: the SDK retries and then gets 401).
                    401 | 503 if gone.load(std::sync::atomic::Ordering::SeqCst) => break,
                    _ => panic!("task {t} capture {i}: {status} {text}"),
                }
            }
            ok
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, answer) = app.delete(&format!("/v1/projects/delete/{project}")).await;
    assert_eq!(status.as_u16(), 200, "{answer}");
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("capture task");
    }
    assert!(acked > 0, "captures were answered before the delete");
    let db = sea_orm::Database::connect(app.db_url()).await.unwrap();
    for table in ["events", "event_tags", "groups", "group_hashes"] {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT project_id FROM {table}"),
            ))
            .await
            .unwrap_or_else(|e| panic!("read {table}: {e}"));
        let left = rows
            .iter()
            .filter(|r| {
                r.try_get::<uuid::Uuid>("", "project_id")
                    .unwrap()
                    .to_string()
                    == project
            })
            .count();
        assert_eq!(left, 0, "{table} rows of the deleted project");
    }
    db.close().await.unwrap();
}
