//! Ignoring a group for a while: `ignored_until` (ms) and `ignored_until_count` (the count at
//! which it comes back) are set only while a group is ignored with such a condition, and
//! cleared whenever its status changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    IgnoredUntil,
    IgnoredUntilCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [Groups::IgnoredUntil, Groups::IgnoredUntilCount] {
            m.alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .add_column(ColumnDef::new(column).big_integer().null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Groups::IgnoredUntil, Groups::IgnoredUntilCount] {
            m.alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
