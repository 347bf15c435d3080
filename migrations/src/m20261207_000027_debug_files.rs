//! Source maps and minified sources by debug id, as sentry-cli's `sourcemaps inject` marks a
//! build: the id is written into the minified file and its map, SDKs report it for each file
//! in an event's `debug_meta.images`, and an artifact bundle lists it per file. A file found
//! this way needs no release. One file of each kind per debug id; they go with their project.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum DebugFiles {
    Table,
    Id,
    ProjectId,
    DebugId,
    Kind,
    Name,
    Size,
    Sha1,
    Content,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DebugFiles::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(DebugFiles::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(DebugFiles::ProjectId).uuid().not_null())
                // Lowercase, hyphenated.
                .col(ColumnDef::new(DebugFiles::DebugId).text().not_null())
                // `source_map` or `minified_source`.
                .col(ColumnDef::new(DebugFiles::Kind).text().not_null())
                // The URL the bundle gave it (`~/static/app.min.js.map`), for people.
                .col(ColumnDef::new(DebugFiles::Name).text().not_null())
                .col(ColumnDef::new(DebugFiles::Size).big_integer().not_null())
                .col(ColumnDef::new(DebugFiles::Sha1).text().not_null())
                .col(ColumnDef::new(DebugFiles::Content).binary().not_null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(DebugFiles::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_debug_files_id")
                .table(DebugFiles::Table)
                .col(DebugFiles::ProjectId)
                .col(DebugFiles::DebugId)
                .col(DebugFiles::Kind)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DebugFiles::Table).to_owned())
            .await
    }
}
