//! Windows between a row's commit and its file's promotion, files the queue
//! did not write, references refused once and never looked at again, locks.
//!
//! Each test states what a user should see (found by an adversarial review).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use attachments::fs::FsLocalStorage;
use attachments::sqlite::SqliteStore;
use attachments::{
    AttachmentEvent, AttachmentId, AttachmentState, ByteStream, ErrorKind, ExclusiveLock,
    LocalStorage, Result, SaveFile, SqliteAttachmentQueue, WatchedAttachmentItem, async_trait,
    byte_stream_from, collect_bytes,
};
use common::{Device, PATIENCE, item};
use tokio::sync::watch;

/// A local storage that can hold `promote_staged` of one path until released: a way to stop
/// the queue exactly between a row's commit and its file's promotion.
#[derive(Clone)]
struct Gated {
    inner: Arc<FsLocalStorage>,
    gate: Arc<Gate>,
}

struct Gate {
    /// The path whose promotion is held, while armed.
    held_path: Mutex<Option<String>>,
    /// How many promotions of the held path have started (and wait).
    entered: watch::Sender<u64>,
    /// True while held promotions wait.
    closed: watch::Sender<bool>,
    /// How many reads have been answered.
    reads: watch::Sender<u64>,
    /// A path whose next promotion moves the file and then fails, as a directory sync that
    /// returns EIO after the rename does.
    fail_after_promote: Mutex<Option<String>>,
}

impl Gated {
    fn new(root: &std::path::Path) -> Self {
        Gated {
            inner: Arc::new(FsLocalStorage::new(root).unwrap()),
            gate: Arc::new(Gate {
                held_path: Mutex::new(None),
                entered: watch::Sender::new(0),
                closed: watch::Sender::new(false),
                reads: watch::Sender::new(0),
                fail_after_promote: Mutex::new(None),
            }),
        }
    }

    /// Hold every promotion of `path` from now on.
    fn hold_promote(&self, path: &str) {
        *self.gate.held_path.lock().unwrap() = Some(path.to_owned());
        self.gate.closed.send_replace(true);
    }

    /// Wait until a promotion of the held path is waiting at the gate.
    async fn promote_reached(&self) {
        let mut entered = self.gate.entered.subscribe();
        tokio::time::timeout(PATIENCE, entered.wait_for(|n| *n >= 1))
            .await
            .expect("a promotion reached the gate")
            .unwrap();
    }

    /// Wait until at least `count` reads have been answered.
    async fn reads_answered(&self, count: u64) {
        let mut reads = self.gate.reads.subscribe();
        tokio::time::timeout(PATIENCE, reads.wait_for(|n| *n >= count))
            .await
            .expect("the reads were answered")
            .unwrap();
    }

    /// Let held (and later) promotions through.
    fn release(&self) {
        *self.gate.held_path.lock().unwrap() = None;
        self.gate.closed.send_replace(false);
    }
}

#[async_trait]
impl LocalStorage for Gated {
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.inner.write(path, data).await
    }
    async fn write_downloaded(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.inner.write_downloaded(path, data).await
    }
    async fn read(&self, path: &str) -> Result<ByteStream> {
        let read = self.inner.read(path).await;
        self.gate.reads.send_modify(|n| *n += 1);
        read
    }
    async fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn exists(&self, path: &str) -> Result<bool> {
        self.inner.exists(path).await
    }
    async fn list(&self) -> Result<Vec<String>> {
        self.inner.list().await
    }
    async fn remove_temp_files(&self) -> Result<u64> {
        self.inner.remove_temp_files().await
    }
    async fn write_staged(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.inner.write_staged(path, data).await
    }
    async fn promote_staged(&self, path: &str) -> Result<()> {
        let held = self.gate.held_path.lock().unwrap().as_deref() == Some(path);
        if held {
            self.gate.entered.send_modify(|n| *n += 1);
            let mut closed = self.gate.closed.subscribe();
            let _ = closed.wait_for(|closed| !*closed).await;
        }
        self.inner.promote_staged(path).await?;
        let mut failing = self.gate.fail_after_promote.lock().unwrap();
        if failing.as_deref() == Some(path) {
            *failing = None;
            return Err(attachments::Error::new(
                ErrorKind::Other,
                "syncing the directory: Input/output error (os error 5)",
            ));
        }
        Ok(())
    }
    async fn stage_existing(&self, path: &str) -> Result<bool> {
        self.inner.stage_existing(path).await
    }
    async fn discard_staged(&self, path: &str) -> Result<()> {
        self.inner.discard_staged(path).await
    }
    async fn read_staged(&self, path: &str) -> Result<ByteStream> {
        self.inner.read_staged(path).await
    }
    async fn list_staged(&self) -> Result<Vec<String>> {
        self.inner.list_staged().await
    }
    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        self.inner.lock_exclusive()
    }
}

async fn gated_queue(device: &Device, local: &Gated) -> SqliteAttachmentQueue {
    SqliteAttachmentQueue::builder(
        SqliteStore::new(device.pool.clone()).await.unwrap(),
        local.clone(),
        device.remote.clone(),
    )
    .sync_throttle(Duration::from_millis(10))
    .build()
    .unwrap()
}

/// A device whose remote holds `d.jpg` ("remote bytes"), with a gated local storage.
async fn device_with_remote_d(tmp: &std::path::Path) -> (Device, Gated) {
    let device = Device::new(&tmp.join("d"), &tmp.join("remote")).await;
    std::fs::write(tmp.join("remote").join("d.jpg"), b"remote bytes").unwrap();
    let local = Gated::new(&device.local_dir());
    (device, local)
}

fn id(text: &str) -> AttachmentId {
    AttachmentId::new(text).unwrap()
}

fn save(id_: &AttachmentId, ext: Option<&str>, bytes: &[u8]) -> SaveFile {
    let file = SaveFile::new(byte_stream_from(vec![bytes.to_vec()])).id(id_.clone());
    match ext {
        Some(ext) => file.file_extension(ext),
        None => file,
    }
}

async fn contents(queue: &SqliteAttachmentQueue, id_: &AttachmentId) -> Result<Vec<u8>> {
    let stream = queue.read_file(id_).await?;
    Ok(collect_bytes(stream).await.unwrap())
}

async fn state(queue: &SqliteAttachmentQueue, id_: &AttachmentId) -> Option<AttachmentState> {
    queue.get(id_).await.unwrap().map(|row| row.state)
}

/// `stop_sync` while a finished download waits to be promoted: the outcome and the promotion
/// run to their end in a task of their own, so a `Synced` attachment can always be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sync_during_a_download_promotion_leaves_a_synced_row_without_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (device, local) = device_with_remote_d(tmp.path()).await;
    let queue = gated_queue(&device, &local).await;
    let d = id("d");

    local.hold_promote("d.jpg");
    queue.set_referenced(vec![item(&d)]).await.unwrap();
    queue.start_sync().await.unwrap();
    local.promote_reached().await;
    queue.stop_sync().await;
    local.release();

    // sync again, as an app coming back to the foreground would
    queue.start_sync().await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &d).await, Some(AttachmentState::Synced));
    let read = contents(&queue, &d).await;
    queue.close().await;
    assert_eq!(
        read.map_err(|e| e.to_string()),
        Ok(b"remote bytes".to_vec()),
        "a Synced attachment must be readable"
    );
}

/// The row of a download says `Synced` a moment before its file is promoted: `read_file` in
/// that moment waits for the file and returns its bytes, never `NotFound` for a `Synced` row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_while_a_synced_download_is_promoted_returns_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (device, local) = device_with_remote_d(tmp.path()).await;
    let queue = gated_queue(&device, &local).await;
    let d = id("d");

    local.hold_promote("d.jpg");
    queue.set_referenced(vec![item(&d)]).await.unwrap();
    queue.start_sync().await.unwrap();
    local.promote_reached().await;
    assert_eq!(state(&queue, &d).await, Some(AttachmentState::Synced));
    let reader = {
        let queue = queue.clone();
        let d = d.clone();
        tokio::spawn(async move { contents(&queue, &d).await })
    };
    // the reader has found no file at the path (still staged), and only then is the
    // promotion let through: the reader must wait for it, not answer NotFound
    local.reads_answered(1).await;
    local.release();
    let read = reader.await.unwrap();
    queue.close().await;
    assert_eq!(
        read.map_err(|e| e.to_string()),
        Ok(b"remote bytes".to_vec()),
        "a Synced attachment is readable through read_file"
    );
}

/// A download whose file was moved into place but whose directory sync then failed (EIO) is
/// kept `Synced`: the file is the queue's own and complete (start-up re-downloads it if a
/// power cut loses it), never turned into "a file the queue did not write" that blocks every
/// retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_directory_sync_failed_after_the_move_stays_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let (device, local) = device_with_remote_d(tmp.path()).await;
    *local.gate.fail_after_promote.lock().unwrap() = Some("d.jpg".to_owned());
    let queue = gated_queue(&device, &local).await;
    let d = id("d");

    queue.set_referenced(vec![item(&d)]).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.sync_now().await.unwrap();
    let row = queue.get(&d).await.unwrap().unwrap();
    let read = contents(&queue, &d).await;
    queue.close().await;
    assert_eq!(row.state, AttachmentState::Synced);
    assert_eq!(row.local_uri.as_deref(), Some("d.jpg"));
    assert_eq!(
        read.map_err(|e| e.to_string()),
        Ok(b"remote bytes".to_vec())
    );
}

/// A save whose future is dropped (a timeout, a cancelled UI task) after its row committed but
/// before its file left the staging area still promotes its file, and the upload succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_cancelled_after_its_commit_is_archived_as_a_failed_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let local = Gated::new(&device.local_dir());
    let queue = gated_queue(&device, &local).await;
    queue.sync_now().await.unwrap(); // start-up verification is behind us
    let a = id("a");

    local.hold_promote("a.jpg");
    let saving = tokio::time::timeout(
        Duration::from_millis(300),
        queue.save_file(save(&a, Some("jpg"), b"the only copy")),
    )
    .await;
    assert!(saving.is_err(), "the save was cut short at its promotion");
    local.release();

    queue.sync_now().await.unwrap();
    let row = queue.get(&a).await.unwrap().expect("the row committed");
    let retried = queue.retry(&a).await;
    queue.close().await;
    assert_ne!(
        row.state,
        AttachmentState::Archived,
        "a saved file must not be archived as a failed upload: {:?}; retry says {:?}",
        row.last_error,
        retried.map_err(|e| e.to_string())
    );
}

/// The same cancelled save, then a save of another id whose file name is the same (`a.jpg`
/// without an extension vs `a` with `jpg`): the second save is refused with `AlreadyExists`
/// and never touches the first one's staged file, its only copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_save_destroys_the_staged_only_copy_of_another_attachment() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let a = id("a");
    {
        let local = Gated::new(&device.local_dir());
        let queue = gated_queue(&device, &local).await;
        queue.sync_now().await.unwrap();
        local.hold_promote("a.jpg");
        let saving = tokio::time::timeout(
            Duration::from_millis(300),
            queue.save_file(save(&a, Some("jpg"), b"the only copy")),
        )
        .await;
        assert!(saving.is_err());
        local.release();
        let refused = queue
            .save_file(save(&id("a.jpg"), None, b"something else"))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::AlreadyExists);
        queue.close().await;
    }
    // restart on the same files: start-up settles the staging area
    let queue = device.builder().await.build().unwrap();
    queue.sync_now().await.unwrap();
    let read = contents(&queue, &a).await;
    queue.close().await;
    assert_eq!(
        read.map_err(|e| e.to_string()),
        Ok(b"the only copy".to_vec()),
        "the saved file must survive a refused save of another id"
    );
}

/// A save between its commit and its promotion while the first pass runs: verification
/// leaves work in flight alone, so the save is never archived as "local file missing".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_verification_archives_a_save_in_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let local = Gated::new(&device.local_dir());
    let queue = gated_queue(&device, &local).await;
    let a = id("a");

    local.hold_promote("a.jpg");
    let saving = {
        let queue = queue.clone();
        let a = a.clone();
        tokio::spawn(async move { queue.save_file(save(&a, Some("jpg"), b"photo")).await })
    };
    local.promote_reached().await;
    let pass = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.sync_now().await })
    };
    // the first pass runs to its end while the save waits at its promotion
    pass.await.unwrap().unwrap();
    local.release();
    let saved = saving.await.unwrap();
    assert!(saved.is_ok(), "the save succeeded: {saved:?}");
    let row = queue.get(&a).await.unwrap().unwrap();
    queue.close().await;
    assert_ne!(
        row.state,
        AttachmentState::Archived,
        "a save that returned Ok must not be archived: {:?}",
        row.last_error
    );
}

/// A watched item refused because its file name was taken is tracked once the name is free,
/// without a restart: a refused item is looked at again by the next reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reference_is_tracked_once_its_file_name_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let a = id("a");
    let b = id("b");
    let b_item = WatchedAttachmentItem::new(b.clone()).with_filename("a.jpg");
    queue
        .save_file(save(&a, Some("jpg"), b"a's photo"))
        .await
        .unwrap();
    queue.sync_now().await.unwrap();
    // b names a.jpg, which a holds: refused
    queue.set_referenced(vec![b_item.clone()]).await.unwrap();
    assert_eq!(state(&queue, &b).await, None);
    // a goes away; the file name is free
    queue.delete_file(&a).await.unwrap();
    queue.sync_now().await.unwrap();
    assert_eq!(state(&queue, &a).await, None);
    // the app still references b, in every new reading
    queue.set_referenced(vec![b_item.clone()]).await.unwrap();
    queue.sync_now().await.unwrap();
    let tracked = state(&queue, &b).await;
    queue.close().await;
    // what a restart (a full reconcile) does with the same reading
    let restarted = device.builder().await.build().unwrap();
    restarted.set_referenced(vec![b_item]).await.unwrap();
    let after_restart = state(&restarted, &b).await;
    restarted.close().await;
    assert_eq!(
        tracked, after_restart,
        "the same reading must end the same with or without a restart"
    );
}

/// A download whose file name is one of the app's own files in the local root never replaces
/// it (nor does eviction remove it later). The file name comes from the watched query, i.e.
/// usually from synced data another device or user wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_never_overwrites_a_file_the_queue_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    std::fs::create_dir_all(device.local_dir()).unwrap();
    std::fs::write(device.local_dir().join("notes.txt"), b"the app's own notes").unwrap();
    std::fs::write(tmp.path().join("remote").join("notes.txt"), b"remote").unwrap();
    let queue = device
        .builder()
        .await
        .archived_cache_limit(0)
        .build()
        .unwrap();
    let n = id("n");
    queue
        .set_referenced(vec![
            WatchedAttachmentItem::new(n.clone()).with_filename("notes.txt"),
        ])
        .await
        .unwrap();
    queue.sync_now().await.unwrap();
    let after_download = std::fs::read(device.local_dir().join("notes.txt")).ok();
    // no longer referenced: archived, then evicted (cache limit 0)
    queue.set_referenced(vec![]).await.unwrap();
    queue.sync_now().await.unwrap();
    let after_eviction = std::fs::read(device.local_dir().join("notes.txt")).ok();
    queue.close().await;
    assert_eq!(
        after_download.as_deref(),
        Some(&b"the app's own notes"[..]),
        "the download replaced the app's file"
    );
    assert_eq!(
        after_eviction.as_deref(),
        Some(&b"the app's own notes"[..]),
        "eviction removed the app's file"
    );
}

/// A download whose path holds a directory (the app's): promotion fails, so the row does not
/// stay `Synced`; it goes back to a failed download, with an error event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_blocked_by_a_directory_is_not_reported_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    std::fs::create_dir_all(device.local_dir().join("d.jpg")).unwrap();
    std::fs::write(device.local_dir().join("d.jpg").join("keep"), b"app").unwrap();
    std::fs::write(tmp.path().join("remote").join("d.jpg"), b"remote").unwrap();
    let queue = device.builder().await.build().unwrap();
    let d = id("d");
    queue.set_referenced(vec![item(&d)]).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.sync_now().await.unwrap();
    let row_state = state(&queue, &d).await;
    let read = contents(&queue, &d).await.map_err(|e| e.kind());
    queue.close().await;
    assert!(
        std::fs::read(device.local_dir().join("d.jpg").join("keep")).is_ok(),
        "the app's directory is untouched"
    );
    assert!(
        !(row_state == Some(AttachmentState::Synced) && read.is_err()),
        "the row says {row_state:?} but read_file is {read:?}"
    );
}

/// Dropping every handle of a running queue (no `close`) and building a new one on the same
/// database and directory right away, as an app re-creating its queue would: must not be
/// refused with `InUse` (held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_queue_releases_its_locks_for_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    queue.start_sync().await.unwrap();
    queue.sync_now().await.unwrap();
    drop(queue);
    let again = device.builder().await.build();
    assert!(
        again.is_ok(),
        "no queue is left, yet building one fails: {:?}",
        again.err()
    );
}

/// Two pools on one database file, one opened through a symbolic link: the table lock must
/// still keep the second queue out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_lock_holds_through_a_symlinked_database_path() {
    use attachments::sqlite::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions,
    };
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let link = tmp.path().join("link.db");
    std::os::unix::fs::symlink(device.dir.join("app.db"), &link).unwrap();
    let other_pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&link)
                .journal_mode(SqliteJournalMode::Wal),
        )
        .await
        .unwrap();
    let first = device.builder().await.build().unwrap();
    let second = SqliteAttachmentQueue::builder(
        SqliteStore::new(other_pool).await.unwrap(),
        FsLocalStorage::new(tmp.path().join("other-root")).unwrap(),
        device.remote.clone(),
    )
    .build();
    first.close().await;
    assert_eq!(
        second.err().map(|e| e.kind()),
        Some(ErrorKind::InUse),
        "a second queue on the same table"
    );
}

/// Ids that differ only by where the extension goes share a file name: the second save is
/// refused and the first one's file and row stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sharing_a_file_name_are_refused_without_harm() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let a = id("a");
    queue
        .save_file(save(&a, Some("jpg"), b"first"))
        .await
        .unwrap();
    let refused = queue
        .save_file(save(&id("a.jpg"), None, b"second"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AlreadyExists);
    queue.sync_now().await.unwrap();
    assert_eq!(contents(&queue, &a).await.unwrap(), b"first");
    assert_eq!(state(&queue, &a).await, Some(AttachmentState::Synced));
    // and concurrently
    let b = id("b");
    let (x, y) = tokio::join!(
        queue.save_file(save(&b, Some("png"), b"x")),
        queue.save_file(save(&id("b.png"), None, b"y")),
    );
    assert!(x.is_ok() != y.is_ok(), "exactly one wins: {x:?} {y:?}");
    queue.close().await;
}

/// A refused reference is reported with an error event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_to_a_taken_file_name_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::new(&tmp.path().join("d"), &tmp.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    let mut events = queue.subscribe();
    queue
        .save_file(save(&id("a"), Some("jpg"), b"a"))
        .await
        .unwrap();
    queue
        .set_referenced(vec![
            WatchedAttachmentItem::new(id("b")).with_filename("a.jpg"),
        ])
        .await
        .unwrap();
    common::wait_for_event(
        &mut events,
        "the refusal",
        |event| matches!(event, AttachmentEvent::Error { id: Some(i), .. } if i.as_str() == "b"),
    )
    .await;
    queue.close().await;
}
