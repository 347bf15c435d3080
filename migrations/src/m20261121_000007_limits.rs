//! Per-project security settings (rate-limit overrides, extra scrub fields, allowed browser
//! origins) and the notification integrations (slack, email, webhook) of each project.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ProjectSettings {
    Table,
    ProjectId,
    RateLimitIngest,
    RateLimitAnalytics,
    RateLimitGeneral,
    ScrubFields,
    AllowedOrigins,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Integrations {
    Table,
    ProjectId,
    Name,
    Config,
    Status,
    LastTestAt,
    LastTestError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ProjectSettings::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ProjectSettings::ProjectId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                // Requests per minute per key; NULL: the server-wide default.
                .col(
                    ColumnDef::new(ProjectSettings::RateLimitIngest)
                        .integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(ProjectSettings::RateLimitAnalytics)
                        .integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(ProjectSettings::RateLimitGeneral)
                        .integer()
                        .null(),
                )
                // JSON arrays of strings.
                .col(
                    ColumnDef::new(ProjectSettings::ScrubFields)
                        .text()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProjectSettings::AllowedOrigins)
                        .text()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProjectSettings::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Integrations::Table)
                .if_not_exists()
                .col(ColumnDef::new(Integrations::ProjectId).uuid().not_null())
                // "slack", "email" or "webhook".
                .col(ColumnDef::new(Integrations::Name).string().not_null())
                // JSON object, secrets included: they are needed to send.
                .col(ColumnDef::new(Integrations::Config).text().not_null())
                .col(ColumnDef::new(Integrations::Status).string().not_null())
                .col(
                    ColumnDef::new(Integrations::LastTestAt)
                        .big_integer()
                        .null(),
                )
                .col(ColumnDef::new(Integrations::LastTestError).text().null())
                .col(
                    ColumnDef::new(Integrations::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Integrations::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(Integrations::ProjectId)
                        .col(Integrations::Name),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(Integrations::Table)
                .if_exists()
                .to_owned(),
        )
        .await?;
        m.drop_table(
            Table::drop()
                .table(ProjectSettings::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
