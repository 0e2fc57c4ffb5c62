//! Adversarial tests from the review of issue 13's work: start-up and the full reconcile walk
//! past a page with an unreadable row; ranged downloads interrupted by the app; grouped saves.

mod common;

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::sqlite::SqliteStore;
use attachments::{
    Attachment, AttachmentId, AttachmentQueue, AttachmentState, ByteStream, RangeBody,
    RemoteStorage, Result, RetryPolicy, SqliteAttachmentQueue, async_trait,
};
use attachments_testkit::patterned_bytes;
use common::Device;

const PART: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// Start-up verification walks past a page with an unreadable row
// ---------------------------------------------------------------------------------------
// A table of 1,001 `Synced` rows (ids r0000..r1000) whose files exist but for the first and
// the last, plus one row written by something else that the store cannot read (an unknown
// state code), sorting first. Start-up must repair both rows whose file is gone: the walk
// over pages must not stop because one page had a row left out.

/// 1,001 `Synced` rows r0000..r1000 whose files exist but for those in `missing`, and, when
/// `foreign`, a row written by another program with a state code this version does not know
/// (the store leaves such rows out, with a warning), sorting first.
async fn seed_table(device: &Device, foreign: bool, missing: &[u32]) {
    drop(SqliteStore::new(device.pool.clone()).await.unwrap());
    std::fs::create_dir_all(device.local_dir()).unwrap();
    let mut tx = device.pool.begin().await.unwrap();
    if foreign {
        sqlx::query(
            "INSERT INTO attachments_queue (id, filename, local_uri, timestamp, size, state, has_synced, version)
             VALUES ('a-foreign', 'a-foreign.jpg', 'a-foreign.jpg', 1, 1, 99, 1, 1)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    for i in 0..=1000u32 {
        let id = format!("r{i:04}");
        let name = format!("{id}.jpg");
        if !missing.contains(&i) {
            std::fs::write(device.local_dir().join(&name), b"x").unwrap();
        }
        sqlx::query(
            "INSERT INTO attachments_queue (id, filename, local_uri, timestamp, size, state, has_synced, version)
             VALUES (?, ?, ?, 1, 1, 3, 1, ?)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&name)
        .bind(i64::from(i) + 2)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn startup_verification_reaches_rows_after_a_page_with_an_unreadable_row() {
    startup_repairs_both_ends(true).await;
}

/// The same table without the foreign row: passes on main (the control).
#[tokio::test]
async fn startup_verification_control_without_an_unreadable_row() {
    startup_repairs_both_ends(false).await;
}

async fn startup_repairs_both_ends(foreign: bool) {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    seed_table(&device, foreign, &[0, 1000]).await;

    let queue = device
        .builder()
        .await
        .retry(RetryPolicy {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    queue.sync_now().await.unwrap();

    let first = queue
        .get(&AttachmentId::new("r0000").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        first.state,
        AttachmentState::Synced,
        "r0000's file is gone: repaired on the first page"
    );
    let last = queue
        .get(&AttachmentId::new("r1000").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !device.local_dir().join("r1000.jpg").exists(),
        "precondition: r1000's file is missing"
    );
    assert_ne!(
        last.state,
        AttachmentState::Synced,
        "r1000 says Synced but its file is gone: start-up never looked at the second page"
    );
    queue.close().await;
}

// ---------------------------------------------------------------------------------------
// Ranged downloads interrupted by the app
// ---------------------------------------------------------------------------------------

/// A remote that holds the range at `hold_at` (the first time it is asked) until released,
/// after saying it was reached.
#[derive(Clone)]
struct HoldsARange {
    inner: FsRemoteStorage,
    hold_at: u64,
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
    held: Arc<Mutex<bool>>,
}

impl HoldsARange {
    fn new(inner: FsRemoteStorage, hold_at: u64) -> Self {
        HoldsARange {
            inner,
            hold_at,
            reached: Arc::default(),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
            held: Arc::default(),
        }
    }
}

#[async_trait]
impl RemoteStorage for HoldsARange {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        self.inner.upload(attachment, data).await
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        self.inner.download(attachment).await
    }

    fn supports_ranges(&self) -> bool {
        true
    }

    async fn download_range(
        &self,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        if range.start == self.hold_at && !std::mem::replace(&mut *self.held.lock().unwrap(), true)
        {
            self.reached.notify_one();
            let _permit = self.release.acquire().await.unwrap();
        }
        self.inner.download_range(attachment, range, version).await
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        self.inner.delete(attachment).await
    }
}

async fn ranged_queue(device: &Device, remote: HoldsARange) -> AttachmentQueue<SqliteStore> {
    SqliteAttachmentQueue::builder(
        SqliteStore::new(device.pool.clone()).await.unwrap(),
        FsLocalStorage::new(device.local_dir()).unwrap(),
        remote,
    )
    .download_parts(PART, 2)
    .retry(RetryPolicy {
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    })
    .build()
    .unwrap()
}

/// Files in the local root and its hidden area (temp and staged), but the lock.
fn all_local_files(device: &Device) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if !path.ends_with("lock") {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&device.local_dir(), &mut out);
    out.sort();
    out
}

/// `clear_queue` while a ranged download of `fresh` is mid-way, then the same id saved again
/// with other bytes: the new save's file and row stand, nothing of the old download is left.
#[tokio::test]
async fn clear_queue_mid_ranged_download_then_id_reused_keeps_the_new_save() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let size = 4 * PART + 1;
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote/fresh.jpg"),
        patterned_bytes(3, size),
    )
    .unwrap();
    let remote = HoldsARange::new(
        FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
        2 * PART,
    );
    let queue = ranged_queue(&device, remote.clone()).await;
    let id = AttachmentId::new("fresh").unwrap();
    queue.set_referenced(vec![common::item(&id)]).await.unwrap();

    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    tokio::time::timeout(common::PATIENCE, remote.reached.notified())
        .await
        .expect("the held range is reached");
    queue.clear_queue().await.unwrap();
    let new_bytes = b"the new photo".to_vec();
    let saved = queue
        .save_file(
            attachments::SaveFile::new(attachments::byte_stream_from(vec![new_bytes.clone()]))
                .id(id.clone())
                .file_extension("jpg"),
        )
        .await
        .unwrap();
    remote.release.add_permits(1);
    let _ = pass.await.unwrap();
    queue.sync_now().await.unwrap();

    assert_eq!(
        std::fs::read(device.local_dir().join("fresh.jpg")).unwrap(),
        new_bytes,
        "the new save's bytes are at the path"
    );
    let row = queue.get(&id).await.unwrap().unwrap();
    assert_eq!(row.checksum, saved.checksum);
    assert_eq!(
        std::fs::read(dir.path().join("remote/fresh.jpg")).unwrap(),
        new_bytes,
        "the new save was uploaded"
    );
    assert_eq!(
        all_local_files(&device),
        vec![device.local_dir().join("fresh.jpg").display().to_string()],
        "no temp or staged file left"
    );
    queue.close().await;
}

/// `delete_file` while a ranged download is mid-way: the row goes, no file is left.
#[tokio::test]
async fn delete_mid_ranged_download_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let size = 3 * PART;
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote/fresh.jpg"),
        patterned_bytes(4, size),
    )
    .unwrap();
    let remote = HoldsARange::new(
        FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
        2 * PART,
    );
    let queue = ranged_queue(&device, remote.clone()).await;
    let id = AttachmentId::new("fresh").unwrap();
    queue.set_referenced(vec![common::item(&id)]).await.unwrap();
    let pass = tokio::spawn({
        let queue = queue.clone();
        async move { queue.sync_now().await }
    });
    tokio::time::timeout(common::PATIENCE, remote.reached.notified())
        .await
        .expect("the held range is reached");
    queue.delete_file(&id).await.unwrap();
    remote.release.add_permits(1);
    let _ = pass.await.unwrap();
    queue.sync_now().await.unwrap();
    assert!(queue.get(&id).await.unwrap().is_none(), "the row is gone");
    assert!(
        all_local_files(&device).is_empty(),
        "{:?}",
        all_local_files(&device)
    );
    assert!(
        !dir.path().join("remote/fresh.jpg").exists(),
        "the object is deleted"
    );
    queue.close().await;
}

/// Edge sizes, new to the device, downloaded in ranges: byte identical, the row Synced.
#[tokio::test]
async fn edge_sizes_download_byte_identical() {
    for (n, size) in [0, 1, PART - 1, PART, PART + 1, 2 * PART, 3 * PART + 1]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
        std::fs::create_dir_all(dir.path().join("remote")).unwrap();
        let bytes = patterned_bytes(n as u64, size);
        std::fs::write(dir.path().join("remote/fresh.jpg"), &bytes).unwrap();
        let remote = HoldsARange::new(
            FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
            u64::MAX,
        );
        let queue = ranged_queue(&device, remote).await;
        let id = AttachmentId::new("fresh").unwrap();
        queue.set_referenced(vec![common::item(&id)]).await.unwrap();
        queue.sync_now().await.unwrap();
        let row = queue.get(&id).await.unwrap().unwrap();
        assert_eq!(
            row.state,
            AttachmentState::Synced,
            "size {size}: {:?}",
            row.last_error
        );
        assert!(
            std::fs::read(device.local_dir().join("fresh.jpg")).unwrap() == bytes,
            "size {size}"
        );
        assert_eq!(row.size, Some(size));
        queue.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// Grouped inserts
// ---------------------------------------------------------------------------------------

/// The same 24 ids each saved twice at once, so saves wait for the writer together and are
/// inserted in groups. Each id is taken exactly once, the other save is refused with
/// `AlreadyExists`, and every version handed out is the row's and never repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_the_same_ids_on_one_store_get_one_answer_each() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let store = SqliteStore::new(device.pool.clone()).await.unwrap();
    // one queue per table (a lock says so): the same id saved twice at once on it
    let queue: AttachmentQueue<SqliteStore> = SqliteAttachmentQueue::builder(
        store.clone(),
        FsLocalStorage::new(dir.path().join("one")).unwrap(),
        FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
    )
    .build()
    .unwrap();
    let queues = vec![queue.clone(), queue];
    // start-up verification out of the way
    for queue in &queues {
        queue.sync_now().await.unwrap();
    }
    const IDS: usize = 24;
    let start = Arc::new(tokio::sync::Barrier::new(IDS * 2));
    let mut saves = Vec::new();
    for n in 0..IDS {
        for (q, queue) in queues.iter().enumerate() {
            let (queue, start) = (queue.clone(), Arc::clone(&start));
            saves.push(tokio::spawn(async move {
                let id = AttachmentId::new(format!("id{n:02}")).unwrap();
                let body = format!("body {n} from queue {q}").into_bytes();
                start.wait().await;
                let result = queue
                    .save_file(
                        attachments::SaveFile::new(attachments::byte_stream_from(vec![body]))
                            .id(id.clone())
                            .file_extension("txt"),
                    )
                    .await;
                (n, q, result)
            }));
        }
    }
    let mut taken = vec![Vec::new(); IDS];
    let mut versions = Vec::new();
    for save in saves {
        let (n, q, result) = save.await.unwrap();
        match result {
            Ok(saved) => {
                taken[n].push(q);
                versions.push(saved.version);
                let row = queues[q].get(&saved.id).await.unwrap().unwrap();
                assert_eq!(
                    row.version, saved.version,
                    "id{n:02}: the version returned is the row's"
                );
                assert_eq!(
                    row.checksum, saved.checksum,
                    "id{n:02}: the row is this save's"
                );
            }
            Err(error) => assert_eq!(
                error.kind(),
                attachments::ErrorKind::AlreadyExists,
                "id{n:02} on queue {q}: {error}"
            ),
        }
    }
    for (n, winners) in taken.iter().enumerate() {
        assert_eq!(winners.len(), 1, "id{n:02} saved by {winners:?}");
    }
    let mut unique = versions.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        versions.len(),
        "versions never repeat: {versions:?}"
    );

    // cleared and saved again: still no version handed out before
    let before = *unique.last().unwrap();
    queues[0].clear_queue().await.unwrap();
    let again = queues[0]
        .save_file(
            attachments::SaveFile::new(attachments::byte_stream_from(vec![b"again".to_vec()]))
                .id(AttachmentId::new("id00").unwrap())
                .file_extension("txt"),
        )
        .await
        .unwrap();
    assert!(again.version > before, "{} after {before}", again.version);
    for queue in &queues {
        queue.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// Full reconcile in pages walks past a page with an unreadable row
// ---------------------------------------------------------------------------------------

/// 1,001 `Synced` rows r0000..r1000 with their files, and one row written by something else
/// that the store cannot read, sorting first. The app then references r0000..r0999 (no longer
/// r1000) and a new id `s-new`: r1000 must be archived, and `s-new` must get a row.
#[tokio::test]
async fn full_reconcile_reaches_rows_and_references_after_a_page_with_an_unreadable_row() {
    full_reconcile_of_a_large_table(true).await;
}

/// The same without the foreign row: passes on main (the control).
#[tokio::test]
async fn full_reconcile_control_without_an_unreadable_row() {
    full_reconcile_of_a_large_table(false).await;
}

async fn full_reconcile_of_a_large_table(foreign: bool) {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    seed_table(&device, foreign, &[]).await;
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    std::fs::write(dir.path().join("remote/s-new.jpg"), b"new").unwrap();

    let queue = device.builder().await.build().unwrap();
    queue.sync_now().await.unwrap();
    let mut items: Vec<_> = (0..1000u32)
        .map(|i| common::item(&AttachmentId::new(format!("r{i:04}")).unwrap()))
        .collect();
    let new_id = AttachmentId::new("s-new").unwrap();
    items.push(common::item(&new_id));
    let set = queue.set_referenced(items).await;
    queue.sync_now().await.unwrap();

    let new_row = queue.get(&new_id).await.unwrap();
    let dropped = queue
        .get(&AttachmentId::new("r1000").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        new_row.is_some(),
        "s-new is referenced but has no row (set_referenced said {set:?})"
    );
    assert_eq!(
        dropped.state,
        AttachmentState::Archived,
        "r1000 is no longer referenced (set_referenced said {set:?})"
    );
    queue.close().await;
}

/// The app drops its queue (no `close`) while a ranged download is mid-way, then opens a new
/// one on the same files: the download lands whole, and nothing of the first try is left.
#[tokio::test]
async fn queue_dropped_mid_ranged_download_then_reopened_lands_whole() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let size = 4 * PART + 3;
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    let bytes = patterned_bytes(5, size);
    std::fs::write(dir.path().join("remote/fresh.jpg"), &bytes).unwrap();
    let remote = HoldsARange::new(
        FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
        2 * PART,
    );
    let queue = ranged_queue(&device, remote.clone()).await;
    let id = AttachmentId::new("fresh").unwrap();
    queue.set_referenced(vec![common::item(&id)]).await.unwrap();
    queue.start_sync().await.unwrap();
    tokio::time::timeout(common::PATIENCE, remote.reached.notified())
        .await
        .expect("the held range is reached");
    drop(queue);
    // the first queue's work ends once cancelled; the held range is let go in case it waits
    remote.release.add_permits(16);

    let reopened = loop {
        let attempt = SqliteAttachmentQueue::builder(
            SqliteStore::new(device.pool.clone()).await.unwrap(),
            FsLocalStorage::new(device.local_dir()).unwrap(),
            HoldsARange::new(
                FsRemoteStorage::new(dir.path().join("remote")).unwrap(),
                u64::MAX,
            ),
        )
        .download_parts(PART, 2)
        .build();
        match attempt {
            Ok(queue) => break queue,
            // the dropped queue's lock goes with its last task
            Err(error) if error.kind() == attachments::ErrorKind::InUse => {
                tokio::task::yield_now().await
            }
            Err(error) => panic!("{error}"),
        }
    };
    reopened
        .set_referenced(vec![common::item(&id)])
        .await
        .unwrap();
    reopened.sync_now().await.unwrap();
    let row = reopened.get(&id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced, "{:?}", row.last_error);
    assert!(std::fs::read(device.local_dir().join("fresh.jpg")).unwrap() == bytes);
    assert_eq!(
        all_local_files(&device),
        vec![device.local_dir().join("fresh.jpg").display().to_string()]
    );
    reopened.close().await;
}
