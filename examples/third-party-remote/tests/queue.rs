//! The flat directory used by real queues: one device saves a photo, another downloads it.

mod memory_store;

use std::time::Duration;

use attachments_core::{
    AttachmentId, AttachmentQueue, AttachmentState, SaveFile, WatchedAttachmentItem,
    byte_stream_from, collect_bytes,
};
use attachments_testkit::{MemoryLocalStorage, store_suite};
use memory_store::MemoryStore;
use third_party_remote::FlatDirRemoteStorage;

#[tokio::test]
async fn the_memory_store_of_these_tests_keeps_the_store_contract() {
    store_suite(&MemoryStore::default()).await;
}

#[tokio::test]
async fn two_devices_share_a_photo_through_the_flat_directory() {
    let shared = tempfile::tempdir().unwrap();
    let device = || {
        AttachmentQueue::builder(
            MemoryStore::default(),
            MemoryLocalStorage::default(),
            FlatDirRemoteStorage::new(shared.path()).unwrap(),
        )
        .sync_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
    };
    let phone = device();
    let laptop = device();

    let photo = phone
        .save_file(
            SaveFile::new(byte_stream_from(vec![b"jpeg bytes".to_vec()]))
                .id(AttachmentId::new("Cat-1").unwrap())
                .file_extension("jpg"),
        )
        .await
        .unwrap();
    phone.sync_now().await.unwrap();
    let uploaded = phone.get(&photo.id).await.unwrap().unwrap();
    assert_eq!(uploaded.state, AttachmentState::Synced);
    let file_name = FlatDirRemoteStorage::file_name_for(&photo.filename).unwrap();
    assert_eq!(
        std::fs::read(shared.path().join(&file_name)).unwrap(),
        b"jpeg bytes",
        "the object is one file, named {file_name}"
    );

    // the laptop learns from the app's synced data that a todo references the photo
    laptop
        .set_referenced(vec![
            WatchedAttachmentItem::new(photo.id.clone()).with_file_extension("jpg"),
        ])
        .await
        .unwrap();
    laptop.sync_now().await.unwrap();
    let downloaded = laptop.get(&photo.id).await.unwrap().unwrap();
    assert_eq!(downloaded.state, AttachmentState::Synced);
    let contents = collect_bytes(laptop.read_file(&photo.id).await.unwrap())
        .await
        .unwrap();
    assert_eq!(contents, b"jpeg bytes");

    // deleting on the phone removes the object for everyone
    phone.delete_file(&photo.id).await.unwrap();
    phone.sync_now().await.unwrap();
    assert!(phone.get(&photo.id).await.unwrap().is_none());
    assert!(!shared.path().join(&file_name).exists());

    phone.close().await;
    laptop.close().await;
}
