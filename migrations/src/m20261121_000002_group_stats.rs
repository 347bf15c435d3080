//! Per-group counts of tag values, releases, environments and users, kept by the writer with
//! one upsert per batch, so a group's details never scan its events.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GroupStats {
    Table,
    GroupId,
    Dim,
    Value,
    Count,
}

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    Id,
    ProjectId,
    Status,
    LastSeen,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupStats::Table)
                .if_not_exists()
                .col(ColumnDef::new(GroupStats::GroupId).uuid().not_null())
                // "tag:<key>", "release", "environment" or "user".
                .col(ColumnDef::new(GroupStats::Dim).string().not_null())
                .col(ColumnDef::new(GroupStats::Value).string().not_null())
                .col(ColumnDef::new(GroupStats::Count).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(GroupStats::GroupId)
                        .col(GroupStats::Dim)
                        .col(GroupStats::Value),
                )
                .to_owned(),
        )
        .await?;
        // Status listings page by last_seen with the id as tie-breaker.
        m.create_index(
            Index::create()
                .name("ix_groups_project_status_last_seen_id")
                .table(Groups::Table)
                .col(Groups::ProjectId)
                .col(Groups::Status)
                .col(Groups::LastSeen)
                .col(Groups::Id)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }
}
