//! A release's files (Sentry's release artifacts): source maps and minified sources, by name.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::{
    Store, db_err, delete_rows,
    entity::{debug_file, release_file, upload_chunk},
};
use crate::{
    domain::{cursor::CreatedCursor, model::from_millis},
    error::Error,
};

/// A stored file, without its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFileInfo {
    pub id: Uuid,
    pub release: String,
    pub name: String,
    pub size: u64,
    /// Hex SHA-1 of the contents.
    pub sha1: String,
    pub created_at: DateTime<Utc>,
    /// When it last placed an event's frames; when stored, until it has.
    pub last_used_at: DateTime<Utc>,
}

/// A file stored by the debug id of the build it belongs to, without its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugFileInfo {
    pub id: Uuid,
    pub debug_id: String,
    /// `source_map` or `minified_source`.
    pub kind: String,
    /// The name it had in its bundle (its URL).
    pub name: String,
    pub size: u64,
    /// Hex SHA-1 of the contents.
    pub sha1: String,
    pub created_at: DateTime<Utc>,
    /// When it last placed an event's frames; when stored, until it has.
    pub last_used_at: DateTime<Utc>,
}

/// Source maps and minified sources that placed events' frames, to be marked used.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FilesUsed {
    /// By project, then release: the names of its files.
    pub release_files: HashMap<Uuid, HashMap<String, HashSet<String>>>,
    /// By project: debug ids.
    pub debug_ids: HashMap<Uuid, HashSet<String>>,
}

impl FilesUsed {
    pub fn is_empty(&self) -> bool {
        self.release_files.is_empty() && self.debug_ids.is_empty()
    }

    /// Notes the release's file `name` (allocating only the first time it is noted).
    pub fn note_release_file(&mut self, project_id: Uuid, release: &str, name: &str) {
        let releases = self.release_files.entry(project_id).or_default();
        let names = match releases.get_mut(release) {
            Some(names) => names,
            None => releases.entry(release.to_owned()).or_default(),
        };
        if !names.contains(name) {
            names.insert(name.to_owned());
        }
    }

    /// Notes the files of `debug_id` (allocating only the first time it is noted).
    pub fn note_debug_id(&mut self, project_id: Uuid, debug_id: &str) {
        let ids = self.debug_ids.entry(project_id).or_default();
        if !ids.contains(debug_id) {
            ids.insert(debug_id.to_owned());
        }
    }
}

/// Most names or debug ids in one statement that marks files used.
const USED_CHUNK: usize = 500;

const FILE: &str = "release file";
const DEBUG_FILES: &str = "debug id";

impl Store {
    /// Stores a file of a release, replacing one of the same name.
    pub async fn put_release_file(
        &self,
        project_id: Uuid,
        release: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<ReleaseFileInfo, Error> {
        let now = Utc::now().timestamp_millis();
        let size = content.len();
        let sha1 = crate::domain::sourcemap::sha1_hex(&content);
        let id = Uuid::now_v7();
        let row = release_file::ActiveModel {
            id: Set(id),
            project_id: Set(project_id),
            release: Set(release.to_owned()),
            name: Set(name.to_owned()),
            size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
            sha1: Set(sha1.clone()),
            content: Set(content),
            created_at: Set(now),
            last_used_at: Set(now),
        };
        // The later of two uploads of one name replaces the earlier, id and all.
        self.upsert_rows(
            [row],
            OnConflict::columns([
                release_file::Column::ProjectId,
                release_file::Column::Release,
                release_file::Column::Name,
            ])
            .update_columns([
                release_file::Column::Id,
                release_file::Column::Size,
                release_file::Column::Sha1,
                release_file::Column::Content,
                release_file::Column::CreatedAt,
                release_file::Column::LastUsedAt,
            ])
            .to_owned(),
        )
        .await?;
        Ok(ReleaseFileInfo {
            id,
            release: release.to_owned(),
            name: name.to_owned(),
            size: size as u64,
            sha1,
            created_at: from_millis(now),
            last_used_at: from_millis(now),
        })
    }

    /// A release's files, by name.
    pub async fn list_release_files(
        &self,
        project_id: Uuid,
        release: &str,
    ) -> Result<Vec<ReleaseFileInfo>, Error> {
        let rows: Vec<(Uuid, String, String, i64, String, i64, i64)> = release_file::Entity::find()
            .select_only()
            .columns([
                release_file::Column::Id,
                release_file::Column::Release,
                release_file::Column::Name,
                release_file::Column::Size,
                release_file::Column::Sha1,
                release_file::Column::CreatedAt,
                release_file::Column::LastUsedAt,
            ])
            .filter(release_file::Column::ProjectId.eq(project_id))
            .filter(release_file::Column::Release.eq(release))
            .order_by_asc(release_file::Column::Name)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, release, name, size, sha1, created_at, last_used_at)| ReleaseFileInfo {
                    id,
                    release,
                    name,
                    size: u64::try_from(size).unwrap_or(0),
                    sha1,
                    created_at: from_millis(created_at),
                    last_used_at: from_millis(last_used_at),
                },
            )
            .collect())
    }

    /// Deletes a file of a release; 404 when the release has no such file.
    pub async fn delete_release_file(
        &self,
        project_id: Uuid,
        release: &str,
        id: Uuid,
    ) -> Result<(), Error> {
        let txn = self.begin_write().await?;
        let gone = delete_rows::<release_file::Entity>(
            &txn,
            release_file::Column::Id
                .eq(id)
                .and(release_file::Column::ProjectId.eq(project_id))
                .and(release_file::Column::Release.eq(release)),
        )
        .await?;
        if gone == 0 {
            return Err(Error::NotFound { what: FILE });
        }
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(())
    }

    /// Stores chunks of an artifact bundle under their SHA-1s (hex); one stored already stays.
    pub async fn put_chunks(
        &self,
        project_id: Uuid,
        chunks: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        let now = Utc::now().timestamp_millis();
        if chunks.is_empty() {
            return Ok(());
        }
        // A chunk stored already (the same bundle uploaded twice, at once too) stays.
        let rows = chunks
            .into_iter()
            .map(|(sha1, content)| upload_chunk::ActiveModel {
                project_id: Set(project_id),
                sha1: Set(sha1),
                content: Set(content),
                created_at: Set(now),
            });
        self.upsert_rows(
            rows,
            OnConflict::columns([upload_chunk::Column::ProjectId, upload_chunk::Column::Sha1])
                .do_nothing()
                .to_owned(),
        )
        .await
    }

    /// Those of the project's chunks `sha1s` names that are stored, by SHA-1.
    pub async fn chunks(
        &self,
        project_id: Uuid,
        sha1s: &[String],
    ) -> Result<HashMap<String, Vec<u8>>, Error> {
        let rows: Vec<(String, Vec<u8>)> = upload_chunk::Entity::find()
            .select_only()
            .columns([upload_chunk::Column::Sha1, upload_chunk::Column::Content])
            .filter(upload_chunk::Column::ProjectId.eq(project_id))
            .filter(upload_chunk::Column::Sha1.is_in(sha1s.iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().collect())
    }

    /// Drops the chunks `sha1s` names, and the project's chunks older than `stale_before` (Unix
    /// ms): left by an upload that was never assembled.
    pub async fn drop_chunks(
        &self,
        project_id: Uuid,
        sha1s: &[String],
        stale_before: i64,
    ) -> Result<(), Error> {
        let txn = self.begin_write().await?;
        delete_rows::<upload_chunk::Entity>(
            &txn,
            upload_chunk::Column::ProjectId.eq(project_id).and(
                upload_chunk::Column::Sha1
                    .is_in(sha1s.iter().cloned())
                    .or(upload_chunk::Column::CreatedAt.lt(stale_before)),
            ),
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(())
    }

    /// The contents of those of `names` the release has, by name.
    pub async fn release_file_contents(
        &self,
        project_id: Uuid,
        release: &str,
        names: &[String],
    ) -> Result<HashMap<String, Vec<u8>>, Error> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, Vec<u8>)> = release_file::Entity::find()
            .select_only()
            .columns([release_file::Column::Name, release_file::Column::Content])
            .filter(release_file::Column::ProjectId.eq(project_id))
            .filter(release_file::Column::Release.eq(release))
            .filter(release_file::Column::Name.is_in(names.iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().collect())
    }

    /// Stores a file by its debug id and kind (`source_map`, `minified_source`), replacing
    /// one of the same id and kind.
    pub async fn put_debug_file(
        &self,
        project_id: Uuid,
        debug_id: &str,
        kind: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<(), Error> {
        let now = Utc::now().timestamp_millis();
        let row = debug_file::ActiveModel {
            id: Set(Uuid::now_v7()),
            project_id: Set(project_id),
            debug_id: Set(debug_id.to_owned()),
            kind: Set(kind.to_owned()),
            name: Set(name.to_owned()),
            size: Set(i64::try_from(content.len()).unwrap_or(i64::MAX)),
            sha1: Set(crate::domain::sourcemap::sha1_hex(&content)),
            content: Set(content),
            created_at: Set(now),
            last_used_at: Set(now),
        };
        self.upsert_rows(
            [row],
            OnConflict::columns([
                debug_file::Column::ProjectId,
                debug_file::Column::DebugId,
                debug_file::Column::Kind,
            ])
            .update_columns([
                debug_file::Column::Id,
                debug_file::Column::Name,
                debug_file::Column::Size,
                debug_file::Column::Sha1,
                debug_file::Column::Content,
                debug_file::Column::CreatedAt,
                debug_file::Column::LastUsedAt,
            ])
            .to_owned(),
        )
        .await
    }

    /// The SHA-1s of the files stored under `debug_id`, by kind.
    pub async fn debug_file_sums(
        &self,
        project_id: Uuid,
        debug_id: &str,
    ) -> Result<HashMap<String, String>, Error> {
        self.debug_files(project_id, debug_id, debug_file::Column::Sha1)
            .await
    }

    /// The contents of the files stored under `debug_id`, by kind.
    pub async fn debug_file_contents(
        &self,
        project_id: Uuid,
        debug_id: &str,
    ) -> Result<HashMap<String, Vec<u8>>, Error> {
        self.debug_files(project_id, debug_id, debug_file::Column::Content)
            .await
    }

    /// One `column` of the files stored under `debug_id`, by kind.
    async fn debug_files<T: sea_orm::TryGetable>(
        &self,
        project_id: Uuid,
        debug_id: &str,
        column: debug_file::Column,
    ) -> Result<HashMap<String, T>, Error> {
        let rows: Vec<(String, T)> = debug_file::Entity::find()
            .select_only()
            .columns([debug_file::Column::Kind, column])
            .filter(debug_file::Column::ProjectId.eq(project_id))
            .filter(debug_file::Column::DebugId.eq(debug_id))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().collect())
    }

    /// The project's debug-id files, newest first (`debug_id`: that id's only), at most
    /// `limit` after `cursor`, and the cursor of the next page.
    pub async fn list_debug_files(
        &self,
        project_id: Uuid,
        debug_id: Option<&str>,
        cursor: Option<CreatedCursor>,
        limit: u64,
    ) -> Result<(Vec<DebugFileInfo>, Option<CreatedCursor>), Error> {
        type Row = (Uuid, String, String, String, i64, String, i64, i64);
        let mut q = debug_file::Entity::find()
            .select_only()
            .columns([
                debug_file::Column::Id,
                debug_file::Column::DebugId,
                debug_file::Column::Kind,
                debug_file::Column::Name,
                debug_file::Column::Size,
                debug_file::Column::Sha1,
                debug_file::Column::CreatedAt,
                debug_file::Column::LastUsedAt,
            ])
            .filter(debug_file::Column::ProjectId.eq(project_id));
        if let Some(d) = debug_id {
            q = q.filter(debug_file::Column::DebugId.eq(d));
        }
        if let Some(c) = cursor {
            q = q.filter(
                debug_file::Column::CreatedAt
                    .lt(c.created_at)
                    .or(debug_file::Column::CreatedAt
                        .eq(c.created_at)
                        .and(debug_file::Column::Id.lt(c.id))),
            );
        }
        let mut rows: Vec<Row> = q
            .order_by_desc(debug_file::Column::CreatedAt)
            .order_by_desc(debug_file::Column::Id)
            .limit(limit + 1)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = rows.last().filter(|_| more).map(|r| CreatedCursor {
            created_at: r.6,
            id: r.0,
        });
        let files = rows
            .into_iter()
            .map(
                |(id, debug_id, kind, name, size, sha1, created_at, last_used_at)| DebugFileInfo {
                    id,
                    debug_id,
                    kind,
                    name,
                    size: u64::try_from(size).unwrap_or(0),
                    sha1,
                    created_at: from_millis(created_at),
                    last_used_at: from_millis(last_used_at),
                },
            )
            .collect();
        Ok((files, next))
    }

    /// Deletes the files stored under `debug_id`; returns how many. 404 when it has none.
    pub async fn delete_debug_files(&self, project_id: Uuid, debug_id: &str) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let gone = delete_rows::<debug_file::Entity>(
            &txn,
            debug_file::Column::ProjectId
                .eq(project_id)
                .and(debug_file::Column::DebugId.eq(debug_id)),
        )
        .await?;
        if gone == 0 {
            return Err(Error::NotFound { what: DEBUG_FILES });
        }
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(gone)
    }

    /// Marks the files in `used` as used at `at` (Unix ms); those marked at or after it stay.
    pub async fn mark_files_used(&self, used: &FilesUsed, at: i64) -> Result<(), Error> {
        if used.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write().await?;
        // Collected: a lazy iterator held across the awaits would not be Send.
        let releases: Vec<(&Uuid, &String, &HashSet<String>)> = used
            .release_files
            .iter()
            .flat_map(|(p, releases)| releases.iter().map(move |(r, names)| (p, r, names)))
            .collect();
        for (project_id, release, names) in releases {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            for names in names.chunks(USED_CHUNK) {
                release_file::Entity::update_many()
                    .col_expr(release_file::Column::LastUsedAt, Expr::value(at))
                    .filter(release_file::Column::ProjectId.eq(*project_id))
                    .filter(release_file::Column::Release.eq(release.as_str()))
                    .filter(release_file::Column::Name.is_in(names.iter().copied()))
                    .filter(release_file::Column::LastUsedAt.lt(at))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
        }
        for (project_id, ids) in &used.debug_ids {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            for ids in ids.chunks(USED_CHUNK) {
                debug_file::Entity::update_many()
                    .col_expr(debug_file::Column::LastUsedAt, Expr::value(at))
                    .filter(debug_file::Column::ProjectId.eq(*project_id))
                    .filter(debug_file::Column::DebugId.is_in(ids.iter().copied()))
                    .filter(debug_file::Column::LastUsedAt.lt(at))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
        }
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(())
    }

    /// Deletes the release files and debug-id files of every project last used before
    /// `before` (Unix ms); returns how many of each.
    pub async fn forget_unused_files(&self, before: i64) -> Result<(u64, u64), Error> {
        let txn = self.begin_write().await?;
        let release_files =
            delete_rows::<release_file::Entity>(&txn, release_file::Column::LastUsedAt.lt(before))
                .await?;
        let debug_files =
            delete_rows::<debug_file::Entity>(&txn, debug_file::Column::LastUsedAt.lt(before))
                .await?;
        txn.commit().await.map_err(db_err)?;
        if release_files + debug_files > 0 {
            self.note_write();
        }
        Ok((release_files, debug_files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uses are noted once each, by project and release (files) or project (debug ids).
    #[test]
    fn uses_are_noted_once_each() {
        let mut used = FilesUsed::default();
        assert!(used.is_empty());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            used.note_release_file(a, "shop@1", "~/app.js.map");
            used.note_release_file(a, "shop@1", "~/app.js");
            used.note_debug_id(b, "6a3f6c1e-9d2b-4f3e-8c7a-0b1d2e3f4a5b");
        }
        used.note_release_file(a, "shop@2", "~/app.js.map");
        assert!(!used.is_empty());
        let mut names: Vec<&String> = used.release_files[&a]["shop@1"].iter().collect();
        names.sort();
        assert_eq!(names, ["~/app.js", "~/app.js.map"]);
        assert_eq!(used.release_files[&a].len(), 2);
        assert_eq!(used.debug_ids[&b].len(), 1);
    }
}
