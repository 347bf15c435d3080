//! Alert rules may count only events with given tags, as Sentry's "the event's tags match"
//! filter: `alert_rules.tags` is a JSON object of tag key → value (`{}`: every event).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AlertRules {
    Table,
    Tags,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AlertRules::Table)
                .add_column(
                    ColumnDef::new(AlertRules::Tags)
                        .text()
                        .not_null()
                        .default("{}"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AlertRules::Table)
                .drop_column(AlertRules::Tags)
                .to_owned(),
        )
        .await
    }
}
