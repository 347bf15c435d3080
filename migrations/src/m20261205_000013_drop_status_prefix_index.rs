//! Drops `ix_groups_project_status` (project, status, last seen): a prefix of
//! `ix_groups_project_status_last_seen_id` (project, status, last seen, id, migration 2), which
//! serves every query it served. Each commit that saw a group moved the group's entry in both,
//! since both hold its last seen; on SQLite that wrote one more whole page to the WAL per
//! commit, about a twentieth of what a one-event commit writes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// The same SQL on both databases.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_groups_project_status")
            .await
            .map(drop)
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ix_groups_project_status \
                 ON groups (project_id, status, last_seen)",
            )
            .await
            .map(drop)
    }
}
