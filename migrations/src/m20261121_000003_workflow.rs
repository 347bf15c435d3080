//! The fix workflow stage of a group (Log Center), a per-project switch for anonymous ingest
//! from loopback, and the server's start/stop history that uptime is computed from.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    WorkflowStage,
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    AnonymousLoopbackIngest,
}

#[derive(DeriveIden, Clone, Copy)]
enum ProcessRuns {
    Table,
    Id,
    StartedAt,
    LastAliveAt,
    StoppedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one added column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(
                    ColumnDef::new(Groups::WorkflowStage)
                        .string()
                        .not_null()
                        .default("NEW"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Projects::Table)
                .add_column(
                    ColumnDef::new(Projects::AnonymousLoopbackIngest)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProcessRuns::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ProcessRuns::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ProcessRuns::StartedAt)
                        .big_integer()
                        .not_null(),
                )
                // Refreshed while running, so a run that ended without a clean stop still
                // tells roughly when it went down.
                .col(
                    ColumnDef::new(ProcessRuns::LastAliveAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(ProcessRuns::StoppedAt).big_integer().null())
                .to_owned(),
        )
        .await
    }
}
