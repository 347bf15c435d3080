//! Ignoring until a rate, as Sentry's "until it occurs N times per hour" (`ignoreCount` with
//! `ignoreWindow`) and "until it affects N users per hour" (`ignoreUserCount` with
//! `ignoreUserWindow`): an ignored group comes back once that many events (or distinct users
//! of its events) arrived within the last `window` minutes. NULL: not by a rate.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    IgnoredRateCount,
    IgnoredRateWindow,
    IgnoredUserRateCount,
    IgnoredUserRateWindow,
}

const COLUMNS: [(Groups, bool); 4] = [
    (Groups::IgnoredRateCount, true),
    (Groups::IgnoredRateWindow, false),
    (Groups::IgnoredUserRateCount, true),
    (Groups::IgnoredUserRateWindow, false),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        for (column, big) in COLUMNS {
            let mut def = ColumnDef::new(column);
            if big {
                def.big_integer();
            } else {
                def.integer();
            }
            m.alter_table(
                Table::alter()
                    .table(Groups::Table)
                    .add_column(def.null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (column, _) in COLUMNS {
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
