//! The testkit suites against the file-system storages, plus what only a file system can get
//! wrong: temp files, symbolic links, crash leftovers.

use attachments_core::{ErrorKind, LocalStorage, byte_stream_from, collect_bytes};
use attachments_fs::{FsLocalStorage, FsRemoteStorage, TEMP_DIR};
use attachments_testkit::{
    failing_stream, local_storage_suite, patterned_stream, remote_storage_suite, staged_parts_suite,
};

#[tokio::test]
async fn local_storage_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    local_storage_suite(&FsLocalStorage::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn staged_files_written_in_parts_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    staged_parts_suite(&FsLocalStorage::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn remote_storage_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    remote_storage_suite(&FsRemoteStorage::new(dir.path()).unwrap()).await;
}

/// Entries in the storage's temp directory (none when a write never needed it).
fn temp_files(root: &std::path::Path) -> usize {
    match std::fs::read_dir(root.join(TEMP_DIR)) {
        Ok(entries) => entries.count(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => panic!("reading the temp directory: {error}"),
    }
}

#[tokio::test]
async fn failed_writes_leave_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    // a small file fails before the disk is touched; a big one once its temp file is written
    for good in [200_000, 3_000_000] {
        assert!(
            storage
                .write("a.bin", failing_stream(1, good))
                .await
                .is_err()
        );
        assert_eq!(
            temp_files(dir.path()),
            0,
            "the temp file of a failed write is removed"
        );
        assert!(!dir.path().join("a.bin").exists());
    }
}

#[tokio::test]
async fn a_dropped_write_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    // a stream that yields one chunk and then never ends: the write is cancelled mid-way
    let endless =
        futures_util::StreamExt::chain(patterned_stream(2, 1000), futures_util::stream::pending());
    let write = storage.write("a.bin", Box::pin(endless));
    let result = tokio::time::timeout(std::time::Duration::from_millis(100), write).await;
    assert!(result.is_err(), "the write never finished");
    assert_eq!(temp_files(dir.path()), 0);
    assert!(!dir.path().join("a.bin").exists());
}

#[tokio::test]
async fn crash_leftovers_are_removed_but_not_writes_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join(TEMP_DIR)).unwrap();
    std::fs::write(dir.path().join(TEMP_DIR).join("dead.part"), b"partial").unwrap();
    assert_eq!(
        storage.list().await.unwrap(),
        Vec::<String>::new(),
        "temp files are not listed"
    );

    // a write that is still running keeps its temp file
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
    let stream = futures_util::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let writer = storage.clone();
    let running = tokio::spawn(async move { writer.write("slow.bin", Box::pin(stream)).await });
    sender
        .send(Ok(bytes::Bytes::from_static(b"first")))
        .await
        .unwrap();
    // the write has created its temp file once the channel has room again
    sender
        .send(Ok(bytes::Bytes::from_static(b" second")))
        .await
        .unwrap();
    assert_eq!(
        storage.remove_temp_files().await.unwrap(),
        1,
        "only the dead file goes"
    );
    drop(sender);
    assert_eq!(running.await.unwrap().unwrap(), 12);
    let back = collect_bytes(storage.read("slow.bin").await.unwrap())
        .await
        .unwrap();
    assert_eq!(back, b"first second");
}

#[cfg(unix)]
#[tokio::test]
async fn symbolic_links_cannot_lead_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    let root = dir.path().join("root");
    let storage = FsLocalStorage::new(&root).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();

    let err = storage.read("link/secret").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = storage
        .write("link/planted", byte_stream_from(vec![b"x".to_vec()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        !outside.path().join("planted").exists(),
        "nothing written outside the root"
    );
    assert_eq!(
        storage.delete("link/secret").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(
        outside.path().join("secret").exists(),
        "nothing deleted outside the root"
    );
}

#[tokio::test]
async fn the_temp_directory_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let err = storage
        .read(&format!("{TEMP_DIR}/x.part"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
