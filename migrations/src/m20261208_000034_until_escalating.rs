//! Archiving until escalating, as Sentry's "Archive: until escalating": while
//! `groups.ignored_until_escalating` is set, the rate snooze in `ignored_rate_count` (events
//! in the last hour) was worked out from the group's own history, and reaching it ends the
//! ignore as escalating.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    IgnoredUntilEscalating,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(
                    ColumnDef::new(Groups::IgnoredUntilEscalating)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::IgnoredUntilEscalating)
                .to_owned(),
        )
        .await
    }
}
