//! Source maps are forgotten when they go unused, as in Sentry (90 days without placing an
//! event, by default): `last_used_at` (Unix ms) of each release file and debug-id file says
//! when it last placed an event's frames, or when it was stored if it never has.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ReleaseFiles {
    Table,
    LastUsedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum DebugFiles {
    Table,
    LastUsedAt,
    CreatedAt,
}

/// Adds `last_used_at` to `table`, set to when each file was stored.
async fn add(
    m: &SchemaManager<'_>,
    table: impl IntoIden + Copy + 'static,
    last_used: impl IntoIden + Copy + 'static,
    created: impl IntoIden + Copy + 'static,
) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(table)
            .add_column(
                ColumnDef::new(last_used)
                    .big_integer()
                    .not_null()
                    .default(0),
            )
            .to_owned(),
    )
    .await?;
    m.exec_stmt(
        Query::update()
            .table(table)
            .value(last_used, Expr::col(created))
            .to_owned(),
    )
    .await
}

async fn drop(
    m: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    last_used: impl IntoIden + 'static,
) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(table)
            .drop_column(last_used)
            .to_owned(),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add(
            m,
            ReleaseFiles::Table,
            ReleaseFiles::LastUsedAt,
            ReleaseFiles::CreatedAt,
        )
        .await?;
        add(
            m,
            DebugFiles::Table,
            DebugFiles::LastUsedAt,
            DebugFiles::CreatedAt,
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, DebugFiles::Table, DebugFiles::LastUsedAt).await?;
        drop(m, ReleaseFiles::Table, ReleaseFiles::LastUsedAt).await
    }
}
