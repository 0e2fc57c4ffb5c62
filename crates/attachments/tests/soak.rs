//! A fault soak: 2,000 attachments through a remote that fails 30 % of calls with retryable
//! errors, hangs 5 % (the per-transfer timeout must cut them) and refuses a chosen few for
//! good. Everything else must converge to `Synced`, the refused ones to `Archived` with their
//! error, with no more remote calls than the retry policy allows.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use attachments::sqlite::SqliteStore;
use attachments::{
    AttachmentState, Error, ErrorKind, RetryPolicy, SaveFile, SqliteAttachmentQueue,
};
use attachments_testkit::{
    Fault, FaultyRemoteStorage, MemoryLocalStorage, MemoryRemoteStorage, RandomFaults,
    patterned_stream,
};
use common::wait_for_counts;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const ATTACHMENTS: usize = 2_000;
const REFUSED: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_attachments_through_a_failing_remote_converge() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    let remote = FaultyRemoteStorage::new(MemoryRemoteStorage::default());
    let queue = SqliteAttachmentQueue::builder(
        SqliteStore::new(pool).await.unwrap(),
        MemoryLocalStorage::default(),
        remote.clone(),
    )
    .max_concurrency(32)
    .sync_throttle(Duration::ZERO)
    .transfer_timeout(Duration::from_millis(200))
    .retry(RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..RetryPolicy::default()
    })
    .build()
    .unwrap();

    let mut saved = Vec::new();
    for n in 0..ATTACHMENTS {
        let file = SaveFile::new(patterned_stream(n as u64, 64)).file_extension("bin");
        saved.push(queue.save_file(file).await.unwrap());
    }
    let refused: Vec<_> = saved.iter().take(REFUSED).collect();
    for row in &refused {
        remote.fault_filename(
            row.filename.clone(),
            Fault::Fail(Error::new(
                ErrorKind::PermissionDenied,
                "row-level security says no",
            )),
        );
    }
    remote.set_random_faults(RandomFaults {
        seed: 42,
        fail_ratio: 0.30,
        hang_ratio: 0.05,
        error: Error::new(ErrorKind::Unavailable, "503 slow down"),
    });

    queue.start_sync().await.unwrap();
    let counts = wait_for_counts(&queue, "all transfers to settle", |c| c.queued() == 0).await;
    queue.stop_sync().await;

    assert_eq!(
        counts.synced,
        (ATTACHMENTS - REFUSED) as u64,
        "everything else converged"
    );
    assert_eq!(counts.archived, REFUSED as u64);
    for row in &refused {
        let row = queue.get(&row.id).await.unwrap().unwrap();
        assert_eq!(row.state, AttachmentState::Archived);
        assert!(row.last_error.unwrap().contains("row-level security"));
        assert_eq!(row.attempts, 1, "a permanent refusal is not retried");
    }
    let uploads = remote.calls().uploads.load(Ordering::SeqCst);
    eprintln!("soak: {uploads} upload calls for {ATTACHMENTS} attachments");
    // with 35 % of calls failing, an upload takes 1 / 0.65 ≈ 1.54 calls on average: about
    // 3,080 calls for 2,000 uploads (standard deviation about 40). A hot loop would be far above.
    assert!(
        uploads < (ATTACHMENTS as u64) * 2,
        "{uploads} upload calls for {ATTACHMENTS} attachments"
    );
    assert!(
        uploads > ATTACHMENTS as u64,
        "faults were injected: {uploads} calls"
    );

    // once the refusal is lifted, retry(id) brings an archived one back
    remote.heal();
    let again = refused[0].id.clone();
    queue.retry(&again).await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(
        queue.get(&again).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
}
