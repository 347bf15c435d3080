//! Comments can be edited by their author, as in Sentry: `edited_at` says when last (NULL:
//! never).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GroupComments {
    Table,
    EditedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(GroupComments::Table)
                .add_column(ColumnDef::new(GroupComments::EditedAt).big_integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(GroupComments::Table)
                .drop_column(GroupComments::EditedAt)
                .to_owned(),
        )
        .await
    }
}
