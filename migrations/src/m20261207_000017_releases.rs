//! Resolving in the next release, as Sentry does: `last_release` is the release of a group's
//! newest event, and `resolved_in_release` the release a group was resolved in (its events
//! from that release do not reopen it; an event from any other release does). Existing groups
//! take their newest event's release.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    LastRelease,
    ResolvedInRelease,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(
                    ColumnDef::new(Groups::LastRelease)
                        .text()
                        .not_null()
                        .default(""),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(ColumnDef::new(Groups::ResolvedInRelease).text().null())
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                r#"UPDATE "groups" SET "last_release" = COALESCE((SELECT "release" FROM "events" WHERE "events"."group_id" = "groups"."id" ORDER BY "seq" DESC LIMIT 1), '')"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Groups::LastRelease, Groups::ResolvedInRelease] {
            m.alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
