//! Every statement of the attachment table, built once for the configured table name.

use attachments_core::{AttachmentState, Error, Result};

/// Every column but `id` and `version`, in the order the stores bind them (`?2` to `?14` of
/// [`Statements::insert`] and [`Statements::update`]).
pub const FIELDS: &str = "filename, local_uri, timestamp, size, media_type, state, has_synced, \
                          meta_data, attempts, next_attempt_at, last_error, checksum, failed_state";

/// Every column, in table order.
pub const COLUMNS: &str = "id, filename, local_uri, timestamp, size, media_type, state, \
                           has_synced, meta_data, attempts, next_attempt_at, last_error, \
                           checksum, version, failed_state";

/// The queued state codes, written exactly as in the partial index of migration 5: SQLite uses
/// a partial index only for a query whose WHERE clause contains the index's own term.
pub const QUEUED_TERM: &str = "state IN (0, 1, 2)";

/// The one-row table that holds the last version the store gave any row of `table`.
///
/// ```
/// assert_eq!(attachments_sql::version_table("attachments_queue"), "_attachments_queue_versions");
/// ```
pub fn version_table(table: &str) -> String {
    format!("_{table}_versions")
}

/// Check a table name: 1 to 64 characters of `[A-Za-z0-9_]`, not starting with a digit, so it
/// can be spliced into every statement.
///
/// # Errors
/// `InvalidInput` for any other name.
///
/// ```
/// assert!(attachments_sql::validate_table_name("attachments_queue").is_ok());
/// assert!(attachments_sql::validate_table_name("1; DROP TABLE x").is_err());
/// ```
pub fn validate_table_name(table: &str) -> Result<()> {
    let mut chars = table.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || table.len() > 64
        || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::invalid_input(format!(
            "table name must be 1 to 64 characters of [A-Za-z0-9_], not starting with a digit, got {table:?}"
        )));
    }
    Ok(())
}

/// Every statement of the table, for one table name.
///
/// ```
/// let sql = attachments_sql::Statements::new("attachments_queue");
/// assert!(sql.get.ends_with(r#"FROM "attachments_queue" WHERE id = ?1"#));
/// ```
#[derive(Debug, Clone)]
pub struct Statements {
    /// One row by id (`?1`).
    pub get: String,
    /// Every row, no order: add a `WHERE` and an `ORDER BY` (see [`Statements::list`]).
    pub list_all: String,
    /// Insert: the id (`?1`), the fields in [`FIELDS`] order (`?2`..`?14`). A conflict on the id
    /// or the filename skips the row instead of failing the statement; the caller learns it
    /// from the missing `RETURNING version` row.
    pub insert: String,
    /// Compare-and-set update: the id (`?1`), the fields (`?2`..`?14`), the expected version
    /// (`?15`); `RETURNING version`, no row when it did not apply.
    pub update: String,
    /// Compare-and-set delete: the id (`?1`), the expected version (`?2`).
    pub delete: String,
    /// The row that keeps an insert or update out: one with its id (`?1`), or another with its
    /// filename (`?2`), the id first.
    pub conflict: String,
    /// The version the next write gives: `{next_version} + n` for the n-th row of a statement.
    pub next_version: String,
    /// The due rows at `?1`, at most `?2`: `[without downloads, with downloads]`.
    pub due: [String; 2],
    /// The earliest retry time: `[without downloads, with downloads]`.
    pub next_attempt: [String; 2],
    /// Up to `?2` rows with ids after `?1` (`""`: from the first), in id order.
    pub page: String,
    /// [`Statements::page`] as one row (see [`json_page`]).
    pub page_json: String,
    /// A page as [`Statements::page`] (`?1` after, `?3` limit) of only the rows start-up
    /// verification looks at: rows that point at a local file or should (`Synced`,
    /// `QueuedUpload`), and queued rows waiting for a retry time after `?2`.
    pub verify_page: String,
    /// [`Statements::verify_page`] as one row: a JSON array of the rows, each an array of
    /// [`COLUMNS`] (see [`json_page`]).
    pub verify_page_json: String,
    /// Rows per state code.
    pub count: String,
    /// Remove every row (the version counter stays).
    pub clear: String,
}

impl Statements {
    /// The statements for `table` (checked by [`validate_table_name`]).
    pub fn new(table: &str) -> Self {
        let next_version = format!(r#"(SELECT last_version FROM "{}")"#, version_table(table));
        // INDEXED BY: without ANALYZE statistics (most apps never run it) SQLite judges
        // `next_attempt_at IS NULL` unselective and may walk every queued row through
        // (state, timestamp) instead. Naming the index also makes a statement that cannot use
        // it fail to prepare rather than silently scan.
        let queued = format!(r#""{table}" INDEXED BY "{table}_queued_next_attempt""#);
        // [without downloads, with downloads]
        let states = ["1, 2", "0, 1, 2"];
        // NULL (never failed) and "at or before now" are each a range of the partial index
        // (state, next_attempt_at); an OR of the two would not be.
        let due = states.map(|states| {
            format!(
                r#"SELECT {COLUMNS} FROM {queued}
                   WHERE {QUEUED_TERM} AND state IN ({states}) AND next_attempt_at IS NULL
                   UNION ALL
                   SELECT {COLUMNS} FROM {queued}
                   WHERE {QUEUED_TERM} AND state IN ({states}) AND next_attempt_at <= ?1
                   ORDER BY timestamp, id LIMIT ?2"#
            )
        });
        // The first non-NULL entry of each state's part of the index: one seek per state.
        let next_attempt = states.map(|states| {
            let earliest: Vec<String> = states
                .split(", ")
                .map(|state| {
                    format!(
                        r#"SELECT (SELECT next_attempt_at FROM {queued}
                               WHERE {QUEUED_TERM} AND state = {state}
                                     AND next_attempt_at IS NOT NULL
                               ORDER BY next_attempt_at LIMIT 1) AS at"#
                    )
                })
                .collect();
            format!("SELECT MIN(at) FROM ({})", earliest.join(" UNION ALL "))
        });
        let mut statements = Statements {
            get: format!(r#"SELECT {COLUMNS} FROM "{table}" WHERE id = ?1"#),
            list_all: format!(r#"SELECT {COLUMNS} FROM "{table}""#),
            insert: format!(
                r#"INSERT INTO "{table}" (id, {FIELDS}, version)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                           {next_version} + 1)
                   ON CONFLICT DO NOTHING RETURNING version"#
            ),
            update: format!(
                r#"UPDATE OR IGNORE "{table}"
                   SET ({FIELDS}) = (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14),
                       version = {next_version} + 1
                   WHERE id = ?1 AND version = ?15 RETURNING version"#
            ),
            delete: format!(r#"DELETE FROM "{table}" WHERE id = ?1 AND version = ?2"#),
            conflict: format!(
                r#"SELECT id FROM "{table}" WHERE id = ?1 OR filename = ?2
                   ORDER BY id = ?1 DESC LIMIT 1"#
            ),
            next_version,
            due,
            next_attempt,
            // ids compare as text in SQLite and in Rust alike (byte order of UTF-8)
            page: format!(r#"SELECT {COLUMNS} FROM "{table}" WHERE id > ?1 ORDER BY id LIMIT ?2"#),
            verify_page: format!(
                r#"SELECT {COLUMNS} FROM "{table}"
                   WHERE id > ?1
                     AND (local_uri IS NOT NULL OR state IN ({upload}, {synced})
                          OR ({QUEUED_TERM} AND next_attempt_at > ?2))
                   ORDER BY id LIMIT ?3"#,
                upload = AttachmentState::QueuedUpload.code(),
                synced = AttachmentState::Synced.code(),
            ),
            count: format!(r#"SELECT state, COUNT(*) FROM "{table}" GROUP BY state"#),
            verify_page_json: String::new(),
            page_json: String::new(),
            clear: format!(r#"DELETE FROM "{table}""#),
        };
        statements.verify_page_json = json_page(&statements.verify_page);
        statements.page_json = json_page(&statements.page);
        statements
    }

    /// Every row, or those in `states`, oldest `timestamp` first.
    ///
    /// ```
    /// use attachments_core::AttachmentState;
    /// let sql = attachments_sql::Statements::new("t");
    /// assert!(sql.list(Some(&[AttachmentState::Synced])).contains("WHERE state IN (3)"));
    /// ```
    pub fn list(&self, states: Option<&[AttachmentState]>) -> String {
        let mut query = self.list_all.clone();
        if let Some(states) = states {
            // state codes come from the core's own enum: safe to inline
            let codes: Vec<String> = states.iter().map(|s| s.code().to_string()).collect();
            query.push_str(&format!(" WHERE state IN ({})", codes.join(", ")));
        }
        query.push_str(" ORDER BY timestamp, id");
        query
    }

    /// The rows whose `local_uri` is one of `n` paths (`?1`..`?n`).
    ///
    /// ```
    /// let sql = attachments_sql::Statements::new("t");
    /// assert!(sql.with_local_uri(2).ends_with("WHERE local_uri IN (?1, ?2)"));
    /// ```
    pub fn with_local_uri(&self, n: usize) -> String {
        format!("{} WHERE local_uri IN ({})", self.list_all, placeholders(n))
    }

    /// The rows with `n` ids (`?1`..`?n`).
    ///
    /// ```
    /// let sql = attachments_sql::Statements::new("t");
    /// assert!(sql.get_many(2).ends_with("WHERE id IN (?1, ?2)"));
    /// ```
    pub fn get_many(&self, n: usize) -> String {
        format!("{} WHERE id IN ({})", self.list_all, placeholders(n))
    }
}

/// The rows `select` returns (every column, [`COLUMNS`] order) as one row of one value: a
/// JSON array holding an array per row, in no promised order. A client that hands each row
/// over on its own (sqlx, through its worker thread) reads a page this way in one hand-off.
///
/// ```
/// let page = attachments_sql::json_page("SELECT * FROM t");
/// assert!(page.starts_with("SELECT json_group_array(json_array(id, filename,"));
/// ```
pub fn json_page(select: &str) -> String {
    format!("SELECT json_group_array(json_array({COLUMNS})) FROM ({select})")
}

/// `?1, ?2, ... ?n`.
fn placeholders(n: usize) -> String {
    let numbered: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    numbered.join(", ")
}
