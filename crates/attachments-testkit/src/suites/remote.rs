//! The `RemoteStorage` contract, one public function per promise (as object_store's
//! `integration` module): an adapter's test can call the one that broke on its own.

use std::fmt;

use attachments_core::{Attachment, ErrorKind, RemoteStorage, collect_bytes};

use super::{HOSTILE_PATHS, unique_prefix};
use crate::data::{patterned_bytes, patterned_stream, upload_row};

/// The object names a remote can store, declared by its adapter: the suite writes names
/// within them and expects names outside them to be refused with `InvalidInput`.
///
/// The core's path rules (no `..`, no absolute paths, no NUL or backslash) apply to every
/// remote on top of these.
///
/// ```
/// use attachments_testkit::KeyRules;
/// let ascii = KeyRules::only("ascii letters, digits, `-_./`", |c| {
///     c.is_ascii_alphanumeric() || "-_./".contains(c)
/// });
/// assert!(ascii.allows("a/b-1.jpg"));
/// assert!(!ascii.allows("été.jpg"));
/// assert!(KeyRules::any().allows("été 📷 #[~%].jpg"));
/// ```
#[derive(Clone, Copy)]
pub struct KeyRules {
    name: &'static str,
    allows: fn(char) -> bool,
}

impl KeyRules {
    /// Any character the core's path rules allow (file systems, S3, memory).
    pub fn any() -> KeyRules {
        KeyRules {
            name: "any character",
            allows: |_| true,
        }
    }

    /// Only the characters `allows` accepts; `name` describes them in failure messages.
    pub fn only(name: &'static str, allows: fn(char) -> bool) -> KeyRules {
        KeyRules { name, allows }
    }

    /// Whether every character of `name` is within the rules.
    pub fn allows(&self, name: &str) -> bool {
        name.chars().all(self.allows)
    }
}

impl fmt::Debug for KeyRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRules").field(&self.name).finish()
    }
}

/// Names the suite tries, each within the rules of some remotes: every one a remote's rules
/// allow must round trip, every other one must be refused.
const NAMES: [&str; 8] = [
    "nested/dir/plain-name_1.bin",
    "nested/dir/été 📷 photo.jpg",
    "nested/photo (1) & co's!.jpg",
    "nested/a+b=c;d@e:f,g$*.bin",
    "nested/what?.bin",
    "nested/100%.bin",
    "nested/#tag [draft] ~me.bin",
    "nested/😀.bin",
];

/// Check a [`RemoteStorage`] with any-character names ([`KeyRules::any`]) against its whole
/// contract: every promise below, in turn. Writes only below fresh prefixes and removes what
/// it wrote.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// attachments_testkit::remote_storage_suite(&attachments_testkit::MemoryRemoteStorage::default()).await;
/// # });
/// ```
pub async fn remote_storage_suite(remote: &dyn RemoteStorage) {
    remote_storage_suite_with_keys(remote, KeyRules::any()).await;
}

/// [`remote_storage_suite`] for a remote that stores only the names `keys` allows.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_testkit::{KeyRules, MemoryRemoteStorage, remote_storage_suite_with_keys};
/// remote_storage_suite_with_keys(&MemoryRemoteStorage::default(), KeyRules::any()).await;
/// # });
/// ```
pub async fn remote_storage_suite_with_keys(remote: &dyn RemoteStorage, keys: KeyRules) {
    download_returns_what_was_uploaded(remote).await;
    upload_overwrites(remote).await;
    names_within_the_rules_round_trip(remote, keys).await;
    names_outside_the_rules_are_refused(remote, keys).await;
    downloading_a_missing_object_is_not_found(remote).await;
    deleting_a_missing_object_is_ok(remote).await;
    a_deleted_object_is_gone(remote).await;
    hostile_names_are_refused(remote).await;
    super::ranges::ranged_reads_suite(remote).await;
}

/// Promise: a download returns exactly the bytes uploaded, at every size (empty, one byte,
/// 3 MiB, 20 MiB in uneven chunks).
pub async fn download_returns_what_was_uploaded(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote-sizes");
    for (seed, len) in [(21u64, 0u64), (22, 1), (24, 3 << 20), (23, 20 << 20)] {
        let row = upload_row(&format!("{prefix}/size-{len}.bin"), Some(len));
        remote
            .upload(&row, patterned_stream(seed, len))
            .await
            .unwrap_or_else(|e| panic!("upload of {len} bytes failed: {e}"));
        let back = read(remote, &row).await;
        assert!(
            back == patterned_bytes(seed, len),
            "download returns exactly what was uploaded ({len} bytes)"
        );
        remove(remote, &row).await;
    }
}

/// Promise: an upload overwrites what is there (a retry after a crash succeeds), whatever the
/// sizes before and after (small over small, large over small, large over large, small over
/// large).
pub async fn upload_overwrites(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote-overwrite");
    let row = upload_row(&format!("{prefix}/overwrite.bin"), Some(0));
    let sizes = [4000u64, 10, 7 << 20, (6 << 20) + 1, 10];
    for (seed, len) in (31u64..).zip(sizes) {
        let mut again = row.clone();
        again.size = Some(len);
        remote
            .upload(&again, patterned_stream(seed, len))
            .await
            .unwrap_or_else(|e| panic!("an upload of {len} bytes over an object fails: {e}"));
        let back = read(remote, &row).await;
        assert!(
            back == patterned_bytes(seed, len),
            "the last upload wins ({len} bytes, {} read back)",
            back.len()
        );
    }
    remove(remote, &row).await;
}

/// Promise: nested names with every character the remote's rules allow round trip.
pub async fn names_within_the_rules_round_trip(remote: &dyn RemoteStorage, keys: KeyRules) {
    let prefix = unique_prefix("remote-names");
    let mut tried = 0;
    for (seed, name) in (41u64..).zip(NAMES) {
        let full = format!("{prefix}/{name}");
        if !keys.allows(&full) {
            continue;
        }
        tried += 1;
        let row = upload_row(&full, Some(100));
        remote
            .upload(&row, patterned_stream(seed, 100))
            .await
            .unwrap_or_else(|e| panic!("{name:?} is within {keys:?} but its upload failed: {e}"));
        assert_eq!(
            read(remote, &row).await,
            patterned_bytes(seed, 100),
            "{name:?} round trips"
        );
        remove(remote, &row).await;
    }
    assert!(tried > 0, "{keys:?} allow none of the suite's names");
}

/// Promise: a name outside the remote's rules is refused with `InvalidInput` (not
/// retryable), on upload and download, rather than stored under another name.
pub async fn names_outside_the_rules_are_refused(remote: &dyn RemoteStorage, keys: KeyRules) {
    let prefix = unique_prefix("remote-refused");
    for name in NAMES {
        let full = format!("{prefix}/{name}");
        if keys.allows(&full) {
            continue;
        }
        let row = upload_row(&full, Some(10));
        let err = remote
            .upload(&row, patterned_stream(51, 10))
            .await
            .expect_err("a name outside the rules is refused");
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (ErrorKind::InvalidInput, false),
            "upload of {name:?} outside {keys:?}: {err}"
        );
        let err = remote
            .download(&row)
            .await
            .err()
            .expect("a name outside the rules is refused");
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (ErrorKind::InvalidInput, false),
            "download of {name:?} outside {keys:?}: {err}"
        );
    }
}

/// Promise: downloading a missing object is `NotFound`, not retryable.
pub async fn downloading_a_missing_object_is_not_found(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote-missing");
    let missing = upload_row(&format!("{prefix}/missing.bin"), Some(0));
    let err = remote
        .download(&missing)
        .await
        .err()
        .expect("downloading a missing object fails");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "a missing object is NotFound: {err}"
    );
    assert!(!err.is_retryable(), "a missing object is not retryable");
}

/// Promise: deleting a missing object is Ok.
pub async fn deleting_a_missing_object_is_ok(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote-missing");
    let missing = upload_row(&format!("{prefix}/missing.bin"), Some(0));
    remote
        .delete(&missing)
        .await
        .expect("deleting a missing object is Ok");
}

/// Promise: after a delete, the object is gone (`NotFound`), and a second delete is Ok.
pub async fn a_deleted_object_is_gone(remote: &dyn RemoteStorage) {
    let prefix = unique_prefix("remote-delete");
    let row = upload_row(&format!("{prefix}/gone.bin"), Some(100));
    remote
        .upload(&row, patterned_stream(61, 100))
        .await
        .unwrap();
    remote.delete(&row).await.expect("delete succeeds");
    let err = remote
        .download(&row)
        .await
        .err()
        .expect("a deleted object is gone");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    remote.delete(&row).await.expect("deleting twice is Ok");
}

/// Promise: hostile names (escaping, absolute, NUL, backslash, empty components, too long)
/// are refused with `InvalidInput`, not retryable.
pub async fn hostile_names_are_refused(remote: &dyn RemoteStorage) {
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

async fn read(remote: &dyn RemoteStorage, row: &Attachment) -> Vec<u8> {
    let stream = remote
        .download(row)
        .await
        .unwrap_or_else(|e| panic!("download of {:?} failed: {e}", row.filename));
    collect_bytes(stream).await.unwrap().to_vec()
}

pub(super) async fn remove(remote: &dyn RemoteStorage, row: &Attachment) {
    remote
        .delete(row)
        .await
        .unwrap_or_else(|e| panic!("delete of {:?} failed: {e}", row.filename));
}
