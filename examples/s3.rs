//! Sync attachments with an S3-compatible server.
//!
//! Reads `ATTACHMENTS_TEST_S3_ENDPOINT`, `_BUCKET`, `_ACCESS_KEY` and `_SECRET_KEY`, and
//! optionally `_REGION` (e.g. `garage` for Garage), `_CHECKSUMS` and `_PAYLOAD_SIGNING` (see
//! `S3Config::from_env`). To try it against a local SeaweedFS: run `cargo xtask s3` in one shell, export the variables it
//! prints, then `cargo run --example s3 --features s3`.

use attachments::fs::FsLocalStorage;
use attachments::s3::{S3Config, S3RemoteStorage};
use attachments::sqlite::SqliteStore;
use attachments::{
    BoxError, SaveFile, SqliteAttachmentQueue, WatchedAttachmentItem, byte_stream_from,
};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let config = S3Config::from_env("ATTACHMENTS_TEST_S3")
        .ok_or("ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY must be set (see `cargo xtask s3`)")?
        .key_prefix("example/");
    println!("remote: {config:?}");
    let remote = S3RemoteStorage::from_config(config).await?;
    remote.create_bucket_if_missing().await?;

    let dir = tempfile::tempdir()?;
    let open = |name: &str| {
        let path = dir.path().join(name);
        async move {
            std::fs::create_dir_all(&path)?;
            let options = SqliteConnectOptions::new()
                .filename(path.join("app.db"))
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(options).await?;
            Ok::<_, BoxError>((
                SqliteStore::new(pool).await?,
                FsLocalStorage::new(path.join("files"))?,
            ))
        }
    };

    let (store, local) = open("phone").await?;
    let phone = SqliteAttachmentQueue::builder(store, local, remote.clone()).build()?;
    let photo = phone
        .save_file(
            SaveFile::new(byte_stream_from(vec![
                vec![0xFF, 0xD8, 0xFF, 0xE0],
                vec![7; 100_000],
            ]))
            .file_extension("jpg"),
        )
        .await?;
    let uploaded = phone.sync_now().await?;
    println!(
        "[phone] saved and uploaded {} ({} uploads)",
        photo.id, uploaded.uploaded
    );

    let (store, local) = open("laptop").await?;
    let laptop = SqliteAttachmentQueue::builder(store, local, remote.clone()).build()?;
    laptop
        .set_referenced(vec![
            WatchedAttachmentItem::new(photo.id.clone()).with_file_extension("jpg"),
        ])
        .await?;
    let downloaded = laptop.sync_now().await?;
    println!(
        "[laptop] downloaded {} ({} downloads)",
        photo.id, downloaded.downloaded
    );

    phone.delete_file(&photo.id).await?;
    let deleted = phone.sync_now().await?;
    println!("[phone] deleted {} ({} deletes)", photo.id, deleted.deleted);
    println!("[phone] {:?}", phone.status().await?);
    println!("[laptop] {:?}", laptop.status().await?);
    phone.close().await;
    laptop.close().await;
    Ok(())
}
