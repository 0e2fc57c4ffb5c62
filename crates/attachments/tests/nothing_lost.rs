//! Regressions for the defects an independent review reproduced ("Nothing lost, for real"),
//! one test per defect, in what a user of the queue would see.

mod common;

use std::time::Duration;

use attachments::{
    AttachmentEvent, AttachmentId, AttachmentState, Error, ErrorKind, SaveFile, collect_bytes,
};
use attachments_testkit::{patterned_bytes, patterned_stream};
use common::{Device, PATIENCE, files_below, item, wait_for_event};

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len)).file_extension("jpg")
}

async fn remote_bytes(device: &Device, filename: &str) -> Vec<u8> {
    let row = attachments::Attachment::new(
        AttachmentId::new("probe").unwrap(),
        filename,
        AttachmentState::QueuedDownload,
        0,
    );
    let stream = attachments::RemoteStorage::download(device.remote.inner(), &row)
        .await
        .unwrap();
    collect_bytes(stream).await.unwrap()
}

#[tokio::test]
async fn an_upload_of_a_cleared_life_never_marks_the_next_life_synced() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let avatar = AttachmentId::new("avatar").unwrap();
    queue
        .save_file(photo(1, 500).id(avatar.clone()))
        .await
        .unwrap();

    // the first life's upload is in flight when the app logs out
    device.remote.pause();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    device.remote.wait_for_calls(1).await;
    assert_eq!(queue.clear_queue().await.unwrap(), 1);
    // the next user saves an avatar under the same id
    let second = queue
        .save_file(photo(2, 700).id(avatar.clone()))
        .await
        .unwrap();
    device.remote.resume();
    pass.await.unwrap().unwrap();

    assert_eq!(
        queue.get(&avatar).await.unwrap().unwrap().state,
        AttachmentState::QueuedUpload,
        "nothing of the first life may mark the second one synced"
    );
    assert_eq!(queue.sync_now().await.unwrap().uploaded, 1);
    assert_eq!(
        remote_bytes(&device, &second.filename).await,
        patterned_bytes(2, 700)
    );
}

#[tokio::test]
async fn a_second_queue_on_the_same_database_and_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let first = device.builder().await.build().unwrap();
    let saved = first.save_file(photo(1, 100)).await.unwrap();

    let second = device.builder().await.build();
    let error = second.expect_err("a second queue is refused while the first runs");
    assert_eq!(error.kind(), ErrorKind::InUse);
    assert!(!error.is_retryable());

    // the first queue's saved file is untouched, and once it is closed another may start
    first.close().await;
    let next = device.builder().await.build().unwrap();
    assert_eq!(next.sync_now().await.unwrap().uploaded, 1);
    let row = next.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
}

#[tokio::test]
async fn a_reference_to_a_file_name_another_attachment_uses_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let mut events = queue.subscribe();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.set_referenced(vec![item(&saved.id)]).await.unwrap();
    queue.sync_now().await.unwrap();

    // another device's item names the same file
    let intruder = AttachmentId::new("intruder").unwrap();
    let items = vec![
        item(&saved.id),
        attachments::WatchedAttachmentItem::new(intruder.clone()).with_filename(&saved.filename),
    ];
    queue.set_referenced(items).await.unwrap();
    let event = wait_for_event(
        &mut events,
        "the refusal",
        |event| matches!(event, AttachmentEvent::Error { id: Some(id), .. } if *id == intruder),
    )
    .await;
    let AttachmentEvent::Error { error, .. } = event else {
        unreachable!()
    };
    assert_eq!(error.kind(), ErrorKind::AlreadyExists);
    assert!(queue.get(&intruder).await.unwrap().is_none());

    // and the saved attachment keeps its file
    queue.sync_now().await.unwrap();
    let bytes = collect_bytes(queue.read_file(&saved.id).await.unwrap())
        .await
        .unwrap();
    assert_eq!(bytes, patterned_bytes(1, 100));
}

#[tokio::test]
async fn a_delete_that_failed_for_good_stays_until_retried() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .archived_cache_limit(0)
        .build()
        .unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.sync_now().await.unwrap();

    // the token expired for good: the delete is archived
    device.remote.fail_next(
        1,
        Error::new(ErrorKind::PermissionDenied, "token revoked").with_retryable(false),
    );
    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().archived, 1);
    // a cache with no room evicts archived rows, but not this one
    queue.expire_cache().await.unwrap();
    let row = queue.get(&saved.id).await.unwrap().expect("still there");
    assert_eq!(row.failed_state, Some(AttachmentState::QueuedDelete));

    queue.retry(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    assert!(queue.get(&saved.id).await.unwrap().is_none());
    assert!(
        files_below(&dir.path().join("remote")).is_empty(),
        "the remote object is gone"
    );
}

#[tokio::test]
async fn the_apps_own_files_beside_the_attachments_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let local = device.local_dir();
    std::fs::create_dir_all(local.join("settings")).unwrap();
    std::fs::write(local.join("notes.txt"), b"mine").unwrap();
    std::fs::write(local.join("settings").join("prefs.json"), b"{}").unwrap();

    let queue = device.builder().await.build().unwrap();
    queue.start_sync().await.unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.close().await;
    // a restart runs start-up verification again
    let restarted = device.builder().await.build().unwrap();
    restarted.sync_now().await.unwrap();
    restarted.clear_queue().await.unwrap();

    assert_eq!(std::fs::read(local.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read(local.join("settings").join("prefs.json")).unwrap(),
        b"{}"
    );
    assert!(
        !local.join(&saved.filename).exists(),
        "the queue's own file is gone"
    );
}

#[tokio::test]
async fn an_odd_file_in_the_local_root_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let local = device.local_dir();
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("scan\\2024.pdf"), b"a name no path may have").unwrap();

    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().uploaded, 1);
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
    assert!(local.join("scan\\2024.pdf").exists());
}

#[tokio::test]
async fn a_download_outrun_by_a_delete_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let author = Device::new(&dir.path().join("author"), &dir.path().join("remote")).await;
    let reader = Device::new(&dir.path().join("reader"), &dir.path().join("remote")).await;
    let author_queue = author.builder().await.build().unwrap();
    let reader_queue = reader.builder().await.build().unwrap();
    let shared = author_queue.save_file(photo(1, 300)).await.unwrap();
    author_queue.sync_now().await.unwrap();

    // the reader's download is in flight when the app deletes the attachment
    reader_queue
        .set_referenced(vec![item(&shared.id)])
        .await
        .unwrap();
    reader.remote.pause();
    let pass = tokio::spawn({
        let queue = reader_queue.clone();
        async move { queue.sync_now().await }
    });
    reader.remote.wait_for_calls(1).await;
    reader_queue.delete_file(&shared.id).await.unwrap();
    reader.remote.resume();
    let summary = pass.await.unwrap().unwrap();
    assert_eq!(
        summary.discarded, 1,
        "the download's outcome lost to the delete"
    );
    reader_queue.sync_now().await.unwrap();

    assert!(reader_queue.get(&shared.id).await.unwrap().is_none());
    assert_eq!(
        files_below(&reader.local_dir()),
        Vec::<String>::new(),
        "nothing of the download is left"
    );
    let hidden = reader.local_dir().join(attachments::fs::TEMP_DIR);
    assert!(
        files_below(&hidden)
            .iter()
            .all(|file| file.ends_with("lock")),
        "no staged or temporary file left: {:?}",
        files_below(&hidden)
    );
}

#[tokio::test]
async fn a_download_larger_than_the_limit_is_refused_as_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    let author = Device::new(&dir.path().join("author"), &dir.path().join("remote")).await;
    let reader = Device::new(&dir.path().join("reader"), &dir.path().join("remote")).await;
    let author_queue = author.builder().await.build().unwrap();
    let reader_queue = reader
        .builder()
        .await
        .max_download_bytes(1_000)
        .build()
        .unwrap();
    let big = author_queue.save_file(photo(1, 5_000)).await.unwrap();
    author_queue.sync_now().await.unwrap();

    reader_queue
        .set_referenced(vec![item(&big.id)])
        .await
        .unwrap();
    let summary = reader_queue.sync_now().await.unwrap();
    assert_eq!(summary.archived, 1);
    let row = reader_queue.get(&big.id).await.unwrap().unwrap();
    assert!(
        row.last_error.unwrap().contains("max_download_bytes"),
        "the reason is recorded"
    );
    assert!(files_below(&reader.local_dir()).is_empty());
}

#[tokio::test]
async fn a_retry_after_a_full_disk_succeeds_once_space_is_back() {
    // a full disk is temporary: the default handler backs off instead of archiving
    let dir = tempfile::tempdir().unwrap();
    let author = Device::new(&dir.path().join("author"), &dir.path().join("remote")).await;
    let reader = Device::new(&dir.path().join("reader"), &dir.path().join("remote")).await;
    let author_queue = author.builder().await.build().unwrap();
    let shared = author_queue.save_file(photo(1, 300)).await.unwrap();
    author_queue.sync_now().await.unwrap();
    let reader_queue = reader
        .builder()
        .await
        .retry(attachments::RetryPolicy {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            ..attachments::RetryPolicy::default()
        })
        .build()
        .unwrap();
    reader
        .remote
        .fail_next(1, Error::from(std::io::Error::from_raw_os_error(28)));
    reader_queue
        .set_referenced(vec![item(&shared.id)])
        .await
        .unwrap();
    assert_eq!(reader_queue.sync_now().await.unwrap().retrying, 1);
    let downloaded = tokio::time::timeout(PATIENCE, reader_queue.sync_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(downloaded.downloaded, 1);
}
