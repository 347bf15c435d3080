//! The snooze job: a group ignored for a while comes back as unresolved once its time is up,
//! whether or not another event arrives, and one ignored until more users once its events
//! have affected them (a group ignored until more events is brought back by the writer, with
//! the event that reaches the count). Several servers sharing a database all
//! run it; the update is the same from any of them.

use std::time::Duration;

use chrono::Utc;

use crate::store::Store;

/// How often the job looks: a group comes back at most this late.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Runs until the task is aborted.
pub async fn run(store: Store, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store
            .wake_snoozed_groups(Utc::now().timestamp_millis())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                groups = n,
                "ignored groups whose time was up are unresolved again"
            ),
            Err(e) => tracing::warn!(error = %e, "could not end the snoozes whose time was up"),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::{
        domain::{
            GroupStatus,
            event::{Level, NewEvent},
            model::Snooze,
        },
        ingest::{CaptureInput, prepare},
        store::store_without_indexer,
    };

    #[allow(clippy::vec_box)] // what `commit_batch` takes
    fn events(project: uuid::Uuid, n: usize) -> Vec<Box<NewEvent>> {
        (0..n)
            .map(|_| {
                let input = CaptureInput {
                    message: "cache miss storm".into(),
                    ..Default::default()
                };
                Box::new(prepare(project, input, Level::Error, Utc::now()).unwrap())
            })
            .collect()
    }

    /// Ignored until 3 more events: two leave it ignored, the third brings it back unresolved
    /// (not regressed), and the snooze is gone.
    #[tokio::test]
    async fn a_group_ignored_until_more_events_comes_back_with_the_last_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let group = store.commit_batch(events(project, 1)).await.1.unwrap()[0].group_id;
        let snooze = Snooze::new(None, Some(3), None).unwrap();
        let g = store
            .set_group_status_snoozed(project, group, GroupStatus::Ignored, snooze, None)
            .await
            .unwrap();
        assert_eq!(
            (g.status, g.ignored_until_count),
            (GroupStatus::Ignored, Some(4))
        );
        assert_eq!(g.ignored_until, None);

        store.commit_batch(events(project, 2)).await.1.unwrap();
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!((g.status, g.count), (GroupStatus::Ignored, 3));
        store.commit_batch(events(project, 1)).await.1.unwrap();
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!((g.status, g.count), (GroupStatus::Unresolved, 4));
        assert!(!g.regressed);
        assert_eq!((g.ignored_until, g.ignored_until_count), (None, None));
    }

    /// Ignored for 30 minutes: events in the meantime leave it ignored; the job brings it back
    /// once the time is up, not before. A plain ignore lasts.
    #[tokio::test]
    async fn a_group_ignored_for_a_while_comes_back_when_the_time_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let group = store.commit_batch(events(project, 1)).await.1.unwrap()[0].group_id;
        let before = Utc::now();
        let snooze = Snooze::new(Some(30), None, None).unwrap();
        let g = store
            .set_group_status_snoozed(project, group, GroupStatus::Ignored, snooze, None)
            .await
            .unwrap();
        let until = g
            .ignored_until
            .expect("ignored until a time")
            .timestamp_millis();
        let thirty = Span::minutes(30);
        assert!(
            (before + thirty).timestamp_millis() <= until
                && until <= (Utc::now() + thirty).timestamp_millis()
        );

        store.commit_batch(events(project, 5)).await.1.unwrap();
        let now = Utc::now();
        assert_eq!(
            store
                .wake_snoozed_groups(now.timestamp_millis())
                .await
                .unwrap(),
            0
        );
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!(g.status, GroupStatus::Ignored);
        let later = (now + Span::minutes(31)).timestamp_millis();
        assert_eq!(store.wake_snoozed_groups(later).await.unwrap(), 1);
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!(g.status, GroupStatus::Unresolved);
        assert_eq!((g.ignored_until, g.ignored_until_count), (None, None));
        // Faultline did it, once, and says why.
        let history = store.list_activity(project, group, 10).await.unwrap();
        let ends: Vec<_> = history
            .iter()
            .filter(|a| a.change.kind() == "set_unresolved")
            .map(|a| (a.change.clone(), a.actor.clone()))
            .collect();
        let time_passed = crate::domain::activity::Change::SetUnresolved {
            snooze_end: Some(crate::domain::activity::SnoozeEnd::TimePassed),
        };
        assert_eq!(ends, [(time_passed, None)]);

        // Ignored for good, then set to resolved: neither snooze is left behind.
        store
            .set_group_status(project, group, GroupStatus::Ignored, None)
            .await
            .unwrap();
        store.commit_batch(events(project, 3)).await.1.unwrap();
        assert_eq!(store.wake_snoozed_groups(later).await.unwrap(), 0);
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!(g.status, GroupStatus::Ignored);
        let snooze = Snooze::new(Some(1), Some(1), None).unwrap();
        store
            .set_group_status_snoozed(project, group, GroupStatus::Resolved, snooze, None)
            .await
            .unwrap();
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!((g.ignored_until, g.ignored_until_count), (None, None));
    }

    #[test]
    fn snoozes_out_of_range_are_refused_by_field() {
        for (minutes, events, users, field) in [
            (Some(0), None, None, "ignore_duration"),
            (Some(525_601), None, None, "ignore_duration"),
            (None, Some(0), None, "ignore_count"),
            (None, None, Some(0), "ignore_user_count"),
            (None, None, Some(1_000_000_001), "ignore_user_count"),
        ] {
            match Snooze::new(minutes, events, users) {
                Err(crate::error::Error::Invalid { violations, .. }) => {
                    assert_eq!(violations[0].field, field)
                }
                other => panic!("{minutes:?} {events:?} {users:?}: {other:?}"),
            }
        }
        assert!(Snooze::new(Some(525_600), Some(1_000_000_000), Some(1_000_000_000)).is_ok());
    }
}
