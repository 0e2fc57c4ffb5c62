//! A "device" for queue tests: an app database with a `todos` table, a local directory, and a
//! remote directory that several devices may share, all real (SQLite file through sqlx, the
//! file-system storages).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::sqlite::{SqliteStore, WatchOptions, watch_referenced_attachments_with};
use attachments::{
    AttachmentEvent, AttachmentId, AttachmentQueueBuilder, SqliteAttachmentQueue, StateCounts,
    WatchedAttachmentItem,
};
use attachments_testkit::FaultyRemoteStorage;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// An update hook, as an app would write one: todo 1's photo becomes the saved attachment.
pub fn set_photo_of_todo_1(
    connection: &mut sqlx::SqliteConnection,
    attachment: attachments::Attachment,
) -> futures_util::future::BoxFuture<'_, Result<(), attachments::BoxError>> {
    Box::pin(async move {
        sqlx::query("UPDATE todos SET photo_id = ? WHERE id = 1")
            .bind(attachment.id.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(())
    })
}

/// Everything stops waiting after this long: a bound that turns a hang into a failure.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const REFERENCED_QUERY: &str =
    "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL";

pub struct Device {
    pub dir: PathBuf,
    pub pool: SqlitePool,
    pub remote: FaultyRemoteStorage<FsRemoteStorage>,
}

impl Device {
    /// A device whose files live under `dir` and whose remote is `remote_dir`.
    pub async fn new(dir: &Path, remote_dir: &Path) -> Device {
        std::fs::create_dir_all(dir).unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.join("app.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT, photo_id TEXT)",
        )
        .execute(&pool)
        .await
        .unwrap();
        Device {
            dir: dir.to_path_buf(),
            pool,
            remote: FaultyRemoteStorage::new(FsRemoteStorage::new(remote_dir).unwrap()),
        }
    }

    pub fn local_dir(&self) -> PathBuf {
        self.dir.join("files")
    }

    /// A queue builder on this device; tests add settings and `build()`.
    pub async fn builder(&self) -> AttachmentQueueBuilder<SqliteStore> {
        SqliteAttachmentQueue::builder(
            SqliteStore::new(self.pool.clone()).await.unwrap(),
            FsLocalStorage::new(self.local_dir()).unwrap(),
            self.remote.clone(),
        )
        .sync_throttle(Duration::from_millis(10))
    }

    /// A builder that also watches the `todos` table for references.
    pub async fn watching_builder(&self) -> AttachmentQueueBuilder<SqliteStore> {
        let pool = self.pool.clone();
        self.builder().await.watch_attachments(move || {
            watch_referenced_attachments_with(
                pool.clone(),
                REFERENCED_QUERY,
                WatchOptions {
                    poll_interval: Duration::from_millis(10),
                },
            )
        })
    }

    pub async fn add_todo(&self, todo: i64, photo: Option<&AttachmentId>) {
        sqlx::query("INSERT OR REPLACE INTO todos (id, title, photo_id) VALUES (?, 'todo', ?)")
            .bind(todo)
            .bind(photo.map(|p| p.as_str().to_owned()))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub async fn photo_of(&self, todo: i64) -> Option<String> {
        sqlx::query_scalar("SELECT photo_id FROM todos WHERE id = ?")
            .bind(todo)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .flatten()
    }

    /// Files in the local directory (not temp files).
    pub fn local_files(&self) -> Vec<String> {
        files_below(&self.local_dir())
    }
}

/// Regular files below `dir`, relative, sorted; the temp directory is left out.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != attachments_fs::TEMP_DIR {
                    pending.push(path);
                }
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

pub fn item(id: &AttachmentId) -> WatchedAttachmentItem {
    WatchedAttachmentItem::new(id.clone()).with_file_extension("jpg")
}

/// Wait until the queue's counts satisfy `done`, re-checking at every event the queue sends.
pub async fn wait_for_counts(
    queue: &SqliteAttachmentQueue,
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

/// Wait for the first event that `matches`.
pub async fn wait_for_event(
    events: &mut tokio::sync::broadcast::Receiver<AttachmentEvent>,
    what: &str,
    matches: impl Fn(&AttachmentEvent) -> bool,
) -> AttachmentEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if matches(&event) => return event,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("event stream ended while waiting for {what}: {error}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
