//! User feedback, as Sentry SDKs send it (`user_report` and `feedback` envelope items) and the
//! native API takes it: what a user wrote about an error, linked to the event it is about when
//! it names one (by Faultline's event id or by the Sentry event id the event keeps as its
//! idempotency key, `sentry:<hex>`). A report sent again (an SDK retrying its envelope, or a
//! second `user_report` about the same event, which Sentry keeps one of) has the same
//! `dedup_key` and replaces the first. Deleted with the project and by its retention.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UserReports {
    Table,
    Id,
    ProjectId,
    EventId,
    EventKey,
    Name,
    Email,
    Comments,
    Url,
    DedupKey,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UserReports::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(UserReports::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(UserReports::ProjectId).uuid().not_null())
                // The event it is about, as named (NULL: none).
                .col(ColumnDef::new(UserReports::EventId).uuid().null())
                // `sentry:<32 hex digits>` of that id, as events keep a Sentry id; "" for none.
                .col(ColumnDef::new(UserReports::EventKey).text().not_null())
                .col(ColumnDef::new(UserReports::Name).text().not_null())
                .col(ColumnDef::new(UserReports::Email).text().not_null())
                .col(ColumnDef::new(UserReports::Comments).text().not_null())
                .col(ColumnDef::new(UserReports::Url).text().not_null())
                // NULL: none (each report stands alone).
                .col(ColumnDef::new(UserReports::DedupKey).text().null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(UserReports::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_user_reports_project_created")
                .table(UserReports::Table)
                .col(UserReports::ProjectId)
                .col(UserReports::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_user_reports_dedup")
                .table(UserReports::Table)
                .col(UserReports::ProjectId)
                .col(UserReports::DedupKey)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UserReports::Table).to_owned())
            .await
    }
}
