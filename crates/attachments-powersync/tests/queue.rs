//! The queue's scenarios that depend on its store, on `PowerSyncStore`: a real PowerSync
//! database file (offline), a local directory and a directory as the remote. Each promise is
//! the one the facade's tests check on `SqliteStore`.

mod common;

use std::sync::atomic::Ordering;

use attachments_core::{
    AttachmentState, Error, ErrorKind, ReferencedAttachments, SaveFile, WatchedAttachmentItem,
};
use attachments_testkit::{patterned_bytes, patterned_stream};
use common::App;

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len))
        .media_type("image/jpeg")
        .file_extension("jpg")
}

fn app(dir: &tempfile::TempDir) -> App {
    App::new(&dir.path().join("a"), &dir.path().join("remote"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_saved_files() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();

    let saved = queue.save_file(photo(1, 300_000)).await.unwrap();
    assert_eq!(saved.state, AttachmentState::QueuedUpload);
    assert_eq!(saved.size, Some(300_000));

    assert_eq!(queue.sync_now().await.unwrap().uploaded, 1);
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
    assert!(row.has_synced);
    let remote_copy = std::fs::read(app.remote_dir.join(&saved.filename)).unwrap();
    assert_eq!(remote_copy, patterned_bytes(1, 300_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_remote_local_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let saved = queue.save_file(photo(5, 100)).await.unwrap();
    queue.sync_now().await.unwrap();

    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    assert!(
        queue.get(&saved.id).await.unwrap().is_none(),
        "the row is gone"
    );
    assert!(!app.remote_dir.join(&saved.filename).exists());
    assert!(app.local_files().is_empty());

    let error = queue.delete_file(&saved.id).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_an_upload_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 50_000)).await.unwrap();

    app.remote.pause();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    app.remote.wait_for_calls(1).await; // the upload is in flight
    queue.delete_file(&saved.id).await.unwrap();
    app.remote.resume();
    assert_eq!(pass.await.unwrap().unwrap().discarded, 1);
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedDelete,
        "the delete survives the upload that finished after it"
    );
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    assert!(!app.remote_dir.join(&saved.filename).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_backs_off_without_rewriting_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    app.remote
        .fail_next(1000, Error::new(ErrorKind::Unavailable, "503 slow down"));

    assert_eq!(queue.sync_now().await.unwrap().retrying, 1);
    let failed = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(failed.attempts, 1);
    assert!(failed.next_attempt_at.is_some());

    // passes during the backoff neither call the remote nor write the row
    for _ in 0..5 {
        queue.sync_now().await.unwrap();
    }
    assert_eq!(app.remote.calls().uploads.load(Ordering::SeqCst), 1);
    let unchanged = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(unchanged.version, failed.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_an_id_that_exists_is_refused_and_keeps_the_first_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let first = queue.save_file(photo(1, 1000)).await.unwrap();

    let again = queue
        .save_file(photo(2, 2000).id(first.id.clone()))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    assert_eq!(queue.get(&first.id).await.unwrap().unwrap(), first);
    let file = std::fs::read(app.local_dir().join(&first.filename)).unwrap();
    assert_eq!(file, patterned_bytes(1, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_queue_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let first = app.builder().await.build().unwrap();
    let saved = first.save_file(photo(1, 100)).await.unwrap();

    let error = app
        .builder()
        .await
        .build()
        .expect_err("a second queue is refused");
    assert_eq!(error.kind(), ErrorKind::InUse);
    assert!(!error.is_retryable());

    first.close().await;
    let next = app.builder().await.build().unwrap();
    assert_eq!(next.sync_now().await.unwrap().uploaded, 1);
    assert_eq!(
        next.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_deleted_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let saved = queue.save_file(photo(4, 5000)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.close().await;

    // someone removes the local file while the app is not running
    std::fs::remove_file(app.local_dir().join(&saved.filename)).unwrap();

    let restarted = app.builder().await.build().unwrap();
    assert_eq!(restarted.sync_now().await.unwrap().downloaded, 1);
    let local = std::fs::read(app.local_dir().join(&saved.filename)).unwrap();
    assert_eq!(local, patterned_bytes(4, 5000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reading_taken_before_a_delete_does_not_bring_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    let item = WatchedAttachmentItem::new(saved.id.clone()).with_file_extension("jpg");
    queue.set_referenced(vec![item.clone()]).await.unwrap();
    queue.sync_now().await.unwrap();

    let read_before_the_delete = std::time::Instant::now();
    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    queue
        .set_referenced(ReferencedAttachments::new(
            vec![item],
            read_before_the_delete,
        ))
        .await
        .unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.downloaded + summary.archived, 0);
    assert!(queue.get(&saved.id).await.unwrap().is_none());
    assert_eq!(app.remote.calls().downloads.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_deleted_and_saved_again_is_uploaded_as_its_new_life() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    let first = queue.save_file(photo(1, 500)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.delete_file(&first.id).await.unwrap();
    queue.sync_now().await.unwrap();

    let second = queue
        .save_file(photo(2, 700).id(first.id.clone()))
        .await
        .unwrap();
    assert!(second.version > first.version, "a version never repeats");
    assert_eq!(queue.sync_now().await.unwrap().uploaded, 1);
    let remote_copy = std::fs::read(app.remote_dir.join(&second.filename)).unwrap();
    assert_eq!(remote_copy, patterned_bytes(2, 700));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_queue_removes_every_row_and_close_refuses_later_calls() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let queue = app.builder().await.build().unwrap();
    queue.save_file(photo(1, 100)).await.unwrap();
    queue.save_file(photo(2, 100)).await.unwrap();
    assert_eq!(queue.clear_queue().await.unwrap(), 2);
    assert_eq!(queue.status().await.unwrap().total(), 0);

    queue.close().await;
    let error = queue.save_file(photo(3, 100)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
}
