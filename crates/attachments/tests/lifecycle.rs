//! The queue over its life: clear, lagging readings, backoff after clock skew, reused ids, crash
//! leftovers, retry in every state, hooks.

mod common;

use std::time::{Duration, Instant};

use attachments::fs::TEMP_DIR;
use attachments::{
    AttachmentId, AttachmentState, Error, ErrorKind, ReferencedAttachments, SaveFile,
    SqliteAttachmentQueue, byte_stream_from, collect_bytes,
};
use common::{Device, files_below, item};

fn id(text: &str) -> AttachmentId {
    AttachmentId::new(text).unwrap()
}

fn save(id_: &AttachmentId, bytes: &[u8]) -> SaveFile {
    SaveFile::new(byte_stream_from(vec![bytes.to_vec()]))
        .id(id_.clone())
        .file_extension("jpg")
}

async fn state(queue: &SqliteAttachmentQueue, id_: &AttachmentId) -> Option<AttachmentState> {
    queue.get(id_).await.unwrap().map(|row| row.state)
}

async fn contents(queue: &SqliteAttachmentQueue, id_: &AttachmentId) -> Option<Vec<u8>> {
    match queue.read_file(id_).await {
        Ok(stream) => Some(collect_bytes(stream).await.unwrap()),
        Err(_) => None,
    }
}

async fn device(tmp: &tempfile::TempDir) -> Device {
    Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await
}

/// `clear_queue` returns promptly while passes keep starting: no pass starts a transfer while
/// it runs, so it never waits for one it did not cancel (here a remote that does not answer,
/// which would hold it up to `transfer_timeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_queue_returns_promptly_while_passes_keep_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let queue = device
        .builder()
        .await
        .transfer_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    queue.sync_now().await.unwrap();
    for round in 0..30u64 {
        let x = id(&format!("x{round}"));
        queue.save_file(save(&x, b"photo")).await.unwrap();
        device.remote.pause();
        let hammer = {
            let queue = queue.clone();
            tokio::spawn(async move {
                loop {
                    let _ = queue.sync_now().await;
                    tokio::task::yield_now().await;
                }
            })
        };
        // this round's upload is in flight (held by the paused remote): one call per round
        device.remote.wait_for_calls(round + 1).await;
        let cleared = tokio::time::timeout(Duration::from_secs(5), queue.clear_queue()).await;
        hammer.abort();
        let _ = hammer.await;
        device.remote.resume();
        assert!(
            cleared.is_ok(),
            "round {round}: clear_queue still waits after 5 s for a transfer it did not cancel"
        );
    }
    queue.close().await;
}

/// A reading taken before a delete committed, delivered after the delete finished, must not
/// bring the attachment back; a reading taken after it may (a reused id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_older_than_a_delete_never_brings_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let queue = device.builder().await.build().unwrap();
    let x = id("x");
    queue.save_file(save(&x, b"photo")).await.unwrap();
    queue.set_referenced(vec![item(&x)]).await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &x).await, Some(AttachmentState::Synced));

    let before_delete = Instant::now();
    queue.delete_file(&x).await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &x).await, None);
    // the lagging watcher delivers its reading now
    queue
        .set_referenced(ReferencedAttachments::new(vec![item(&x)], before_delete))
        .await
        .unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &x).await, None, "an old reading revived x");
    // out of order: a newer reading without x, then an even older one with x
    queue.set_referenced(vec![]).await.unwrap();
    queue
        .set_referenced(ReferencedAttachments::new(vec![item(&x)], before_delete))
        .await
        .unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(
        state(&queue, &x).await,
        None,
        "an out-of-order reading revived x"
    );
    // the app reuses the id: a fresh reading names it
    queue.set_referenced(vec![item(&x)]).await.unwrap();
    assert_eq!(
        state(&queue, &x).await,
        Some(AttachmentState::QueuedDownload)
    );
    queue.close().await;
}

/// A retry time written while the wall clock was far ahead (a phone whose clock was wrong,
/// then corrected) does not hold the row beyond `max_backoff`: start-up makes it due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_time_from_a_skewed_clock_does_not_outlive_max_backoff() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let x = id("x");
    {
        let queue = device.builder().await.build().unwrap();
        queue.save_file(save(&x, b"photo")).await.unwrap();
        queue.close().await;
    }
    // as the queue writes a failed attempt, with a wall clock one year ahead
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    sqlx::query(
        "UPDATE attachments_queue SET attempts = 1, last_error = 'timed out', \
         next_attempt_at = ? WHERE id = 'x'",
    )
    .bind(now_ms + year_ms + 1_000)
    .execute(&device.pool)
    .await
    .unwrap();
    let queue = device.builder().await.build().unwrap();
    queue.sync_now().await.unwrap();
    queue.trigger_sync();
    let retry = queue.retry(&x).await.map_err(|e| e.kind());
    queue.sync_now().await.unwrap();
    let after = state(&queue, &x).await;
    queue.close().await;
    assert_eq!(
        after,
        Some(AttachmentState::Synced),
        "the upload waits a year (retry says {retry:?})"
    );
}

/// An id is reused on another device with new contents (DESIGN: ids are reused). This device
/// still has the old row, whose file the OS purged; it re-downloads, finds a checksum that is
/// not the old one, and takes the new body once it has seen the same one twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_with_new_contents_can_be_downloaded_again() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let remote_file = tmp.path().join("remote").join("x.jpg");
    std::fs::write(&remote_file, b"first life").unwrap();
    let x = id("x");
    {
        let queue = device.builder().await.build().unwrap();
        queue.set_referenced(vec![item(&x)]).await.unwrap();
        queue.sync_now().await.unwrap();
        assert_eq!(
            contents(&queue, &x).await.as_deref(),
            Some(&b"first life"[..])
        );
        queue.close().await;
    }
    std::fs::write(&remote_file, b"second life, other bytes").unwrap();
    std::fs::remove_file(device.local_dir().join("x.jpg")).unwrap();
    // no backoff, so the passes below are the retries (the same new body twice is taken)
    let queue = device
        .builder()
        .await
        .retry(attachments::RetryPolicy {
            initial_backoff: std::time::Duration::ZERO,
            max_backoff: std::time::Duration::ZERO,
            ..attachments::RetryPolicy::default()
        })
        .build()
        .unwrap();
    queue.set_referenced(vec![item(&x)]).await.unwrap();
    for _ in 0..3 {
        queue.sync_now().await.unwrap();
    }
    let row = queue.get(&x).await.unwrap().unwrap();
    let read = contents(&queue, &x).await;
    queue.close().await;
    assert!(
        read.is_some(),
        "x is {:?}, attempts {}, last error {:?}",
        row.state,
        row.attempts,
        row.last_error
    );
}

/// Crash leftovers: a delete interrupted after its file was staged (row still there), a
/// staged file without a row next to an app file of the same name, odd entries in the hidden
/// area. Start-up finishes the delete and touches nothing of the app's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_leftovers_are_settled_without_touching_app_files() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let x = id("x");
    {
        let queue = device.builder().await.build().unwrap();
        queue.save_file(save(&x, b"photo")).await.unwrap();
        queue.sync_now().await.unwrap();
        queue.delete_file(&x).await.unwrap();
        queue.close().await;
    }
    let root = device.local_dir();
    let staged = root.join(TEMP_DIR).join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    // the delete's staging step ran, then the process died
    std::fs::rename(root.join("x.jpg"), staged.join("x.jpg")).unwrap();
    // a save that never committed, named like an app file
    std::fs::write(staged.join("mine.txt"), b"half a save").unwrap();
    std::fs::write(root.join("mine.txt"), b"the app's").unwrap();
    std::fs::write(root.join("scan\\2024.pdf"), b"the app's scan").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", staged.join("link.jpg")).unwrap();
    let fifo = staged.join("fifo.jpg");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()));

    let queue = device.builder().await.build().unwrap();
    tokio::time::timeout(common::PATIENCE, queue.sync_now())
        .await
        .expect("start-up does not hang on a FIFO")
        .unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &x).await, None);
    queue.close().await;
    assert!(!tmp.path().join("remote").join("x.jpg").exists());
    assert_eq!(std::fs::read(root.join("mine.txt")).unwrap(), b"the app's");
    assert_eq!(
        files_below(&root),
        vec!["mine.txt".to_owned(), "scan\\2024.pdf".to_owned()]
    );
    assert!(std::fs::read("/etc/hostname").is_ok());
}

/// `retry` on a row in each state: only a failure archive is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_in_every_state() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let queue = device
        .builder()
        .await
        .archived_cache_limit(0)
        .build()
        .unwrap();
    let (up, synced, del) = (id("up"), id("synced"), id("del"));
    queue.save_file(save(&synced, b"s")).await.unwrap();
    queue.sync_now().await.unwrap();
    device.remote.pause();
    queue.save_file(save(&up, b"u")).await.unwrap();
    assert_eq!(
        queue.retry(&up).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        queue.retry(&synced).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        queue.retry(&id("nobody")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    device.remote.resume();
    // a delete that fails for good is archived, never evicted, and retry finishes it
    queue.save_file(save(&del, b"d")).await.unwrap();
    queue.sync_now().await.unwrap();
    device
        .remote
        .fail_next(1, Error::new(ErrorKind::PermissionDenied, "refused"));
    queue.delete_file(&del).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.expire_cache().await.unwrap();
    let row = queue
        .get(&del)
        .await
        .unwrap()
        .expect("a failed delete stays");
    assert_eq!(row.state, AttachmentState::Archived);
    queue.retry(&del).await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &del).await, None);
    assert!(!tmp.path().join("remote").join("del.jpg").exists());
    queue.close().await;
}

/// A failing hook rolls back the row and leaves no file, staged or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let queue = device.builder().await.build().unwrap();
    let x = id("x");
    let error = queue
        .save_file_with_hook(save(&x, b"photo"), |connection, _| {
            Box::pin(async move {
                sqlx::query("INSERT INTO no_such_table VALUES (1)")
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Hook);
    assert_eq!(state(&queue, &x).await, None);
    // the id is free again
    queue.save_file(save(&x, b"photo")).await.unwrap();
    queue.close().await;
    let hidden: Vec<String> = files_below(&device.local_dir().join(TEMP_DIR).join("staged"));
    assert!(hidden.is_empty(), "staged leftovers {hidden:?}");
    assert_eq!(files_below(&device.local_dir()), vec!["x.jpg".to_owned()]);
}

/// A reused id after `clear_queue` during an upload: the late upload of the first life must
/// not mark the second life synced (the remote must end with the second life's bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_during_an_upload_then_reuse_the_id() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let queue = device.builder().await.build().unwrap();
    let x = id("x");
    queue.save_file(save(&x, b"first life")).await.unwrap();
    device.remote.pause();
    let pass = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.sync_now().await })
    };
    device.remote.wait_for_calls(1).await;
    assert_eq!(queue.clear_queue().await.unwrap(), 1);
    queue.save_file(save(&x, b"second life")).await.unwrap();
    device.remote.resume();
    let _ = pass.await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &x).await, Some(AttachmentState::Synced));
    queue.close().await;
    assert_eq!(
        std::fs::read(tmp.path().join("remote").join("x.jpg")).unwrap(),
        b"second life"
    );
}

/// Two queues on one in-memory database (one pool, two stores) with their own local roots:
/// the second is refused (`InUse`), as on a database file. DESIGN: several queues on one
/// database are safe together or refused, never a silent loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queues_on_one_in_memory_database_are_refused() {
    use attachments::fs::{FsLocalStorage, FsRemoteStorage};
    use attachments::sqlite::SqliteStore;
    let tmp = tempfile::tempdir().unwrap();
    let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    let remote = FsRemoteStorage::new(tmp.path().join("remote")).unwrap();
    let first = SqliteAttachmentQueue::builder(
        SqliteStore::new(pool.clone()).await.unwrap(),
        FsLocalStorage::new(tmp.path().join("one")).unwrap(),
        remote.clone(),
    )
    .build()
    .unwrap();
    let x = id("x");
    first.save_file(save(&x, b"photo")).await.unwrap();
    let second = SqliteAttachmentQueue::builder(
        SqliteStore::new(pool.clone()).await.unwrap(),
        FsLocalStorage::new(tmp.path().join("two")).unwrap(),
        remote,
    )
    .build();
    let outcome = match &second {
        Err(error) => format!("refused: {:?}", error.kind()),
        Ok(second) => {
            second.sync_now().await.unwrap();
            format!("built; x is now {:?}", state(second, &x).await)
        }
    };
    first.close().await;
    assert_eq!(outcome, "refused: InUse");
}

/// Start-up on a table of thousands of rows (more than one page of the verification): every
/// row whose file is gone is repaired, wherever it falls in the pages (first, last of a page,
/// first of the next, very last); a staged file whose row sorts late is promoted; rows that
/// have no file to check are left exactly as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_repairs_every_missing_file_of_a_large_table() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device(&tmp).await;
    let builder = device.builder().await; // creates the table
    let root = device.local_dir();
    let remote = tmp.path().join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    // 2,100 synced rows with their files, and 1,500 downloads waiting out a backoff whose ids
    // fall between them in id order
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2099)
         INSERT INTO attachments_queue (id, filename, local_uri, timestamp, state, has_synced)
         SELECT printf('s-%05d', i), printf('s-%05d.bin', i), printf('s-%05d.bin', i), 1, 3, 1
         FROM n",
    )
    .execute(&device.pool)
    .await
    .unwrap();
    let soon = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        + 60_000;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1499)
         INSERT INTO attachments_queue (id, filename, timestamp, state, attempts, next_attempt_at)
         SELECT printf('s-%05d-d', i), printf('s-%05d-d.bin', i), 1, 0, 1, ? FROM n",
    )
    .bind(soon)
    .execute(&device.pool)
    .await
    .unwrap();
    for n in 0..2100 {
        std::fs::write(root.join(format!("s-{n:05}.bin")), b"kept").unwrap();
    }
    // gone while the app was not running; the remote still has them
    let gone = [0, 999, 1000, 2099];
    for n in gone {
        let name = format!("s-{n:05}.bin");
        std::fs::remove_file(root.join(&name)).unwrap();
        std::fs::write(remote.join(&name), format!("remote {n}")).unwrap();
    }
    // a promotion the process died before: the file is still staged
    let staged = root.join(TEMP_DIR).join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::rename(root.join("s-01500.bin"), staged.join("s-01500.bin")).unwrap();
    let waiting_before: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, version FROM attachments_queue WHERE state = 0 ORDER BY id")
            .fetch_all(&device.pool)
            .await
            .unwrap();

    let queue = builder.build().unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(
        summary.downloaded, 4,
        "each missing file is downloaded again"
    );
    for n in gone {
        let row = queue.get(&id(&format!("s-{n:05}"))).await.unwrap().unwrap();
        assert_eq!(row.state, AttachmentState::Synced, "s-{n:05}");
        let name = format!("s-{n:05}.bin");
        assert_eq!(
            std::fs::read(root.join(&name)).unwrap(),
            format!("remote {n}").as_bytes()
        );
    }
    assert_eq!(
        std::fs::read(root.join("s-01500.bin")).unwrap(),
        b"kept",
        "the staged file is back at its path"
    );
    let waiting_after: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, version FROM attachments_queue WHERE state = 0 ORDER BY id")
            .fetch_all(&device.pool)
            .await
            .unwrap();
    assert_eq!(
        waiting_after, waiting_before,
        "rows without a file are not written"
    );
    let counts = queue.status().await.unwrap();
    assert_eq!((counts.synced, counts.queued_download), (2100, 1500));
    queue.close().await;
}
