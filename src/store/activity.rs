//! Each group's activity (Sentry's activity feed): the changes people made to it and the
//! ones Faultline made itself, newest first, with its comments and its first event read in.
//! A change and its entry are written in one transaction.

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityName, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Value,
    sea_query::{InsertStatement, Query},
};
use uuid::Uuid;

use super::{
    Store,
    batch_sql::{BatchTxn, insert_rows},
    db_err,
    entity::{group_activity, group_comment, member},
};
use crate::{
    domain::{
        activity::{Activity, Change},
        model::from_millis,
    },
    error::Error,
};

/// Most entries a group's activity lists.
pub const ACTIVITY_MAX: u64 = 1000;
/// Entries per insert statement, well under every bind-parameter limit.
const ROWS_PER_STATEMENT: usize = 512;

/// The API key that acts: writes or deletes a comment, changes a group.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The member whose own key it is, if any.
    pub member_id: Option<Uuid>,
    pub key_id: Uuid,
    pub key_name: String,
    /// The key may manage the installation (deletes anyone's comment).
    pub admin: bool,
}

/// Who an entry names: the member (if any) and the name shown.
#[derive(Debug, Clone)]
pub(super) struct Signature {
    pub member_id: Option<Uuid>,
    pub name: String,
}

/// The name an actor goes by: its member's name (or email) when the key is a member's own,
/// else the key's name.
pub(super) async fn signature(db: &impl ConnectionTrait, by: &Actor) -> Result<Signature, Error> {
    let member = match by.member_id {
        Some(id) => member::Entity::find_by_id(id)
            .one(db)
            .await
            .map_err(db_err)?,
        None => None,
    };
    let name = match member {
        Some(m) if !m.name.is_empty() => m.name,
        Some(m) if !m.email.is_empty() => m.email,
        _ => by.key_name.clone(),
    };
    Ok(Signature {
        member_id: by.member_id,
        name,
    })
}

/// The statement that stores activity entries (`activity_row` gives its rows).
fn activity_insert() -> InsertStatement {
    Query::insert()
        .into_table(group_activity::Entity.table_ref())
        .columns([
            group_activity::Column::Id,
            group_activity::Column::ProjectId,
            group_activity::Column::GroupId,
            group_activity::Column::Kind,
            group_activity::Column::MemberId,
            group_activity::Column::Actor,
            group_activity::Column::Data,
            group_activity::Column::CreatedAt,
        ])
        .to_owned()
}

/// One row of `activity_insert`: `change` to `group_id`, by `by` (`None`: Faultline), now.
pub(super) fn activity_row(
    project_id: Uuid,
    group_id: Uuid,
    by: Option<&Signature>,
    change: &Change,
) -> Vec<Value> {
    let data = serde_json::to_string(change).unwrap_or_else(|_| "{}".into());
    vec![
        Uuid::now_v7().into(),
        project_id.into(),
        group_id.into(),
        change.kind().into(),
        by.and_then(|s| s.member_id).into(),
        by.map(|s| s.name.clone()).into(),
        data.into(),
        Utc::now().timestamp_millis().into(),
    ]
}

/// Stores activity entries made by `activity_row`, in `txn` (the one that makes the change).
pub(super) async fn insert(txn: &impl BatchTxn, rows: Vec<Vec<Value>>) -> Result<(), Error> {
    insert_rows(txn, &activity_insert(), rows, ROWS_PER_STATEMENT).await?;
    Ok(())
}

/// Stores `change` to each of `groups` (project, group) by `by` (`None`: Faultline), in `txn`
/// (the transaction that makes the change).
pub(super) async fn record(
    txn: &DatabaseTransaction,
    groups: &[(Uuid, Uuid)],
    by: Option<&Actor>,
    change: &Change,
) -> Result<(), Error> {
    let by = match by {
        Some(a) => Some(signature(txn, a).await?),
        None => None,
    };
    let rows = groups
        .iter()
        .map(|&(project_id, group_id)| activity_row(project_id, group_id, by.as_ref(), change))
        .collect();
    insert(txn, rows).await
}

fn stored(m: group_activity::Model) -> Result<Activity, Error> {
    let change = serde_json::from_str(&m.data)
        .map_err(|e| Error::Internal(format!("activity {} does not read back: {e}", m.id)))?;
    Ok(Activity {
        id: Some(m.id),
        group_id: m.group_id,
        change,
        actor: m.actor,
        member_id: m.member_id,
        created_at: from_millis(m.created_at),
    })
}

impl Store {
    /// The name `by` signs with: the member's name, else their email, else the key's name.
    pub async fn actor_name(&self, by: &Actor) -> Result<String, Error> {
        Ok(signature(&self.db, by).await?.name)
    }

    /// The newest `limit` entries of a group's activity (the API asks for at most
    /// `ACTIVITY_MAX`), newest first: its changes, its comments (as notes) and, oldest of
    /// all, its first event.
    pub async fn list_activity(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        limit: u64,
    ) -> Result<Vec<Activity>, Error> {
        let group = self.get_group(project_id, group_id).await?;
        let mut entries = Vec::new();
        let rows = group_activity::Entity::find()
            .filter(group_activity::Column::GroupId.eq(group_id))
            .filter(group_activity::Column::ProjectId.eq(project_id))
            .order_by_desc(group_activity::Column::CreatedAt)
            .order_by_desc(group_activity::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        for row in rows {
            entries.push(stored(row)?);
        }
        let notes = group_comment::Entity::find()
            .filter(group_comment::Column::GroupId.eq(group_id))
            .filter(group_comment::Column::ProjectId.eq(project_id))
            .order_by_desc(group_comment::Column::CreatedAt)
            .order_by_desc(group_comment::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        entries.extend(notes.into_iter().map(|c| Activity {
            id: Some(c.id),
            group_id,
            change: Change::Note { text: c.text },
            actor: Some(c.author),
            member_id: c.member_id,
            created_at: from_millis(c.created_at),
        }));
        // Ids are UUIDv7: among entries of the same millisecond, the later made sorts last.
        entries.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        entries.push(Activity {
            id: None,
            group_id,
            change: Change::FirstSeen,
            actor: None,
            member_id: None,
            created_at: group.first_seen,
        });
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::Actor;
    use crate::{
        domain::{
            GroupStatus,
            activity::{Change, SnoozeEnd},
            event::{Level, NewEvent},
            model::Snooze,
        },
        ingest::{CaptureInput, prepare},
        store::search::tests::store_without_indexer,
    };

    fn event(project: Uuid, message: &str, release: &str) -> Box<NewEvent> {
        let now = chrono::Utc::now();
        let input = CaptureInput {
            message: message.into(),
            release: release.into(),
            ..Default::default()
        };
        Box::new(prepare(project, input, Level::Error, now).unwrap())
    }

    /// What the ingest writer reopens goes into the group's activity exactly once, by
    /// Faultline: a resolved group's regression (with the event and its release), a snooze by
    /// count that ends. An event that leaves a group as it is (unresolved already, resolved in
    /// its own release, still snoozed) adds nothing; a batch reopening one of two groups names
    /// only that one. What a key does is signed with its name.
    #[tokio::test]
    async fn the_writer_records_what_it_reopens_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let bot = Actor {
            member_id: None,
            key_id: Uuid::now_v7(),
            key_name: "deploy-bot".into(),
            admin: false,
        };
        let commit = |events: Vec<Box<NewEvent>>| {
            let store = &store;
            async move {
                let r = store.commit_batch(events).await.1.unwrap();
                r.iter().map(|c| c.group_id).collect::<Vec<_>>()
            }
        };
        let changes = |group: Uuid| {
            let store = &store;
            async move {
                let all = store.list_activity(project, group, 1000).await.unwrap();
                all.into_iter()
                    .map(|a| (a.change, a.actor))
                    .collect::<Vec<_>>()
            }
        };
        let group = commit(vec![event(project, "cart lost", "1.0")]).await[0];
        let other = commit(vec![event(project, "login failed", "1.0")]).await[0];
        assert_eq!(changes(group).await, vec![(Change::FirstSeen, None)]);

        store
            .set_group_status(project, group, GroupStatus::Resolved, Some(&bot))
            .await
            .unwrap();
        store
            .set_group_status(project, other, GroupStatus::Resolved, Some(&bot))
            .await
            .unwrap();
        // One batch reopens the first group (its newest event names the entry) and counts into
        // a third, unresolved one; the other resolved group gets no event.
        let third = commit(vec![event(project, "timeout", "1.0")]).await[0];
        let earlier = event(project, "cart lost", "2.0");
        let reopening = event(project, "cart lost", "2.0");
        let reopening_id = reopening.id;
        commit(vec![earlier, reopening, event(project, "timeout", "2.0")]).await;
        let got = changes(group).await;
        assert_eq!(
            got,
            vec![
                (
                    Change::SetRegression {
                        release: "2.0".into(),
                        event_id: got_regression_event(&got, reopening_id),
                    },
                    None
                ),
                (Change::SetResolved, Some("deploy-bot".into())),
                (Change::FirstSeen, None),
            ]
        );
        assert_eq!(changes(third).await, vec![(Change::FirstSeen, None)]);
        assert_eq!(changes(other).await.len(), 2, "resolved, first seen");

        // Unresolved already: more events add nothing.
        commit(vec![event(project, "cart lost", "2.0")]).await;
        assert_eq!(changes(group).await.len(), 3);

        // Snoozed until two more events: the first leaves it, the second ends it.
        let snooze = Snooze {
            events: Some(2),
            ..Snooze::default()
        };
        store
            .set_group_status_snoozed(project, group, GroupStatus::Ignored, snooze, Some(&bot))
            .await
            .unwrap();
        commit(vec![event(project, "cart lost", "2.0")]).await;
        assert_eq!(changes(group).await.len(), 4);
        commit(vec![event(project, "cart lost", "2.0")]).await;
        let got = changes(group).await;
        assert_eq!(
            got[..2],
            [
                (
                    Change::SetUnresolved {
                        snooze_end: Some(SnoozeEnd::CountReached)
                    },
                    None
                ),
                (
                    Change::SetIgnored {
                        minutes: None,
                        events: Some(2),
                        users: None,
                        window: None,
                        user_window: None,
                        escalating: false,
                    },
                    Some("deploy-bot".into())
                ),
            ]
        );

        // Resolved in the next release (2.0): its own events leave it resolved, silently; a
        // later release reopens it.
        store
            .resolve_in_next_release(project, group, Some(&bot))
            .await
            .unwrap();
        commit(vec![event(project, "cart lost", "2.0")]).await;
        let got = changes(group).await;
        assert_eq!(
            got[0],
            (
                Change::SetResolvedInRelease {
                    release: "2.0".into()
                },
                Some("deploy-bot".into())
            )
        );
        assert_eq!(got.len(), 6);
        commit(vec![event(project, "cart lost", "3.0")]).await;
        let got = changes(group).await;
        assert_eq!(got.len(), 7);
        assert!(
            matches!(&got[0].0, Change::SetRegression { release, .. } if release == "3.0"),
            "{got:?}"
        );

        // A limit keeps the newest.
        let two = store.list_activity(project, group, 2).await.unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].change, got[0].0);
    }

    /// The regression entry names the event that reopened the group.
    fn got_regression_event(got: &[(Change, Option<String>)], want: Uuid) -> Uuid {
        match &got[0].0 {
            Change::SetRegression { event_id, .. } => {
                assert_eq!(*event_id, want, "the batch's newest event of the group");
                want
            }
            other => panic!("not a regression: {other:?}"),
        }
    }
}
