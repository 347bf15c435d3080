//! Chunks of artifact bundles that sentry-cli uploads before asking for their assembly, by
//! project and SHA-1. Assembly drops the chunks it used; chunks left a day are dropped at the
//! project's next assembly.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UploadChunks {
    Table,
    ProjectId,
    Sha1,
    Content,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UploadChunks::Table)
                .if_not_exists()
                .col(ColumnDef::new(UploadChunks::ProjectId).uuid().not_null())
                .col(ColumnDef::new(UploadChunks::Sha1).text().not_null())
                .col(ColumnDef::new(UploadChunks::Content).binary().not_null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(UploadChunks::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(UploadChunks::ProjectId)
                        .col(UploadChunks::Sha1),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UploadChunks::Table).to_owned())
            .await
    }
}
