//! Running rusqlite work on PowerSync's leases without blocking the async runtime.
//!
//! A lease is taken asynchronously (PowerSync's own async pool), then moved to a blocking
//! thread with the work: rusqlite calls block their thread, and on a current-thread runtime a
//! writer waiting on SQLite's busy timeout would stop everything else. The lease is dropped on
//! that thread too, which is when PowerSync reads its update hooks and notifies watchers.

use attachments_core::Result;
use powersync::{LeasedConnection, PowerSyncDatabase};
use rusqlite::Connection;

use crate::error::{join_error, powersync_error, sqlite_error};

/// Run `work` on a reader lease, on a blocking thread.
pub(crate) async fn read<T, F>(db: &PowerSyncDatabase, what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    let lease = db
        .reader()
        .await
        .map_err(|e| powersync_error(e, format!("{what}: opening a read connection")))?;
    tokio::task::spawn_blocking(move || work(&lease))
        .await
        .map_err(|e| join_error(e, what))?
}

/// Run `work` in a `BEGIN IMMEDIATE` transaction on the writer lease, on a blocking thread;
/// commit when it returns `Ok`, roll back otherwise (also when it panics).
pub(crate) async fn write<T, F>(db: &PowerSyncDatabase, what: String, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
{
    let lease = db
        .writer()
        .await
        .map_err(|e| powersync_error(e, format!("{what}: opening the write connection")))?;
    let context = what.clone();
    tokio::task::spawn_blocking(move || in_transaction(lease, &what, work))
        .await
        .map_err(|e| join_error(e, context))?
}

fn in_transaction<T>(
    mut lease: LeasedConnection,
    what: &str,
    work: impl FnOnce(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
    // writes after another connection committed fails at once with `database is locked`.
    lease
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| sqlite_error(e, format!("{what}: starting a write transaction")))?;
    let mut tx = Transaction {
        connection: &mut lease,
        open: true,
    };
    let value = work(&mut tx)?;
    tx.open = false;
    tx.connection
        .execute_batch("COMMIT")
        .map_err(|e| sqlite_error(e, format!("{what}: committing")))
        .inspect_err(|_| {
            // a failed COMMIT can leave the transaction open: never hand the writer back so
            let _ = tx.connection.execute_batch("ROLLBACK");
        })?;
    Ok(value)
}

/// An open write transaction on PowerSync's writer connection, rolled back when dropped
/// uncommitted. Unlike `rusqlite::Transaction` it lends the connection mutably, as an update
/// hook takes it.
pub(crate) struct Transaction<'c> {
    connection: &'c mut Connection,
    open: bool,
}

impl Transaction<'_> {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.connection
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // The writer goes back to PowerSync's pool after this: it must not stay inside our
            // transaction. A failing ROLLBACK means SQLite already rolled back.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}
