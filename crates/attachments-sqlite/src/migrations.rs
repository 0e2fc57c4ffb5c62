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

fn migrations(table: &str) -> Vec<Migration> {
    // The text is shared with every other store of this table (attachments-sql).
    attachments_sql::MIGRATIONS
        .iter()
        .map(|migration| {
            Migration::new(
                migration.version,
                Cow::Owned(migration.description_for(table)),
                MigrationType::Simple,
                AssertSqlSafe(migration.sql_for(table)).into_sql_str(),
                false,
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A released migration is never edited: sqlx would refuse to start on every database
    /// that ran the earlier text. A change here means: restore the file, add a new migration.
    #[test]
    fn released_migrations_are_never_edited() {
        let checksums: Vec<String> = migrations("attachments_queue")
            .iter()
            .map(|migration| {
                migration
                    .checksum
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect()
            })
            .collect();
        assert_eq!(checksums, RELEASED_CHECKSUMS);
    }

    /// SHA-384 of each migration's SQL for the default table; 1 and 2 as released first.
    const RELEASED_CHECKSUMS: [&str; 5] = [
        "b75888457bc7da94e7e885e97706921fd20ba0a41685b82ffd095d33796fce8df88c45eca72e97cba0a93a977118a840",
        "e616fbec6954fe4c5c43f2ac256b0b70e9f9bb137c20f9267d7d82730cb49fe8237dfd6eba7325c21eca3654a1176df3",
        "0abaf2f69a2cd201946322ac40e187a0ab14ed093c00667fa02e1bc46aa85e3e3b90db49b982042000753c190c24b906",
        "b651626f7a9686941dfb1cae42750cc95a64a9102d40ed6ab36becf38f261fb1ec2fdc76ad40fb6f046a41ada0aec42a",
        "88632c5a36f38aa98909f1d43ee8677724d978ca55cd580abad4b5c93daa185093337cd6bd8d73717fcc5403aa696e32",
    ];
}
