//! SQLite only: the events deleted since the search index (`faultline-search.db`, kept by the
//! server's search indexer, see `store::search`) last caught up. The index is another database
//! file, which a trigger here cannot reach, so deletions are written down here and the indexer
//! removes them from the index, then from this table. PostgreSQL has no such index.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS event_search_forget (seq INTEGER PRIMARY KEY NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER IF NOT EXISTS event_search_forget_deleted AFTER DELETE ON events \
             BEGIN INSERT OR IGNORE INTO event_search_forget (seq) VALUES (old.seq); END",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS event_search_forget_deleted")
            .await?;
        db.execute_unprepared("DROP TABLE IF EXISTS event_search_forget")
            .await?;
        Ok(())
    }
}
