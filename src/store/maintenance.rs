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
pub const MAINTENANCE_LOCK_KEY: i64 = 0x466C_7441_6E6C_797A;

/// When autovacuum is on, a stale table is analyzed only once its last analyze (manual or
/// automatic) is older than this.
const AUTOVACUUM_GRACE: &str = "10 minutes";

/// The tables of the current schema due for `action` (`analyze` or `vacuum`) by autovacuum's
/// own rule: `counter` (rows changed since the last analyze, or dead rows) above
/// `autovacuum_<action>_threshold + autovacuum_<action>_scale_factor * reltuples` (`reltuples`
/// is -1 before the first analyze, read as 0) — all of them with `autovacuum = off`, else
/// those for which `otherwise` holds. Per-table thresholds (`ALTER TABLE … SET
/// (autovacuum_…)`) are not read: the server's settings apply.
fn due_tables_sql(action: &str, counter: &str, otherwise: &str) -> String {
    format!(
        "SELECT s.schemaname::text AS schema, s.relname::text AS name \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() \
           AND s.{counter} > \
               current_setting('autovacuum_{action}_threshold')::float8 \
               + current_setting('autovacuum_{action}_scale_factor')::float8 \
                 * greatest(c.reltuples, 0)::float8 \
           AND (current_setting('autovacuum') = 'off' OR {otherwise}) \
         ORDER BY s.relname"
    )
}

/// Tables needing `ANALYZE`: where autovacuum runs, only those last analyzed longer than
/// `AUTOVACUUM_GRACE` ago (or never): autovacuum is then behind, not merely about to run.
fn stale_tables_sql() -> String {
    due_tables_sql(
        "analyze",
        "n_mod_since_analyze",
        &format!(
            "coalesce(greatest(s.last_analyze, s.last_autoanalyze), '-infinity') \
             < now() - interval '{AUTOVACUUM_GRACE}'"
        ),
    )
}

/// Tables needing `VACUUM` that autovacuum will not vacuum: where it runs, only those it is
/// turned off for (`autovacuum_enabled = false`); the others are left to it.
fn dead_tables_sql() -> String {
    due_tables_sql(
        "vacuum",
        "n_dead_tup",
        "'autovacuum_enabled=false' = ANY (coalesce(c.reloptions, '{}'))",
    )
}

/// A name as a quoted PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Analyzes the tables whose statistics are stale (see `stale_tables_sql`) and returns
    /// their names. Empty on SQLite, when nothing is stale, and when another instance holds
    /// `MAINTENANCE_LOCK_KEY`.
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

    /// Begins a pass (PostgreSQL only): a transaction holding `MAINTENANCE_LOCK_KEY`, and the
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
                [MAINTENANCE_LOCK_KEY.into()],
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
    /// and when another instance holds `MAINTENANCE_LOCK_KEY`.
    ///
    /// `VACUUM` cannot run inside a transaction: the pass holds the lock in a transaction on
    /// one connection and vacuums on another (the transaction has no snapshot between its
    /// statements, so it does not hold back what `VACUUM` may remove).
    pub async fn vacuum_dead_tables(&self) -> Result<Vec<String>, Error> {
        let Some((txn, tables)) = self.begin_pass(&dead_tables_sql()).await? else {
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
        assert_eq!(MAINTENANCE_LOCK_KEY.to_be_bytes(), *b"FltAnlyz");
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
