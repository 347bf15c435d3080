//! Table statistics and vacuuming on PostgreSQL when autovacuum does not keep them (see
//! `jobs::maintenance`). Without statistics the planner guesses row counts, and the event
//! listings and searches pick plans hundreds of times slower; without vacuuming, the tables
//! every batch updates keep every old row version. SQLite has nothing to do here.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};

use super::{Store, db_err};
use crate::error::Error;

/// The advisory lock a pass holds (`pg_try_advisory_xact_lock`), so that of several Faultline
/// instances on one database only one analyzes or vacuums at a time; the others skip their
/// pass. The bytes of "FltAnlyz" as a big-endian `bigint`; no other Faultline code takes an
/// advisory lock.
pub const ANALYZE_LOCK_KEY: i64 = 0x466C_7441_6E6C_797A;

/// When autovacuum is on, a stale table is analyzed only once its last analyze (manual or
/// automatic) is older than this: autovacuum is then behind, not merely about to run.
const AUTOVACUUM_GRACE: &str = "10 minutes";

/// The tables of the current schema that need `ANALYZE`, by autovacuum's own rule: more rows
/// changed since the last analyze than `autovacuum_analyze_threshold +
/// autovacuum_analyze_scale_factor * reltuples` (`reltuples` is -1 before the first analyze,
/// read as 0). With `autovacuum = off` that is all; with it on, only tables whose last analyze
/// is older than `AUTOVACUUM_GRACE` (or that were never analyzed). Per-table storage
/// parameters (`ALTER TABLE … SET (autovacuum_…)`) are not read: the server's settings apply.
fn stale_tables_sql() -> String {
    format!(
        "SELECT s.schemaname::text AS schema, s.relname::text AS name \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() \
           AND s.n_mod_since_analyze > \
               current_setting('autovacuum_analyze_threshold')::float8 \
               + current_setting('autovacuum_analyze_scale_factor')::float8 \
                 * greatest(c.reltuples, 0)::float8 \
           AND (current_setting('autovacuum') = 'off' \
                OR coalesce(greatest(s.last_analyze, s.last_autoanalyze), '-infinity') \
                   < now() - interval '{AUTOVACUUM_GRACE}') \
         ORDER BY s.relname"
    )
}

/// The tables of the current schema that autovacuum would vacuum but will not: more dead rows
/// than `autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor * reltuples`, where
/// autovacuum is off for the server or for the table (`autovacuum_enabled = false`). Where it
/// runs, vacuuming is left to it.
fn dead_tables_sql() -> &'static str {
    "SELECT s.schemaname::text AS schema, s.relname::text AS name \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname = current_schema() \
       AND s.n_dead_tup > \
           current_setting('autovacuum_vacuum_threshold')::float8 \
           + current_setting('autovacuum_vacuum_scale_factor')::float8 \
             * greatest(c.reltuples, 0)::float8 \
       AND (current_setting('autovacuum') = 'off' \
            OR 'autovacuum_enabled=false' = ANY (coalesce(c.reloptions, '{}'))) \
     ORDER BY s.relname"
}

/// A name as a quoted PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Analyzes the tables whose statistics are stale (see `stale_tables_sql`) and returns
    /// their names. Empty on SQLite, when nothing is stale, and when another instance holds
    /// `ANALYZE_LOCK_KEY`.
    ///
    /// The pass is one transaction on one connection: the advisory lock is the transaction's
    /// (it cannot outlive the pass on a pooled connection), and `ANALYZE` may run inside a
    /// transaction block. Each table stays locked against other `ANALYZE`s, `VACUUM`s and
    /// schema changes (SHARE UPDATE EXCLUSIVE), but not against reads and writes, until the
    /// commit.
    pub async fn analyze_stale_tables(&self) -> Result<Vec<String>, Error> {
        let Some((txn, tables)) = self.begin_pass(&stale_tables_sql()).await? else {
            return Ok(Vec::new());
        };
        for (schema, table) in &tables {
            let sql = format!("ANALYZE {}.{}", quote_ident(schema), quote_ident(table));
            txn.execute_unprepared(&sql).await.map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(tables.into_iter().map(|(_, table)| table).collect())
    }
}

impl Store {
    /// Begins a pass (PostgreSQL only): a transaction holding `ANALYZE_LOCK_KEY`, and the
    /// tables (schema, name) that `sql` lists in it. `None` on SQLite and when another
    /// instance holds the lock.
    async fn begin_pass(
        &self,
        sql: &str,
    ) -> Result<Option<(DatabaseTransaction, Vec<(String, String)>)>, Error> {
        if self.backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let backend = DbBackend::Postgres;
        let txn = self.db.begin().await.map_err(db_err)?;
        let locked = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [ANALYZE_LOCK_KEY.into()],
            ))
            .await
            .map_err(db_err)?
            .map(|row| row.try_get::<bool>("", "locked"))
            .transpose()
            .map_err(db_err)?
            .unwrap_or(false);
        if !locked {
            txn.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let tables = txn
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|row| {
                Ok::<_, sea_orm::DbErr>((
                    row.try_get::<String>("", "schema")?,
                    row.try_get("", "name")?,
                ))
            })
            .collect::<Result<Vec<(String, String)>, _>>()
            .map_err(db_err)?;
        Ok(Some((txn, tables)))
    }

    /// Vacuums the tables with more dead rows than autovacuum allows, where autovacuum is off
    /// (see `dead_tables_sql`), and returns their names. Every ingest batch updates its groups'
    /// rows and counts, so without vacuuming those tables grow by a row version per batch
    /// (125 MB for 5 000 groups after 1 000 000 events). Empty on SQLite, when nothing is due,
    /// and when another instance holds `ANALYZE_LOCK_KEY`.
    ///
    /// `VACUUM` cannot run inside a transaction: the pass holds the lock in a transaction on
    /// one connection and vacuums on another (the transaction has no snapshot between its
    /// statements, so it does not hold back what `VACUUM` may remove).
    pub async fn vacuum_dead_tables(&self) -> Result<Vec<String>, Error> {
        let Some((txn, tables)) = self.begin_pass(dead_tables_sql()).await? else {
            return Ok(Vec::new());
        };
        for (schema, table) in &tables {
            let sql = format!("VACUUM {}.{}", quote_ident(schema), quote_ident(table));
            self.db.execute_unprepared(&sql).await.map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(tables.into_iter().map(|(_, table)| table).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("events"), "\"events\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn the_lock_key_spells_its_name() {
        assert_eq!(ANALYZE_LOCK_KEY.to_be_bytes(), *b"FltAnlyz");
    }

    #[tokio::test]
    async fn sqlite_has_nothing_to_analyze() {
        let store = Store::open("sqlite::memory:", 1).await.unwrap();
        assert_eq!(
            store.analyze_stale_tables().await.unwrap(),
            Vec::<String>::new()
        );
    }
}
