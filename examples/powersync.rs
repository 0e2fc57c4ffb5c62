//! Attachments in a PowerSync app, offline: `cargo run --example powersync --features powersync`.
//!
//! A PowerSync schema with a synced `todos` table holding `photo_id`. The phone saves a photo
//! with an update hook that sets `todos.photo_id` in the same transaction as the attachment row,
//! so the reference waits in PowerSync's upload queue (`ps_crud`) for the backend. The tablet,
//! whose `todos` row arrives through PowerSync (here: written on its database, since no
//! PowerSync service is reachable), sees the reference through PowerSync's table-update
//! notifications and downloads the photo. A delete clears the reference the same way.
//!
//! Both share a directory as the remote storage; a real app uses S3 or Supabase Storage.

use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::powersync::powersync::PowerSyncDatabase;
use attachments::powersync::powersync::schema::{Column, Schema, Table};
use attachments::powersync::rusqlite::Connection;
use attachments::powersync::{
    PowerSyncStore, open_offline, sync_when_connected, watch_referenced_attachments,
};
use attachments::{
    Attachment, AttachmentEvent, AttachmentState, BoxError, PowerSyncAttachmentQueue, SaveFile,
    byte_stream_from,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

/// The app's PowerSync schema: `todos` is synced; the attachment table is the store's own
/// local table and is not part of it.
fn schema() -> Schema {
    let mut schema = Schema::default();
    schema.tables.push(Table::create(
        "todos",
        vec![Column::text("description"), Column::text("photo_id")],
        |_| {},
    ));
    schema
}

/// Which attachments the app references: PowerSync re-runs it after every commit to `todos`.
const REFERENCED: &str =
    "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos WHERE photo_id IS NOT NULL";

/// The update hook: runs on PowerSync's writer inside the transaction that writes the
/// attachment row. `RETURNING` tells a missing todo apart (a PowerSync view reports 0 rows
/// changed even when it changed one).
fn attach_to_todo_1(
    connection: &mut Connection,
    photo: Attachment,
) -> BoxFuture<'_, Result<(), BoxError>> {
    Box::pin(async move {
        connection.query_row(
            "UPDATE todos SET photo_id = ?1 WHERE id = 'todo-1' RETURNING id",
            [photo.id.as_str()],
            |_| Ok(()),
        )?;
        Ok(())
    })
}

async fn device(
    dir: &std::path::Path,
    name: &str,
    remote: &std::path::Path,
) -> Result<(PowerSyncDatabase, PowerSyncAttachmentQueue), BoxError> {
    let path = dir.join(name);
    std::fs::create_dir_all(&path)?;
    let db = open_offline(path.join("app.db"), schema())?;
    let watched = db.clone();
    let queue = PowerSyncAttachmentQueue::builder(
        PowerSyncStore::new(db.clone()).await?,
        FsLocalStorage::new(path.join("files"))?,
        FsRemoteStorage::new(remote)?,
    )
    .watch_attachments(move || watch_referenced_attachments(watched.clone(), REFERENCED))
    .build()?;
    queue.start_sync().await?;
    // A pass whenever PowerSync connects, since uploads can succeed again then (offline here,
    // so it never fires; a real app aborts the task when it closes the database).
    let connected = queue.clone();
    tokio::spawn(sync_when_connected(db.clone(), move || {
        connected.trigger_sync()
    }));
    Ok((db, queue))
}

/// What a backend connector would upload next: PowerSync's pending transactions.
async fn pending_uploads(db: &PowerSyncDatabase) -> Result<Vec<String>, BoxError> {
    let mut transactions = std::pin::pin!(db.crud_transactions());
    let mut entries = Vec::new();
    while let Some(transaction) = transactions.next().await {
        for entry in transaction?.crud {
            let data = serde_json::Value::from(entry.data.unwrap_or_default());
            entries.push(format!("{} {} {data}", entry.table, entry.id));
        }
    }
    Ok(entries)
}

/// Wait for the end of a sync pass after which `done` holds for the queue's counts. `events`
/// was subscribed before the change the pass acts on; a pass ends only after its files are in
/// place, so the contents can be read at once.
async fn wait_for(
    queue: &PowerSyncAttachmentQueue,
    events: &mut tokio::sync::broadcast::Receiver<AttachmentEvent>,
    done: impl Fn(&attachments::StateCounts) -> bool,
) -> Result<(), BoxError> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(AttachmentEvent::PassCompleted(_)) = events.recv().await
                && done(&queue.status().await?)
            {
                return Ok::<_, BoxError>(());
            }
        }
    })
    .await?
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let remote = dir.path().join("remote");

    let (phone_db, phone) = device(dir.path(), "phone", &remote).await?;
    phone_db.writer().await?.execute(
        "INSERT INTO todos (id, description) VALUES ('todo-1', 'fix the bike')",
        [],
    )?;

    let mut phone_events = phone.subscribe();
    let photo = phone
        .save_file_with_hook(
            SaveFile::new(byte_stream_from([b"a photo of the bike".to_vec()]))
                .file_extension("jpg")
                .media_type("image/jpeg"),
            attach_to_todo_1,
        )
        .await?;
    println!("phone saved {} as {}", photo.id, photo.filename);
    for entry in pending_uploads(&phone_db).await? {
        println!("phone ps_crud: {entry}");
    }
    wait_for(&phone, &mut phone_events, |c| c.synced == 1).await?;
    println!("phone uploaded {}", photo.filename);

    // The tablet receives todo-1 through PowerSync; offline, we write it there ourselves.
    let (tablet_db, tablet) = device(dir.path(), "tablet", &remote).await?;
    let mut tablet_events = tablet.subscribe();
    tablet_db.writer().await?.execute(
        "INSERT INTO todos (id, description, photo_id) VALUES ('todo-1', 'fix the bike', ?1)",
        [photo.id.as_str()],
    )?;
    wait_for(&tablet, &mut tablet_events, |c| c.synced == 1).await?;
    let contents = attachments::collect_bytes(tablet.read_file(&photo.id).await?).await?;
    println!(
        "tablet downloaded {} ({} bytes)",
        photo.filename,
        contents.len()
    );

    // Deleting clears the reference in the same transaction; the backend learns of it too.
    phone
        .delete_file_with_hook(&photo.id, |connection, _| {
            Box::pin(async move {
                connection.execute("UPDATE todos SET photo_id = NULL WHERE id = 'todo-1'", [])?;
                Ok(())
            })
        })
        .await?;
    wait_for(&phone, &mut phone_events, |c| c.total() == 0).await?;
    println!(
        "phone deleted {}; ps_crud now ends with: {}",
        photo.id,
        pending_uploads(&phone_db)
            .await?
            .last()
            .cloned()
            .unwrap_or_default()
    );
    assert_eq!(
        phone.get(&photo.id).await?.map(|row| row.state),
        None::<AttachmentState>
    );

    phone.close().await;
    tablet.close().await;
    Ok(())
}
