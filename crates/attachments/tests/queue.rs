//! The queue end to end on the embedded defaults: a real SQLite file (sqlx), a local directory
//! and a directory as the remote. The first group follows the Dart SDK's attachment tests; the
//! second covers the faults of the other SDKs that this library must not have.

mod common;

use std::time::Duration;

use attachments::{
    Attachment, AttachmentEvent, AttachmentId, AttachmentState, BoxError, Error, ErrorAction,
    ErrorKind, Operation, ReferencedAttachments, SaveFile, byte_stream_from, collect_bytes,
};
use attachments_testkit::{patterned_bytes, patterned_stream};
use common::{
    Device, PATIENCE, files_below, item, set_photo_of_todo_1, wait_for_counts, wait_for_event,
};

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len))
        .media_type("image/jpeg")
        .file_extension("jpg")
}

// ---- the Dart SDK's cases ----------------------------------------------------------------

#[tokio::test]
async fn uploads_saved_files() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();

    let saved = queue.save_file(photo(1, 300_000)).await.unwrap();
    assert_eq!(saved.state, AttachmentState::QueuedUpload);
    assert_eq!(saved.size, Some(300_000));
    assert!(saved.checksum.as_deref().unwrap().starts_with("sha256:"));

    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.uploaded, 1);
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
    assert!(row.has_synced);
    let remote_copy = std::fs::read(dir.path().join("remote").join(&saved.filename)).unwrap();
    assert_eq!(remote_copy, patterned_bytes(1, 300_000));
}

#[tokio::test]
async fn stores_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(2, 10)).await.unwrap();
    let local_uri: String =
        sqlx::query_scalar("SELECT local_uri FROM attachments_queue WHERE id = ?")
            .bind(saved.id.as_str())
            .fetch_one(&device.pool)
            .await
            .unwrap();
    assert_eq!(
        local_uri,
        format!("{}.jpg", saved.id),
        "relative to the local root"
    );
    assert!(device.local_dir().join(&local_uri).exists());
}

#[tokio::test]
async fn downloads_attachments_referenced_on_another_device() {
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = dir.path().join("remote");
    let phone = Device::new(&dir.path().join("phone"), &remote_dir).await;
    let tablet = Device::new(&dir.path().join("tablet"), &remote_dir).await;

    let phone_queue = phone.builder().await.build().unwrap();
    let saved = phone_queue.save_file(photo(3, 1 << 20)).await.unwrap();
    phone_queue.sync_now().await.unwrap();

    // the todo row reaches the tablet (through the app's own sync); its watcher sees it
    let tablet_queue = tablet.watching_builder().await.build().unwrap();
    let mut events = tablet_queue.subscribe();
    tablet_queue.start_sync().await.unwrap();
    tablet.add_todo(1, Some(&saved.id)).await;
    // the `Synced` event comes once the file is in place (the row may say so a moment before)
    wait_for_event(&mut events, "the download", |e| {
        matches!(e, AttachmentEvent::StateChanged { id, to: Some(AttachmentState::Synced), .. } if *id == saved.id)
    })
    .await;

    let local = std::fs::read(tablet.local_dir().join(&saved.filename)).unwrap();
    assert_eq!(local, patterned_bytes(3, 1 << 20));
    let row = tablet_queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.size, Some(1 << 20));
    assert_eq!(row.checksum, saved.checksum, "same bytes, same checksum");
    tablet_queue.close().await;
}

#[tokio::test]
async fn recovers_from_deleted_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(4, 5000)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.close().await;

    // someone removes the local file while the app is not running
    std::fs::remove_file(device.local_dir().join(&saved.filename)).unwrap();

    let restarted = device.builder().await.build().unwrap();
    let summary = restarted.sync_now().await.unwrap();
    assert_eq!(
        summary.downloaded, 1,
        "the missing file is downloaded again"
    );
    let local = std::fs::read(device.local_dir().join(&saved.filename)).unwrap();
    assert_eq!(local, patterned_bytes(4, 5000));
    let row = restarted.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
}

#[tokio::test]
async fn deletes_remote_local_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(5, 100)).await.unwrap();
    queue.sync_now().await.unwrap();

    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedDelete
    );
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.deleted, 1);
    assert!(
        queue.get(&saved.id).await.unwrap().is_none(),
        "the row is gone, not archived"
    );
    assert!(files_below(&dir.path().join("remote")).is_empty());
    assert!(device.local_files().is_empty());

    let err = queue.delete_file(&saved.id).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "deleting an unknown id is NotFound"
    );
}

#[tokio::test]
async fn archived_attachments_are_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(6, 2000)).await.unwrap();
    queue.set_referenced(vec![item(&saved.id)]).await.unwrap();
    queue.sync_now().await.unwrap();

    queue.set_referenced(vec![]).await.unwrap();
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(
        row.state,
        AttachmentState::Archived,
        "unreferenced: archived"
    );
    assert!(
        device.local_dir().join(&saved.filename).exists(),
        "file kept as cache"
    );

    let downloads_before = device
        .remote
        .calls()
        .downloads
        .load(std::sync::atomic::Ordering::SeqCst);
    queue.set_referenced(vec![item(&saved.id)]).await.unwrap();
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::Synced,
        "referenced again: synced straight from the cache"
    );
    queue.sync_now().await.unwrap();
    let downloads_after = device
        .remote
        .calls()
        .downloads
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(downloads_before, downloads_after, "no download needed");
}

#[tokio::test]
async fn a_download_that_finds_no_object_is_retried_by_default() {
    // in a synced app the author's device has usually not uploaded it yet
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let ghost = AttachmentId::new("ghost").unwrap();
    queue.set_referenced(vec![item(&ghost)]).await.unwrap();

    let summary = queue.sync_now().await.unwrap();
    assert_eq!((summary.retrying, summary.archived), (1, 0));
    let row = queue.get(&ghost).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::QueuedDownload);
    assert_eq!(row.attempts, 1);
    assert!(row.next_attempt_at.is_some(), "backed off, not given up");
}

#[tokio::test]
async fn a_failed_download_is_archived_by_an_app_handler_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .error_handler(|_: &Attachment, _: Operation, error: &Error| {
            if error.is_retryable() {
                ErrorAction::Retry
            } else {
                ErrorAction::Archive
            }
        })
        .build()
        .unwrap();
    let mut events = queue.subscribe();
    let ghost = AttachmentId::new("ghost").unwrap();
    queue.set_referenced(vec![item(&ghost)]).await.unwrap();

    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.archived, 1, "the app's handler archives NotFound");
    let row = queue.get(&ghost).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Archived);
    assert_eq!(row.failed_state, Some(AttachmentState::QueuedDownload));
    assert!(row.last_error.unwrap().contains("not found"));
    let event = wait_for_event(&mut events, "the error event", |e| {
        matches!(e, AttachmentEvent::Error { id: Some(_), .. })
    })
    .await;
    let AttachmentEvent::Error {
        operation, error, ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(operation, Some(Operation::Download));
    assert_eq!(error.kind(), ErrorKind::NotFound);

    // still referenced, but archived by a failure: it stays archived ...
    queue.sync_now().await.unwrap();
    assert_eq!(
        queue.get(&ghost).await.unwrap().unwrap().state,
        AttachmentState::Archived
    );
    // ... until `retry`, once the object exists
    std::fs::write(dir.path().join("remote").join("ghost.jpg"), b"here now").unwrap();
    queue.retry(&ghost).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().downloaded, 1);
    assert_eq!(
        queue.get(&ghost).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
}

#[tokio::test]
async fn stop_sync_interrupts_a_long_batch_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.max_concurrency(2).build().unwrap();
    for seed in 0..10 {
        queue.save_file(photo(seed, 100)).await.unwrap();
    }
    device.remote.hang_next(10);
    queue.start_sync().await.unwrap();
    device.remote.wait_for_calls(2).await;

    tokio::time::timeout(Duration::from_secs(1), queue.stop_sync())
        .await
        .expect("stop_sync returns within a second");
    let counts = queue.status().await.unwrap();
    assert_eq!(
        counts.queued_upload, 10,
        "interrupted uploads stay queued, nothing lost"
    );
    let row = &queue.store().pool().clone();
    let attempts: i64 = sqlx::query_scalar("SELECT MAX(attempts) FROM attachments_queue")
        .fetch_one(row)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "a cancelled transfer is not a failure");

    // and they go through once sync runs again
    device.remote.heal();
    assert_eq!(queue.sync_now().await.unwrap().uploaded, 10);
}

#[tokio::test]
async fn save_file_is_not_blocked_by_a_pass_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    queue.save_file(photo(1, 100)).await.unwrap();
    device.remote.pause();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    device.remote.wait_for_calls(1).await;

    let saved = tokio::time::timeout(PATIENCE, queue.save_file(photo(2, 100)))
        .await
        .expect("save_file completes while the pass waits on the remote")
        .unwrap();
    assert_eq!(saved.state, AttachmentState::QueuedUpload);
    device.remote.resume();
    assert_eq!(pass.await.unwrap().unwrap().uploaded, 1);
}

#[tokio::test]
async fn outcomes_are_persisted_per_attachment_not_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let slow = queue.save_file(photo(1, 100)).await.unwrap();
    let fast = queue.save_file(photo(2, 100)).await.unwrap();
    device
        .remote
        .fault_filename(slow.filename.clone(), attachments_testkit::Fault::Hang);

    let mut events = queue.subscribe();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    wait_for_event(&mut events, "the fast upload", |e| {
        matches!(e, AttachmentEvent::StateChanged { id, to: Some(AttachmentState::Synced), .. } if *id == fast.id)
    })
    .await;
    // the pass is still running (the slow upload hangs), yet the fast one is recorded
    assert!(!pass.is_finished());
    let row = queue.get(&fast.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
    queue.stop_sync().await;
    let summary = pass.await.unwrap().unwrap();
    assert!(summary.cancelled);
    assert_eq!(
        queue.get(&slow.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedUpload
    );
}

// ---- faults of the other SDKs that must not happen here -----------------------------------

#[tokio::test]
async fn a_delete_during_an_upload_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 50_000)).await.unwrap();

    device.remote.pause();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    device.remote.wait_for_calls(1).await; // the upload is in flight
    queue.delete_file(&saved.id).await.unwrap();
    device.remote.resume();
    let summary = pass.await.unwrap().unwrap();
    assert_eq!(summary.discarded, 1, "the late upload result is discarded");
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedDelete,
        "the delete survives the upload that finished after it"
    );

    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    assert!(queue.get(&saved.id).await.unwrap().is_none());
    assert!(
        files_below(&dir.path().join("remote")).is_empty(),
        "nothing left on the remote"
    );
    assert!(device.local_files().is_empty());
}

#[tokio::test]
async fn a_retryable_failure_backs_off_without_rewriting_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    device.remote.fail_next(
        1000,
        attachments::Error::new(ErrorKind::Unavailable, "503 slow down"),
    );

    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.retrying, 1);
    let failed = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(failed.state, AttachmentState::QueuedUpload);
    assert_eq!(failed.attempts, 1);
    assert!(failed.last_error.as_deref().unwrap().contains("503"));
    let wait = failed.next_attempt_at.unwrap() - failed.timestamp;
    assert!(
        (500..=1000).contains(&wait),
        "first backoff is 0.5 to 1 s, got {wait} ms"
    );

    // passes during the backoff neither call the remote nor write the row
    for _ in 0..5 {
        queue.sync_now().await.unwrap();
    }
    assert_eq!(
        device
            .remote
            .calls()
            .uploads
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let unchanged = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(
        unchanged.version, failed.version,
        "the row is not rewritten while backing off"
    );
}

#[tokio::test]
async fn a_stalled_transfer_times_out_as_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .transfer_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    device.remote.hang_next(1);
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.retrying, 1);
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert!(row.last_error.unwrap().contains("timed out"));
}

#[tokio::test]
async fn expire_cache_returns_when_nothing_is_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .archived_cache_limit(5)
        .build()
        .unwrap();
    let evicted = tokio::time::timeout(PATIENCE, queue.expire_cache())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(evicted, 0);
    let saved = queue.save_file(photo(1, 10)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.set_referenced(vec![]).await.unwrap();
    let evicted = tokio::time::timeout(PATIENCE, queue.expire_cache())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(evicted, 0, "one archived row is under the limit of 5");
    assert!(queue.get(&saved.id).await.unwrap().is_some());
}

#[tokio::test]
async fn eviction_keeps_the_newest_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .archived_cache_limit(2)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for seed in 0..4 {
        let saved = queue.save_file(photo(seed, 10)).await.unwrap();
        ids.push(saved.id);
    }
    queue.sync_now().await.unwrap();
    queue.set_referenced(vec![]).await.unwrap(); // all four archived
    // make the archive order explicit: ids[0] oldest ... ids[3] newest, against insertion order
    for (age, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE attachments_queue SET timestamp = ? WHERE id = ?")
            .bind(1_000 + age as i64)
            .bind(id.as_str())
            .execute(&device.pool)
            .await
            .unwrap();
    }
    assert_eq!(queue.expire_cache().await.unwrap(), 2);
    for (n, id) in ids.iter().enumerate() {
        let kept = queue.get(id).await.unwrap().is_some();
        assert_eq!(kept, n >= 2, "attachment {n} (older is smaller)");
        let file = device.local_dir().join(format!("{id}.jpg"));
        assert_eq!(file.exists(), n >= 2, "its local file goes with the row");
    }
}

#[tokio::test]
async fn saving_an_id_that_exists_is_refused_and_keeps_the_first_file() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    device.add_todo(1, None).await;
    let queue = device.builder().await.build().unwrap();
    let id = AttachmentId::new("chosen-by-the-app").unwrap();
    let first = queue
        .save_file(photo(1, 1000).id(id.clone()))
        .await
        .unwrap();

    let again = queue
        .save_file(photo(2, 2000).id(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    let with_hook = queue
        .save_file_with_hook(photo(3, 3000).id(id.clone()), set_photo_of_todo_1)
        .await
        .unwrap_err();
    assert_eq!(with_hook.kind(), ErrorKind::AlreadyExists, "{with_hook}");

    assert_eq!(
        queue.get(&id).await.unwrap().unwrap(),
        first,
        "the row is untouched"
    );
    let file = std::fs::read(device.local_dir().join(&first.filename)).unwrap();
    assert_eq!(
        file,
        patterned_bytes(1, 1000),
        "the first file is untouched"
    );
    assert_eq!(device.photo_of(1).await, None, "the hook never ran");
}

#[tokio::test]
async fn a_failing_update_hook_leaves_neither_row_nor_file() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    device.add_todo(1, None).await;
    let queue = device.builder().await.build().unwrap();

    let err = queue
        .save_file_with_hook(photo(1, 1000), |connection, attachment| {
            Box::pin(async move {
                sqlx::query("UPDATE todos SET photo_id = ? WHERE id = 1")
                    .bind(attachment.id.as_str())
                    .execute(&mut *connection)
                    .await?;
                Err::<(), BoxError>("the app changed its mind".into())
            })
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Hook);
    assert_eq!(queue.status().await.unwrap().total(), 0, "no row");
    assert!(device.local_files().is_empty(), "no file");
    assert_eq!(
        device.photo_of(1).await,
        None,
        "the app's own write was rolled back too"
    );

    // and a good hook commits both
    let saved = queue
        .save_file_with_hook(photo(2, 1000), set_photo_of_todo_1)
        .await
        .unwrap();
    assert_eq!(device.photo_of(1).await.as_deref(), Some(saved.id.as_str()));

    queue
        .delete_file_with_hook(&saved.id, |connection, _| {
            Box::pin(async move {
                sqlx::query("UPDATE todos SET photo_id = NULL WHERE id = 1")
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    assert_eq!(device.photo_of(1).await, None);
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedDelete
    );
}

#[tokio::test]
async fn unreferencing_a_pending_upload_keeps_it_pending() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.set_referenced(vec![]).await.unwrap();
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedUpload
    );
    assert_eq!(
        queue.sync_now().await.unwrap().uploaded,
        1,
        "and it is still uploaded"
    );
}

#[tokio::test]
async fn downloads_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote").join("other.jpg"),
        b"from elsewhere",
    )
    .unwrap();
    let queue = device
        .builder()
        .await
        .download_attachments(false)
        .build()
        .unwrap();
    let other = AttachmentId::new("other").unwrap();

    queue.set_referenced(vec![item(&other)]).await.unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.downloaded, 0);
    assert!(
        queue.get(&other).await.unwrap().is_none(),
        "not tracked while downloads are off"
    );
    assert!(device.local_files().is_empty());

    queue.set_download_attachments(true);
    assert_eq!(queue.sync_now().await.unwrap().downloaded, 1);
    let bytes = collect_bytes(queue.read_file(&other).await.unwrap())
        .await
        .unwrap();
    assert_eq!(bytes, b"from elsewhere");
}

#[tokio::test]
async fn clear_queue_removes_only_what_the_queue_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    queue.save_file(photo(1, 10)).await.unwrap();
    queue.save_file(photo(2, 10)).await.unwrap();
    std::fs::write(device.local_dir().join("not-ours.txt"), b"keep me").unwrap();

    assert_eq!(queue.clear_queue().await.unwrap(), 2);
    assert_eq!(queue.status().await.unwrap().total(), 0);
    assert_eq!(device.local_files(), vec!["not-ours.txt".to_owned()]);
}

#[tokio::test]
async fn close_makes_later_calls_fail_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    queue.start_sync().await.unwrap();
    queue.close().await;
    let id = AttachmentId::new("x").unwrap();
    assert_eq!(
        queue.start_sync().await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        queue.save_file(photo(1, 1)).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        queue.delete_file(&id).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        queue.sync_now().await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(queue.status().await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(
        queue.expire_cache().await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        queue.clear_queue().await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        queue.retry(&id).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(device.local_files().is_empty(), "nothing was written");
}

#[tokio::test]
async fn hostile_ids_and_filenames_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let mut events = queue.subscribe();
    let huge = "a".repeat(10_000);
    for hostile in ["../x", "/etc/passwd", "a\0b", huge.as_str(), "..", "a/b"] {
        let err = AttachmentId::new(hostile).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{hostile:?}");
    }
    for extension in ["../x", "/etc/passwd", "a\0b", huge.as_str(), "a/b"] {
        let file = SaveFile::new(byte_stream_from(vec![b"x".to_vec()])).file_extension(extension);
        let err = queue.save_file(file).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "extension {extension:?}"
        );
    }
    // a watched item with a hostile file name is refused and reported, not downloaded
    let planted = AttachmentId::new("planted").unwrap();
    queue
        .set_referenced(vec![
            attachments::WatchedAttachmentItem::new(planted.clone())
                .with_filename("../../escape.jpg"),
        ])
        .await
        .unwrap();
    let event = wait_for_event(&mut events, "the refusal", |e| {
        matches!(e, AttachmentEvent::Error { .. })
    })
    .await;
    let AttachmentEvent::Error { id, error, .. } = event else {
        unreachable!()
    };
    assert_eq!(
        (id, error.kind()),
        (Some(planted.clone()), ErrorKind::InvalidInput)
    );
    assert!(queue.get(&planted).await.unwrap().is_none());
    assert_eq!(queue.status().await.unwrap().total(), 0);
    assert!(device.local_files().is_empty());
    assert!(
        files_below(dir.path())
            .iter()
            .all(|f| !f.contains("escape"))
    );
}

#[tokio::test]
async fn a_restart_after_a_crash_cleans_up_and_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let pending = queue.save_file(photo(1, 100)).await.unwrap();
    let synced = queue.save_file(photo(2, 100)).await.unwrap();
    // sync both, then put `pending` back in the state a crash before its upload leaves it in
    queue.sync_now().await.unwrap();
    sqlx::query("UPDATE attachments_queue SET state = 1 WHERE id = ?")
        .bind(pending.id.as_str())
        .execute(&device.pool)
        .await
        .unwrap();
    drop(queue); // the process dies: no stop, no close

    // what a crash leaves: a partial temp file, the staged file of a save that never
    // committed, and a synced attachment whose file vanished; beside them, the app's own file
    let temp = device.local_dir().join(attachments_fs::TEMP_DIR);
    std::fs::create_dir_all(temp.join("staged")).unwrap();
    std::fs::write(temp.join("dead.part"), b"half a photo").unwrap();
    std::fs::write(temp.join("staged").join("uncommitted.jpg"), b"orphan").unwrap();
    std::fs::write(device.local_dir().join("notes.txt"), b"the app's own").unwrap();
    std::fs::remove_file(device.local_dir().join(&synced.filename)).unwrap();

    let restarted = device.builder().await.build().unwrap();
    let summary = restarted.sync_now().await.unwrap();
    assert_eq!((summary.uploaded, summary.downloaded), (1, 1));
    assert_eq!(restarted.status().await.unwrap().synced, 2);
    assert!(
        files_below(&temp).iter().all(|f| f.ends_with("lock")),
        "temp and staged files removed: {:?}",
        files_below(&temp)
    );
    let mut expected = vec![
        "notes.txt".to_owned(),
        pending.filename.clone(),
        synced.filename.clone(),
    ];
    expected.sort();
    assert_eq!(
        device.local_files(),
        expected,
        "the uncommitted save is gone, the app's file and the attachments are whole"
    );
}

#[tokio::test]
async fn progress_is_reported_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 3 << 20)).await.unwrap();
    let mut events = queue.subscribe();
    queue.sync_now().await.unwrap();
    let mut reports = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let AttachmentEvent::Progress {
            id,
            operation,
            bytes,
            total,
        } = event
        {
            assert_eq!((id, operation), (saved.id.clone(), Operation::Upload));
            assert!(total == Some(3 << 20));
            reports.push(bytes);
        }
    }
    assert!(
        reports.len() >= 2,
        "progress during the transfer, not only at the end: {reports:?}"
    );
    assert!(
        reports.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows"
    );
    assert_eq!(reports.last(), Some(&(3 << 20)));
}

#[tokio::test]
async fn a_completed_delete_is_not_undone_by_references_seen_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.set_referenced(vec![item(&saved.id)]).await.unwrap();
    queue.sync_now().await.unwrap();

    // the app deletes it; the last references the queue was told of still name it
    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    for _ in 0..3 {
        let summary = queue.sync_now().await.unwrap();
        assert_eq!(summary.downloaded + summary.archived, 0);
    }
    assert!(
        queue.get(&saved.id).await.unwrap().is_none(),
        "the deleted row stays gone"
    );
    assert_eq!(
        device
            .remote
            .calls()
            .downloads
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no attempt to download what was deleted"
    );
}

#[tokio::test]
async fn dropping_the_last_handle_stops_background_sync() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let mut events = queue.subscribe();
    queue.start_sync().await.unwrap();
    wait_for_event(&mut events, "the first pass", |e| {
        matches!(e, AttachmentEvent::PassCompleted(_))
    })
    .await;
    let clone = queue.clone();
    drop(queue);
    clone.trigger_sync();
    wait_for_event(&mut events, "a pass while a clone lives", |e| {
        matches!(e, AttachmentEvent::PassCompleted(_))
    })
    .await;
    drop(clone);
    // the worker ends, and with it the last sender of the event channel
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the worker stopped after the last handle was dropped"
    );
}

#[tokio::test]
async fn a_late_emission_read_before_a_delete_does_not_bring_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    queue.set_referenced(vec![item(&saved.id)]).await.unwrap();
    queue.sync_now().await.unwrap();

    let read_before_the_delete = std::time::Instant::now();
    queue.delete_file(&saved.id).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().deleted, 1);
    // the watcher read the references just before the delete committed, and delivers now
    queue
        .set_referenced(ReferencedAttachments::new(
            vec![item(&saved.id)],
            read_before_the_delete,
        ))
        .await
        .unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.downloaded + summary.archived, 0);
    assert!(
        queue.get(&saved.id).await.unwrap().is_none(),
        "the deleted row stays gone"
    );
    assert_eq!(
        device
            .remote
            .calls()
            .downloads
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn an_id_deleted_here_and_reused_elsewhere_is_downloaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let phone = Device::new(&dir.path().join("phone"), &dir.path().join("remote")).await;
    let tablet = Device::new(&dir.path().join("tablet"), &dir.path().join("remote")).await;
    let phone_queue = phone.builder().await.build().unwrap();
    let tablet_queue = tablet.builder().await.build().unwrap();
    let avatar = AttachmentId::new("avatar").unwrap();
    let first = phone_queue
        .save_file(photo(1, 100).id(avatar.clone()))
        .await
        .unwrap();
    phone_queue
        .set_referenced(vec![item(&first.id)])
        .await
        .unwrap();
    phone_queue.sync_now().await.unwrap();
    phone_queue.delete_file(&avatar).await.unwrap();
    phone_queue.set_referenced(Vec::new()).await.unwrap();
    assert_eq!(phone_queue.sync_now().await.unwrap().deleted, 1);

    // the tablet saves a new avatar under the same id; the phone reads the reference after
    // its delete committed, so it downloads the new one
    tablet_queue
        .save_file(photo(2, 300).id(avatar.clone()))
        .await
        .unwrap();
    tablet_queue.sync_now().await.unwrap();
    phone_queue
        .set_referenced(vec![item(&avatar)])
        .await
        .unwrap();
    assert_eq!(phone_queue.sync_now().await.unwrap().downloaded, 1);
    let bytes = collect_bytes(phone_queue.read_file(&avatar).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        bytes,
        patterned_bytes(2, 300),
        "the new avatar, not the deleted one"
    );
}

#[tokio::test]
async fn each_emission_decides_as_if_it_read_the_whole_table() {
    // After the first reconcile the queue reads only the rows that can differ: the ids that
    // appeared or disappeared, and the rows it wrote since. What it decides must be what a
    // reconcile of the whole table decides.
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let a = queue.save_file(photo(1, 100)).await.unwrap().id;
    let b = queue.save_file(photo(2, 100)).await.unwrap().id;
    queue.sync_now().await.unwrap();
    queue
        .set_referenced(vec![item(&a), item(&b)])
        .await
        .unwrap();
    let state = |id: AttachmentId| {
        let queue = queue.clone();
        async move { queue.get(&id).await.unwrap().map(|row| row.state) }
    };
    assert_eq!(state(a.clone()).await, Some(AttachmentState::Synced));
    assert_eq!(state(b.clone()).await, Some(AttachmentState::Synced));

    // saved and uploaded after that reconcile, never referenced: judged against the latest
    // references as soon as its upload is written, with no new reading needed
    let c = queue.save_file(photo(3, 100)).await.unwrap().id;
    queue.sync_now().await.unwrap();
    assert_eq!(state(c.clone()).await, Some(AttachmentState::Archived));
    queue
        .set_referenced(vec![item(&a), item(&b)])
        .await
        .unwrap();
    assert_eq!(state(c.clone()).await, Some(AttachmentState::Archived));
    assert_eq!(state(a.clone()).await, Some(AttachmentState::Synced));

    // an id that disappears is archived, one that comes back is revived, a new one is queued
    let new = AttachmentId::new("from-another-device").unwrap();
    queue.set_referenced(vec![item(&a)]).await.unwrap();
    assert_eq!(state(b.clone()).await, Some(AttachmentState::Archived));
    queue
        .set_referenced(vec![item(&a), item(&b), item(&c), item(&new)])
        .await
        .unwrap();
    assert_eq!(state(b).await, Some(AttachmentState::Synced));
    assert_eq!(state(c).await, Some(AttachmentState::Synced));
    assert_eq!(state(new).await, Some(AttachmentState::QueuedDownload));

    // after clear_queue the table is empty: the same references are all new again
    queue.clear_queue().await.unwrap();
    queue.set_referenced(vec![item(&a)]).await.unwrap();
    assert_eq!(state(a).await, Some(AttachmentState::QueuedDownload));
}
