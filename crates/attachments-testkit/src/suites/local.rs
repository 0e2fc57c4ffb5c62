use attachments_core::{ErrorKind, LocalStorage, collect_bytes};

use super::{HOSTILE_PATHS, unique_prefix};
use crate::data::{failing_stream, patterned_bytes, patterned_stream};

/// Check a [`LocalStorage`] against its contract. Writes only below a fresh prefix and removes
/// what it wrote.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// attachments_testkit::local_storage_suite(&attachments_testkit::MemoryLocalStorage::default()).await;
/// # });
/// ```
pub async fn local_storage_suite(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let path = |name: &str| format!("{prefix}/{name}");

    // round trips of 0 bytes, 1 byte and 20 MiB in uneven chunks
    for (seed, len) in [(1u64, 0u64), (2, 1), (3, 20 << 20)] {
        let name = path(&format!("size-{len}.bin"));
        let written = storage
            .write(&name, patterned_stream(seed, len))
            .await
            .unwrap_or_else(|e| panic!("write of {len} bytes failed: {e}"));
        assert_eq!(written, len, "write returns the number of bytes written");
        assert!(storage.exists(&name).await.unwrap(), "written file exists");
        let back = collect_bytes(storage.read(&name).await.unwrap())
            .await
            .unwrap();
        assert!(
            back == patterned_bytes(seed, len),
            "read returns exactly what was written ({len} bytes)"
        );
    }

    // a downloaded file (which may be less durable) reads back the same, and a failing one
    // leaves nothing
    let name = path("downloaded/size-3MiB.bin");
    let written = storage
        .write_downloaded(&name, patterned_stream(4, 3 << 20))
        .await
        .unwrap();
    assert_eq!(written, 3 << 20);
    let back = collect_bytes(storage.read(&name).await.unwrap())
        .await
        .unwrap();
    assert!(
        back == patterned_bytes(4, 3 << 20),
        "a download reads back as written"
    );
    let before = sorted(storage.list().await.unwrap());
    assert!(
        storage
            .write_downloaded(&path("downloaded/broken.bin"), failing_stream(5, 70_000))
            .await
            .is_err()
    );
    assert_eq!(
        sorted(storage.list().await.unwrap()),
        before,
        "a failed download leaves nothing"
    );
    for hostile in HOSTILE_PATHS {
        let error = storage
            .write_downloaded(hostile, patterned_stream(6, 10))
            .await
            .expect_err("a hostile path is refused");
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{hostile:?}: {error}"
        );
    }
    storage.delete(&name).await.unwrap();

    // overwrite replaces the contents
    let name = path("overwrite.bin");
    storage
        .write(&name, patterned_stream(10, 5000))
        .await
        .unwrap();
    storage
        .write(&name, patterned_stream(11, 300))
        .await
        .unwrap();
    let back = collect_bytes(storage.read(&name).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        back,
        patterned_bytes(11, 300),
        "a second write replaces the first"
    );

    // a write whose stream fails leaves the old contents and nothing new
    let before = sorted(storage.list().await.unwrap());
    let err = storage
        .write(&name, failing_stream(12, 70_000))
        .await
        .expect_err("a failing stream fails the write");
    let _ = err;
    let back = collect_bytes(storage.read(&name).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        back,
        patterned_bytes(11, 300),
        "a failed write is atomic: old contents stay"
    );
    let fresh = path("never.bin");
    assert!(storage.write(&fresh, failing_stream(13, 10)).await.is_err());
    assert!(
        !storage.exists(&fresh).await.unwrap(),
        "a failed write leaves no file"
    );
    assert_eq!(
        sorted(storage.list().await.unwrap()),
        before,
        "a failed write lists nothing new"
    );

    // unicode and nested names
    let unicode = path("nested/dir/été 📷 photo.jpg");
    storage
        .write(&unicode, patterned_stream(14, 100))
        .await
        .unwrap();
    assert!(
        storage.list().await.unwrap().contains(&unicode),
        "list shows nested unicode paths"
    );
    let back = collect_bytes(storage.read(&unicode).await.unwrap())
        .await
        .unwrap();
    assert_eq!(back, patterned_bytes(14, 100));

    // missing files
    let missing = path("missing.bin");
    let err = storage
        .read(&missing)
        .await
        .err()
        .expect("reading a missing file fails");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "reading a missing file is NotFound"
    );
    assert!(!storage.exists(&missing).await.unwrap());
    storage
        .delete(&missing)
        .await
        .expect("deleting a missing file is Ok");

    // delete
    storage.delete(&unicode).await.unwrap();
    assert!(
        !storage.exists(&unicode).await.unwrap(),
        "a deleted file is gone"
    );

    // hostile paths are refused and change nothing
    let too_long = "x".repeat(10_000);
    let before = sorted(storage.list().await.unwrap());
    for hostile in HOSTILE_PATHS.iter().copied().chain([too_long.as_str()]) {
        let err = storage
            .write(hostile, patterned_stream(15, 10))
            .await
            .expect_err("hostile path refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "write {hostile:?}");
        let err = storage
            .read(hostile)
            .await
            .err()
            .expect("hostile read refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "read {hostile:?}");
        let err = storage
            .delete(hostile)
            .await
            .expect_err("hostile delete refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "delete {hostile:?}");
        let err = storage
            .exists(hostile)
            .await
            .expect_err("hostile exists refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "exists {hostile:?}");
    }
    assert_eq!(
        sorted(storage.list().await.unwrap()),
        before,
        "refused paths wrote nothing"
    );

    storage
        .remove_temp_files()
        .await
        .expect("removing temp files works");
    for file in storage.list().await.unwrap() {
        if file.starts_with(&prefix) {
            storage.delete(&file).await.unwrap();
        }
    }
}

fn sorted(mut paths: Vec<String>) -> Vec<String> {
    paths.sort();
    paths
}
