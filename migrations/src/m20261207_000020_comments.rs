//! Comments on issues, as in Sentry's issue activity: who wrote what, when. A group's comments
//! go with it (deleted with it, moved with its events when it is merged into another).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GroupComments {
    Table,
    Id,
    ProjectId,
    GroupId,
    MemberId,
    KeyId,
    Author,
    Text,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupComments::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(GroupComments::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(GroupComments::ProjectId).uuid().not_null())
                .col(ColumnDef::new(GroupComments::GroupId).uuid().not_null())
                // The member whose key wrote it, if any, and the key itself.
                .col(ColumnDef::new(GroupComments::MemberId).uuid().null())
                .col(ColumnDef::new(GroupComments::KeyId).uuid().not_null())
                // As shown: the member's name (or email), else the key's name.
                .col(ColumnDef::new(GroupComments::Author).text().not_null())
                .col(ColumnDef::new(GroupComments::Text).text().not_null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(GroupComments::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_group_comments_group")
                .table(GroupComments::Table)
                .col(GroupComments::GroupId)
                .col(GroupComments::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(GroupComments::Table).to_owned())
            .await
    }
}
