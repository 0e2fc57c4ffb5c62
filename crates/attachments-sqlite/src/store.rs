//! `SqliteStore`: the attachment table in the app's own SQLite database.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, ChangeDecider, Error, ErrorKind,
    ExclusiveLock, Result, RowChange, StateCounts, UpdateHook, already_exists,
};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};

use tracing::warn;

use crate::error::db_error;
use crate::inserts::PendingInserts;
use crate::rows::{read_page, readable_rows, row_to_attachment};
use attachments_sql::{FIELDS, Statements, validate_table_name};

/// The default table name, the one the PowerSync SDKs use.
pub const DEFAULT_TABLE_NAME: &str = "attachments_queue";

/// Rows per multi-row insert or update: 16 parameters each stays far below SQLite's 32,766.
const WRITE_BATCH: usize = 500;

/// The attachment table in a SQLite database the app owns, through its `sqlx::SqlitePool`.
///
/// The table is created by migrations the store runs itself and records in its own tracking
/// table (`_<table>_migrations`), never in the app's `_sqlx_migrations`, so the app's
/// `sqlx::migrate!()` keeps working on the same database.
///
/// Every write gives the row a version taken from a store-wide counter kept in the database
/// (`_<table>_versions`), so a version never repeats, not even for an id deleted, cleared or
/// evicted and then saved again, nor across restarts. No two rows share a `filename` (a unique
/// index): an insert that would is not applied. A table written by an older version of this
/// crate that holds rows sharing a filename keeps, of each such group, the row written last;
/// the others are removed (with a logged warning) and no file is deleted, so the app still
/// starts.
///
/// The store writes through one connection of its own, taken out of the pool when it is
/// created (the pool may open a replacement), one write at a time. A write is one autocommit
/// statement or a short `BEGIN IMMEDIATE` transaction, which waits on the busy timeout instead
/// of failing with `database is locked` when the app writes at the same time. Reads use the
/// pool. For speed, give the pool WAL mode, `synchronous = NORMAL` and
/// `test_before_acquire(false)` (a SQLite connection has no network to check).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_sqlite::SqliteStore;
/// use attachments_core::{Attachment, AttachmentId, AttachmentState, AttachmentStore, RowChange};
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
/// let store = SqliteStore::new(pool).await.unwrap();
/// assert_eq!(store.count_by_state().await.unwrap().total(), 0);
/// // written through the store's own connection, read through the pool: one database
/// let id = AttachmentId::new("photo-1").unwrap();
/// let row = Attachment::new(id.clone(), "photo-1.jpg", AttachmentState::QueuedUpload, 0);
/// let first = store.insert_with_hook(row.clone(), None).await.unwrap();
/// assert_eq!(store.get(&id).await.unwrap().unwrap().version, first.version);
/// // deleted and saved again: the new life has a version the old one never had
/// let gone = RowChange::Delete { id: id.clone(), expected_version: first.version };
/// assert_eq!(store.apply(vec![gone]).await.unwrap(), [true]);
/// let second = store.insert_with_hook(row, None).await.unwrap();
/// assert!(second.version > first.version);
/// # });
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    pub(crate) table: Arc<str>,
    pub(crate) sql: Arc<Statements>,
    /// The store's own write connection, taken out of the pool once. Every write of the store
    /// goes through it, one at a time: writers of this process (a save, a transfer outcome)
    /// queue here instead of meeting in SQLite's busy handler, which sleeps for milliseconds
    /// before trying again, and no write pays for a pool checkout.
    pub(crate) writer: Arc<tokio::sync::Mutex<SqliteConnection>>,
    /// Inserts without a hook waiting for `writer`: whoever gets it inserts them all.
    pub(crate) pending_inserts: Arc<PendingInserts>,
    /// `<database file>.<table>.lock`; `None` for a database without a file.
    lock_path: Option<Arc<Path>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

pub(crate) fn sql(text: &str) -> impl SqlSafeStr {
    // The only dynamic part of any statement is the table name, validated in `with_table`.
    AssertSqlSafe(text.to_owned())
}

impl SqliteStore {
    /// A store over `pool` with the default table `attachments_queue`, migrated.
    ///
    /// # Errors
    /// `Database` when the migrations fail.
    pub async fn new(pool: SqlitePool) -> Result<Self> {
        Self::with_table(pool, DEFAULT_TABLE_NAME).await
    }

    /// A store over `pool` with its own table name (1 to 64 characters of `[A-Za-z0-9_]`, not
    /// starting with a digit), migrated.
    ///
    /// # Errors
    /// `InvalidInput` for a bad table name; `Database` when the migrations fail.
    pub async fn with_table(pool: SqlitePool, table: &str) -> Result<Self> {
        validate_table_name(table)?;
        // Detached: the pool may open a replacement, so the app keeps its full pool.
        let mut writer = pool
            .acquire()
            .await
            .map_err(|e| db_error(e, "opening the attachment store's write connection"))?
            .detach();
        let lock_path = crate::lock::lock_path(&mut writer, table).await?;
        let store = SqliteStore {
            pool,
            table: Arc::from(table),
            sql: Arc::new(Statements::new(table)),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            pending_inserts: Arc::default(),
            lock_path: lock_path.map(PathBuf::into_boxed_path).map(Arc::from),
        };
        crate::migrations::migrate(&store.pool, table, store.migrations_table_name()).await?;
        Ok(store)
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The attachment table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The name of the table that records which of the store's migrations ran.
    pub fn migrations_table_name(&self) -> String {
        format!("_{}_migrations", self.table)
    }

    /// The file [`AttachmentStore::lock_exclusive`] locks, `<database file>.<table>.lock`;
    /// `None` for a database without a file (in memory), which is locked within the process
    /// instead (per pool and table).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    /// let store = attachments_sqlite::SqliteStore::new(pool).await.unwrap();
    /// assert_eq!(store.lock_path(), None);
    /// # });
    /// ```
    pub fn lock_path(&self) -> Option<&Path> {
        self.lock_path.as_deref()
    }

    /// The pool's identity: its clones share one set of connect options.
    fn pool_identity(&self) -> usize {
        Arc::as_ptr(&self.pool.connect_options()) as usize
    }

    /// Apply one change. Returns the version it wrote (for a delete, the version of the row it
    /// removed), or `None` when it did not apply.
    pub(crate) async fn apply_one(
        connection: &mut SqliteConnection,
        sql: &Statements,
        change: &RowChange,
    ) -> Result<Option<i64>> {
        let what = || format!("writing attachment {}", change.id());
        let written = match change {
            RowChange::Insert(row) => {
                let query = sqlx::query(self::sql(&sql.insert)).bind(row.id.as_str());
                bind_fields(query, row)?
                    .fetch_optional(&mut *connection)
                    .await
            }
            RowChange::Update {
                expected_version,
                row,
            } => {
                let query = sqlx::query(self::sql(&sql.update)).bind(row.id.as_str());
                bind_fields(query, row)?
                    .bind(expected_version)
                    .fetch_optional(&mut *connection)
                    .await
            }
            RowChange::Delete {
                id,
                expected_version,
            } => {
                let done = sqlx::query(self::sql(&sql.delete))
                    .bind(id.as_str())
                    .bind(expected_version)
                    .execute(&mut *connection)
                    .await
                    .map_err(|e| db_error(e, what()))?;
                return Ok((done.rows_affected() == 1).then_some(*expected_version));
            }
        };
        written
            .map_err(|e| db_error(e, what()))?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()
            .map_err(|e| db_error(e, what()))
    }

    /// Why `change` did not apply, as the error its caller returns: its id is taken (an
    /// insert), its filename is another row's, or its row changed meanwhile.
    pub(crate) async fn refusal(
        connection: &mut SqliteConnection,
        sql: &Statements,
        change: &RowChange,
    ) -> Error {
        let id = change.id();
        let changed = || {
            Error::new(
                ErrorKind::Database,
                format!("attachment {id} was not written: its row changed meanwhile"),
            )
        };
        let (RowChange::Insert(row) | RowChange::Update { row, .. }) = change else {
            return changed();
        };
        let conflict: std::result::Result<Option<String>, _> =
            sqlx::query_scalar(self::sql(&sql.conflict))
                .bind(id.as_str())
                .bind(&row.filename)
                .fetch_optional(&mut *connection)
                .await;
        match conflict {
            Err(error) => db_error(error, format!("writing attachment {id}")),
            Ok(Some(other)) if other != id.as_str() => filename_taken(&row.filename, &other),
            Ok(Some(_)) if matches!(change, RowChange::Insert(_)) => already_exists(id),
            Ok(_) => changed(),
        }
    }

    /// Apply a run of inserts or of updates: in one statement, or one by one when an id
    /// repeats (a later change must see what an earlier one wrote, which one statement does
    /// not show).
    async fn apply_run(
        &self,
        connection: &mut SqliteConnection,
        run: &[RowChange],
    ) -> Result<Vec<bool>> {
        let distinct: std::collections::HashSet<&str> =
            run.iter().map(|change| change.id().as_str()).collect();
        if distinct.len() != run.len() {
            let mut applied = Vec::with_capacity(run.len());
            for change in run {
                applied.push(
                    Self::apply_one(connection, &self.sql, change)
                        .await?
                        .is_some(),
                );
            }
            return Ok(applied);
        }
        match run.first() {
            Some(RowChange::Insert(_)) => self.insert_batch(connection, run).await,
            _ => self.update_batch(connection, run).await,
        }
    }

    /// Apply `batch` (only `RowChange::Update`s with distinct ids, each a compare-and-set on
    /// its version) in one `UPDATE .. FROM (VALUES ..)` statement; report which applied.
    async fn update_batch(
        &self,
        connection: &mut SqliteConnection,
        batch: &[RowChange],
    ) -> Result<Vec<bool>> {
        let updates: Vec<(&Attachment, i64)> = batch
            .iter()
            .filter_map(|change| match change {
                RowChange::Update {
                    row,
                    expected_version,
                } => Some((row, *expected_version)),
                _ => None,
            })
            .collect();
        // VALUES columns are named column1.. in order: id, the fields, the expected version,
        // the row's place in the batch (its version is the counter plus that place, so every
        // row of the statement gets a version of its own)
        let values =
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; updates.len()].join(", ");
        let targets: Vec<String> = (2..=14).map(|n| format!("column{n}")).collect();
        // OR IGNORE: a row whose new filename is another row's is left as it was and reported
        // not applied, instead of failing every other outcome of the batch.
        let statement = format!(
            r#"UPDATE OR IGNORE "{table}"
               SET ({FIELDS}) = ({targets}), version = {next_version} + new.column16
               FROM (VALUES {values}) AS new
               WHERE "{table}".id = new.column1 AND "{table}".version = new.column15
               RETURNING "{table}".id"#,
            table = self.table,
            targets = targets.join(", "),
            next_version = self.sql.next_version,
        );
        let mut query = sqlx::query(sql(&statement));
        for (place, (row, expected_version)) in (1_i64..).zip(&updates) {
            query = bind_fields(query.bind(row.id.as_str()), row)?
                .bind(*expected_version)
                .bind(place);
        }
        let updated = returned_ids(connection, query, "updating attachments").await?;
        Ok(updates
            .iter()
            .map(|(row, _)| updated.contains(row.id.as_str()))
            .collect())
    }

    /// Insert `batch` (only `RowChange::Insert`s with distinct ids) in one statement; report
    /// which were new.
    async fn insert_batch(
        &self,
        connection: &mut SqliteConnection,
        batch: &[RowChange],
    ) -> Result<Vec<bool>> {
        let rows: Vec<&Attachment> = batch
            .iter()
            .filter_map(|change| match change {
                RowChange::Insert(row) => Some(row),
                _ => None,
            })
            .collect();
        let versions = self.insert_rows(connection, &rows).await?;
        Ok(versions.iter().map(Option::is_some).collect())
    }
}

/// The error for a row whose filename another row already has: both would share one local
/// file and one remote object, and deleting either would delete the other's data.
fn filename_taken(filename: &str, other: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!(
            "filename {filename:?} is already used by attachment {other}; two attachments \
             cannot share a file"
        ),
    )
}

/// Start a write transaction on the store's write connection.
async fn begin_write(writer: &mut SqliteConnection) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
    // writes later can fail with SQLITE_BUSY without waiting when another writer is active.
    sqlx::Connection::begin_with(writer, "BEGIN IMMEDIATE")
        .await
        .map_err(|e| db_error(e, "starting a write transaction"))
}

/// `change` as written: its row carries `version`.
fn with_version(mut change: RowChange, version: i64) -> RowChange {
    if let RowChange::Insert(row) | RowChange::Update { row, .. } = &mut change {
        row.version = version;
    }
    change
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl AttachmentStore for SqliteStore {
    type Connection = SqliteConnection;

    async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>> {
        let row = sqlx::query(sql(&self.sql.get))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, format!("reading attachment {id}")))?;
        row.as_ref().map(row_to_attachment).transpose()
    }

    async fn get_many(&self, ids: &[AttachmentId]) -> Result<Vec<Attachment>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(WRITE_BATCH) {
            let statement = self.sql.get_many(chunk.len());
            let mut query = sqlx::query(sql(&statement));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error(e, "reading attachments"))?;
            found.extend(readable_rows(&rows));
        }
        Ok(found)
    }

    async fn list(&self, states: Option<&[AttachmentState]>) -> Result<Vec<Attachment>> {
        let query = self.sql.list(states);
        let rows = sqlx::query(sql(&query))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing attachments"))?;
        Ok(readable_rows(&rows).collect())
    }

    async fn list_page(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let after = after.map_or("", AttachmentId::as_str);
        let (json, plain) = (&self.sql.page_json, &self.sql.page);
        let what = "listing a page of attachments";
        read_page(&self.pool, [json, plain], what, |query| {
            query.bind(after).bind(limit_to_sql(limit))
        })
        .await
    }

    async fn list_page_to_verify(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
        retry_after_ms: i64,
    ) -> Result<Vec<Attachment>> {
        let after = after.map_or("", AttachmentId::as_str);
        let (json, plain) = (&self.sql.verify_page_json, &self.sql.verify_page);
        let what = "listing a page of attachments to verify";
        read_page(&self.pool, [json, plain], what, |query| {
            let query = query.bind(after).bind(retry_after_ms);
            query.bind(limit_to_sql(limit))
        })
        .await
    }

    async fn list_by_local_uri(&self, paths: &[String]) -> Result<Vec<Attachment>> {
        let mut found = Vec::new();
        for chunk in paths.chunks(WRITE_BATCH) {
            let statement = self.sql.with_local_uri(chunk.len());
            let query = chunk
                .iter()
                .fold(sqlx::query(sql(&statement)), |q, p| q.bind(p));
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error(e, "reading attachments by local file"))?;
            found.extend(readable_rows(&rows));
        }
        Ok(found)
    }

    async fn list_due(
        &self,
        now_ms: i64,
        downloads: bool,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let rows = sqlx::query(sql(&self.sql.due[usize::from(downloads)]))
            .bind(now_ms)
            .bind(limit_to_sql(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "listing due attachments"))?;
        Ok(readable_rows(&rows).collect())
    }

    async fn next_attempt_at(&self, downloads: bool) -> Result<Option<i64>> {
        sqlx::query_scalar(sql(&self.sql.next_attempt[usize::from(downloads)]))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading the next retry time"))
    }

    async fn apply(&self, changes: Vec<RowChange>) -> Result<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut writer = self.writer.lock().await;
        if let [change] = &changes[..] {
            // One statement is atomic on its own: no BEGIN and COMMIT round trips (the
            // outcome of every transfer comes this way).
            let applied = Self::apply_one(&mut writer, &self.sql, change).await?;
            return Ok(vec![applied.is_some()]);
        }
        let mut tx = begin_write(&mut writer).await?;
        let mut applied = Vec::with_capacity(changes.len());
        let mut rest = &changes[..];
        while !rest.is_empty() {
            // A run of inserts (a watched emission of many new ids) or of updates (the outcomes
            // of a pass's transfers) goes in multi-row statements: one round trip to SQLite
            // per batch instead of per row.
            let inserts = rest
                .iter()
                .take(WRITE_BATCH)
                .take_while(|change| matches!(change, RowChange::Insert(_)))
                .count();
            let updates = rest
                .iter()
                .take(WRITE_BATCH)
                .take_while(|change| matches!(change, RowChange::Update { .. }))
                .count();
            let run = inserts.max(updates);
            if run > 1 {
                let (batch, tail) = rest.split_at(run);
                applied.extend(self.apply_run(&mut tx, batch).await?);
                rest = tail;
            } else {
                let one = Self::apply_one(&mut tx, &self.sql, &rest[0]).await?;
                applied.push(one.is_some());
                rest = &rest[1..];
            }
        }
        commit(tx, "committing attachment changes").await?;
        Ok(applied)
    }

    async fn apply_with_hook(
        &self,
        id: &AttachmentId,
        decide: ChangeDecider,
        hook: Option<UpdateHook<SqliteConnection>>,
    ) -> Result<RowChange> {
        let mut writer = self.writer.lock().await;
        let mut tx = begin_write(&mut writer).await?;
        let current = sqlx::query(sql(&self.sql.get))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db_error(e, format!("reading attachment {id}")))?;
        let current = current.as_ref().map(row_to_attachment).transpose()?;
        // An early return drops `tx`, which rolls it back.
        let change = decide(current)?;
        if change.id() != id {
            return Err(Error::invalid_input(format!(
                "a change for attachment {} was decided for {id}",
                change.id()
            )));
        }
        let Some(version) = Self::apply_one(&mut tx, &self.sql, &change).await? else {
            return Err(Self::refusal(&mut tx, &self.sql, &change).await);
        };
        if let Some(hook) = hook {
            run_hook(&mut tx, id, hook).await?;
        }
        commit(tx, &format!("committing attachment {id}")).await?;
        Ok(with_version(change, version))
    }

    async fn insert_with_hook(
        &self,
        row: Attachment,
        hook: Option<UpdateHook<SqliteConnection>>,
    ) -> Result<Attachment> {
        let Some(hook) = hook else {
            // saves without a hook that wait for the writer together go in one statement
            return self.insert_grouped(row).await;
        };
        let mut written = row.clone();
        let change = RowChange::Insert(row);
        let mut writer = self.writer.lock().await;
        let id = change.id().clone();
        let mut tx = begin_write(&mut writer).await?;
        let Some(version) = Self::apply_one(&mut tx, &self.sql, &change).await? else {
            return Err(Self::refusal(&mut tx, &self.sql, &change).await);
        };
        run_hook(&mut tx, &id, hook).await?;
        commit(tx, &format!("committing attachment {id}")).await?;
        written.version = version;
        Ok(written)
    }

    async fn count_by_state(&self) -> Result<StateCounts> {
        let rows = sqlx::query(sql(&self.sql.count))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "counting attachments"))?;
        let mut counts = StateCounts::default();
        for row in rows {
            let code: i64 = row
                .try_get(0)
                .map_err(|e| db_error(e, "counting attachments"))?;
            let count: i64 = row
                .try_get(1)
                .map_err(|e| db_error(e, "counting attachments"))?;
            match AttachmentState::from_code(code) {
                Ok(state) => counts.add(state, u64::try_from(count).unwrap_or(0)),
                // counted nowhere, as `list` leaves such rows out
                Err(error) => warn!(%error, count, "attachment rows with an unknown state"),
            }
        }
        Ok(counts)
    }

    async fn clear(&self) -> Result<u64> {
        // The version counter is a table of its own: it survives, so rows saved after the
        // clear never reuse a version of a cleared one.
        let mut writer = self.writer.lock().await;
        let done = sqlx::query(sql(&self.sql.clear))
            .execute(&mut *writer)
            .await
            .map_err(|e| db_error(e, "clearing attachments"))?;
        Ok(done.rows_affected())
    }

    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        match self.lock_path.as_deref() {
            Some(path) => attachments_sql::lock(path).map(Some),
            // no file to lock: no other process can open this database, but another queue of
            // this process can share the pool
            None => crate::lock::lock_in_process(self.pool_identity(), &self.table).map(Some),
        }
    }
}

async fn commit(tx: sqlx::Transaction<'_, sqlx::Sqlite>, what: &str) -> Result<()> {
    tx.commit().await.map_err(|e| db_error(e, what))
}

/// Run a statement whose `RETURNING` clause lists the ids it wrote.
async fn returned_ids(
    connection: &mut SqliteConnection,
    query: SqliteQuery<'_>,
    what: &str,
) -> Result<std::collections::HashSet<String>> {
    query
        .fetch_all(&mut *connection)
        .await
        .map_err(|e| db_error(e, what))?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(|e| db_error(e, what))
}

/// Run the app's update hook inside `tx`; its failure is a `Hook` error (and the caller's
/// early return rolls `tx` back).
async fn run_hook(
    tx: &mut SqliteConnection,
    id: &AttachmentId,
    hook: UpdateHook<SqliteConnection>,
) -> Result<()> {
    hook(tx).await.map_err(|source| {
        Error::new(ErrorKind::Hook, format!("update hook for attachment {id}")).with_source(source)
    })
}

pub(crate) type SqliteQuery<'q> =
    sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Bind every column but `id` and `version`, in `FIELDS` order.
pub(crate) fn bind_fields<'q>(
    query: SqliteQuery<'q>,
    row: &'q Attachment,
) -> Result<SqliteQuery<'q>> {
    Ok(query
        .bind(&row.filename)
        .bind(&row.local_uri)
        .bind(row.timestamp)
        .bind(size_to_sql(row.size)?)
        .bind(&row.media_type)
        .bind(row.state.code())
        .bind(row.has_synced)
        .bind(&row.meta_data)
        .bind(i64::from(row.attempts))
        .bind(row.next_attempt_at)
        .bind(&row.last_error)
        .bind(&row.checksum)
        .bind(row.failed_state.map(AttachmentState::code)))
}

fn size_to_sql(size: Option<u64>) -> Result<Option<i64>> {
    size.map(|size| {
        i64::try_from(size).map_err(|_| Error::invalid_input(format!("size {size} is too large")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `statement`: one line per step.
    async fn plan(pool: &SqlitePool, statement: &str) -> Vec<String> {
        sqlx::query(sql(&format!("EXPLAIN QUERY PLAN {statement}")))
            .bind(0_i64)
            .bind(10_i64)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect()
    }

    #[tokio::test]
    async fn due_rows_and_the_next_retry_time_are_read_from_the_queued_index() {
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("plan.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let store = SqliteStore::new(pool.clone()).await.unwrap();
        // a backlog of rows waiting out a backoff, and many synced rows, without ANALYZE (as
        // in most apps): the planner must pick the index from the schema alone
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO attachments_queue (id, filename, timestamp, state, next_attempt_at)
             SELECT 'r' || i, 'r' || i, i, i % 5, CASE WHEN i % 5 < 3 THEN i END FROM n",
        )
        .execute(&pool)
        .await
        .unwrap();
        let statements = store.sql.due.iter().chain(&store.sql.next_attempt);
        for statement in statements {
            let steps = plan(&pool, statement).await;
            let reads: Vec<&String> = steps
                .iter()
                .filter(|step| step.contains("attachments_queue"))
                .collect();
            assert!(!reads.is_empty(), "{steps:?}");
            for read in reads {
                assert!(
                    read.starts_with("SEARCH attachments_queue USING")
                        && read.contains(
                            "INDEX attachments_queue_queued_next_attempt (state=? AND next_attempt_at"
                        ),
                    "every read of the table is a search of the queued index by state and retry \
                     time (so rows waiting out a backoff are never read), got {read:?} in \
                     {steps:?} for {statement}"
                );
            }
        }
    }
}
