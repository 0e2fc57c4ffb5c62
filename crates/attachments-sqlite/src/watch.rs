//! Watched queries: re-run the app's "which attachments are referenced" query whenever the
//! database changes, and emit every reading, with when it began.

use std::time::Duration;

use attachments_core::{AttachmentId, ReferencedAttachments, Result, WatchedAttachmentItem};
use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Row};
use tracing::warn;

use crate::error::db_error;

/// How a watched query notices changes.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often `PRAGMA data_version` is read (default 100 ms). The read is one cheap
    /// statement on an idle connection; the query itself only runs after a change.
    pub poll_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// A stream of the attachments the app references, for
/// [`AttachmentQueueBuilder::watch_attachments`](attachments_core::AttachmentQueueBuilder::watch_attachments).
///
/// `query` returns an `id` column and may return `filename`, `file_extension`, `media_type`
/// and `meta_data`. The stream emits a reading at once, then a new one after every committed
/// change to the database, from this process or another, even when its items equal the last
/// reading's: the queue orders its deletes against each reading's `read_at`, so a fresh
/// reading must reach it even when a stale one said the same. Nothing is emitted while nothing
/// commits (`PRAGMA data_version` is polled; the query only runs after it changed). Items are
/// sorted by id; rows with a NULL id are skipped, and rows with an invalid id are skipped with
/// a warning. An error is emitted as an `Err` item and the watcher starts over on a new
/// connection.
///
/// It watches on a dedicated connection opened with the pool's options, so the database must be
/// a file (an in-memory database is private to each connection).
///
/// ```no_run
/// # async fn demo(pool: sqlx::SqlitePool) {
/// use futures_util::StreamExt;
/// let mut referenced = attachments_sqlite::watch_referenced_attachments(
///     pool,
///     "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL",
/// );
/// let first = referenced.next().await;
/// # drop(first);
/// # }
/// ```
pub fn watch_referenced_attachments(
    pool: SqlitePool,
    query: impl Into<String>,
) -> BoxStream<'static, Result<ReferencedAttachments>> {
    watch_referenced_attachments_with(pool, query, WatchOptions::default())
}

/// [`watch_referenced_attachments`] with explicit options.
pub fn watch_referenced_attachments_with(
    pool: SqlitePool,
    query: impl Into<String>,
    options: WatchOptions,
) -> BoxStream<'static, Result<ReferencedAttachments>> {
    let watcher = Watcher {
        pool,
        query: query.into(),
        options,
        connection: None,
        data_version: None,
        wait_first: false,
    };
    stream::unfold(watcher, |mut watcher| async move {
        let next = watcher.next_change().await;
        Some((next, watcher))
    })
    .boxed()
}

struct Watcher {
    pool: SqlitePool,
    query: String,
    options: WatchOptions,
    /// Dedicated connection: `PRAGMA data_version` only changes for commits made by *other*
    /// connections, so it must be the same connection every time.
    connection: Option<SqliteConnection>,
    data_version: Option<i64>,
    /// Sleep before the next check (after an emission or an error), never spin.
    wait_first: bool,
}

impl Watcher {
    async fn next_change(&mut self) -> Result<ReferencedAttachments> {
        loop {
            if self.wait_first {
                tokio::time::sleep(self.options.poll_interval).await;
            }
            self.wait_first = true;
            match self.check().await {
                Ok(Some(items)) => return Ok(items),
                Ok(None) => {}
                Err(error) => {
                    // start over on a fresh connection next time
                    self.connection = None;
                    self.data_version = None;
                    return Err(error);
                }
            }
        }
    }

    /// A new reading, if the database changed since the last one.
    async fn check(&mut self) -> Result<Option<ReferencedAttachments>> {
        // before anything is read: the reading began no later than this
        let read_at = std::time::Instant::now();
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(
                self.pool
                    .connect_options()
                    .connect()
                    .await
                    .map_err(|e| db_error(e, "opening the watch connection"))?,
            ),
        };
        let version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *connection)
            .await
            .map_err(|e| db_error(e, "reading PRAGMA data_version"))?;
        if self.data_version == Some(version) {
            return Ok(None);
        }
        self.data_version = Some(version);
        let rows = sqlx::query(AssertSqlSafe(self.query.clone()))
            .fetch_all(&mut *connection)
            .await
            .map_err(|e| db_error(e, "running the watched attachments query"))?;
        let mut items: Vec<WatchedAttachmentItem> = rows.iter().filter_map(row_to_item).collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        items.dedup_by(|a, b| a.id == b.id);
        Ok(Some(ReferencedAttachments::new(items, read_at)))
    }
}

fn row_to_item(row: &SqliteRow) -> Option<WatchedAttachmentItem> {
    let raw: Option<String> = row.try_get("id").ok()?;
    let raw = raw?;
    let id = match AttachmentId::new(raw) {
        Ok(id) => id,
        Err(error) => {
            warn!(%error, "watched query returned an invalid attachment id; skipped");
            return None;
        }
    };
    let optional = |name: &str| row.try_get::<Option<String>, _>(name).ok().flatten();
    Some(WatchedAttachmentItem {
        id,
        filename: optional("filename"),
        file_extension: optional("file_extension"),
        media_type: optional("media_type"),
        meta_data: optional("meta_data"),
    })
}
