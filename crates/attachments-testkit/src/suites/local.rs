//! The [`LocalStorage`] contract, one public function per promise, each named for what it
//! checks. [`local_storage_suite`] runs them all; an adapter may also call one alone to find
//! which promise broke. Each writes only below a fresh prefix and removes what it wrote.

use attachments_core::{ErrorKind, LocalStorage, collect_bytes};

use super::{HOSTILE_PATHS, unique_prefix};
use crate::data::{failing_stream, patterned_bytes, patterned_stream};

/// Whether a storage keeps staged files apart from stored ones, which decides what the suite
/// expects of the staging methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// The storage has a staging area of its own: a staged file is invisible at its path until
    /// promoted, and `list_staged` names it. `FsLocalStorage` and `MemoryLocalStorage` do.
    Separate,
    /// The storage keeps the trait's default staging methods, which write straight to the
    /// path and list nothing as staged.
    Defaults,
}

/// Check a [`LocalStorage`] with a staging area of its own against its whole contract.
///
/// A storage that keeps the trait's default staging methods fails here on purpose (a missing
/// staging area must never pass unnoticed); it runs
/// [`local_storage_suite_with`]`(storage, Staging::Defaults)` instead.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// attachments_testkit::local_storage_suite(&attachments_testkit::MemoryLocalStorage::default()).await;
/// # });
/// ```
pub async fn local_storage_suite(storage: &dyn LocalStorage) {
    local_storage_suite_with(storage, Staging::Separate).await;
}

/// Check a [`LocalStorage`] against its contract, the staging methods as `staging` says.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_testkit::{local_storage_suite_with, MemoryLocalStorage, Staging};
/// local_storage_suite_with(&MemoryLocalStorage::default(), Staging::Separate).await;
/// # });
/// ```
pub async fn local_storage_suite_with(storage: &dyn LocalStorage, staging: Staging) {
    round_trips_keep_every_byte(storage).await;
    downloads_read_back_and_a_failed_one_leaves_nothing(storage).await;
    a_second_write_replaces_the_first(storage).await;
    a_failed_write_changes_nothing(storage).await;
    nested_and_unicode_paths_are_stored_and_listed(storage).await;
    a_missing_file_is_not_found_and_deleting_it_is_ok(storage).await;
    a_deleted_file_is_gone(storage).await;
    hostile_paths_are_refused_and_change_nothing(storage).await;
    super::startup::exists_many_answers_each_path_in_order(storage).await;
    lock_exclusive_admits_one_holder_at_a_time(storage).await;
    match staging {
        Staging::Separate => {
            a_staged_file_is_invisible_until_promoted(storage).await;
            remove_temp_files_leaves_stored_and_staged_files_alone(storage).await;
            promoting_replaces_the_file_at_the_path(storage).await;
            a_second_staged_write_replaces_the_first(storage).await;
            a_failed_staged_write_leaves_nothing_staged(storage).await;
            staging_an_existing_file_then_discarding_removes_it(storage).await;
            staging_an_existing_file_then_promoting_restores_it(storage).await;
            staging_a_missing_file_moves_nothing(storage).await;
            list_staged_names_exactly_the_staged_files(storage).await;
            discarding_a_missing_staged_file_is_ok(storage).await;
            a_missing_staged_file_is_not_found_to_promote_or_read(storage).await;
            hostile_names_are_refused_by_every_staging_method(storage).await;
        }
        Staging::Defaults => default_staging_writes_straight_to_the_path(storage).await,
    }
}

/// Round trips of 0 bytes, 1 byte and 20 MiB in uneven chunks return exactly what was written.
pub async fn round_trips_keep_every_byte(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    for (seed, len) in [(1u64, 0u64), (2, 1), (3, 20 << 20)] {
        let name = format!("{prefix}/size-{len}.bin");
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
    clean_up(storage, &prefix).await;
}

/// A downloaded file (which may be less durable) reads back as written; a failed download
/// leaves nothing, and a hostile path is refused.
pub async fn downloads_read_back_and_a_failed_one_leaves_nothing(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/downloaded/size-3MiB.bin");
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
            .write_downloaded(
                &format!("{prefix}/downloaded/broken.bin"),
                failing_stream(5, 70_000)
            )
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
    clean_up(storage, &prefix).await;
}

/// A second write to a path replaces the first one's contents.
pub async fn a_second_write_replaces_the_first(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/overwrite.bin");
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
    clean_up(storage, &prefix).await;
}

/// A write whose stream fails keeps the old contents, creates no file and lists nothing new.
pub async fn a_failed_write_changes_nothing(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/overwrite.bin");
    storage
        .write(&name, patterned_stream(11, 300))
        .await
        .unwrap();
    let before = sorted(storage.list().await.unwrap());
    storage
        .write(&name, failing_stream(12, 70_000))
        .await
        .expect_err("a failing stream fails the write");
    let back = collect_bytes(storage.read(&name).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        back,
        patterned_bytes(11, 300),
        "a failed write is atomic: old contents stay"
    );
    let fresh = format!("{prefix}/never.bin");
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
    clean_up(storage, &prefix).await;
}

/// Nested directories and unicode names are stored, listed and read back.
pub async fn nested_and_unicode_paths_are_stored_and_listed(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let unicode = format!("{prefix}/nested/dir/été 📷 photo.jpg");
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
    clean_up(storage, &prefix).await;
}

/// Reading a missing file is `NotFound`, it does not exist, and deleting it is `Ok`.
pub async fn a_missing_file_is_not_found_and_deleting_it_is_ok(storage: &dyn LocalStorage) {
    let missing = format!("{}/missing.bin", unique_prefix("local"));
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
}

/// A deleted file no longer exists and is no longer listed.
pub async fn a_deleted_file_is_gone(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/nested/deleted.bin");
    storage
        .write(&name, patterned_stream(16, 100))
        .await
        .unwrap();
    storage.delete(&name).await.unwrap();
    assert!(
        !storage.exists(&name).await.unwrap(),
        "a deleted file is gone"
    );
    assert!(
        !storage.list().await.unwrap().contains(&name),
        "a deleted file is not listed"
    );
    clean_up(storage, &prefix).await;
}

/// Hostile paths (escaping, absolute, NUL, backslash, empty, too long) are refused with
/// `InvalidInput` by write, read, delete and exists, and change nothing.
pub async fn hostile_paths_are_refused_and_change_nothing(storage: &dyn LocalStorage) {
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
}

/// While one lock from `lock_exclusive` is held a second is refused (`InUse`, not retryable);
/// once it is dropped the lock can be taken again. A storage that needs no lock returns none.
pub async fn lock_exclusive_admits_one_holder_at_a_time(storage: &dyn LocalStorage) {
    let Some(first) = storage.lock_exclusive().expect("taking a free lock works") else {
        return;
    };
    let err = storage
        .lock_exclusive()
        .expect_err("a second holder is refused while the first holds the lock");
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert!(!err.is_retryable(), "waiting does not free a held lock");
    drop(first);
    let again = storage
        .lock_exclusive()
        .expect("a dropped lock can be taken again");
    assert!(again.is_some(), "a storage that locked once locks again");
}

/// `remove_temp_files` works and leaves stored and staged files alone.
pub async fn remove_temp_files_leaves_stored_and_staged_files_alone(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let (stored, staged) = (
        format!("{prefix}/stored.bin"),
        format!("{prefix}/sub/staged.bin"),
    );
    storage
        .write(&stored, patterned_stream(20, 100))
        .await
        .unwrap();
    storage
        .write_staged(&staged, patterned_stream(21, 100))
        .await
        .unwrap();
    storage
        .remove_temp_files()
        .await
        .expect("removing temp files works");
    assert_eq!(
        read_stored(storage, &stored).await,
        patterned_bytes(20, 100),
        "remove_temp_files keeps stored files"
    );
    assert_eq!(
        read_staged(storage, &staged).await,
        patterned_bytes(21, 100),
        "remove_temp_files keeps staged files"
    );
    assert!(
        staged_below(storage, &prefix).await.contains(&staged),
        "a staged file is still listed as staged after remove_temp_files"
    );
    clean_up(storage, &prefix).await;
}

/// A staged file is complete (readable with `read_staged`) but neither exists, reads nor is
/// listed at its path until promoted; once promoted it is there and no longer staged.
pub async fn a_staged_file_is_invisible_until_promoted(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/staged.bin");
    let written = storage
        .write_staged(&name, patterned_stream(22, 3 << 20))
        .await
        .unwrap();
    assert_eq!(written, 3 << 20, "write_staged returns the bytes written");
    assert!(
        !storage.exists(&name).await.unwrap(),
        "a staged file does not exist at its path"
    );
    let err = storage
        .read(&name)
        .await
        .err()
        .expect("a staged file cannot be read at its path");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        !storage.list().await.unwrap().contains(&name),
        "a staged file is not listed"
    );
    assert!(
        read_staged(storage, &name).await == patterned_bytes(22, 3 << 20),
        "read_staged returns what was staged"
    );

    storage.promote_staged(&name).await.unwrap();
    assert!(
        read_stored(storage, &name).await == patterned_bytes(22, 3 << 20),
        "a promoted file reads back at its path"
    );
    assert!(storage.list().await.unwrap().contains(&name));
    assert!(
        !staged_below(storage, &prefix).await.contains(&name),
        "a promoted file is no longer staged"
    );
    clean_up(storage, &prefix).await;
}

/// Promoting a staged file replaces the file stored at its path.
pub async fn promoting_replaces_the_file_at_the_path(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/replaced.bin");
    storage
        .write(&name, patterned_stream(23, 5000))
        .await
        .unwrap();
    storage
        .write_staged(&name, patterned_stream(24, 300))
        .await
        .unwrap();
    assert_eq!(
        read_stored(storage, &name).await,
        patterned_bytes(23, 5000),
        "staging leaves the stored file as it was"
    );
    storage.promote_staged(&name).await.unwrap();
    assert_eq!(
        read_stored(storage, &name).await,
        patterned_bytes(24, 300),
        "promote replaces the stored file"
    );
    clean_up(storage, &prefix).await;
}

/// A second `write_staged` of a name replaces the first staged contents.
pub async fn a_second_staged_write_replaces_the_first(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/restaged.bin");
    storage
        .write_staged(&name, patterned_stream(25, 5000))
        .await
        .unwrap();
    storage
        .write_staged(&name, patterned_stream(26, 300))
        .await
        .unwrap();
    assert_eq!(
        read_staged(storage, &name).await,
        patterned_bytes(26, 300),
        "a second staged write replaces the first"
    );
    clean_up(storage, &prefix).await;
}

/// A staged write whose stream fails keeps the earlier staged contents and stages nothing new.
pub async fn a_failed_staged_write_leaves_nothing_staged(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let (kept, fresh) = (format!("{prefix}/kept.bin"), format!("{prefix}/never.bin"));
    storage
        .write_staged(&kept, patterned_stream(27, 300))
        .await
        .unwrap();
    storage
        .write_staged(&kept, failing_stream(28, 70_000))
        .await
        .expect_err("a failing stream fails the staged write");
    storage
        .write_staged(&fresh, failing_stream(29, 10))
        .await
        .expect_err("a failing stream fails the staged write");
    assert_eq!(
        read_staged(storage, &kept).await,
        patterned_bytes(27, 300),
        "a failed staged write is atomic: the earlier staged contents stay"
    );
    assert_eq!(
        staged_below(storage, &prefix).await,
        vec![kept],
        "a failed staged write stages nothing new"
    );
    assert!(!storage.exists(&fresh).await.unwrap());
    clean_up(storage, &prefix).await;
}

/// `stage_existing` moves a stored file away from its path (it returns `true`), and
/// `discard_staged` then removes it for good.
pub async fn staging_an_existing_file_then_discarding_removes_it(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/leaving.bin");
    storage
        .write(&name, patterned_stream(30, 100))
        .await
        .unwrap();
    assert!(
        storage.stage_existing(&name).await.unwrap(),
        "stage_existing reports the file it moved"
    );
    assert!(
        !storage.exists(&name).await.unwrap(),
        "a staged file is gone from its path"
    );
    assert!(!storage.list().await.unwrap().contains(&name));
    assert!(staged_below(storage, &prefix).await.contains(&name));
    storage.discard_staged(&name).await.unwrap();
    assert!(
        staged_below(storage, &prefix).await.is_empty(),
        "a discarded file is no longer staged"
    );
    assert!(!storage.exists(&name).await.unwrap());
    let err = storage
        .read_staged(&name)
        .await
        .err()
        .expect("a discarded file cannot be read");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    clean_up(storage, &prefix).await;
}

/// `stage_existing` then `promote_staged` puts the very same contents back at the path.
pub async fn staging_an_existing_file_then_promoting_restores_it(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/nested/staying.bin");
    storage
        .write(&name, patterned_stream(31, 2 << 20))
        .await
        .unwrap();
    assert!(storage.stage_existing(&name).await.unwrap());
    assert!(
        read_staged(storage, &name).await == patterned_bytes(31, 2 << 20),
        "a file staged from its path reads back staged"
    );
    storage.promote_staged(&name).await.unwrap();
    assert!(
        read_stored(storage, &name).await == patterned_bytes(31, 2 << 20),
        "promoting a staged file restores it"
    );
    assert!(staged_below(storage, &prefix).await.is_empty());
    clean_up(storage, &prefix).await;
}

/// `stage_existing` of a path with no file returns `false` and stages nothing.
pub async fn staging_a_missing_file_moves_nothing(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/absent.bin");
    assert!(
        !storage.stage_existing(&name).await.unwrap(),
        "stage_existing of a missing file returns false"
    );
    assert!(staged_below(storage, &prefix).await.is_empty());
}

/// `list_staged` names exactly the staged files, in subdirectories too, and no stored file.
pub async fn list_staged_names_exactly_the_staged_files(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let staged = sorted(vec![
        format!("{prefix}/top.bin"),
        format!("{prefix}/a/b/deep.bin"),
        format!("{prefix}/a/sibling é.bin"),
    ]);
    for (seed, name) in (40..).zip(&staged) {
        storage
            .write_staged(name, patterned_stream(seed, 10))
            .await
            .unwrap();
    }
    storage
        .write(&format!("{prefix}/stored.bin"), patterned_stream(44, 10))
        .await
        .unwrap();
    assert_eq!(
        staged_below(storage, &prefix).await,
        staged,
        "list_staged names every staged file and nothing else"
    );
    storage.promote_staged(&staged[0]).await.unwrap();
    assert_eq!(
        staged_below(storage, &prefix).await,
        staged[1..].to_vec(),
        "a promoted file leaves the list"
    );
    clean_up(storage, &prefix).await;
}

/// Discarding a name with nothing staged is `Ok` and leaves the file at that path alone.
pub async fn discarding_a_missing_staged_file_is_ok(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/stored.bin");
    storage
        .write(&name, patterned_stream(45, 10))
        .await
        .unwrap();
    storage
        .discard_staged(&name)
        .await
        .expect("discarding a missing staged file is Ok");
    assert_eq!(
        read_stored(storage, &name).await,
        patterned_bytes(45, 10),
        "discard_staged never touches the stored file"
    );
    clean_up(storage, &prefix).await;
}

/// Promoting or reading a name with nothing staged is `NotFound`, and leaves the file at that
/// path alone.
pub async fn a_missing_staged_file_is_not_found_to_promote_or_read(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let (stored, absent) = (
        format!("{prefix}/stored.bin"),
        format!("{prefix}/absent.bin"),
    );
    storage
        .write(&stored, patterned_stream(46, 10))
        .await
        .unwrap();
    for name in [&stored, &absent] {
        let err = storage
            .promote_staged(name)
            .await
            .expect_err("promoting nothing fails");
        assert_eq!(err.kind(), ErrorKind::NotFound, "promote {name:?}: {err}");
        let err = storage
            .read_staged(name)
            .await
            .err()
            .expect("reading nothing staged fails");
        assert_eq!(err.kind(), ErrorKind::NotFound, "read_staged {name:?}");
    }
    assert_eq!(read_stored(storage, &stored).await, patterned_bytes(46, 10));
    assert!(!storage.exists(&absent).await.unwrap());
    clean_up(storage, &prefix).await;
}

/// Every staging method refuses a hostile name with `InvalidInput` and changes nothing.
pub async fn hostile_names_are_refused_by_every_staging_method(storage: &dyn LocalStorage) {
    let too_long = "x".repeat(10_000);
    let stored_before = sorted(storage.list().await.unwrap());
    let staged_before = sorted(storage.list_staged().await.unwrap());
    for hostile in HOSTILE_PATHS.iter().copied().chain([too_long.as_str()]) {
        let refused = |what: &str, result: attachments_core::Result<()>| {
            let err = result.expect_err("a hostile name is refused");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what} {hostile:?}");
        };
        let written = storage
            .write_staged(hostile, patterned_stream(47, 10))
            .await;
        refused("write_staged", written.map(drop));
        refused("promote_staged", storage.promote_staged(hostile).await);
        refused(
            "stage_existing",
            storage.stage_existing(hostile).await.map(drop),
        );
        refused("discard_staged", storage.discard_staged(hostile).await);
        refused("read_staged", storage.read_staged(hostile).await.map(drop));
    }
    assert_eq!(
        sorted(storage.list().await.unwrap()),
        stored_before,
        "refused names stored nothing"
    );
    assert_eq!(
        sorted(storage.list_staged().await.unwrap()),
        staged_before,
        "refused names staged nothing"
    );
}

/// With the trait's default staging methods a staged write lands at its path at once,
/// `promote_staged` has nothing to do, `stage_existing` reports whether the file exists,
/// `discard_staged` deletes it, and nothing is listed as staged.
pub async fn default_staging_writes_straight_to_the_path(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let name = format!("{prefix}/direct.bin");
    storage
        .write_staged(&name, patterned_stream(48, 100))
        .await
        .unwrap();
    assert_eq!(
        read_stored(storage, &name).await,
        patterned_bytes(48, 100),
        "a default staged write is at its path"
    );
    storage.promote_staged(&name).await.unwrap();
    assert_eq!(read_stored(storage, &name).await, patterned_bytes(48, 100));
    assert!(
        staged_below(storage, &prefix).await.is_empty(),
        "the defaults list nothing as staged"
    );
    assert!(storage.stage_existing(&name).await.unwrap());
    assert!(
        !storage
            .stage_existing(&format!("{prefix}/absent.bin"))
            .await
            .unwrap()
    );
    storage.discard_staged(&name).await.unwrap();
    assert!(
        !storage.exists(&name).await.unwrap(),
        "a default discard deletes the file"
    );
    clean_up(storage, &prefix).await;
}

async fn read_stored(storage: &dyn LocalStorage, name: &str) -> Vec<u8> {
    let stream = storage
        .read(name)
        .await
        .unwrap_or_else(|e| panic!("reading {name:?}: {e}"));
    collect_bytes(stream).await.unwrap()
}

async fn read_staged(storage: &dyn LocalStorage, name: &str) -> Vec<u8> {
    let stream = storage
        .read_staged(name)
        .await
        .unwrap_or_else(|e| panic!("reading staged {name:?}: {e}"));
    collect_bytes(stream).await.unwrap()
}

/// The staged names below `prefix`, sorted.
async fn staged_below(storage: &dyn LocalStorage, prefix: &str) -> Vec<String> {
    let staged = storage.list_staged().await.expect("listing staged files");
    sorted(
        staged
            .into_iter()
            .filter(|name| name.starts_with(&format!("{prefix}/")))
            .collect(),
    )
}

/// Remove every stored and staged file below `prefix`.
async fn clean_up(storage: &dyn LocalStorage, prefix: &str) {
    for name in staged_below(storage, prefix).await {
        storage.discard_staged(&name).await.unwrap();
    }
    for name in storage.list().await.unwrap() {
        if name.starts_with(&format!("{prefix}/")) {
            storage.delete(&name).await.unwrap();
        }
    }
}

fn sorted(mut paths: Vec<String>) -> Vec<String> {
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use attachments_core::{ByteStream, LocalStorage, Result};

    use super::{Staging, local_storage_suite, local_storage_suite_with};
    use crate::MemoryLocalStorage;

    /// A storage that implements only the required methods, keeping the trait's default
    /// staging methods (as a third-party adapter might).
    struct WithoutStagingArea(Arc<MemoryLocalStorage>);

    #[async_trait]
    impl LocalStorage for WithoutStagingArea {
        async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
            self.0.write(path, data).await
        }
        async fn read(&self, path: &str) -> Result<ByteStream> {
            self.0.read(path).await
        }
        async fn delete(&self, path: &str) -> Result<()> {
            self.0.delete(path).await
        }
        async fn exists(&self, path: &str) -> Result<bool> {
            self.0.exists(path).await
        }
        async fn list(&self) -> Result<Vec<String>> {
            self.0.list().await
        }
        async fn remove_temp_files(&self) -> Result<u64> {
            self.0.remove_temp_files().await
        }
    }

    #[tokio::test]
    async fn the_memory_storage_keeps_the_contract_with_its_staging_area() {
        local_storage_suite(&MemoryLocalStorage::default()).await;
    }

    #[tokio::test]
    async fn a_storage_with_the_default_staging_methods_keeps_their_contract() {
        let storage = WithoutStagingArea(Arc::default());
        local_storage_suite_with(&storage, Staging::Defaults).await;
    }

    #[tokio::test]
    #[should_panic(expected = "a staged file does not exist at its path")]
    async fn the_full_suite_fails_a_storage_without_a_staging_area() {
        let storage = WithoutStagingArea(Arc::default());
        local_storage_suite(&storage).await;
    }
}
