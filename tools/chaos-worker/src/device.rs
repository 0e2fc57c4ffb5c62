//! One device: its database, its local root, the shared remote, and a queue on them.
//!
//! The author device references each attachment it saves in its `items` table (the app's
//! own data, written by the save's hook). A second device, the reader, learns its references
//! from that same table, as if the app's data had synced to it, and downloads them: it may
//! learn of an attachment before the author has uploaded it, as a synced app does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::s3::{MultipartSettings, S3Config, S3RemoteStorage};
use attachments::sqlite::{SqliteStore, WatchOptions, watch_referenced_attachments_with};
use attachments::{
    AttachmentQueueBuilder, BoxError, RemoteStorage, RetryPolicy, SqliteAttachmentQueue,
};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::content::MULTIPART_THRESHOLD;

/// The files an app keeps in the same directory as the queue's files: the queue must never
/// delete them (`notes.txt` in the root, one in a directory of the app's own).
pub(crate) const APP_FILES: [(&str, &str); 2] = [
    ("notes.txt", "the user's notes, not an attachment\n"),
    ("settings/prefs.json", "{\"theme\":\"dark\"}\n"),
];

/// The remote all devices share.
pub(crate) enum Remote {
    Directory(PathBuf),
    S3 { prefix: String },
}

impl Remote {
    pub(crate) async fn open(&self) -> Result<OpenRemote, BoxError> {
        match self {
            Remote::Directory(dir) => Ok(OpenRemote::Directory(
                dir.clone(),
                Arc::new(FsRemoteStorage::new(dir)?),
            )),
            Remote::S3 { prefix } => {
                let config = S3Config::from_env("ATTACHMENTS_TEST_S3").ok_or(
                    "ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY must be set",
                )?;
                // a low threshold puts files of 6 MiB and more on the multipart path, so a run
                // of a few seconds kills uploads in every path; 5 MiB is S3's smallest part
                let config = config
                    .key_prefix(prefix.clone())
                    .multipart(MultipartSettings {
                        threshold: MULTIPART_THRESHOLD,
                        part_size: attachments::s3::MIN_PART_SIZE,
                        part_concurrency: 2,
                    });
                let storage = Arc::new(S3RemoteStorage::from_config(config).await?);
                storage.create_bucket_if_missing().await?;
                Ok(OpenRemote::S3 {
                    prefix: prefix.clone(),
                    storage,
                })
            }
        }
    }
}

/// A remote, with what the verifier needs to list it.
pub(crate) enum OpenRemote {
    Directory(PathBuf, Arc<FsRemoteStorage>),
    S3 {
        prefix: String,
        storage: Arc<S3RemoteStorage>,
    },
}

impl OpenRemote {
    pub(crate) fn storage(&self) -> Arc<dyn RemoteStorage> {
        match self {
            OpenRemote::Directory(_, storage) => storage.clone(),
            OpenRemote::S3 { storage, .. } => storage.clone(),
        }
    }
}

/// The app's database of a device, with the app's own table. Both devices open the author's
/// database at start, while the author may be migrating it: a `database is locked` that
/// SQLite's busy handler does not wait out (a deferred transaction that must upgrade) is tried
/// again, a bounded number of times, as an app's start-up would.
pub(crate) async fn app_database(dir: &Path) -> Result<SqlitePool, BoxError> {
    let mut tries = 0;
    loop {
        match open_app_database(dir).await {
            Err(error) if tries < 50 && error.to_string().contains("database is locked") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result,
        }
    }
}

async fn open_app_database(dir: &Path) -> Result<SqlitePool, BoxError> {
    std::fs::create_dir_all(dir)?;
    let options = SqliteConnectOptions::new()
        .filename(dir.join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().connect_with(options).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY NOT NULL)")
        .execute(&pool)
        .await?;
    Ok(pool)
}

/// The local root of a device.
pub(crate) fn files_dir(dir: &Path) -> PathBuf {
    dir.join("files")
}

/// Write the app's own files into a device's local root (before any worker runs).
pub(crate) fn prepare(dir: &Path) -> Result<(), BoxError> {
    for (path, contents) in APP_FILES {
        let path = files_dir(dir).join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
    }
    Ok(())
}

/// A queue on a device. `references` is the database whose `items` table says what the
/// device references: its own for the author, the author's for the reader.
pub(crate) async fn open_queue(
    dir: &Path,
    references: SqlitePool,
    remote: Arc<dyn RemoteStorage>,
) -> Result<(SqlitePool, SqliteAttachmentQueue), BoxError> {
    let pool = app_database(dir).await?;
    let mut tries = 0;
    let store = loop {
        // the store's migrations meet the other device's start-up the same way
        match SqliteStore::new(pool.clone()).await {
            Err(error) if tries < 50 && error.to_string().contains("database is locked") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => break result?,
        }
    };
    let builder =
        SqliteAttachmentQueue::builder(store, FsLocalStorage::new(files_dir(dir))?, remote)
            .sync_throttle(Duration::from_millis(10))
            .max_concurrency(4)
            // a small cache, so that eviction runs under the kills too
            .archived_cache_limit(5)
            .retry(RetryPolicy {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                ..RetryPolicy::default()
            })
            .watch_attachments(move || {
                watch_referenced_attachments_with(
                    references.clone(),
                    "SELECT id, 'bin' AS file_extension FROM items",
                    WatchOptions {
                        poll_interval: Duration::from_millis(20),
                    },
                )
            });
    Ok((pool, build(builder)?))
}

/// `build` is about to validate its settings and lock the store and the root (a second queue
/// on them is refused): its errors go through here.
fn build(builder: AttachmentQueueBuilder<SqliteStore>) -> Result<SqliteAttachmentQueue, BoxError> {
    Ok(builder.build()?)
}
