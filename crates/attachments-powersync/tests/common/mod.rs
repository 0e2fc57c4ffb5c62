//! A PowerSync app for tests: a real PowerSync database file (offline) whose schema has a
//! synced `todos` table holding `photo_id`, a local directory and a remote directory that
//! several apps may share, all real (the file-system storages).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use attachments_core::{
    Attachment, AttachmentEvent, AttachmentId, AttachmentQueue, AttachmentQueueBuilder, BoxError,
    StateCounts,
};
use attachments_fs::{FsLocalStorage, FsRemoteStorage};
use attachments_powersync::{PowerSyncStore, open_offline, watch_referenced_attachments};
use attachments_testkit::FaultyRemoteStorage;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use powersync::PowerSyncDatabase;
use powersync::schema::{Column, Schema, Table};
use rusqlite::Connection;

/// Everything stops waiting after this long: a bound that turns a hang into a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const REFERENCED_QUERY: &str =
    "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL";

pub fn schema() -> Schema {
    let mut schema = Schema::default();
    schema.tables.push(Table::create(
        "todos",
        vec![Column::text("description"), Column::text("photo_id")],
        |_| {},
    ));
    schema
}

pub struct App {
    pub dir: PathBuf,
    pub db: PowerSyncDatabase,
    pub remote_dir: PathBuf,
    /// The remote directory, through a wrapper tests can pause, fail and count.
    pub remote: FaultyRemoteStorage<FsRemoteStorage>,
}

impl App {
    /// An app whose files live under `dir` and whose remote is `remote_dir`.
    pub fn new(dir: &Path, remote_dir: &Path) -> App {
        std::fs::create_dir_all(dir).unwrap();
        App {
            dir: dir.to_path_buf(),
            db: open_offline(dir.join("app.db"), schema()).unwrap(),
            remote_dir: remote_dir.to_path_buf(),
            remote: FaultyRemoteStorage::new(FsRemoteStorage::new(remote_dir).unwrap()),
        }
    }

    pub fn local_dir(&self) -> PathBuf {
        self.dir.join("files")
    }

    pub async fn store(&self) -> PowerSyncStore {
        PowerSyncStore::new(self.db.clone()).await.unwrap()
    }

    /// A queue builder on this app; tests add settings and `build()`.
    pub async fn builder(&self) -> AttachmentQueueBuilder<PowerSyncStore> {
        AttachmentQueue::builder(
            self.store().await,
            FsLocalStorage::new(self.local_dir()).unwrap(),
            self.remote.clone(),
        )
        .sync_throttle(Duration::from_millis(10))
    }

    /// A builder that also watches the `todos` table through PowerSync's notifications.
    pub async fn watching_builder(&self) -> AttachmentQueueBuilder<PowerSyncStore> {
        let db = self.db.clone();
        self.builder()
            .await
            .watch_attachments(move || watch_referenced_attachments(db.clone(), REFERENCED_QUERY))
    }

    /// Write through PowerSync's writer, as the app does (so PowerSync records and notifies it).
    pub async fn execute(&self, sql: &str, params: impl rusqlite::Params) {
        let writer = self.db.writer().await.unwrap();
        writer.execute(sql, params).unwrap();
    }

    pub async fn add_todo(&self, todo: &str, photo: Option<&AttachmentId>) {
        self.execute(
            "INSERT INTO todos (id, description, photo_id) VALUES (?1, 'todo', ?2)",
            rusqlite::params![todo, photo.map(AttachmentId::as_str)],
        )
        .await;
    }

    pub async fn set_photo(&self, todo: &str, photo: Option<&AttachmentId>) {
        self.execute(
            "UPDATE todos SET photo_id = ?2 WHERE id = ?1",
            rusqlite::params![todo, photo.map(AttachmentId::as_str)],
        )
        .await;
    }

    pub async fn photo_of(&self, todo: &str) -> Option<String> {
        let reader = self.db.reader().await.unwrap();
        reader
            .query_row("SELECT photo_id FROM todos WHERE id = ?1", [todo], |row| {
                row.get(0)
            })
            .unwrap()
    }

    /// Every change waiting in PowerSync's upload queue, as a backend connector sees it:
    /// `"<op> <table> <id> <data>"`, oldest first.
    pub async fn pending_uploads(&self) -> Vec<String> {
        let mut transactions = std::pin::pin!(self.db.crud_transactions());
        let mut entries = Vec::new();
        while let Some(transaction) = transactions.next().await {
            for entry in transaction.unwrap().crud {
                entries.push(format!(
                    "{} {} {} {}",
                    serde_json::to_value(&entry.update_type)
                        .unwrap()
                        .as_str()
                        .unwrap(),
                    entry.table,
                    entry.id,
                    serde_json::Value::from(entry.data.unwrap_or_default()),
                ));
            }
        }
        entries
    }

    /// Files in the local directory (not temp files).
    pub fn local_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.local_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.path().is_file())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }
}

/// An update hook, as a PowerSync app writes one: todo-1's photo becomes the saved attachment,
/// written to the synced `todos` view on the connection of the store's transaction.
pub fn set_photo_of_todo_1(
    connection: &mut Connection,
    attachment: Attachment,
) -> BoxFuture<'_, Result<(), BoxError>> {
    Box::pin(async move {
        // A view reports 0 rows changed even when it changed one: RETURNING tells.
        connection
            .query_row(
                "UPDATE todos SET photo_id = ?1 WHERE id = 'todo-1' RETURNING id",
                [attachment.id.as_str()],
                |_| Ok(()),
            )
            .map_err(|e| Box::new(e) as BoxError)
    })
}

/// Wait until the queue's counts satisfy `done`, re-checking at every event the queue sends.
pub async fn wait_for_counts(
    queue: &AttachmentQueue<PowerSyncStore>,
    what: &str,
    done: impl Fn(&StateCounts) -> bool,
) -> StateCounts {
    let mut events = queue.subscribe();
    let wait = async {
        loop {
            let counts = queue.status().await.unwrap();
            if done(&counts) {
                return counts;
            }
            // any event may have changed the counts; a lagged receiver just checks again
            let _ = events.recv().await;
        }
    };
    match tokio::time::timeout(PATIENCE, wait).await {
        Ok(counts) => counts,
        Err(_) => panic!(
            "timed out waiting for {what}; counts are {:?}",
            queue.status().await.unwrap()
        ),
    }
}

/// Wait for the end of a pass after which the queue's counts satisfy `done`; `events` was
/// subscribed before the change the pass acts on. Unlike a state change, the end of a pass
/// comes after its downloaded files are in place.
pub async fn wait_for_pass(
    queue: &AttachmentQueue<PowerSyncStore>,
    events: &mut tokio::sync::broadcast::Receiver<AttachmentEvent>,
    what: &str,
    done: impl Fn(&StateCounts) -> bool,
) -> StateCounts {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(AttachmentEvent::PassCompleted(_)) => {
                    let counts = queue.status().await.unwrap();
                    if done(&counts) {
                        return counts;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("event stream ended while waiting for {what}: {error}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
