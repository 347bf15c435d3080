//! How the batch commit's multi-row statements reach each database.
//!
//! - **PostgreSQL:** a statement goes as one round trip whatever its row count. An insert
//!   sends each column's values as one array parameter and reads them back as rows with
//!   `unnest` (`INSERT … SELECT … FROM unnest($1, $2, …)`); a look-up sends its keys as one
//!   array (`= ANY($1)`). One statement text serves every batch size, so it is prepared once
//!   per connection. Rows are inserted in array order, which keeps the lock order the batch
//!   commit relies on (`write.rs`). Before this, the rows went in power-of-two pieces (below), about twenty
//!   round trips per batch; each round trip waits for the writer and for the database
//!   backend to be scheduled again, on a machine whose cores the request workers keep busy.
//! - **SQLite** (the writer thread, and sqlx's in-memory database) has no array parameters.
//!   Rows go in consecutive pieces whose lengths are powers of two (`Pieces`), so a few
//!   statement texts serve every batch size and stay prepared. The writer thread's statements
//!   complete at once: there is no round trip to save. The rows are written as `?`
//!   placeholders and their values bound as they are, ahead of the statement's own values
//!   (`BatchTxn::rows_binding`), instead of being copied into the statement and out again.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, Statement, StatementBuilder, Value,
    sea_query::{
        ArrayType, Expr, ExprTrait, Func, InsertStatement, PostgresQueryBuilder, SelectStatement,
    },
};

use super::db_err;
use crate::error::Error;

/// A write transaction the batch commit runs in: sqlx's (PostgreSQL, in-memory SQLite) or the
/// SQLite writer thread's (`lite`).
pub(super) trait BatchTxn {
    async fn exec<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<(), Error>;
    async fn rows<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<Vec<Row>, Error>;
    /// `rows` on SQLite, with `leading` bound to the first `?` placeholders of `stmt` and the
    /// statement's own values after them.
    async fn rows_binding(
        &self,
        stmt: &InsertStatement,
        leading: Vec<Value>,
    ) -> Result<Vec<Row>, Error>;
    /// The transaction when it is PostgreSQL's, whose statements may carry array parameters.
    fn postgres(&self) -> Option<&DatabaseTransaction>;
}

impl BatchTxn for DatabaseTransaction {
    async fn exec<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<(), Error> {
        self.execute(stmt).await.map(drop).map_err(db_err)
    }
    async fn rows<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<Vec<Row>, Error> {
        let rows = self.query_all(stmt).await.map_err(db_err)?;
        Ok(rows.into_iter().map(Row::Orm).collect())
    }
    async fn rows_binding(
        &self,
        stmt: &InsertStatement,
        mut leading: Vec<Value>,
    ) -> Result<Vec<Row>, Error> {
        let backend = self.get_database_backend();
        let built = StatementBuilder::build(stmt, &backend);
        leading.extend(built.values.into_iter().flat_map(|v| v.0));
        let stmt = Statement::from_sql_and_values(backend, built.sql, leading);
        let rows = self.query_all_raw(stmt).await.map_err(db_err)?;
        Ok(rows.into_iter().map(Row::Orm).collect())
    }
    fn postgres(&self) -> Option<&DatabaseTransaction> {
        (self.get_database_backend() == DbBackend::Postgres).then_some(self)
    }
}

impl BatchTxn for super::lite::LiteTxn<'_> {
    async fn exec<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<(), Error> {
        super::lite::LiteTxn::rows(self, stmt).map(drop)
    }
    async fn rows<S: StatementBuilder + Sync>(&self, stmt: &S) -> Result<Vec<Row>, Error> {
        super::lite::LiteTxn::rows(self, stmt)
    }
    async fn rows_binding(
        &self,
        stmt: &InsertStatement,
        leading: Vec<Value>,
    ) -> Result<Vec<Row>, Error> {
        super::lite::LiteTxn::rows_binding(self, stmt, leading)
    }
    fn postgres(&self) -> Option<&DatabaseTransaction> {
        None
    }
}

/// One row a batch statement returned.
pub(super) enum Row {
    Orm(sea_orm::QueryResult),
    /// Column names and values, as the SQLite writer read them.
    Lite(std::sync::Arc<[String]>, Vec<rusqlite::types::Value>),
}

impl Row {
    /// Column `col`, read the way each connection reads its type.
    pub(super) fn get<T: sea_orm::TryGetable + rusqlite::types::FromSql>(
        &self,
        col: &str,
    ) -> Result<T, Error> {
        match self {
            Row::Orm(r) => r.try_get("", col).map_err(db_err),
            Row::Lite(names, values) => {
                let value = names
                    .iter()
                    .position(|n| n == col)
                    .and_then(|i| values.get(i))
                    .ok_or_else(|| Error::Internal(format!("database: no column {col}")))?;
                T::column_result(value.into())
                    .map_err(|e| Error::Internal(format!("database: {col}: {e}")))
            }
        }
    }
}

/// Inserts `rows` (one value per column of `template`, in its order). `template` holds the
/// table, the columns, any `ON CONFLICT` and `RETURNING`, and no rows. Returns the rows of
/// the `RETURNING` clause. Where arrays cannot carry the rows (a column mixing value kinds),
/// they go in pieces on PostgreSQL too: slower, same result.
pub(super) async fn insert_rows(
    txn: &impl BatchTxn,
    template: &InsertStatement,
    mut rows: Vec<Vec<Value>>,
    max_per_statement: usize,
) -> Result<Vec<Row>, Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(pg) = txn.postgres()
        && let Some((sql, values)) = unnest_insert(template, &mut rows)
    {
        let stmt = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
        let rows = pg.query_all_raw(stmt).await.map_err(db_err)?;
        return Ok(rows.into_iter().map(Row::Orm).collect());
    }
    let mut out = Vec::new();
    let sqlite = txn.postgres().is_none();
    for n in piece_lengths(rows.len(), max_per_statement) {
        let mut stmt = template.clone();
        if sqlite {
            // The values are bound as they are: an event's blob and search text (about 3 KB)
            // were copied into the statement and out of it again, 1-2 % of the CPU.
            let mut params = Vec::with_capacity(n * rows[0].len());
            for row in rows.drain(..n) {
                stmt.values_panic(row.iter().map(|_| Expr::cust("?")));
                params.extend(row);
            }
            out.extend(txn.rows_binding(&stmt, params).await?);
        } else {
            for row in rows.drain(..n) {
                stmt.values_panic(row.into_iter().map(Expr::from));
            }
            out.extend(txn.rows(&stmt).await?);
        }
    }
    Ok(out)
}

/// Runs `select` once with `col` equal to any of `keys` (no rows when there are none).
pub(super) async fn select_in(
    txn: &impl BatchTxn,
    select: &SelectStatement,
    col: Expr,
    mut keys: Vec<String>,
    max_per_statement: usize,
) -> Result<Vec<Row>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if txn.postgres().is_some() {
        let keys: Vec<Value> = keys.into_iter().map(Value::from).collect();
        let any = Func::cust("ANY").arg(Value::Array(ArrayType::String, Some(Box::new(keys))));
        let stmt = select.clone().and_where(col.eq(any)).to_owned();
        return txn.rows(&stmt).await;
    }
    let mut out = Vec::new();
    for n in piece_lengths(keys.len(), max_per_statement) {
        let stmt = select
            .clone()
            .and_where(col.clone().is_in(keys.drain(..n)))
            .to_owned();
        out.extend(txn.rows(&stmt).await?);
    }
    Ok(out)
}

/// PostgreSQL's form of a multi-row insert: the one-row statement's `VALUES ($1, …, $n)`
/// becomes `SELECT … FROM unnest($1, …, $n) AS u(…)`, each parameter an array of one
/// column's values. A column holding NULLs gets a second array saying which rows are NULL
/// (an array parameter cannot hold NULL elements here). `None` when a column mixes value
/// kinds, or holds a kind without an array form; the caller then sends pieces.
fn unnest_insert(
    template: &InsertStatement,
    rows: &mut [Vec<Value>],
) -> Option<(String, Vec<Value>)> {
    let width = rows.first()?.len();
    // Each column's kind, checked on every row before any value is taken out.
    let kinds: Vec<ArrayType> = (0..width)
        .map(|col| array_type(&rows[0][col]))
        .collect::<Option<_>>()?;
    let uniform = rows.iter().all(|row| {
        row.len() == width
            && row
                .iter()
                .zip(&kinds)
                .all(|(v, k)| array_type(v).as_ref() == Some(k))
    });
    if !uniform {
        return None;
    }
    let mut one_row = template.clone();
    one_row.values_panic(rows[0].iter().cloned().map(Expr::from));
    let (sql, _) = one_row.build(PostgresQueryBuilder);
    let params: Vec<String> = (1..=width).map(|i| format!("${i}")).collect();
    let values_clause = format!("VALUES ({})", params.join(", "));
    let at = sql.find(&values_clause)?;
    if sql[at + values_clause.len()..].contains(&values_clause) {
        return None;
    }
    let mut arrays: Vec<Value> = Vec::with_capacity(width);
    let mut select: Vec<String> = Vec::with_capacity(width);
    let mut names: Vec<String> = Vec::with_capacity(width);
    let mut flags: Vec<(usize, Value)> = Vec::new();
    for (col, kind) in kinds.into_iter().enumerate() {
        let (array, nulls) = column_array(rows, col, kind);
        arrays.push(array);
        names.push(format!("c{col}"));
        match nulls {
            None => select.push(format!("u.c{col}")),
            Some(nulls) => {
                select.push(format!("CASE WHEN u.n{col} THEN NULL ELSE u.c{col} END"));
                flags.push((col, nulls));
            }
        }
    }
    for (col, nulls) in flags {
        arrays.push(nulls);
        names.push(format!("n{col}"));
    }
    let args: Vec<String> = (1..=arrays.len()).map(|i| format!("${i}")).collect();
    let select_clause = format!(
        "SELECT {} FROM unnest({}) AS u({})",
        select.join(", "),
        args.join(", "),
        names.join(", ")
    );
    let sql = format!(
        "{}{}{}",
        &sql[..at],
        select_clause,
        &sql[at + values_clause.len()..]
    );
    Some((sql, arrays))
}

/// Column `col` of `rows` as one array value of `kind` (taking the values out of `rows`),
/// and, when it holds NULLs, a boolean array marking them (their places in the first array
/// hold a stand-in). Every value of the column must be of `kind`.
fn column_array(rows: &mut [Vec<Value>], col: usize, kind: ArrayType) -> (Value, Option<Value>) {
    let mut items = Vec::with_capacity(rows.len());
    let mut nulls: Option<Vec<Value>> = None;
    for (i, row) in rows.iter_mut().enumerate() {
        let v = std::mem::replace(&mut row[col], Value::Bool(None));
        let null = !v.is_some();
        if null && nulls.is_none() {
            nulls = Some(vec![Value::from(false); i]);
        }
        if let Some(nulls) = nulls.as_mut() {
            nulls.push(Value::from(null));
        }
        items.push(if null { stand_in(&kind) } else { v });
    }
    let nulls = nulls.map(|n| Value::Array(ArrayType::Bool, Some(Box::new(n))));
    (Value::Array(kind, Some(Box::new(items))), nulls)
}

/// The array kind of a value, for the kinds the batch statements bind.
fn array_type(v: &Value) -> Option<ArrayType> {
    Some(match v {
        Value::Bool(_) => ArrayType::Bool,
        Value::Int(_) => ArrayType::Int,
        Value::BigInt(_) => ArrayType::BigInt,
        Value::String(_) => ArrayType::String,
        Value::Bytes(_) => ArrayType::Bytes,
        Value::Uuid(_) => ArrayType::Uuid,
        _ => return None,
    })
}

/// A value of `kind` (one `array_type` gives) to stand in an array where the row is NULL.
fn stand_in(kind: &ArrayType) -> Value {
    match kind {
        ArrayType::Bool => false.into(),
        ArrayType::Int => 0i32.into(),
        ArrayType::BigInt => 0i64.into(),
        ArrayType::String => String::new().into(),
        ArrayType::Bytes => Vec::<u8>::new().into(),
        _ => uuid::Uuid::nil().into(),
    }
}

/// Lengths of consecutive pieces of `n` rows, each a power of two, the largest that fits
/// what is left, up to `max` (rounded down to a power of two): 100 rows with `max` 500 are
/// written as 64 + 32 + 4. A multi-row statement's text depends on its row count, and every
/// new text is prepared and cached on the connection; with power-of-two counts a few texts
/// serve every batch size and stay cached. Measured (BENCHMARKS.md): on the SQLite writer 6%
/// more batched throughput than one row per statement.
pub(super) fn piece_lengths(mut n: usize, max: usize) -> Vec<usize> {
    let max = 1usize << max.max(1).ilog2();
    let mut out = Vec::new();
    while n > 0 {
        let len = max.min(1 << n.ilog2());
        out.push(len);
        n -= len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{Alias, OnConflict, Query};

    /// A SQLite multi-row insert binds its rows as `?` placeholders ahead of the statement's
    /// own values (`rows_binding`): an `ON CONFLICT` update holding a value of its own must
    /// still get it, after the rows' values. Run through the writer thread's transaction and
    /// through sqlx's (in-memory SQLite).
    #[tokio::test]
    async fn an_insert_binds_its_rows_before_its_own_values() {
        use sea_orm::TransactionTrait;
        const TABLE: &str = "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)";
        let template = Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("k"), Alias::new("n")])
            .on_conflict(
                OnConflict::column(Alias::new("k"))
                    .value(Alias::new("n"), Expr::col(Alias::new("n")).add(100))
                    .to_owned(),
            )
            .returning_col(Alias::new("n"))
            .to_owned();
        let rows = || {
            vec![
                vec![Value::from("a"), Value::from(1)],
                vec![Value::from("b"), Value::from(2)],
                // A statement of its own (pieces of 2 and 1), updating the first row.
                vec![Value::from("a"), Value::from(3)],
            ]
        };
        let returned = |out: Vec<Row>| -> Vec<i64> {
            out.iter().map(|r| r.get::<i64>("n").unwrap()).collect()
        };

        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(TABLE).unwrap();
        let lite = super::super::lite::LiteTxn::on(&conn);
        let out = insert_rows(&lite, &template, rows(), 500).await.unwrap();
        assert_eq!(returned(out), [1, 2, 101]);

        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared(TABLE).await.unwrap();
        let txn = db.begin().await.unwrap();
        let out = insert_rows(&txn, &template, rows(), 500).await.unwrap();
        assert_eq!(returned(out), [1, 2, 101]);
    }

    #[test]
    fn pieces_are_powers_of_two_up_to_max() {
        let lengths = |n: usize, max: usize| {
            let l = piece_lengths(n, max);
            assert_eq!(l.iter().sum::<usize>(), n);
            l
        };
        assert_eq!(lengths(0, 500), Vec::<usize>::new());
        assert_eq!(lengths(1, 500), [1]);
        assert_eq!(lengths(100, 500), [64, 32, 4]);
        assert_eq!(lengths(256, 500), [256]);
        // 500 rounds down to 256.
        assert_eq!(lengths(1000, 500), [256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(lengths(3, 1), [1, 1, 1]);
        assert_eq!(lengths(3, 0), [1, 1, 1]);
        // Every batch size of the writer (up to 1000 events) needs at most 9 texts per kind.
        let mut sizes: Vec<usize> = (1..=1000).flat_map(|n| lengths(n, 500)).collect();
        sizes.sort_unstable();
        sizes.dedup();
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
    }

    fn template() -> InsertStatement {
        Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("a"), Alias::new("b"), Alias::new("k")])
            .on_conflict(
                OnConflict::column(Alias::new("a"))
                    .value(Alias::new("b"), Expr::cust(r#""t"."b" + excluded."b""#))
                    .to_owned(),
            )
            .returning_col(Alias::new("a"))
            .to_owned()
    }

    #[test]
    fn an_insert_becomes_one_statement_of_column_arrays() {
        let mut rows = vec![
            vec![1i64.into(), 10i32.into(), Value::from(Some("x"))],
            vec![2i64.into(), 20i32.into(), Value::String(None)],
            vec![3i64.into(), 30i32.into(), "z".into()],
        ];
        let (sql, values) = unnest_insert(&template(), &mut rows).unwrap();
        assert_eq!(
            sql,
            r#"INSERT INTO "t" ("a", "b", "k") SELECT u.c0, u.c1, CASE WHEN u.n2 THEN NULL ELSE u.c2 END FROM unnest($1, $2, $3, $4) AS u(c0, c1, c2, n2) ON CONFLICT ("a") DO UPDATE SET "b" = "t"."b" + excluded."b" RETURNING "a""#
        );
        let array = |t, v: Vec<Value>| Value::Array(t, Some(Box::new(v)));
        assert_eq!(
            values,
            [
                array(
                    ArrayType::BigInt,
                    vec![1i64.into(), 2i64.into(), 3i64.into()]
                ),
                array(
                    ArrayType::Int,
                    vec![10i32.into(), 20i32.into(), 30i32.into()]
                ),
                array(ArrayType::String, vec!["x".into(), "".into(), "z".into()]),
                array(
                    ArrayType::Bool,
                    vec![false.into(), true.into(), false.into()]
                ),
            ]
        );
        // NULL in the first row, and a column of NULLs only.
        let mut rows = vec![
            vec![1i64.into(), 10i32.into(), Value::String(None)],
            vec![2i64.into(), 20i32.into(), Value::String(None)],
        ];
        let (_, values) = unnest_insert(&template(), &mut rows).unwrap();
        assert_eq!(
            values[3],
            array(ArrayType::Bool, vec![true.into(), true.into()])
        );
    }

    #[test]
    fn a_column_mixing_kinds_is_left_to_pieces() {
        let mut rows = vec![
            vec![1i64.into(), 10i32.into(), "x".into()],
            vec![2i64.into(), 20i64.into(), "y".into()],
        ];
        assert!(unnest_insert(&template(), &mut rows).is_none());
    }
}
