use attachments_core::{ErrorKind, RemoteStorage, collect_bytes};

use super::{HOSTILE_PATHS, unique_prefix};
use crate::data::{patterned_bytes, patterned_stream, upload_row};

/// Check a [`RemoteStorage`] against its contract. Writes only below a fresh prefix and
/// removes what it wrote.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// attachments_testkit::remote_storage_suite(&attachments_testkit::MemoryRemoteStorage::default()).await;
/// # });
/// ```
pub async fn remote_storage_suite(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote");
    let name = |n: &str| format!("{prefix}/{n}");
    let mut written = Vec::new();

    // empty, tiny, mid-sized (one streamed request in most adapters) and above 16 MiB
    for (seed, len) in [(21u64, 0u64), (22, 1), (24, 3 << 20), (23, 20 << 20)] {
        let row = upload_row(&name(&format!("size-{len}.bin")), Some(len));
        remote
            .upload(&row, patterned_stream(seed, len))
            .await
            .unwrap_or_else(|e| panic!("upload of {len} bytes failed: {e}"));
        let back = collect_bytes(remote.download(&row).await.unwrap())
            .await
            .unwrap();
        assert!(
            back == patterned_bytes(seed, len),
            "download returns exactly what was uploaded ({len} bytes)"
        );
        written.push(row);
    }

    // upload overwrites (a retry after a crash succeeds)
    let row = upload_row(&name("overwrite.bin"), Some(4000));
    remote
        .upload(&row, patterned_stream(24, 4000))
        .await
        .unwrap();
    let mut again = row.clone();
    again.size = Some(10);
    remote
        .upload(&again, patterned_stream(25, 10))
        .await
        .expect("upload overwrites");
    let back = collect_bytes(remote.download(&row).await.unwrap())
        .await
        .unwrap();
    assert_eq!(back, patterned_bytes(25, 10), "the second upload wins");
    written.push(row);

    // unicode and nested names
    let row = upload_row(&name("nested/dir/été 📷 photo.jpg"), Some(100));
    remote
        .upload(&row, patterned_stream(26, 100))
        .await
        .unwrap();
    let back = collect_bytes(remote.download(&row).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        back,
        patterned_bytes(26, 100),
        "unicode nested names round trip"
    );
    written.push(row);

    // missing objects
    let missing = upload_row(&name("missing.bin"), Some(0));
    let err = remote
        .download(&missing)
        .await
        .err()
        .expect("downloading a missing object fails");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "a missing object is NotFound"
    );
    assert!(!err.is_retryable(), "a missing object is not retryable");
    remote
        .delete(&missing)
        .await
        .expect("deleting a missing object is Ok");

    // delete
    for row in &written {
        remote.delete(row).await.unwrap();
        let err = remote
            .download(row)
            .await
            .err()
            .expect("a deleted object is gone");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    // hostile names are refused
    let too_long = "x".repeat(10_000);
    for hostile in HOSTILE_PATHS.iter().copied().chain([too_long.as_str()]) {
        let row = upload_row(hostile, Some(10));
        let err = remote
            .upload(&row, patterned_stream(27, 10))
            .await
            .expect_err("hostile name refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "upload {hostile:?}");
        assert!(!err.is_retryable());
    }
}
