//! PostgreSQL only: the search index's tables (see `store::pg_search`).
//! - `event_search_pending`: event number ranges written by ingest batches, one row per batch
//!   in the batch's own transaction, that the search indexer has not read yet. A search reads
//!   the events in these ranges directly.
//! - `event_search_chunks`: what the indexer made of them: per range of a few hundred events,
//!   the distinct three-byte sequences of their search texts (`trigrams`, each packed in an
//!   integer), under a GIN index, which answers "holds all of these" exactly. A search reads
//!   the events of the chunks holding every trigram of its words.
//!
//! Ranges may overlap (batches of several servers interleave their event numbers), so neither
//! table is keyed by its range. The events stored before this migration are listed as one
//! pending range, so the indexer reads them too. SQLite keeps its own index in another file
//! (migration 10).

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
        for stmt in [
            "CREATE TABLE IF NOT EXISTS event_search_pending \
             (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             lo BIGINT NOT NULL, hi BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS event_search_chunks \
             (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             lo BIGINT NOT NULL, hi BIGINT NOT NULL, trigrams INTEGER[] NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_event_search_chunks_trigrams \
             ON event_search_chunks USING gin (trigrams)",
            "INSERT INTO event_search_pending (lo, hi) \
             SELECT min(seq), max(seq) FROM events HAVING count(*) > 0",
        ] {
            db.execute_unprepared(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP TABLE IF EXISTS event_search_chunks")
            .await?;
        db.execute_unprepared("DROP TABLE IF EXISTS event_search_pending")
            .await?;
        Ok(())
    }
}
