//! PostgreSQL only: event rows (about 3 KB) stay whole in their table page. With the default
//! `toast_tuple_target` of about 2 KB, PostgreSQL tried to compress every row's payload blob,
//! which is zstd already (pglz found nothing to gain), and then moved it out of line into the
//! TOAST table: a fifth of the database's CPU time during ingest. Rows over 8 KB are still
//! moved out of line, and the blob is then stored as it is, without another compression try.
//! Both settings only change how new rows are written; nothing is rewritten. SQLite has no
//! such step.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE events SET (toast_tuple_target = 8160)")
            .await?;
        db.execute_unprepared("ALTER TABLE events ALTER COLUMN data SET STORAGE EXTERNAL")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE events RESET (toast_tuple_target)")
            .await?;
        db.execute_unprepared("ALTER TABLE events ALTER COLUMN data SET STORAGE EXTENDED")
            .await?;
        Ok(())
    }
}
