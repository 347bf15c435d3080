//! SQLite only: `group_stats` becomes a `WITHOUT ROWID` table, its rows stored in the order of
//! its primary key (group, dimension, value) instead of the order they were first written.
//!
//! A group's detail reads every row of the group (one per user, release, environment and tag
//! value). In a rowid table those rows lie wherever the batch that first saw each value put
//! them, spread over the whole table, so the largest group's detail read one page per row.
//! Clustered, they are neighbours. PostgreSQL keeps its heap table.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        // The same columns and key as the table migration 2 made, without the rowid.
        rebuild(m, "WITHOUT ROWID").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        rebuild(m, "").await
    }
}

/// Copies `group_stats` into a new table of the same columns and key with `options`, in one
/// savepoint: a server stopped midway finds the old table as it was.
async fn rebuild(m: &SchemaManager<'_>, options: &str) -> Result<(), DbErr> {
    m.get_connection()
        .execute_unprepared(&format!(
            "SAVEPOINT group_stats_rebuild;
             CREATE TABLE group_stats_rebuilt (
                 group_id uuid_text NOT NULL,
                 dim varchar NOT NULL,
                 value varchar NOT NULL,
                 count integer NOT NULL,
                 PRIMARY KEY (group_id, dim, value)
             ) {options};
             INSERT INTO group_stats_rebuilt (group_id, dim, value, count)
                 SELECT group_id, dim, value, count FROM group_stats;
             DROP TABLE group_stats;
             ALTER TABLE group_stats_rebuilt RENAME TO group_stats;
             RELEASE group_stats_rebuild;"
        ))
        .await
        .map(drop)
}
