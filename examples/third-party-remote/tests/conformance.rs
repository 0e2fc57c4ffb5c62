//! The test kit's remote suite: what every `RemoteStorage` promises, checked against this one.

use attachments_core::{ErrorKind, RemoteStorage};
use attachments_testkit::{failing_stream, remote_storage_suite, upload_row};
use third_party_remote::FlatDirRemoteStorage;

#[tokio::test]
async fn the_flat_directory_keeps_the_remote_contract() {
    let dir = tempfile::tempdir().unwrap();
    remote_storage_suite(&FlatDirRemoteStorage::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn a_failed_upload_leaves_no_part_file_and_no_object() {
    let dir = tempfile::tempdir().unwrap();
    let remote = FlatDirRemoteStorage::new(dir.path()).unwrap();
    let row = upload_row("broken.bin", Some(200_000));
    assert!(
        remote
            .upload(&row, failing_stream(1, 200_000))
            .await
            .is_err()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let error = remote.download(&row).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}
