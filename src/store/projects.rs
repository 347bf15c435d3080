//! Projects and API keys: first-start bootstrap, the key lookup behind authentication, and
//! creating, renaming and deleting projects.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Store,
    access::{NewAudit, insert_audit},
    db_err, delete_rows,
    entity::{
        api_key, debug_file, event, event_tag, filtered_event, group, group_activity,
        group_comment, group_hash, group_hourly, group_stat, integration, member, project,
        project_name, project_setting, release, release_file, retention, upload_chunk, user_report,
    },
};
use crate::{domain::model::RetentionPolicy, error::Error};

/// What the first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub project_id: Uuid,
    /// The admin key in plain text: shown once, never stored.
    pub admin_key: String,
    /// The default project's DSN parts, printed beside the admin key.
    pub sentry: super::sentry::SentryProject,
}

/// A stored API key (its hash, never the key).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub key_hash: String,
    /// The key may reach `project_id` only.
    pub restricted: bool,
    pub member_id: Option<Uuid>,
}

/// A project with its settings.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub retention: RetentionPolicy,
}

/// What deleting a project removed.
#[derive(Debug, Clone, Copy)]
pub struct DeletedProject {
    pub events: u64,
    pub groups: u64,
}

/// The one place a project comes into being, with its default settings, inside the caller's
/// transaction. Per-project settings added later (DSN keys, rate limits, scrubbing) belong here.
async fn insert_project(
    txn: &DatabaseTransaction,
    project_id: Uuid,
    name: &str,
    now: i64,
) -> Result<super::sentry::SentryProject, Error> {
    // The row itself, with its DSN public key and number.
    let sentry = super::sentry::insert_project(txn, project_id, name, now).await?;
    retention::ActiveModel {
        project_id: Set(project_id),
        days: Set(crate::domain::model::DEFAULT_RETENTION_DAYS as i32),
        auto_export: Set(false),
        export_destination: Set(String::new()),
        updated_at: Set(now),
        last_cleanup_at: Set(None),
        last_cleanup_deleted: Set(0),
    }
    .insert(txn)
    .await
    .map_err(db_err)?;
    Ok(sentry)
}

/// The oldest project called `name`.
async fn oldest_named(db: &impl ConnectionTrait, name: &str) -> Result<Option<Uuid>, Error> {
    Ok(project::Entity::find()
        .filter(project::Column::Name.eq(name))
        .order_by_asc(project::Column::CreatedAt)
        .one(db)
        .await
        .map_err(db_err)?
        .map(|p| p.id))
}

async fn drop_claims(txn: &DatabaseTransaction, id: Uuid) -> Result<(), Error> {
    project_name::Entity::delete_many()
        .filter(project_name::Column::ProjectId.eq(id))
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}

impl Store {
    /// On an empty database, creates the default project, its owner member and the owner's
    /// key, in one transaction. Returns `None` when a project already exists.
    pub async fn bootstrap(
        &self,
        admin_key: &str,
        key_hash: &str,
        preview: &str,
        scopes: &str,
    ) -> Result<Option<Bootstrap>, Error> {
        let txn = self.begin_write().await?;
        if project::Entity::find().count(&txn).await.map_err(db_err)? > 0 {
            return Ok(None);
        }
        let now = Utc::now().timestamp_millis();
        let sentry = insert_project(&txn, Uuid::now_v7(), "default", now).await?;
        let project_id = sentry.project_id;
        let member_id = Uuid::now_v7();
        member::ActiveModel {
            id: Set(member_id),
            project_id: Set(project_id),
            name: Set("admin".into()),
            email: Set(String::new()),
            role: Set("owner".into()),
            status: Set("active".into()),
            invite_token_hash: Set(None),
            invite_expires_at: Set(None),
            invited_by: Set("first start".into()),
            created_at: Set(now),
            accepted_at: Set(Some(now)),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            project_id: Set(project_id),
            name: Set("admin (created at first start)".into()),
            key_hash: Set(key_hash.into()),
            key_preview: Set(preview.into()),
            scopes: Set(scopes.into()),
            created_at: Set(now),
            expires_at: Set(None),
            revoked_at: Set(None),
            last_used_at: Set(None),
            restricted: Set(false),
            member_id: Set(Some(member_id)),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(Some(Bootstrap {
            project_id,
            admin_key: admin_key.into(),
            sentry,
        }))
    }

    /// The key whose hash is `key_hash`, if any (revoked and expired keys included: the caller decides).
    pub async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, Error> {
        let row = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(|m| ApiKeyRecord {
            id: m.id,
            project_id: m.project_id,
            name: m.name,
            scopes: super::convert::scopes(&m.scopes),
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            key_hash: m.key_hash,
            restricted: m.restricted,
            member_id: m.member_id,
        }))
    }

    /// Records that keys were used, at most once per key per flush (see `auth`).
    pub async fn touch_keys(&self, ids: &[Uuid], at_ms: i64) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        api_key::Entity::update_many()
            .col_expr(
                api_key::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(at_ms),
            )
            .filter(api_key::Column::Id.is_in(ids.iter().copied()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Ids of all projects (for background jobs).
    pub async fn project_ids(&self) -> Result<Vec<Uuid>, Error> {
        Ok(project::Entity::find()
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|p| p.id)
            .collect())
    }

    /// Creates a project with default settings.
    pub async fn create_project(
        &self,
        name: &str,
        audit: NewAudit,
    ) -> Result<ProjectRecord, Error> {
        let txn = self.begin_write().await?;
        let now = Utc::now().timestamp_millis();
        let id = insert_project(&txn, Uuid::now_v7(), name, now)
            .await?
            .project_id;
        insert_audit(&txn, audit.for_project(id).target(format!("project:{id}"))).await?;
        txn.commit().await.map_err(db_err)?;
        self.get_project(id).await
    }

    /// The project an event names: the one with that id, else the oldest with that name.
    pub async fn find_project_ref(&self, name_or_id: &str) -> Result<Option<Uuid>, Error> {
        if let Ok(id) = Uuid::parse_str(name_or_id)
            && self.project_exists(id).await?
        {
            return Ok(Some(id));
        }
        oldest_named(&self.db, name_or_id).await
    }

    /// The project named `name`, created as `create_project` does when there is none yet.
    /// Returns the id and whether this call created it. Two concurrent first calls for one
    /// name both try to claim it in `project_names`; the loser rolls back and takes the
    /// winner's project.
    pub async fn project_named_or_create(
        &self,
        name: &str,
        audit: NewAudit,
    ) -> Result<(Uuid, bool), Error> {
        // A lost race on the name ends in the winner's project; one on the DSN number (another
        // project created at the same moment) is retried.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lost = match self.try_create_named(name, audit.clone()).await {
                Ok(found) => return Ok(found),
                Err(e @ Error::Conflict(_)) => e,
                Err(e) => return Err(e),
            };
            if let Some(id) = oldest_named(&self.db, name).await? {
                return Ok((id, false));
            }
            if attempts == 3 {
                return Err(lost);
            }
        }
    }

    /// One attempt of `project_named_or_create`; `Conflict` when a concurrent transaction
    /// won the name or the DSN number.
    async fn try_create_named(&self, name: &str, audit: NewAudit) -> Result<(Uuid, bool), Error> {
        let lost = |e: sea_orm::DbErr| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict("the project was created at the same moment".into())
            }
            _ => db_err(e),
        };
        let txn = self.begin_write().await?;
        if let Some(id) = oldest_named(&txn, name).await? {
            return Ok((id, false));
        }
        let now = Utc::now().timestamp_millis();
        let id = Uuid::now_v7();
        // The claim first: a concurrent creator of the same name waits here for this
        // transaction and then fails, before it has made a project of its own.
        project_name::ActiveModel {
            name: Set(name.to_owned()),
            project_id: Set(id),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(lost)?;
        insert_project(&txn, id, name, now).await?;
        insert_audit(&txn, audit.for_project(id).target(format!("project:{id}"))).await?;
        txn.commit().await.map_err(lost)?;
        Ok((id, true))
    }

    /// Projects, oldest first; only `only` when given.
    pub async fn list_projects(&self, only: Option<Uuid>) -> Result<Vec<ProjectRecord>, Error> {
        let mut q = project::Entity::find().order_by_asc(project::Column::CreatedAt);
        if let Some(id) = only {
            q = q.filter(project::Column::Id.eq(id));
        }
        let rows = q.all(&self.db).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for p in rows {
            out.push(ProjectRecord {
                retention: self.get_retention(p.id).await?,
                id: p.id,
                name: p.name,
                created_at: p.created_at,
            });
        }
        Ok(out)
    }

    pub async fn project_exists(&self, id: Uuid) -> Result<bool, Error> {
        Ok(project::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some())
    }

    pub async fn get_project(&self, id: Uuid) -> Result<ProjectRecord, Error> {
        self.list_projects(Some(id))
            .await?
            .pop()
            .ok_or(Error::NotFound { what: "project" })
    }

    pub async fn rename_project(
        &self,
        id: Uuid,
        name: &str,
        audit: NewAudit,
    ) -> Result<ProjectRecord, Error> {
        let txn = self.begin_write().await?;
        let old = project::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "project" })?;
        let from = old.name.clone();
        let mut am: project::ActiveModel = old.into();
        am.name = Set(name.to_owned());
        am.update(&txn).await.map_err(db_err)?;
        // The old name no longer names this project.
        drop_claims(&txn, id).await?;
        insert_audit(
            &txn,
            audit
                .for_project(id)
                .target(format!("project:{id}"))
                .details(serde_json::json!({"from": from, "to": name})),
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        self.get_project(id).await
    }

    /// Deletes a project and everything in it (events, groups and their keys and counts,
    /// retention, policy, integrations, API keys; alert rules and incidents by cascade), in
    /// one transaction. Keys and members that may
    /// reach every project and had it as their default move to the oldest remaining project;
    /// the last project cannot be deleted.
    pub async fn delete_project(&self, id: Uuid, audit: NewAudit) -> Result<DeletedProject, Error> {
        let txn = self.begin_write().await?;
        let projects = project::Entity::find()
            .order_by_asc(project::Column::CreatedAt)
            .all(&txn)
            .await
            .map_err(db_err)?;
        if !projects.iter().any(|p| p.id == id) {
            return Err(Error::NotFound { what: "project" });
        }
        let Some(fallback) = projects.iter().find(|p| p.id != id).map(|p| p.id) else {
            return Err(Error::Conflict("the last project cannot be deleted".into()));
        };
        // On PostgreSQL, first the project's groups in the ingest writer's order (by
        // fingerprint), then the project: a batch that has looked up one of its groups, or
        // made one (the foreign key's lock on the project), commits before the statements
        // below, which then see its events; a later batch waits and then finds the groups
        // and the project gone, so it stores nothing. Deleting first let such a batch leave
        // events behind, or deadlock with the delete.
        group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::ProjectId.eq(id))
            .order_by_asc(group::Column::Fingerprint)
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .all(&txn)
            .await
            .map_err(db_err)?;
        project::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(db_err)?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::ProjectId, Expr::value(fallback))
            .filter(api_key::Column::ProjectId.eq(id))
            .filter(api_key::Column::Restricted.eq(false))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        member::Entity::update_many()
            .col_expr(member::Column::ProjectId, Expr::value(fallback))
            .filter(member::Column::ProjectId.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        delete_rows::<event_tag::Entity>(&txn, event_tag::Column::ProjectId.eq(id)).await?;
        let events = delete_rows::<event::Entity>(&txn, event::Column::ProjectId.eq(id)).await?;
        let project_groups = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(id))
            .to_owned();
        delete_rows::<group_hourly::Entity>(
            &txn,
            group_hourly::Column::GroupId.in_subquery(project_groups.clone()),
        )
        .await?;
        delete_rows::<group_stat::Entity>(
            &txn,
            group_stat::Column::GroupId.in_subquery(project_groups),
        )
        .await?;
        delete_rows::<group_hash::Entity>(&txn, group_hash::Column::ProjectId.eq(id)).await?;
        let groups = delete_rows::<group::Entity>(&txn, group::Column::ProjectId.eq(id)).await?;
        delete_rows::<retention::Entity>(&txn, retention::Column::ProjectId.eq(id)).await?;
        delete_rows::<release::Entity>(&txn, release::Column::ProjectId.eq(id)).await?;
        delete_rows::<release_file::Entity>(&txn, release_file::Column::ProjectId.eq(id)).await?;
        delete_rows::<debug_file::Entity>(&txn, debug_file::Column::ProjectId.eq(id)).await?;
        delete_rows::<filtered_event::Entity>(&txn, filtered_event::Column::ProjectId.eq(id))
            .await?;
        delete_rows::<user_report::Entity>(&txn, user_report::Column::ProjectId.eq(id)).await?;
        delete_rows::<upload_chunk::Entity>(&txn, upload_chunk::Column::ProjectId.eq(id)).await?;
        delete_rows::<group_comment::Entity>(&txn, group_comment::Column::ProjectId.eq(id)).await?;
        delete_rows::<group_activity::Entity>(&txn, group_activity::Column::ProjectId.eq(id))
            .await?;
        // The channels hold credentials (webhook URLs, SMTP passwords): they go too.
        delete_rows::<integration::Entity>(&txn, integration::Column::ProjectId.eq(id)).await?;
        delete_rows::<project_setting::Entity>(&txn, project_setting::Column::ProjectId.eq(id))
            .await?;
        delete_rows::<api_key::Entity>(&txn, api_key::Column::ProjectId.eq(id)).await?;
        drop_claims(&txn, id).await?;
        project::Entity::delete_by_id(id)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        insert_audit(
            &txn,
            audit
                .for_project(id)
                .target(format!("project:{id}"))
                .details(serde_json::json!({"deleted_events": events, "deleted_groups": groups})),
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(DeletedProject { events, groups })
    }
}
