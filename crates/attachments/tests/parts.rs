//! Large downloads in byte ranges, end to end on the embedded defaults (a real SQLite file, a
//! local directory, a directory as the remote, which downloads ranges): what lands is the
//! object byte for byte, and a range that fails, arrives damaged, or comes from a changed
//! object never leaves a visible partial file nor a row that says `Synced`.

mod common;

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::sqlite::SqliteStore;
use attachments::{
    Attachment, AttachmentId, AttachmentQueue, AttachmentState, ByteStream, Error, ErrorKind,
    RangeBody, RemoteStorage, Result, RetryPolicy, SaveFile, SqliteAttachmentQueue, async_trait,
};
use attachments_testkit::{patterned_bytes, patterned_stream};
use common::{Device, files_below};
use futures_util::StreamExt;

/// Parts of 1 MiB (the smallest allowed), so a few MiB make several ranges.
const PART: u64 = 1 << 20;
/// Five full parts and a short last one.
const SIZE: u64 = 5 * PART + 12_345;

/// What the wrapped remote does to the range that starts at a given offset.
#[derive(Debug, Clone, Copy)]
enum RangeFault {
    /// The request fails (a retryable network error).
    Fail,
    /// The bytes arrive with one of them flipped.
    Damage,
    /// The answer says the object is a new version.
    NewVersion,
}

/// A remote that passes everything on, but for one planned fault on one range.
#[derive(Clone)]
struct RangeFaults {
    inner: FsRemoteStorage,
    planned: Arc<Mutex<Option<(u64, RangeFault)>>>,
    ranges_asked: Arc<Mutex<Vec<Range<u64>>>>,
}

impl RangeFaults {
    fn new(inner: FsRemoteStorage) -> Self {
        RangeFaults {
            inner,
            planned: Arc::default(),
            ranges_asked: Arc::default(),
        }
    }

    fn plan(&self, offset: u64, fault: RangeFault) {
        *self.planned.lock().unwrap() = Some((offset, fault));
    }

    fn heal(&self) {
        *self.planned.lock().unwrap() = None;
    }
}

#[async_trait]
impl RemoteStorage for RangeFaults {
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
        self.ranges_asked.lock().unwrap().push(range.clone());
        let fault = match *self.planned.lock().unwrap() {
            Some((offset, fault)) if offset == range.start => Some(fault),
            _ => None,
        };
        if let Some(RangeFault::Fail) = fault {
            return Err(
                Error::new(ErrorKind::Unavailable, "injected: connection reset")
                    .with_retryable(true),
            );
        }
        let mut body = self
            .inner
            .download_range(attachment, range, version)
            .await?;
        match fault {
            Some(RangeFault::Damage) => {
                let mut first = true;
                body.data = Box::pin(body.data.map(move |chunk| {
                    let chunk = chunk?;
                    if !std::mem::take(&mut first) || chunk.is_empty() {
                        return Ok(chunk);
                    }
                    let mut damaged = chunk.to_vec();
                    damaged[0] ^= 0xff;
                    Ok(damaged.into())
                }));
            }
            Some(RangeFault::NewVersion) => body.version = Some("a newer upload".into()),
            _ => {}
        }
        Ok(body)
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        self.inner.delete(attachment).await
    }
}

/// A device whose remote is `remote`, downloading in parts of `PART`, three at once.
async fn queue_on(device: &Device, remote: RangeFaults) -> AttachmentQueue<SqliteStore> {
    SqliteAttachmentQueue::builder(
        SqliteStore::new(device.pool.clone()).await.unwrap(),
        FsLocalStorage::new(device.local_dir()).unwrap(),
        remote,
    )
    .download_parts(PART, 3)
    // a failed try is due again at once
    .retry(RetryPolicy {
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    })
    .build()
    .unwrap()
}

/// A saved and uploaded attachment whose local file is then lost, so the next pass downloads
/// it again; the row knows its size and checksum.
async fn saved_then_lost(device: &Device, remote: &RangeFaults) -> Attachment {
    let queue = queue_on(device, remote.clone()).await;
    let saved = queue
        .save_file(SaveFile::new(patterned_stream(9, SIZE)).file_extension("bin"))
        .await
        .unwrap();
    assert_eq!(queue.sync_now().await.unwrap().uploaded, 1);
    queue.close().await;
    std::fs::remove_file(device.local_dir().join(&saved.filename)).unwrap();
    saved
}

/// Files in the local root, staged and temporary ones included (not the lock).
fn every_file(device: &Device) -> Vec<String> {
    let hidden = device.local_dir().join(attachments::fs::TEMP_DIR);
    let mut files = files_below(&device.local_dir());
    if hidden.exists() {
        for entry in walk(&hidden) {
            if !entry.ends_with("lock") {
                files.push(entry);
            }
        }
    }
    files
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn a_large_download_in_parts_lands_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let remote = RangeFaults::new(FsRemoteStorage::new(dir.path().join("remote")).unwrap());
    let saved = saved_then_lost(&device, &remote).await;

    let queue = queue_on(&device, remote.clone()).await;
    assert_eq!(queue.sync_now().await.unwrap().downloaded, 1);
    let local = std::fs::read(device.local_dir().join(&saved.filename)).unwrap();
    assert!(
        local == patterned_bytes(9, SIZE),
        "byte identical ({} bytes)",
        local.len()
    );
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
    assert_eq!(row.checksum, saved.checksum, "the checksum of what landed");
    let mut asked = remote.ranges_asked.lock().unwrap().clone();
    asked.sort_by_key(|range| range.start);
    assert_eq!(asked.len(), 6, "one range per part: {asked:?}");
    assert_eq!(asked.last().unwrap().start, 5 * PART);
    assert_eq!(every_file(&device), vec![saved.filename.clone()]);
    queue.close().await;
}

#[tokio::test]
async fn an_attachment_new_to_this_device_downloads_in_parts() {
    // no size or checksum known: the first range tells the size
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let remote = RangeFaults::new(FsRemoteStorage::new(dir.path().join("remote")).unwrap());
    std::fs::create_dir_all(dir.path().join("remote")).unwrap();
    std::fs::write(
        dir.path().join("remote/fresh.jpg"),
        patterned_bytes(10, SIZE),
    )
    .unwrap();
    let queue = queue_on(&device, remote.clone()).await;
    let id = AttachmentId::new("fresh").unwrap();
    queue.set_referenced(vec![common::item(&id)]).await.unwrap();
    assert_eq!(queue.sync_now().await.unwrap().downloaded, 1);
    let local = std::fs::read(device.local_dir().join("fresh.jpg")).unwrap();
    assert!(local == patterned_bytes(10, SIZE), "byte identical");
    assert_eq!(queue.get(&id).await.unwrap().unwrap().size, Some(SIZE));
    assert_eq!(remote.ranges_asked.lock().unwrap().len(), 6);
    queue.close().await;
}

/// Download with `fault` planned on the third range: the row must not say `Synced` and no
/// file may be visible, staged or left in the temporary area; once healed, the download
/// lands whole.
async fn a_fault_on_one_range_leaves_nothing(fault: RangeFault, expected: ErrorKind) {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let remote = RangeFaults::new(FsRemoteStorage::new(dir.path().join("remote")).unwrap());
    let saved = saved_then_lost(&device, &remote).await;

    remote.plan(2 * PART, fault);
    let queue = queue_on(&device, remote.clone()).await;
    let summary = queue.sync_now().await.unwrap();
    assert_eq!((summary.downloaded, summary.retrying), (0, 1), "{fault:?}");
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::QueuedDownload, "{fault:?}");
    let error = row.last_error.clone().unwrap_or_default();
    assert!(
        error.contains(expected.as_str()),
        "{fault:?} fails as {expected:?}: {error}"
    );
    assert!(
        every_file(&device).is_empty(),
        "{fault:?}: no file anywhere: {:?}",
        every_file(&device)
    );

    remote.heal();
    assert_eq!(queue.sync_now().await.unwrap().downloaded, 1);
    let local = std::fs::read(device.local_dir().join(&saved.filename)).unwrap();
    assert!(local == patterned_bytes(9, SIZE), "whole once healed");
    let row = queue.get(&saved.id).await.unwrap().unwrap();
    assert_eq!(row.state, AttachmentState::Synced);
    queue.close().await;
}

#[tokio::test]
async fn a_failing_range_leaves_no_visible_partial_file() {
    a_fault_on_one_range_leaves_nothing(RangeFault::Fail, ErrorKind::Unavailable).await;
}

#[tokio::test]
async fn a_damaged_range_is_never_marked_synced() {
    a_fault_on_one_range_leaves_nothing(RangeFault::Damage, ErrorKind::Corrupt).await;
}

#[tokio::test]
async fn an_object_that_changes_between_ranges_is_downloaded_again() {
    a_fault_on_one_range_leaves_nothing(RangeFault::NewVersion, ErrorKind::Corrupt).await;
}
