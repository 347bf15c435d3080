//! Each issue's activity, as in Sentry's activity feed: who resolved, ignored, unresolved,
//! assigned, merged or moved it along the fix workflow, and when Faultline itself reopened it
//! (a regression, a snooze that ended). Comments stay in `group_comments` and are read into the
//! same feed. A group's activity goes with it (deleted with it, moved into the group it is
//! merged into).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GroupActivity {
    Table,
    Id,
    ProjectId,
    GroupId,
    Kind,
    MemberId,
    Actor,
    Data,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupActivity::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(GroupActivity::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(GroupActivity::ProjectId).uuid().not_null())
                .col(ColumnDef::new(GroupActivity::GroupId).uuid().not_null())
                // `set_resolved`, `set_ignored`, `set_regression`, `assigned`, ...
                .col(ColumnDef::new(GroupActivity::Kind).text().not_null())
                // The member whose key acted, if any.
                .col(ColumnDef::new(GroupActivity::MemberId).uuid().null())
                // As shown: the member's name (or email), else the key's name; NULL when
                // Faultline itself acted.
                .col(ColumnDef::new(GroupActivity::Actor).text().null())
                // What the kind needs besides (a JSON object).
                .col(ColumnDef::new(GroupActivity::Data).text().not_null())
                // Unix milliseconds.
                .col(
                    ColumnDef::new(GroupActivity::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_group_activity_group")
                .table(GroupActivity::Table)
                .col(GroupActivity::GroupId)
                .col(GroupActivity::CreatedAt)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(GroupActivity::Table).to_owned())
            .await
    }
}
