//! Each group's first release, as in Sentry: the release its first event named (NULL: none), so
//! that a release lists the issues it brought and the issue list filters by it. Set when the
//! group is made, never changed. Filled here from each group's earliest stored event (groups
//! whose events have all expired keep NULL).
//!
//! No index: a project's groups are few and read through, and on PostgreSQL every batch's
//! update of a group's count (not a HOT update: last seen and count are indexed) adds an entry
//! to every index of `groups`, so one more index costs every batch. With one, single-event
//! capture on PostgreSQL measured 4-7 % below the session's start in two alternating pairs;
//! without, level with it in three (BENCHMARKS.md, session 33; a noisy hour).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    FirstRelease,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(ColumnDef::new(Groups::FirstRelease).text().null())
                .to_owned(),
        )
        .await?;
        // The earliest event by arrival order (`ix_events_group_seq`).
        m.get_connection()
            .execute_unprepared(
                r#"UPDATE "groups" SET "first_release" = NULLIF((SELECT "e"."release" FROM "events" AS "e" WHERE "e"."group_id" = "groups"."id" ORDER BY "e"."seq" LIMIT 1), '')"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::FirstRelease)
                .to_owned(),
        )
        .await
    }
}
