//! The queue's scenarios with S3 as the remote: upload, download on a second device, delete,
//! and a restart after a crash. Each runs against the in-process s3s-fs server, and against the
//! external server when one is configured.

mod common;

use std::path::Path;

use attachments_core::{AttachmentQueue, AttachmentState, SaveFile, WatchedAttachmentItem};
use attachments_fs::FsLocalStorage;
use attachments_s3::{S3Config, S3RemoteStorage};
use attachments_sqlite::SqliteStore;
use attachments_testkit::{patterned_bytes, patterned_stream};
use common::{InProcessS3, external_config, small_parts, storage_for};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

type Queue = AttachmentQueue<SqliteStore>;

/// A size uploaded by one streamed `PutObject`: above 1 MiB, below the 5 MiB threshold.
const STREAMED: u64 = 3 * 1024 * 1024 + 1;

async fn device(dir: &Path, remote: S3RemoteStorage) -> Queue {
    std::fs::create_dir_all(dir).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.join("app.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    AttachmentQueue::builder(
        SqliteStore::new(pool).await.unwrap(),
        FsLocalStorage::new(dir.join("files")).unwrap(),
        remote,
    )
    .build()
    .unwrap()
}

async fn scenarios(config: S3Config, dir: &Path) {
    let prefix = format!("queue-{}/", attachments_core::AttachmentId::generate());
    let config = config.key_prefix(prefix).multipart(small_parts());
    let phone = device(&dir.join("phone"), storage_for(config.clone()).await).await;
    let tablet = device(&dir.join("tablet"), storage_for(config.clone()).await).await;

    // upload a size on every path: from memory (up to 1 MiB), streamed (above 1 MiB, below
    // the threshold, 5 MiB here) and in parts
    let small = phone
        .save_file(SaveFile::new(patterned_stream(1, 1000)).file_extension("jpg"))
        .await
        .unwrap();
    let medium = phone
        .save_file(SaveFile::new(patterned_stream(4, STREAMED)).file_extension("pdf"))
        .await
        .unwrap();
    let big = phone
        .save_file(SaveFile::new(patterned_stream(2, 11 << 20)).file_extension("mp4"))
        .await
        .unwrap();
    assert_eq!(phone.sync_now().await.unwrap().uploaded, 3);

    // download on a second device
    let referenced = vec![
        WatchedAttachmentItem::new(small.id.clone()).with_file_extension("jpg"),
        WatchedAttachmentItem::new(medium.id.clone()).with_file_extension("pdf"),
        WatchedAttachmentItem::new(big.id.clone()).with_file_extension("mp4"),
    ];
    tablet.set_referenced(referenced).await.unwrap();
    assert_eq!(tablet.sync_now().await.unwrap().downloaded, 3);
    let local = std::fs::read(dir.join("tablet/files").join(&medium.filename)).unwrap();
    assert!(
        local == patterned_bytes(4, STREAMED),
        "the tablet has the phone's streamed file"
    );
    let local = std::fs::read(dir.join("tablet/files").join(&big.filename)).unwrap();
    assert!(
        local == patterned_bytes(2, 11 << 20),
        "the tablet has the phone's bytes"
    );
    assert_eq!(
        tablet.get(&big.id).await.unwrap().unwrap().checksum,
        big.checksum
    );

    // delete on the phone: gone from the remote, so the tablet can no longer fetch it
    phone.delete_file(&small.id).await.unwrap();
    assert_eq!(phone.sync_now().await.unwrap().deleted, 1);
    let remote = storage_for(config.clone()).await;
    let gone = attachments_core::RemoteStorage::download(&remote, &small)
        .await
        .err()
        .unwrap();
    assert_eq!(gone.kind(), attachments_core::ErrorKind::NotFound);

    // crash and restart: a save whose upload never ran is uploaded by the next process
    let pending = phone
        .save_file(SaveFile::new(patterned_stream(3, 500)).file_extension("jpg"))
        .await
        .unwrap();
    drop(phone); // no stop, no close
    let restarted = device(&dir.join("phone"), storage_for(config.clone()).await).await;
    assert_eq!(restarted.sync_now().await.unwrap().uploaded, 1);
    assert_eq!(
        restarted.get(&pending.id).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
    let back = attachments_core::collect_bytes(
        attachments_core::RemoteStorage::download(&remote, &pending)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(back, patterned_bytes(3, 500));
}

#[tokio::test]
async fn queue_scenarios_on_in_process_s3() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcessS3::start(&dir.path().join("s3")).await;
    scenarios(server.config("queue"), dir.path()).await;
}

#[tokio::test]
async fn queue_scenarios_on_the_external_server() {
    let Some(config) = external_config() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    scenarios(config, dir.path()).await;
}
