//! References from PowerSync's table-update notifications, and a sync pass when PowerSync
//! connects.

use std::collections::BTreeSet;
use std::time::Instant;

use attachments_core::{
    AttachmentId, Error, ErrorKind, ReferencedAttachments, Result, WatchedAttachmentItem,
};
use futures_util::stream::{self, BoxStream, StreamExt};
use powersync::PowerSyncDatabase;
use rusqlite::Connection;
use tracing::warn;

use crate::error::sqlite_error;
use crate::lease;

/// Prefixes PowerSync gives the tables behind a schema's views; `watch_tables` takes the
/// view's name.
const POWERSYNC_DATA_PREFIXES: [&str; 2] = ["ps_data__", "ps_data_local__"];

/// A stream of the attachments the app references, for
/// [`AttachmentQueueBuilder::watch_attachments`](attachments_core::AttachmentQueueBuilder::watch_attachments),
/// driven by PowerSync's table-update notifications instead of polling.
///
/// `query` returns an `id` column and may return `filename`, `file_extension`, `media_type`
/// and `meta_data`. The stream emits a reading at once, then one after every commit through
/// PowerSync (a local write or synced data) that touched a table the query reads; nothing
/// runs while nothing changes. Commits that come while a reading is taken are merged into one
/// more reading, so none is lost: a reference added and removed between two readings still
/// reaches the queue as the state it left. Each reading's `read_at` is taken before its query
/// runs. Items are sorted by id; rows with a NULL id are skipped, and rows with an invalid id
/// are skipped with a warning. A failed reading is emitted as an `Err` item (the queue reports
/// it as an error event) and the next commit brings a new reading. The watched tables are
/// found once, from SQLite's plan of the query; a query that cannot be planned (bad SQL, a
/// missing table) ends the stream after its error, and the next `start_sync` tries again.
///
/// The query runs on a reader lease on a blocking thread, as the store's statements do; this
/// is why the stream is built on `watch_tables` rather than `watch_statement`, which runs the
/// query on the task that polls it.
///
/// Writes made outside PowerSync's writer (another connection on the same file) are not
/// notified by PowerSync, so they are seen at the next notified commit only.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use futures_util::StreamExt;
/// use powersync::schema::{Column, Schema, Table};
/// let dir = tempfile::tempdir().unwrap();
/// let mut schema = Schema::default();
/// schema.tables.push(Table::create("todos", vec![Column::text("photo_id")], |_| {}));
/// let db = attachments_powersync::open_offline(dir.path().join("app.db"), schema).unwrap();
/// let mut referenced = attachments_powersync::watch_referenced_attachments(
///     db,
///     "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL",
/// );
/// let first = referenced.next().await.unwrap().unwrap();
/// assert!(first.items.is_empty());
/// # });
/// ```
pub fn watch_referenced_attachments(
    db: PowerSyncDatabase,
    query: impl Into<String>,
) -> BoxStream<'static, Result<ReferencedAttachments>> {
    let query = query.into();
    stream::once(async move {
        let tables = {
            let query = query.clone();
            lease::read(
                &db,
                "finding the tables of the watched query",
                move |connection| tables_read_by(connection, &query),
            )
            .await
        };
        match tables {
            // Subscribed before the first reading: a commit during it is seen afterwards.
            Ok(tables) => db
                .watch_tables(true, tables)
                .then(move |()| read_references(db.clone(), query.clone()))
                .boxed(),
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        }
    })
    .flatten()
    .boxed()
}

/// Run the watched query once, on a reader lease, off the runtime's threads.
async fn read_references(db: PowerSyncDatabase, query: String) -> Result<ReferencedAttachments> {
    // before anything is read: the reading began no later than this
    let read_at = Instant::now();
    lease::read(
        &db,
        "running the watched attachments query",
        move |connection| {
            let what = "running the watched attachments query";
            let mut statement = connection
                .prepare_cached(&query)
                .map_err(|e| sqlite_error(e, what))?;
            let names: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let mut rows = statement.query([]).map_err(|e| sqlite_error(e, what))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(|e| sqlite_error(e, what))? {
                items.extend(row_to_item(row, &names));
            }
            items.sort_by(|a: &WatchedAttachmentItem, b| a.id.cmp(&b.id));
            items.dedup_by(|a, b| a.id == b.id);
            Ok(ReferencedAttachments::new(items, read_at))
        },
    )
    .await
}

fn row_to_item(row: &rusqlite::Row<'_>, names: &[String]) -> Option<WatchedAttachmentItem> {
    let optional = |name: &str| -> Option<String> {
        names
            .iter()
            .any(|n| n == name)
            .then(|| row.get::<_, Option<String>>(name).ok().flatten())
            .flatten()
    };
    let id = match AttachmentId::new(optional("id")?) {
        Ok(id) => id,
        Err(error) => {
            warn!(%error, "watched query returned an invalid attachment id; skipped");
            return None;
        }
    };
    Some(WatchedAttachmentItem {
        id,
        filename: optional("filename"),
        file_extension: optional("file_extension"),
        media_type: optional("media_type"),
        meta_data: optional("meta_data"),
    })
}

/// The tables `query` reads, as `watch_tables` names them: SQLite's own plan (`EXPLAIN`) says
/// which b-trees it opens; their root pages name the tables, and a PowerSync data table is
/// named by its view.
fn tables_read_by(connection: &Connection, query: &str) -> Result<Vec<String>> {
    let what = "finding the tables of the watched query";
    let mut plan = connection
        .prepare(&format!("EXPLAIN {query}"))
        .map_err(|e| sqlite_error(e, what))?;
    let mut rows = plan.query([]).map_err(|e| sqlite_error(e, what))?;
    let mut root_pages = BTreeSet::new();
    while let Some(row) = rows.next().map_err(|e| sqlite_error(e, what))? {
        let opcode: String = row.get("opcode").map_err(|e| sqlite_error(e, what))?;
        let page: i64 = row.get("p2").map_err(|e| sqlite_error(e, what))?;
        // p3 is the database: 0 is main (1 is temp)
        let database: i64 = row.get("p3").map_err(|e| sqlite_error(e, what))?;
        if opcode == "OpenRead" && database == 0 {
            root_pages.insert(page);
        }
    }
    let mut name_of = connection
        .prepare("SELECT tbl_name FROM sqlite_schema WHERE rootpage = ?1")
        .map_err(|e| sqlite_error(e, what))?;
    let mut tables = BTreeSet::new();
    for page in root_pages {
        let names = name_of
            .query_map([page], |row| row.get::<_, String>(0))
            .map_err(|e| sqlite_error(e, what))?;
        for name in names {
            let name = name.map_err(|e| sqlite_error(e, what))?;
            let view = POWERSYNC_DATA_PREFIXES
                .iter()
                .find_map(|prefix| name.strip_prefix(prefix))
                .map_or(name.clone(), str::to_owned);
            tables.insert(view);
        }
    }
    if tables.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the watched query reads no table, so no change could ever be seen: {query}"),
        ));
    }
    Ok(tables.into_iter().collect())
}

/// Calls `on_connected` every time PowerSync's status turns connected (from the status
/// stream), since that is when uploads can succeed again; give it the queue's `trigger_sync`.
/// Spawn it, and abort it (through its `JoinHandle`) when the app closes the database: it
/// holds a handle of the database, so the database stays open while it runs.
///
/// "Connected" is [`is_connected`]; PowerSync 0.0.5's own flag alone is not enough.
///
/// ```no_run
/// # fn demo(db: powersync::PowerSyncDatabase, trigger_sync: impl Fn() + Send + 'static) {
/// tokio::spawn(attachments_powersync::sync_when_connected(db, trigger_sync));
/// # }
/// ```
pub async fn sync_when_connected(db: PowerSyncDatabase, mut on_connected: impl FnMut()) {
    let mut edge = ConnectedEdge::default();
    let mut statuses = std::pin::pin!(db.watch_status());
    while let Some(status) = statuses.next().await {
        if edge.turned_connected(is_connected(&status)) {
            on_connected();
        }
    }
}

/// Whether PowerSync is connected to its service, so uploads can succeed: `is_connected()`
/// with no `download_error()`. PowerSync 0.0.5 reports `is_connected()` after a failed
/// request, with the error, until its next retry (and still after `disconnect()`).
///
/// ```
/// let offline = powersync::SyncStatusData::default();
/// assert!(!attachments_powersync::is_connected(&offline));
/// ```
pub fn is_connected(status: &powersync::SyncStatusData) -> bool {
    status.is_connected() && status.download_error().is_none()
}

/// Tells a change to connected from the snapshots PowerSync streams: the stream gives the
/// latest snapshot only, so a connection is judged by the last state seen, never counted.
#[derive(Debug, Default)]
struct ConnectedEdge {
    connected: bool,
}

impl ConnectedEdge {
    fn turned_connected(&mut self, connected: bool) -> bool {
        let turned = connected && !self.connected;
        self.connected = connected;
        turned
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectedEdge;

    #[test]
    fn a_pass_is_asked_once_per_change_to_connected() {
        let mut edge = ConnectedEdge::default();
        let seen: Vec<bool> = [false, true, true, false, false, true]
            .into_iter()
            .map(|connected| edge.turned_connected(connected))
            .collect();
        assert_eq!(seen, [false, true, false, false, false, true]);
    }
}
