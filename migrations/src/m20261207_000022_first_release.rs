//! Each group's first release, as in Sentry: the release its first event named (NULL: none), so
//! that a release lists the issues it brought and the issue list filters by it. Set when the
//! group is made, never changed. Filled here from each group's earliest stored event (groups
//! whose events have all expired keep NULL).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    ProjectId,
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
        m.create_index(
            Index::create()
                .name("ix_groups_first_release")
                .table(Groups::Table)
                .col(Groups::ProjectId)
                .col(Groups::FirstRelease)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_groups_first_release")
                .table(Groups::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::FirstRelease)
                .to_owned(),
        )
        .await
    }
}
