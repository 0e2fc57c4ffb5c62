//! The promises of [`RemoteStorage::download_range`], for remotes that support byte ranges
//! ([`RemoteStorage::supports_ranges`]), and of [`LocalStorage::create_staged_parts`]: the
//! queue downloads large files in parts through them.

use attachments_core::{
    Attachment, ErrorKind, LocalStorage, RangeBody, RemoteStorage, byte_stream_from, collect_bytes,
};

use super::remote::remove;
use super::unique_prefix;
use crate::data::{patterned_bytes, patterned_stream, upload_row};

/// An object size that is not a multiple of any part size.
const OBJECT_SIZE: u64 = (3 << 20) + 7;

/// Check every ranged-read promise below, when `remote` supports ranges (nothing otherwise).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // the memory remote downloads only whole objects: nothing to check
/// attachments_testkit::ranged_reads_suite(&attachments_testkit::MemoryRemoteStorage::default()).await;
/// # });
/// ```
pub async fn ranged_reads_suite(remote: &dyn RemoteStorage) {
    if !remote.supports_ranges() {
        return;
    }
    a_range_in_the_middle_is_exactly_those_bytes(remote).await;
    the_last_range_is_cut_at_the_end(remote).await;
    a_range_past_the_end_is_refused(remote).await;
    the_first_range_of_an_empty_object_is_empty(remote).await;
    a_range_of_a_changed_object_is_refused(remote).await;
    a_range_of_a_missing_object_is_not_found(remote).await;
}

/// Promise: a range in the middle holds exactly those bytes, with the object's whole size.
pub async fn a_range_in_the_middle_is_exactly_those_bytes(remote: &dyn RemoteStorage) {
    let row = uploaded(remote, "middle", 71, OBJECT_SIZE).await;
    let (start, end) = (1 << 20, (2 << 20) + 3);
    let part = range(remote, &row, start, end, None).await;
    assert_eq!(part.object_size, OBJECT_SIZE, "the whole object's size");
    let bytes = collect_bytes(part.data).await.unwrap();
    assert!(
        bytes == patterned_bytes(71, OBJECT_SIZE)[at(start)..at(end)],
        "bytes {start}..{end} come back exactly ({} bytes read)",
        bytes.len()
    );
    remove(remote, &row).await;
}

/// Promise: a range that ends past the object's end is cut at it (the last part).
pub async fn the_last_range_is_cut_at_the_end(remote: &dyn RemoteStorage) {
    let row = uploaded(remote, "last", 72, OBJECT_SIZE).await;
    let start = OBJECT_SIZE - 100;
    let part = range(remote, &row, start, OBJECT_SIZE + 1000, None).await;
    assert_eq!(part.object_size, OBJECT_SIZE);
    let bytes = collect_bytes(part.data).await.unwrap();
    assert!(
        bytes == patterned_bytes(72, OBJECT_SIZE)[at(start)..],
        "the last 100 bytes, not more ({} read)",
        bytes.len()
    );
    remove(remote, &row).await;
}

/// Promise: a range that starts past the object's end is refused with `InvalidInput`, not
/// retryable.
pub async fn a_range_past_the_end_is_refused(remote: &dyn RemoteStorage) {
    let row = uploaded(remote, "past", 73, 1000).await;
    let error = remote
        .download_range(&row, 2000..3000, None)
        .await
        .expect_err("a range past the end is refused");
    assert_eq!(
        (error.kind(), error.is_retryable()),
        (ErrorKind::InvalidInput, false),
        "{error}"
    );
    remove(remote, &row).await;
}

/// Promise: the first range of an empty object is empty and says the object is empty (the
/// queue asks for a first range before it knows the size).
pub async fn the_first_range_of_an_empty_object_is_empty(remote: &dyn RemoteStorage) {
    let row = uploaded(remote, "empty", 74, 0).await;
    let part = range(remote, &row, 0, 1 << 20, None).await;
    assert_eq!(part.object_size, 0);
    assert!(collect_bytes(part.data).await.unwrap().is_empty());
    remove(remote, &row).await;
}

/// Promise: a range asked of the version a first range reported, once the object was
/// replaced, is refused as [`object_changed`](attachments_core::object_changed) (`Corrupt`,
/// retryable): the queue then starts the download over rather than mixing two versions.
pub async fn a_range_of_a_changed_object_is_refused(remote: &dyn RemoteStorage) {
    let row = uploaded(remote, "changed", 75, OBJECT_SIZE).await;
    let first = range(remote, &row, 0, 1 << 20, None).await;
    let Some(version) = first.version.clone() else {
        // a remote that cannot tell versions apart has nothing to promise here
        remove(remote, &row).await;
        return;
    };
    drop(first);
    // the same version is served
    let same = range(remote, &row, 1 << 20, 2 << 20, Some(&version)).await;
    assert_eq!(same.version.as_deref(), Some(version.as_str()));
    drop(same);
    remote
        .upload(&row, patterned_stream(76, OBJECT_SIZE))
        .await
        .unwrap();
    let error = remote
        .download_range(&row, (1 << 20)..(2 << 20), Some(&version))
        .await
        .expect_err("a range of a replaced object is refused");
    assert_eq!(
        (error.kind(), error.is_retryable()),
        (ErrorKind::Corrupt, true),
        "{error}"
    );
    remove(remote, &row).await;
}

/// Promise: a range of a missing object is `NotFound`, as a download is.
pub async fn a_range_of_a_missing_object_is_not_found(remote: &dyn RemoteStorage) {
    let row = upload_row(&format!("{}/missing.bin", unique_prefix("ranges")), Some(0));
    let error = remote
        .download_range(&row, 0..100, None)
        .await
        .expect_err("a missing object has no ranges");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
}

async fn uploaded(remote: &dyn RemoteStorage, name: &str, seed: u64, len: u64) -> Attachment {
    let row = upload_row(
        &format!("{}/{name}.bin", unique_prefix("ranges")),
        Some(len),
    );
    remote
        .upload(&row, patterned_stream(seed, len))
        .await
        .unwrap_or_else(|e| panic!("upload of {len} bytes failed: {e}"));
    row
}

async fn range(
    remote: &dyn RemoteStorage,
    row: &Attachment,
    start: u64,
    end: u64,
    version: Option<&str>,
) -> RangeBody {
    remote
        .download_range(row, start..end, version)
        .await
        .unwrap_or_else(|e| panic!("bytes {start}..{end} of {:?}: {e}", row.filename))
}

/// Check the promises of [`LocalStorage::create_staged_parts`], when `storage` writes staged
/// files in parts (nothing otherwise): parts written in any order read back whole once
/// finished, a part past the end is refused, a writer dropped unfinished leaves nothing.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // the memory storage writes only streams in order: nothing to check
/// attachments_testkit::staged_parts_suite(&attachments_testkit::MemoryLocalStorage::default()).await;
/// # });
/// ```
pub async fn staged_parts_suite(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("parts");
    let path = format!("{prefix}/whole.bin");
    let Some(parts) = storage
        .create_staged_parts(&path, OBJECT_SIZE)
        .await
        .unwrap()
    else {
        return;
    };
    let whole = patterned_bytes(81, OBJECT_SIZE);
    // the last part first, then the others, the middle one in small chunks
    let cuts = [0, 1 << 20, 2 << 20, OBJECT_SIZE];
    for index in [2usize, 0, 1] {
        let (start, end) = (at(cuts[index]), at(cuts[index + 1]));
        let chunks: Vec<Vec<u8>> = whole[start..end].chunks(4099).map(<[u8]>::to_vec).collect();
        let written = parts
            .write_at(cuts[index], byte_stream_from(chunks))
            .await
            .unwrap();
        assert_eq!(
            written,
            cuts[index + 1] - cuts[index],
            "a part's length is returned"
        );
    }
    let past = parts
        .write_at(OBJECT_SIZE - 1, byte_stream_from(vec![vec![0u8; 2]]))
        .await
        .expect_err("a part past the end is refused");
    assert_eq!(past.kind(), ErrorKind::InvalidInput, "{past}");
    let middle = collect_bytes(parts.read_at(5, 1 << 20).await.unwrap())
        .await
        .unwrap();
    assert!(
        middle == whole[5..(1 << 20) + 5],
        "read back as written, across parts"
    );
    assert!(
        !storage.list_staged().await.unwrap().contains(&path),
        "not staged before it is finished"
    );
    parts.finish().await.unwrap();
    assert!(
        collect_bytes(storage.read_staged(&path).await.unwrap())
            .await
            .unwrap()
            == whole,
        "the finished file is the staged file, byte for byte"
    );
    storage.discard_staged(&path).await.unwrap();

    let dropped = format!("{prefix}/dropped.bin");
    let parts = storage
        .create_staged_parts(&dropped, 10)
        .await
        .unwrap()
        .expect("parts again");
    parts
        .write_at(0, byte_stream_from(vec![b"half".to_vec()]))
        .await
        .unwrap();
    drop(parts);
    assert!(
        !storage.list_staged().await.unwrap().contains(&dropped),
        "a dropped writer stages nothing"
    );
    assert_eq!(
        storage.remove_temp_files().await.unwrap(),
        0,
        "a dropped writer leaves no temp file"
    );
}

/// An offset as an index into the test file in memory.
fn at(offset: u64) -> usize {
    usize::try_from(offset).expect("test files fit in memory")
}
