//! Ignoring until more users are affected, as Sentry's "until it affects N more users":
//! `groups.ignored_until_users` is the number of users (distinct `user` values of its events)
//! at which an ignored group comes back (NULL: not by users).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    IgnoredUntilUsers,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .add_column(
                    ColumnDef::new(Groups::IgnoredUntilUsers)
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Groups::Table)
                .drop_column(Groups::IgnoredUntilUsers)
                .to_owned(),
        )
        .await
    }
}
