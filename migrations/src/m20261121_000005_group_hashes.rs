//! Every grouping key that names a group. Grouping version 2 gives an event several keys
//! (in-app frames, all frames, or the client's fingerprint) and the event joins the group any
//! of them names, so a group has several keys. Existing groups are backfilled with their
//! fingerprint, keeping their grouping version, so they keep matching.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GroupHashes {
    Table,
    ProjectId,
    Hash,
    GroupId,
    GroupingVersion,
}

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    Id,
    ProjectId,
    Fingerprint,
    GroupingVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupHashes::Table)
                .if_not_exists()
                .col(ColumnDef::new(GroupHashes::ProjectId).uuid().not_null())
                // 32 hex digits of xxh3-128, as in `groups.fingerprint`.
                .col(ColumnDef::new(GroupHashes::Hash).string().not_null())
                .col(ColumnDef::new(GroupHashes::GroupId).uuid().not_null())
                .col(
                    ColumnDef::new(GroupHashes::GroupingVersion)
                        .integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(GroupHashes::ProjectId)
                        .col(GroupHashes::Hash),
                )
                .to_owned(),
        )
        .await?;
        // Deleting a group deletes its keys.
        m.create_index(
            Index::create()
                .name("ix_group_hashes_group_id")
                .table(GroupHashes::Table)
                .col(GroupHashes::GroupId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        let backfill = Query::insert()
            .into_table(GroupHashes::Table)
            .columns([
                GroupHashes::ProjectId,
                GroupHashes::Hash,
                GroupHashes::GroupId,
                GroupHashes::GroupingVersion,
            ])
            .select_from(
                Query::select()
                    .columns([
                        Groups::ProjectId,
                        Groups::Fingerprint,
                        Groups::Id,
                        Groups::GroupingVersion,
                    ])
                    .from(Groups::Table)
                    .to_owned(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        // `groups` is unique on (project_id, fingerprint), so every row is a new key.
        m.exec_stmt(backfill).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(GroupHashes::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
