//! Alert rules may count only one environment's events and only events of at least a level,
//! as Sentry's alert filters do ("the event's environment is", "the event's level is greater
//! than or equal to"). NULL: any. SQLite alters one column per statement.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AlertRules {
    Table,
    Environment,
    Level,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [AlertRules::Environment, AlertRules::Level] {
            m.alter_table(
                Table::alter()
                    .table(AlertRules::Table)
                    .add_column(ColumnDef::new(column).text().null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [AlertRules::Level, AlertRules::Environment] {
            m.alter_table(
                Table::alter()
                    .table(AlertRules::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
