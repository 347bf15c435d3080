//! Inbound filters, as in Sentry's project settings: which events from Sentry SDKs a project
//! drops when they arrive (`project_settings.inbound_filters`, JSON; `{}`: none), and how many
//! it dropped, per day and reason (`filtered_events`), deleted with the project.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ProjectSettings {
    Table,
    InboundFilters,
}

#[derive(DeriveIden, Clone, Copy)]
enum FilteredEvents {
    Table,
    ProjectId,
    Day,
    Reason,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ProjectSettings::Table)
                .add_column(
                    ColumnDef::new(ProjectSettings::InboundFilters)
                        .text()
                        .not_null()
                        .default("{}"),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(FilteredEvents::Table)
                .if_not_exists()
                .col(ColumnDef::new(FilteredEvents::ProjectId).uuid().not_null())
                // Days since the Unix epoch (UTC).
                .col(ColumnDef::new(FilteredEvents::Day).big_integer().not_null())
                // The filter's name (`browser_extensions`, `localhost`, …).
                .col(ColumnDef::new(FilteredEvents::Reason).text().not_null())
                .col(
                    ColumnDef::new(FilteredEvents::Count)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(FilteredEvents::ProjectId)
                        .col(FilteredEvents::Day)
                        .col(FilteredEvents::Reason),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(FilteredEvents::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(ProjectSettings::Table)
                .drop_column(ProjectSettings::InboundFilters)
                .to_owned(),
        )
        .await
    }
}
