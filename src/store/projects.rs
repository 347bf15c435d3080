//! Projects and API keys: first-start bootstrap and the key lookup behind authentication.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{api_key, project, retention},
};
use crate::error::Error;

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
}

impl Store {
    /// On an empty database, creates the default project and its admin key, in one
    /// transaction. Returns `None` when a project already exists.
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
        let project_id = Uuid::now_v7();
        let sentry = super::sentry::insert_project(&txn, project_id, "default", now).await?;
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
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        retention::ActiveModel {
            project_id: Set(project_id),
            days: Set(crate::domain::model::DEFAULT_RETENTION_DAYS as i32),
            auto_export: Set(false),
            export_destination: Set(String::new()),
            updated_at: Set(now),
            last_cleanup_at: Set(None),
            last_cleanup_deleted: Set(0),
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
            scopes: m
                .scopes
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
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
}
