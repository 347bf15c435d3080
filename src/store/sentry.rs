//! Projects as Sentry SDKs see them: the public key and numeric id that make up a DSN, how a
//! new project gets them, and the lookups behind Sentry ingest authentication.

use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::{Store, db_err, entity::project};
use crate::error::Error;

/// A project's Sentry identity: `http://<public_key>@<host>/<sentry_id>` is its DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryProject {
    pub project_id: Uuid,
    pub public_key: String,
    pub sentry_id: i64,
}

/// Inserts a project with a fresh public key and the next Sentry id. Every code path that
/// creates a project goes through here, inside its own transaction, so no project lacks a DSN.
pub async fn insert_project<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    name: &str,
    created_at: i64,
) -> Result<SentryProject, Error> {
    let last = project::Entity::find()
        .select_only()
        .column(project::Column::SentryId)
        .filter(project::Column::SentryId.is_not_null())
        .order_by_desc(project::Column::SentryId)
        .limit(1)
        .into_tuple::<Option<i64>>()
        .one(txn)
        .await
        .map_err(db_err)?
        .flatten()
        .unwrap_or(0);
    let sentry = SentryProject {
        project_id: id,
        public_key: new_public_key(),
        sentry_id: last + 1,
    };
    project::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        created_at: Set(created_at),
        public_key: Set(Some(sentry.public_key.clone())),
        sentry_id: Set(Some(sentry.sentry_id)),
    }
    .insert(txn)
    .await
    // Another transaction took the same DSN number: a race the caller may retry.
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            Error::Conflict("another project was created at the same moment; try again".into())
        }
        _ => db_err(e),
    })?;
    Ok(sentry)
}

/// 128 random bits as 32 lowercase hex digits, the form Sentry SDKs expect of a public key.
pub fn new_public_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Store {
    /// The project whose DSN carries `public_key`.
    pub async fn sentry_project_by_key(
        &self,
        public_key: &str,
    ) -> Result<Option<SentryProject>, Error> {
        let row = project::Entity::find()
            .filter(project::Column::PublicKey.eq(public_key))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.and_then(to_sentry))
    }

    /// The Sentry identity of a project.
    pub async fn sentry_project(&self, project_id: Uuid) -> Result<SentryProject, Error> {
        project::Entity::find_by_id(project_id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .and_then(to_sentry)
            .ok_or(Error::NotFound { what: "project" })
    }
}

fn to_sentry(m: project::Model) -> Option<SentryProject> {
    Some(SentryProject {
        project_id: m.id,
        public_key: m.public_key?,
        sentry_id: m.sentry_id?,
    })
}
