//! Reading rows of the attachment table into [`Attachment`]s: one `SqliteRow` each, or a whole
//! page in one row (see [`rows_from_json_page`]).

use attachments_core::{Attachment, AttachmentId, AttachmentState, Error, ErrorKind, Result};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Row};
use tracing::warn;

use crate::error::db_error;
use crate::store::SqliteQuery;

/// The rows that can be read. One row written by something else (an unknown state code, an
/// invalid id) must not stop the sync of every other attachment: it is left out here, with a
/// warning, and `get` reports it.
pub(crate) fn readable_rows(rows: &[SqliteRow]) -> impl Iterator<Item = Attachment> + '_ {
    rows.iter()
        .filter_map(|row| readable(row_to_attachment(row)))
}

fn readable(row: Result<Attachment>) -> Option<Attachment> {
    match row {
        Ok(attachment) => Some(attachment),
        Err(error) => {
            warn!(%error, "unreadable attachment row left out");
            None
        }
    }
}

/// A page of rows: `[json, plain]` are the same query as one JSON row ([`rows_from_json_page`])
/// and row by row, with the same arguments (`bind`). The JSON row is read first; a value it
/// cannot carry, or one of a type the table should never hold, makes the page read row by
/// row, which leaves out only the unreadable rows.
pub(crate) async fn read_page<'q>(
    pool: &SqlitePool,
    [json, plain]: [&str; 2],
    what: &str,
    bind: impl Fn(SqliteQuery<'q>) -> SqliteQuery<'q>,
) -> Result<Vec<Attachment>> {
    let page = bind(sqlx::query(AssertSqlSafe(json.to_owned())))
        .fetch_one(pool)
        .await
        .ok();
    let text = page.and_then(|row| row.try_get::<String, _>(0).ok());
    if let Some(rows) = text.as_deref().and_then(rows_from_json_page) {
        return Ok(rows);
    }
    let rows = bind(sqlx::query(AssertSqlSafe(plain.to_owned())))
        .fetch_all(pool)
        .await
        .map_err(|e| db_error(e, what))?;
    Ok(readable_rows(&rows).collect())
}

/// Every column of a row, as SQLite holds it, in `attachments_sql::COLUMNS` order (the order
/// of a page's JSON arrays too).
type RawRow = (
    String,         // id
    Option<String>, // filename
    Option<String>, // local_uri
    i64,            // timestamp
    Option<i64>,    // size
    Option<String>, // media_type
    i64,            // state
    i64,            // has_synced
    Option<String>, // meta_data
    i64,            // attempts
    Option<i64>,    // next_attempt_at
    Option<String>, // last_error
    Option<String>, // checksum
    i64,            // version
    Option<i64>,    // failed_state
);

/// The rows of a page read as one JSON array of row arrays (`attachments_sql::json_page`),
/// in id order; `None` when the text is not such an array (a value of a type the table
/// should never hold, which the caller then reads row by row to leave out only that row).
/// sqlx hands every row from its worker thread to the caller on its own, with an allocation
/// per column: one row per page makes reading a large table several times cheaper.
fn rows_from_json_page(text: &str) -> Option<Vec<Attachment>> {
    let raw: Vec<RawRow> = serde_json::from_str(text).ok()?;
    let mut rows: Vec<Attachment> = raw
        .into_iter()
        .filter_map(|raw| readable(attachment(raw)))
        .collect();
    // an aggregate's order is not promised: the page is put back in id order
    rows.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    Some(rows)
}

/// Read one row; anything the table should never hold (an unknown state code, a negative size,
/// an invalid id) is a clear error naming the row.
pub(crate) fn row_to_attachment(row: &SqliteRow) -> Result<Attachment> {
    attachment((
        column(row, "id")?,
        column(row, "filename")?,
        column(row, "local_uri")?,
        column(row, "timestamp")?,
        column(row, "size")?,
        column(row, "media_type")?,
        column(row, "state")?,
        column(row, "has_synced")?,
        column(row, "meta_data")?,
        column(row, "attempts")?,
        column(row, "next_attempt_at")?,
        column(row, "last_error")?,
        column(row, "checksum")?,
        column(row, "version")?,
        column(row, "failed_state")?,
    ))
}

fn attachment(raw: RawRow) -> Result<Attachment> {
    let (
        raw_id,
        filename,
        local_uri,
        timestamp,
        size,
        media_type,
        state_code,
        has_synced,
        meta_data,
        attempts,
        next_attempt_at,
        last_error,
        checksum,
        version,
        failed_state,
    ) = raw;
    let corrupt = |what: String| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("attachment row {raw_id:?}: {what}"),
        )
    };
    let id = AttachmentId::new(raw_id.clone()).map_err(|e| corrupt(e.message().to_owned()))?;
    let state =
        AttachmentState::from_code(state_code).map_err(|e| corrupt(e.message().to_owned()))?;
    let failed_state = failed_state
        .map(AttachmentState::from_code)
        .transpose()
        .map_err(|e| corrupt(format!("failed_state: {}", e.message())))?;
    let size = size
        .map(|size| u64::try_from(size).map_err(|_| corrupt(format!("negative size {size}"))))
        .transpose()?;
    Ok(Attachment {
        id,
        filename: filename.ok_or_else(|| corrupt("filename is NULL".to_owned()))?,
        local_uri,
        timestamp,
        size,
        media_type,
        state,
        has_synced: has_synced != 0,
        meta_data,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        next_attempt_at,
        last_error,
        checksum,
        version,
        failed_state,
    })
}

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name)
        .map_err(|e| db_error(e, format!("reading column {name}")))
}
