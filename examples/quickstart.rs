//! Quickstart: two devices sync photos attached to todos through a shared remote directory.
//!
//! Run with `cargo run --example quickstart`. Everything lives in a fresh temporary directory
//! that is removed at the end; nothing is left running.

use std::path::Path;
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::sqlite::{SqliteStore, watch_referenced_attachments};
use attachments::{
    AttachmentId, BoxError, SaveFile, SqliteAttachmentQueue, StateCounts, byte_stream_from,
};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// The app's query for "which attachments do my rows reference".
const REFERENCED: &str =
    "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL";

/// One device: its own SQLite file and local directory, the shared remote directory.
struct Device {
    name: &'static str,
    pool: SqlitePool,
    queue: SqliteAttachmentQueue,
}

impl Device {
    async fn open(name: &'static str, root: &Path, remote: &Path) -> Result<Device, BoxError> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join("app.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new().connect_with(options).await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, photo_id TEXT)")
            .execute(&pool)
            .await?;

        let watch_pool = pool.clone();
        let queue = SqliteAttachmentQueue::builder(
            SqliteStore::new(pool.clone()).await?,
            FsLocalStorage::new(dir.join("attachments"))?,
            FsRemoteStorage::new(remote)?,
        )
        .sync_interval(Duration::from_secs(5))
        .sync_throttle(Duration::from_millis(50))
        .watch_attachments(move || watch_referenced_attachments(watch_pool.clone(), REFERENCED))
        .build()?;
        queue.start_sync().await?;
        Ok(Device { name, pool, queue })
    }

    /// Save a photo and point a new todo at it, in one transaction.
    async fn add_todo_with_photo(
        &self,
        todo: i64,
        title: &str,
        jpeg: Vec<u8>,
    ) -> Result<AttachmentId, BoxError> {
        let title = title.to_owned();
        let photo = self
            .queue
            .save_file_with_hook(
                SaveFile::new(byte_stream_from(vec![jpeg]))
                    .media_type("image/jpeg")
                    .file_extension("jpg"),
                move |connection, attachment| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO todos (id, title, photo_id) VALUES (?, ?, ?)")
                            .bind(todo)
                            .bind(title)
                            .bind(attachment.id.as_str())
                            .execute(&mut *connection)
                            .await?;
                        Ok(())
                    })
                },
            )
            .await?;
        println!(
            "[{}] saved todo {todo} with photo {} ({} bytes)",
            self.name,
            photo.id,
            photo.size.unwrap_or(0)
        );
        Ok(photo.id)
    }

    /// Wait until the counts satisfy `done`, waking at every queue event.
    async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&StateCounts) -> bool,
    ) -> Result<StateCounts, BoxError> {
        let mut events = self.queue.subscribe();
        let wait = async {
            loop {
                let counts = self.queue.status().await?;
                if done(&counts) {
                    return Ok::<_, BoxError>(counts);
                }
                let _ = events.recv().await;
            }
        };
        let counts = tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .map_err(|_| format!("[{}] timed out waiting for {what}", self.name))??;
        println!("[{}] {what}: {}", self.name, describe(&counts));
        Ok(counts)
    }
}

fn describe(counts: &StateCounts) -> String {
    format!(
        "synced={} queued_upload={} queued_download={} queued_delete={} archived={}",
        counts.synced,
        counts.queued_upload,
        counts.queued_download,
        counts.queued_delete,
        counts.archived
    )
}

/// A small fake JPEG: the real magic bytes and some content.
fn fake_jpeg(seed: i64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..len as i64).map(|i| (i * 31 + seed).rem_euclid(256).to_le_bytes()[0]));
    bytes
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let root = tempfile::tempdir()?;
    let remote = root.path().join("remote");
    println!("working in {}", root.path().display());

    let phone = Device::open("phone", root.path(), &remote).await?;
    let laptop = Device::open("laptop", root.path(), &remote).await?;

    // 1. The phone takes three photos, each attached to a todo.
    let mut photos = Vec::new();
    for (todo, title) in [(1, "buy milk"), (2, "fix bike"), (3, "call mum")] {
        photos.push(
            phone
                .add_todo_with_photo(todo, title, fake_jpeg(todo, 40_000))
                .await?,
        );
    }
    phone.wait_for("phone uploaded", |c| c.synced == 3).await?;

    // 2. The todos reach the laptop (here copied by hand; in an app, through its sync engine).
    //    The laptop's watched query sees the new references and downloads the photos.
    for (todo, photo) in (1..).zip(&photos) {
        sqlx::query("INSERT INTO todos (id, title, photo_id) VALUES (?, 'synced todo', ?)")
            .bind(todo)
            .bind(photo.as_str())
            .execute(&laptop.pool)
            .await?;
    }
    laptop
        .wait_for("laptop downloaded", |c| c.synced == 3)
        .await?;
    let first = attachments::collect_bytes(laptop.queue.read_file(&photos[0]).await?).await?;
    assert_eq!(
        first,
        fake_jpeg(1, 40_000),
        "the laptop has the phone's bytes"
    );
    println!("[laptop] photo {} matches the phone's bytes", photos[0]);

    // 3. The phone deletes the second photo (and clears it from its todo, in one transaction).
    phone
        .queue
        .delete_file_with_hook(&photos[1], |connection, attachment| {
            Box::pin(async move {
                sqlx::query("UPDATE todos SET photo_id = NULL WHERE photo_id = ?")
                    .bind(attachment.id.as_str())
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await?;
    println!("[phone] deleted photo {}", photos[1]);
    phone
        .wait_for("phone deleted", |c| c.total() == 2 && c.synced == 2)
        .await?;
    assert!(!remote.join(format!("{}.jpg", photos[1])).exists());

    // 4. The laptop learns the todo lost its photo: the attachment is archived (kept as cache).
    sqlx::query("UPDATE todos SET photo_id = NULL WHERE photo_id = ?")
        .bind(photos[1].as_str())
        .execute(&laptop.pool)
        .await?;
    laptop
        .wait_for("laptop archived", |c| c.archived == 1)
        .await?;

    for device in [&phone, &laptop] {
        let counts = device.queue.status().await?;
        println!("[{}] final state: {}", device.name, describe(&counts));
        device.queue.close().await;
    }
    println!("done");
    Ok(())
}
