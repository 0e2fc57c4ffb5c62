//! The table's migrations (the same text as `SqliteStore`'s, from attachments-sql), recorded
//! in this store's own table.

use attachments_core::Result;
use rusqlite::OptionalExtension;

use crate::error::sqlite_error;
use crate::lease::Transaction;

/// Run every migration of `table` not yet recorded in `migrations_table`, each in the
/// transaction `tx` (one transaction: a crash leaves the table as it was, or fully migrated).
///
/// A table first migrated by `SqliteStore` (sqlx, recorded in `_<table>_migrations`) is
/// adopted: the versions sqlx applied count as applied, so an app moving to PowerSync keeps
/// its table and no migration runs twice.
pub(crate) fn migrate(tx: &mut Transaction<'_>, table: &str, migrations_table: &str) -> Result<()> {
    let failed = |e| sqlite_error(e, format!("migrating attachment table {table:?}"));
    tx.execute_batch(&format!(
        r#"CREATE TABLE IF NOT EXISTS "{migrations_table}" (
               version INTEGER PRIMARY KEY NOT NULL,
               description TEXT NOT NULL,
               applied_at INTEGER NOT NULL DEFAULT (unixepoch())
           )"#
    ))
    .map_err(failed)?;
    let sqlx_table = format!("_{table}_migrations");
    let sqlx_ran: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [&sqlx_table],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if sqlx_ran.is_some() {
        tx.execute(
            &format!(
                r#"INSERT OR IGNORE INTO "{migrations_table}" (version, description)
                   SELECT version, description FROM "{sqlx_table}" WHERE success"#
            ),
            [],
        )
        .map_err(failed)?;
    }
    let applied: i64 = tx
        .query_row(
            &format!(r#"SELECT COALESCE(MAX(version), 0) FROM "{migrations_table}""#),
            [],
            |row| row.get(0),
        )
        .map_err(failed)?;
    for migration in attachments_sql::MIGRATIONS
        .iter()
        .filter(|migration| migration.version > applied)
    {
        tx.execute_batch(&migration.sql_for(table))
            .map_err(failed)?;
        tx.execute(
            &format!(r#"INSERT INTO "{migrations_table}" (version, description) VALUES (?1, ?2)"#),
            rusqlite::params![migration.version, migration.description_for(table)],
        )
        .map_err(failed)?;
    }
    Ok(())
}
