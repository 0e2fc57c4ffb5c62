//! The table's migrations, with `{table}` standing for the configured table name.
//!
//! A released migration is never edited: a database migrated by an older version must reach
//! the same schema as a new one, and sqlx refuses to start on a database whose recorded
//! checksum of a migration differs from the one it would run. Changes are new migrations.

/// One migration: its version, a description and its SQL, each with `{table}` for the table.
///
/// ```
/// let first = &attachments_sql::MIGRATIONS[0];
/// assert_eq!(first.version, 1);
/// assert!(first.sql_for("photos").starts_with(r#"CREATE TABLE "photos""#));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Applied in increasing order; recorded once applied.
    pub version: i64,
    /// What it does, with `{table}` for the table name.
    pub description: &'static str,
    /// Its statements, with `{table}` for the table name.
    pub sql: &'static str,
}

impl Migration {
    /// The description for `table`.
    pub fn description_for(&self, table: &str) -> String {
        self.description.replace("{table}", table)
    }

    /// The SQL for `table` (a name checked by [`crate::validate_table_name`]).
    pub fn sql_for(&self, table: &str) -> String {
        self.sql.replace("{table}", table)
    }
}

/// Every migration, oldest first. The SQL lives in files so that no reformatting of this
/// source can change it.
pub const MIGRATIONS: [Migration; 5] = [
    Migration {
        version: 1,
        description: "create {table}",
        sql: include_str!("migrations/0001_create_table.sql"),
    },
    // (state, timestamp) serves every query by state: a second index on state alone only
    // cost a page write at every state change.
    Migration {
        version: 2,
        description: "drop the redundant state index of {table}",
        sql: include_str!("migrations/0002_drop_state_index.sql"),
    },
    Migration {
        version: 3,
        description: "a store-wide version counter for {table}",
        sql: include_str!("migrations/0003_version_counter.sql"),
    },
    Migration {
        version: 4,
        description: "one row per filename in {table}",
        sql: include_str!("migrations/0004_unique_filename.sql"),
    },
    Migration {
        version: 5,
        description: "an index of the queued rows of {table} by retry time",
        sql: include_str!("migrations/0005_queued_index.sql"),
    },
];
