//! A release's files, as Sentry's release artifacts: the source maps (and minified sources) of
//! a JavaScript build, by name (`~/static/app.min.js.map` or a full URL). Reading an event of
//! the release maps its minified frames through them. One name per release: uploading it
//! again replaces the file. They go with their project.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ReleaseFiles {
    Table,
    Id,
    ProjectId,
    Release,
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
                .table(ReleaseFiles::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ReleaseFiles::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(ReleaseFiles::ProjectId).uuid().not_null())
                .col(ColumnDef::new(ReleaseFiles::Release).text().not_null())
                .col(ColumnDef::new(ReleaseFiles::Name).text().not_null())
                .col(ColumnDef::new(ReleaseFiles::Size).big_integer().not_null())
                // Hex, as Sentry's release artifacts show it.
                .col(ColumnDef::new(ReleaseFiles::Sha1).text().not_null())
                .col(ColumnDef::new(ReleaseFiles::Content).binary().not_null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(ReleaseFiles::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_release_files_name")
                .table(ReleaseFiles::Table)
                .col(ReleaseFiles::ProjectId)
                .col(ReleaseFiles::Release)
                .col(ReleaseFiles::Name)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ReleaseFiles::Table).to_owned())
            .await
    }
}
