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
