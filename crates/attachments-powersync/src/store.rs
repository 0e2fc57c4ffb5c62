//! `PowerSyncStore`: the attachment table in the app's PowerSync database.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, ChangeDecider, Error, ErrorKind,
    ExclusiveLock, Result, RowChange, StateCounts, UpdateHook, already_exists,
};
use attachments_sql::{Statements, validate_table_name};
use powersync::PowerSyncDatabase;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use tracing::warn;

use crate::error::sqlite_error;
use crate::lease::{self, Transaction};

/// The default table name, the one the PowerSync SDKs use.
pub const DEFAULT_TABLE_NAME: &str = "attachments_queue";

/// Ids per `get_many` statement: far below SQLite's 32,766 parameters.
const READ_BATCH: usize = 500;

/// The attachment table in the app's [`PowerSyncDatabase`], through PowerSync's own reader and
/// writer leases: no second connection pool, no sqlx.
///
/// The table is a plain, local-only SQLite table (not part of the PowerSync schema: PowerSync
/// leaves it alone and never uploads it), with the same layout, state codes and migrations as
/// `attachments_sqlite::SqliteStore`; the statement text is shared with it (attachments-sql).
/// Its migrations are recorded in `_<table>_powersync_migrations`; a table that `SqliteStore`
/// migrated before is adopted as it is.
///
/// Every write is a `BEGIN IMMEDIATE` transaction on PowerSync's writer, so an update hook
/// (`save_file_with_hook`, `delete_file_with_hook`) writes the app's synced tables in the same
/// transaction as the attachment row: the change reaches PowerSync's upload queue (`ps_crud`)
/// exactly when the row commits, and a failing hook rolls back both. The hook receives the
/// writer's `rusqlite::Connection`; it must not ask PowerSync for a lease (the writer is held,
/// so that would wait forever). Work on a lease runs on a blocking thread, never on the async
/// runtime's own.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{Attachment, AttachmentId, AttachmentState, AttachmentStore};
/// use attachments_powersync::{PowerSyncStore, open_offline};
/// use powersync::schema::Schema;
/// let dir = tempfile::tempdir().unwrap();
/// let db = open_offline(dir.path().join("app.db"), Schema::default()).unwrap();
/// let store = PowerSyncStore::new(db).await.unwrap();
/// let id = AttachmentId::new("photo-1").unwrap();
/// let row = Attachment::new(id.clone(), "photo-1.jpg", AttachmentState::QueuedUpload, 0);
/// let written = store.insert_with_hook(row, None).await.unwrap();
/// assert_eq!(store.get(&id).await.unwrap().unwrap().version, written.version);
/// # });
/// ```
#[derive(Clone)]
pub struct PowerSyncStore {
    db: PowerSyncDatabase,
    table: Arc<str>,
    sql: Arc<Statements>,
    /// `<database file>.<table>.lock`, the path `SqliteStore` locks too; `None` without a file.
    lock_path: Option<Arc<Path>>,
}

impl fmt::Debug for PowerSyncStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerSyncStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PowerSyncStore {
    /// A store on `db` with the default table `attachments_queue`, migrated.
    ///
    /// # Errors
    /// `Database` when PowerSync cannot open a connection or the migrations fail.
    pub async fn new(db: PowerSyncDatabase) -> Result<Self> {
        Self::with_table(db, DEFAULT_TABLE_NAME).await
    }

    /// A store on `db` with its own table name (1 to 64 characters of `[A-Za-z0-9_]`, not
    /// starting with a digit), migrated.
    ///
    /// # Errors
    /// `InvalidInput` for a bad table name; `Database` when the migrations fail.
    pub async fn with_table(db: PowerSyncDatabase, table: &str) -> Result<Self> {
        validate_table_name(table)?;
        let migrations_table = migrations_table_name(table);
        let name = table.to_owned();
        let lock_path = lease::write(
            &db,
            format!("migrating attachment table {table:?}"),
            move |tx| {
                crate::migrations::migrate(tx, &name, &migrations_table)?;
                database_file(tx).map(|file| attachments_sql::lock_file_path(&file, &name))
            },
        )
        .await?;
        Ok(PowerSyncStore {
            db,
            table: Arc::from(table),
            sql: Arc::new(Statements::new(table)),
            lock_path: lock_path.map(PathBuf::into_boxed_path).map(Arc::from),
        })
    }

    /// The PowerSync database the store uses.
    pub fn database(&self) -> &PowerSyncDatabase {
        &self.db
    }

    /// The attachment table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The name of the table that records which of the store's migrations ran.
    pub fn migrations_table_name(&self) -> String {
        migrations_table_name(&self.table)
    }

    /// The file [`AttachmentStore::lock_exclusive`] locks, `<database file>.<table>.lock`.
    pub fn lock_path(&self) -> Option<&Path> {
        self.lock_path.as_deref()
    }

    async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&Connection, &Statements) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let sql = self.sql.clone();
        lease::read(&self.db, what, move |connection| work(connection, &sql)).await
    }

    async fn write<T: Send + 'static>(
        &self,
        what: String,
        work: impl FnOnce(&mut Transaction<'_>, &Statements) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let sql = self.sql.clone();
        lease::write(&self.db, what, move |tx| work(tx, &sql)).await
    }
}

fn migrations_table_name(table: &str) -> String {
    format!("_{table}_powersync_migrations")
}

/// The main database's file name; empty for a database without a file.
fn database_file(connection: &Connection) -> Result<String> {
    connection
        .query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| sqlite_error(e, "reading PRAGMA database_list"))
}

/// Apply one change. Returns the version it wrote (for a delete, the version of the row it
/// removed), or `None` when it did not apply.
fn apply_one(connection: &Connection, sql: &Statements, change: &RowChange) -> Result<Option<i64>> {
    let what = || format!("writing attachment {}", change.id());
    let written = match change {
        RowChange::Insert(row) => {
            connection
                .prepare_cached(&sql.insert)
                .and_then(|mut statement| {
                    statement
                        .query_row(params_from_iter(bound(row, None)?), |r| r.get(0))
                        .optional()
                })
        }
        RowChange::Update {
            expected_version,
            row,
        } => connection
            .prepare_cached(&sql.update)
            .and_then(|mut statement| {
                statement
                    .query_row(
                        params_from_iter(bound(row, Some(*expected_version))?),
                        |r| r.get(0),
                    )
                    .optional()
            }),
        RowChange::Delete {
            id,
            expected_version,
        } => {
            let removed = connection
                .prepare_cached(&sql.delete)
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![id.as_str(), expected_version])
                })
                .map_err(|e| sqlite_error(e, what()))?;
            return Ok((removed == 1).then_some(*expected_version));
        }
    };
    written.map_err(|e| sqlite_error(e, what()))
}

/// Why `change` did not apply, as the error its caller returns: its id is taken (an insert),
/// its filename is another row's, or its row changed meanwhile.
fn refusal(connection: &Connection, sql: &Statements, change: &RowChange) -> Error {
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
    let conflict: rusqlite::Result<Option<String>> = connection
        .query_row(
            &sql.conflict,
            rusqlite::params![id.as_str(), row.filename],
            |r| r.get(0),
        )
        .optional();
    match conflict {
        Err(error) => sqlite_error(error, format!("writing attachment {id}")),
        Ok(Some(other)) if other != id.as_str() => filename_taken(&row.filename, &other),
        Ok(Some(_)) if matches!(change, RowChange::Insert(_)) => already_exists(id),
        Ok(_) => changed(),
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

/// The parameters of `insert` (`?1`..`?14`), and of `update` with its expected version
/// (`?15`): the id, then every field in `attachments_sql::FIELDS` order.
fn bound(row: &Attachment, expected_version: Option<i64>) -> rusqlite::Result<Vec<Value>> {
    let size = row
        .size
        .map(i64::try_from)
        .transpose()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut values = vec![
        Value::from(row.id.as_str().to_owned()),
        Value::from(row.filename.clone()),
        Value::from(row.local_uri.clone()),
        Value::from(row.timestamp),
        Value::from(size),
        Value::from(row.media_type.clone()),
        Value::from(row.state.code()),
        Value::from(row.has_synced),
        Value::from(row.meta_data.clone()),
        Value::from(i64::from(row.attempts)),
        Value::from(row.next_attempt_at),
        Value::from(row.last_error.clone()),
        Value::from(row.checksum.clone()),
        Value::from(row.failed_state.map(AttachmentState::code)),
    ];
    values.extend(expected_version.map(Value::from));
    Ok(values)
}

/// `change` as written: its row carries `version`.
fn with_version(mut change: RowChange, version: i64) -> RowChange {
    if let RowChange::Insert(row) | RowChange::Update { row, .. } = &mut change {
        row.version = version;
    }
    change
}

/// Run the app's update hook on the writer inside `tx`. The hook is async (the store trait is
/// driver-neutral) but runs on this blocking thread: it is driven here with the runtime's
/// handle, so it may await, while its SQL runs on the connection it was given.
fn run_hook(
    tx: &mut Transaction<'_>,
    runtime: &tokio::runtime::Handle,
    id: &AttachmentId,
    hook: UpdateHook<Connection>,
) -> Result<()> {
    runtime.block_on(hook(tx.connection())).map_err(|source| {
        Error::new(ErrorKind::Hook, format!("update hook for attachment {id}")).with_source(source)
    })
}

/// Read the rows `statement` returns, leaving out (with a warning) rows that cannot be read:
/// one row written by something else must not stop the sync of every other attachment.
fn readable_rows(
    connection: &Connection,
    statement: &str,
    params: impl rusqlite::Params,
    what: &'static str,
) -> Result<Vec<Attachment>> {
    let mut statement = connection
        .prepare_cached(statement)
        .map_err(|e| sqlite_error(e, what))?;
    let mut rows = statement.query(params).map_err(|e| sqlite_error(e, what))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(|e| sqlite_error(e, what))? {
        match row_to_attachment(row) {
            Ok(attachment) => found.push(attachment),
            Err(error) => warn!(%error, "unreadable attachment row left out"),
        }
    }
    Ok(found)
}

/// Read one row; anything the table should never hold (an unknown state code, a negative size,
/// an invalid id) is a clear `InvalidInput` error naming the row.
fn row_to_attachment(row: &Row<'_>) -> Result<Attachment> {
    let raw_id: String = column(row, "id")?;
    let corrupt = |what: String| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("attachment row {raw_id:?}: {what}"),
        )
    };
    let id = AttachmentId::new(raw_id.clone()).map_err(|e| corrupt(e.message().to_owned()))?;
    let state = AttachmentState::from_code(column(row, "state")?)
        .map_err(|e| corrupt(e.message().to_owned()))?;
    let failed_state = column::<Option<i64>>(row, "failed_state")?
        .map(AttachmentState::from_code)
        .transpose()
        .map_err(|e| corrupt(format!("failed_state: {}", e.message())))?;
    let size = column::<Option<i64>>(row, "size")?
        .map(|size| u64::try_from(size).map_err(|_| corrupt(format!("negative size {size}"))))
        .transpose()?;
    let attempts: i64 = column(row, "attempts")?;
    Ok(Attachment {
        id,
        filename: column::<Option<String>>(row, "filename")?
            .ok_or_else(|| corrupt("filename is NULL".to_owned()))?,
        local_uri: column(row, "local_uri")?,
        timestamp: column(row, "timestamp")?,
        size,
        media_type: column(row, "media_type")?,
        state,
        has_synced: column::<i64>(row, "has_synced")? != 0,
        meta_data: column(row, "meta_data")?,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        next_attempt_at: column(row, "next_attempt_at")?,
        last_error: column(row, "last_error")?,
        checksum: column(row, "checksum")?,
        version: column(row, "version")?,
        failed_state,
    })
}

fn column<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> Result<T> {
    row.get(name)
        .map_err(|e| sqlite_error(e, format!("reading column {name}")))
}

fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl AttachmentStore for PowerSyncStore {
    type Connection = Connection;

    async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>> {
        let id = id.clone();
        self.read("reading an attachment", move |connection, sql| {
            let mut statement = connection
                .prepare_cached(&sql.get)
                .map_err(|e| sqlite_error(e, format!("reading attachment {id}")))?;
            let mut rows = statement
                .query([id.as_str()])
                .map_err(|e| sqlite_error(e, format!("reading attachment {id}")))?;
            match rows
                .next()
                .map_err(|e| sqlite_error(e, format!("reading attachment {id}")))?
            {
                Some(row) => row_to_attachment(row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn get_many(&self, ids: &[AttachmentId]) -> Result<Vec<Attachment>> {
        let mut unique: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        unique.sort();
        unique.dedup();
        self.read("reading attachments", move |connection, sql| {
            let mut found = Vec::with_capacity(unique.len());
            for chunk in unique.chunks(READ_BATCH) {
                let statement = sql.get_many(chunk.len());
                found.extend(readable_rows(
                    connection,
                    &statement,
                    params_from_iter(chunk),
                    "reading attachments",
                )?);
            }
            Ok(found)
        })
        .await
    }

    async fn list(&self, states: Option<&[AttachmentState]>) -> Result<Vec<Attachment>> {
        let statement = self.sql.list(states);
        self.read("listing attachments", move |connection, _| {
            readable_rows(connection, &statement, [], "listing attachments")
        })
        .await
    }

    async fn list_page(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let after = after.map_or_else(String::new, |id| id.as_str().to_owned());
        self.read("listing a page of attachments", move |connection, sql| {
            readable_rows(
                connection,
                &sql.page,
                rusqlite::params![after, limit_to_sql(limit)],
                "listing a page of attachments",
            )
        })
        .await
    }

    async fn list_page_to_verify(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
        retry_after_ms: i64,
    ) -> Result<Vec<Attachment>> {
        let after = after.map_or_else(String::new, |id| id.as_str().to_owned());
        self.read("listing attachments to verify", move |connection, sql| {
            readable_rows(
                connection,
                &sql.verify_page,
                rusqlite::params![after, retry_after_ms, limit_to_sql(limit)],
                "listing attachments to verify",
            )
        })
        .await
    }

    async fn list_by_local_uri(&self, paths: &[String]) -> Result<Vec<Attachment>> {
        let paths = paths.to_vec();
        self.read(
            "reading attachments by local file",
            move |connection, sql| {
                let mut found = Vec::new();
                for chunk in paths.chunks(READ_BATCH) {
                    found.extend(readable_rows(
                        connection,
                        &sql.with_local_uri(chunk.len()),
                        params_from_iter(chunk),
                        "reading attachments by local file",
                    )?);
                }
                Ok(found)
            },
        )
        .await
    }

    async fn list_due(
        &self,
        now_ms: i64,
        downloads: bool,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        self.read("listing due attachments", move |connection, sql| {
            readable_rows(
                connection,
                &sql.due[usize::from(downloads)],
                [now_ms, limit_to_sql(limit)],
                "listing due attachments",
            )
        })
        .await
    }

    async fn next_attempt_at(&self, downloads: bool) -> Result<Option<i64>> {
        self.read("reading the next retry time", move |connection, sql| {
            connection
                .query_row(&sql.next_attempt[usize::from(downloads)], [], |row| {
                    row.get(0)
                })
                .map_err(|e| sqlite_error(e, "reading the next retry time"))
        })
        .await
    }

    async fn apply(&self, changes: Vec<RowChange>) -> Result<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.write("writing attachments".to_owned(), move |tx, sql| {
            changes
                .iter()
                .map(|change| apply_one(tx, sql, change).map(|v| v.is_some()))
                .collect()
        })
        .await
    }

    async fn apply_with_hook(
        &self,
        id: &AttachmentId,
        decide: ChangeDecider,
        hook: Option<UpdateHook<Connection>>,
    ) -> Result<RowChange> {
        let id = id.clone();
        let runtime = tokio::runtime::Handle::current();
        self.write(format!("writing attachment {id}"), move |tx, sql| {
            let current = tx
                .query_row(&sql.get, [id.as_str()], |row| Ok(row_to_attachment(row)))
                .optional()
                .map_err(|e| sqlite_error(e, format!("reading attachment {id}")))?
                .transpose()?;
            // An early return drops the transaction, which rolls it back.
            let change = decide(current)?;
            if change.id() != &id {
                return Err(Error::invalid_input(format!(
                    "a change for attachment {} was decided for {id}",
                    change.id()
                )));
            }
            let Some(version) = apply_one(tx, sql, &change)? else {
                return Err(refusal(tx, sql, &change));
            };
            if let Some(hook) = hook {
                run_hook(tx, &runtime, &id, hook)?;
            }
            Ok(with_version(change, version))
        })
        .await
    }

    async fn insert_with_hook(
        &self,
        row: Attachment,
        hook: Option<UpdateHook<Connection>>,
    ) -> Result<Attachment> {
        let runtime = tokio::runtime::Handle::current();
        self.write(format!("saving attachment {}", row.id), move |tx, sql| {
            let id = row.id.clone();
            let change = RowChange::Insert(row);
            let Some(version) = apply_one(tx, sql, &change)? else {
                return Err(refusal(tx, sql, &change));
            };
            if let Some(hook) = hook {
                run_hook(tx, &runtime, &id, hook)?;
            }
            let RowChange::Insert(mut written) = change else {
                unreachable!("the change was built as an insert above")
            };
            written.version = version;
            Ok(written)
        })
        .await
    }

    async fn count_by_state(&self) -> Result<StateCounts> {
        let rows: Vec<(i64, i64)> = self
            .read("counting attachments", move |connection, sql| {
                let mut statement = connection
                    .prepare_cached(&sql.count)
                    .map_err(|e| sqlite_error(e, "counting attachments"))?;
                let rows = statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(|e| sqlite_error(e, "counting attachments"))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(|e| sqlite_error(e, "counting attachments"))
            })
            .await?;
        let mut counts = StateCounts::default();
        for (code, count) in rows {
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
        self.write("clearing attachments".to_owned(), move |tx, sql| {
            let removed = tx
                .execute(&sql.clear, [])
                .map_err(|e| sqlite_error(e, "clearing attachments"))?;
            Ok(u64::try_from(removed).unwrap_or(u64::MAX))
        })
        .await
    }

    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        self.lock_path
            .as_deref()
            .map(attachments_sql::lock)
            .transpose()
    }
}
