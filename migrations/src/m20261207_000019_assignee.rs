//! Assigning issues, as in Sentry: `assignee_id` names the member of the team a group is
//! assigned to (NULL: nobody). Removing a member unassigns their groups.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    AssigneeId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(ColumnDef::new(Groups::AssigneeId).uuid().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::AssigneeId)
                .to_owned(),
        )
        .await
    }
}
