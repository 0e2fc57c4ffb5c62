//! The store's migrations, built at run time for the configured table name.
//!
//! A released migration is never edited: a database migrated by an older version of this
//! crate must reach the same schema as a new one. Changes are new migrations.

use std::borrow::Cow;

use attachments_core::{Error, ErrorKind, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, SqlSafeStr};
use tracing::warn;

use crate::error::db_error;

/// The one-row table that holds the last version the store gave any row of `table`.
pub(crate) fn version_table(table: &str) -> String {
    format!("_{table}_versions")
}

/// Run every pending migration of `table`, recorded in `migrations_table`.
pub(crate) async fn migrate(
    pool: &SqlitePool,
    table: &str,
    migrations_table: String,
) -> Result<()> {
    warn_about_shared_filenames(pool, table).await?;
    let mut migrator = Migrator::with_migrations(migrations(table));
    migrator.dangerous_set_table_name(migrations_table);
    migrator.run(pool).await.map_err(|error| {
        Error::new(
            ErrorKind::Database,
            format!("migrating attachment table {table:?}"),
        )
        .with_source(error)
    })
}

fn migration(version: i64, description: String, sql: String) -> Migration {
    Migration::new(
        version,
        Cow::Owned(description),
        MigrationType::Simple,
        AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}

fn migrations(table: &str) -> Vec<Migration> {
    let versions = version_table(table);
    vec![
        migration(
            1,
            format!("create {table}"),
            format!(
                r#"CREATE TABLE "{table}" (
                    id TEXT PRIMARY KEY NOT NULL,
                    filename TEXT NOT NULL,
                    local_uri TEXT,
                    timestamp INTEGER NOT NULL,
                    size INTEGER,
                    media_type TEXT,
                    state INTEGER NOT NULL,
                    has_synced INTEGER NOT NULL DEFAULT 0,
                    meta_data TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER,
                    last_error TEXT,
                    checksum TEXT,
                    version INTEGER NOT NULL DEFAULT 1,
                    failed_state INTEGER
                );
                CREATE INDEX "{table}_state" ON "{table}" (state);
                CREATE INDEX "{table}_state_timestamp" ON "{table}" (state, timestamp);"#
            ),
        ),
        // (state, timestamp) serves every query by state: a second index on state alone only
        // cost a page write at every state change.
        migration(
            2,
            format!("drop the redundant state index of {table}"),
            format!(r#"DROP INDEX IF EXISTS "{table}_state";"#),
        ),
        // Versions were per row and restarted at 1 for a re-created id, so a late outcome of
        // an earlier life could pass the compare-and-set of a later one. Every write now takes
        // its version from this store-wide counter (`version = last + n` in the write itself)
        // and the triggers advance the counter in the same statement, so a single change stays
        // one autocommit statement. Seeded above every version already in the table. The
        // counter lives in its own table, so `clear()` (a DELETE of the rows) keeps it.
        migration(
            3,
            format!("a store-wide version counter for {table}"),
            format!(
                r#"CREATE TABLE "{versions}" (
                    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 0),
                    last_version INTEGER NOT NULL
                );
                INSERT INTO "{versions}" (id, last_version)
                    SELECT 0, COALESCE(MAX(version), 0) FROM "{table}";
                CREATE TRIGGER "{table}_version_after_insert" AFTER INSERT ON "{table}"
                    WHEN NEW.version > (SELECT last_version FROM "{versions}")
                    BEGIN UPDATE "{versions}" SET last_version = NEW.version; END;
                CREATE TRIGGER "{table}_version_after_update" AFTER UPDATE OF version ON "{table}"
                    WHEN NEW.version > (SELECT last_version FROM "{versions}")
                    BEGIN UPDATE "{versions}" SET last_version = NEW.version; END;"#
            ),
        ),
        // Two rows sharing a filename share one local file and one remote object: deleting
        // either would delete the other's data. A table written by an older version may hold
        // such pairs; failing here would stop the app from starting, so of each group the row
        // written last (newest `timestamp`, then highest `version`, then greatest id) stays,
        // since the shared file most likely holds its contents, and the other rows are
        // removed. No file or object is touched: the row that stays still references them.
        // `warn_about_shared_filenames` logs the removed ids first.
        migration(
            4,
            format!("one row per filename in {table}"),
            format!(
                r#"DELETE FROM "{table}" WHERE rowid IN (
                    SELECT rowid FROM (
                        SELECT rowid, ROW_NUMBER() OVER (
                            PARTITION BY filename
                            ORDER BY timestamp DESC, version DESC, id DESC
                        ) AS place FROM "{table}"
                    ) WHERE place > 1
                );
                CREATE UNIQUE INDEX "{table}_filename" ON "{table}" (filename);"#
            ),
        ),
        // A pass reads only the queued rows that are due. Partial, so synced and archived rows
        // (most of the table) cost nothing to maintain; by state first, so a pass without
        // downloads skips backed-off downloads; then `next_attempt_at`, so both "no retry
        // time" (= NULL) and "retry time passed" (< now) are index ranges, and the earliest
        // retry time is the first entry after the NULLs.
        migration(
            5,
            format!("an index of the queued rows of {table} by retry time"),
            format!(
                r#"CREATE INDEX "{table}_queued_next_attempt" ON "{table}" (state, next_attempt_at)
                    WHERE state IN (0, 1, 2);"#
            ),
        ),
    ]
}

/// Before migration 4 removes rows that share a filename, say which, so the removal is never
/// silent. Costs one lookup in `sqlite_master` on a migrated database.
async fn warn_about_shared_filenames(pool: &SqlitePool, table: &str) -> Result<()> {
    let pending: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)
            AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?2)",
    )
    .bind(table)
    .bind(format!("{table}_filename"))
    .fetch_one(pool)
    .await
    .map_err(|e| db_error(e, "inspecting the attachment table"))?;
    if !pending {
        return Ok(());
    }
    let statement = format!(
        r#"SELECT filename, group_concat(id, ', ') FROM "{table}"
           GROUP BY filename HAVING COUNT(*) > 1"#
    );
    let groups: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(statement))
        .fetch_all(pool)
        .await
        .map_err(|e| db_error(e, "looking for attachment rows that share a filename"))?;
    for (filename, ids) in groups {
        warn!(
            table,
            filename,
            ids,
            "attachment rows share a filename; the migration keeps the one written last and \
             removes the others (no file is deleted)"
        );
    }
    Ok(())
}
