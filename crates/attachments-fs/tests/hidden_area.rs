//! The storage's own area (`.attachments-tmp`: temp files, staging area, lock file) is
//! confined as strictly as stored paths: a symbolic link or a file in its place is refused,
//! never followed, and nothing outside the root is written or deleted through it.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::Path;

use attachments_core::{ErrorKind, LocalStorage, RemoteStorage, Result, byte_stream_from};
use attachments_fs::{FsLocalStorage, FsRemoteStorage, TEMP_DIR};
use attachments_testkit::upload_row;

fn assert_refused<T>(what: &str, result: Result<T>) {
    match result {
        Ok(_) => panic!("{what} was accepted"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}"),
    }
}

fn contents_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap_or_default())
        })
        .collect();
    found.sort();
    found
}

fn bytes(text: &str) -> attachments_core::ByteStream {
    byte_stream_from(vec![text.as_bytes().to_vec()])
}

/// A root whose `.attachments-tmp` is a link to `outside`, which holds victim files.
struct LinkedTempDir {
    _dir: tempfile::TempDir,
    outside: tempfile::TempDir,
    storage: FsLocalStorage,
}

fn linked_temp_dir() -> LinkedTempDir {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim.part"), b"keep me").unwrap();
    std::fs::write(outside.path().join("victim.txt"), b"keep me too").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    symlink(outside.path(), dir.path().join(TEMP_DIR)).unwrap();
    LinkedTempDir {
        _dir: dir,
        outside,
        storage,
    }
}

fn victims() -> Vec<(String, Vec<u8>)> {
    vec![
        ("victim.part".to_owned(), b"keep me".to_vec()),
        ("victim.txt".to_owned(), b"keep me too".to_vec()),
    ]
}

#[tokio::test]
async fn remove_temp_files_refuses_a_symlinked_temp_directory_and_deletes_nothing() {
    let linked = linked_temp_dir();
    assert_refused(
        "remove_temp_files through a link",
        linked.storage.remove_temp_files().await,
    );
    assert_eq!(
        contents_of(linked.outside.path()),
        victims(),
        "the files the link points at survive"
    );
}

#[tokio::test]
async fn writes_refuse_a_symlinked_temp_directory_and_write_nothing_outside() {
    let linked = linked_temp_dir();
    let storage = &linked.storage;
    assert_refused("write", storage.write("a.bin", bytes("a")).await);
    assert_refused(
        "write_downloaded",
        storage.write_downloaded("b.bin", bytes("b")).await,
    );
    assert_refused(
        "write_staged",
        storage.write_staged("c.bin", bytes("c")).await,
    );
    assert_refused("lock_exclusive", storage.lock_exclusive());
    assert_eq!(
        contents_of(linked.outside.path()),
        victims(),
        "no temp, staged or lock file was created outside the root"
    );
    assert_eq!(storage.list().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn remote_uploads_refuse_a_symlinked_temp_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let remote = FsRemoteStorage::new(dir.path()).unwrap();
    symlink(outside.path(), dir.path().join(TEMP_DIR)).unwrap();
    let row = upload_row("a.bin", Some(1));
    assert_refused("upload", remote.upload(&row, bytes("a")).await);
    assert_eq!(
        contents_of(outside.path()),
        vec![],
        "no temp file was created outside the root"
    );
    assert!(!dir.path().join("a.bin").exists());
}

#[tokio::test]
async fn every_staging_method_refuses_a_symlinked_staging_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim.bin"), b"keep me").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage.write("photo.jpg", bytes("photo")).await.unwrap();
    symlink(outside.path(), dir.path().join(TEMP_DIR).join("staged")).unwrap();

    assert_refused(
        "write_staged",
        storage.write_staged("victim.bin", bytes("x")).await,
    );
    assert_refused("discard_staged", storage.discard_staged("victim.bin").await);
    assert_refused("read_staged", storage.read_staged("victim.bin").await);
    assert_refused("promote_staged", storage.promote_staged("victim.bin").await);
    assert_refused("list_staged", storage.list_staged().await);
    assert_refused("stage_existing", storage.stage_existing("photo.jpg").await);
    storage
        .remove_temp_files()
        .await
        .expect("the staging directory is not the temp files' business");

    assert_eq!(
        contents_of(outside.path()),
        vec![("victim.bin".to_owned(), b"keep me".to_vec())],
        "nothing was written, moved in or deleted outside the root"
    );
    assert!(
        !dir.path().join("victim.bin").exists(),
        "nothing was promoted from outside"
    );
    assert_eq!(
        std::fs::read(dir.path().join("photo.jpg")).unwrap(),
        b"photo",
        "the stored file stays at its path"
    );
}

#[tokio::test]
async fn a_symlinked_directory_inside_the_staging_area_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim.bin"), b"keep me").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage.write_staged("ok.bin", bytes("ok")).await.unwrap();
    symlink(
        outside.path(),
        dir.path().join(TEMP_DIR).join("staged").join("sub"),
    )
    .unwrap();

    assert_refused(
        "write_staged below the link",
        storage.write_staged("sub/new.bin", bytes("x")).await,
    );
    assert_refused(
        "discard_staged below the link",
        storage.discard_staged("sub/victim.bin").await,
    );
    assert_refused(
        "promote_staged below the link",
        storage.promote_staged("sub/victim.bin").await,
    );
    assert_eq!(
        storage.list_staged().await.unwrap(),
        vec!["ok.bin".to_owned()],
        "list_staged does not enter the link"
    );
    assert_eq!(
        contents_of(outside.path()),
        vec![("victim.bin".to_owned(), b"keep me".to_vec())]
    );
    assert!(!dir.path().join("sub").exists());
}

#[tokio::test]
async fn a_file_where_the_temp_directory_should_be_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let squatter = dir.path().join(TEMP_DIR);
    std::fs::write(&squatter, b"not a directory").unwrap();

    assert_refused("write", storage.write("a.bin", bytes("a")).await);
    assert_refused(
        "write_staged",
        storage.write_staged("a.bin", bytes("a")).await,
    );
    assert_refused("remove_temp_files", storage.remove_temp_files().await);
    assert_refused("list_staged", storage.list_staged().await);
    assert_refused("lock_exclusive", storage.lock_exclusive());
    assert_eq!(std::fs::read(&squatter).unwrap(), b"not a directory");
    assert_eq!(storage.list().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), b"keep me").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    std::fs::create_dir(dir.path().join(TEMP_DIR)).unwrap();
    symlink(
        outside.path().join("victim"),
        dir.path().join(TEMP_DIR).join("lock"),
    )
    .unwrap();
    assert_refused("lock_exclusive", storage.lock_exclusive());
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"keep me"
    );
}

#[tokio::test]
async fn a_stored_path_cannot_reach_the_hidden_area_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let lock = storage.lock_exclusive().unwrap();
    storage
        .write_staged("s.bin", bytes("staged"))
        .await
        .unwrap();
    symlink(dir.path().join(TEMP_DIR), dir.path().join("inside")).unwrap();

    assert_refused("delete via link", storage.delete("inside/lock").await);
    assert_refused(
        "write via link",
        storage.write("inside/staged/s.bin", bytes("x")).await,
    );
    assert_refused("read via link", storage.read("inside/staged/s.bin").await);
    assert!(dir.path().join(TEMP_DIR).join("lock").exists());
    assert_eq!(
        attachments_core::collect_bytes(storage.read_staged("s.bin").await.unwrap())
            .await
            .unwrap(),
        b"staged"
    );
    drop(lock);
}

#[tokio::test]
async fn remove_temp_files_removes_only_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), b"keep me").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let lock = storage.lock_exclusive().unwrap();
    storage
        .write_staged("s.bin", bytes("staged"))
        .await
        .unwrap();
    let hidden = dir.path().join(TEMP_DIR);
    std::fs::write(hidden.join("dead.part"), b"crash leftover").unwrap();
    std::fs::write(hidden.join("notes.txt"), b"not ours to judge").unwrap();
    std::fs::create_dir(hidden.join("dir.part")).unwrap();
    std::fs::write(hidden.join("dir.part").join("inner"), b"x").unwrap();
    symlink(outside.path().join("victim"), hidden.join("link.part")).unwrap();

    assert_eq!(
        storage.remove_temp_files().await.unwrap(),
        1,
        "only the leftover temp file goes"
    );
    assert!(!hidden.join("dead.part").exists());
    assert!(hidden.join("notes.txt").exists());
    assert!(hidden.join("dir.part").join("inner").exists());
    assert!(hidden.join("link.part").symlink_metadata().is_ok());
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"keep me"
    );
    assert_eq!(
        storage.list_staged().await.unwrap(),
        vec!["s.bin".to_owned()]
    );
    let again = FsLocalStorage::new(dir.path()).unwrap();
    assert_eq!(
        again.lock_exclusive().unwrap_err().kind(),
        ErrorKind::InUse,
        "the lock file survived and is still held"
    );
    drop(lock);
}

#[tokio::test]
async fn the_hidden_area_is_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let _lock = storage.lock_exclusive().unwrap();
    storage.write("stored.bin", bytes("a")).await.unwrap();
    storage
        .write_staged("staged.bin", bytes("b"))
        .await
        .unwrap();
    std::fs::write(dir.path().join(TEMP_DIR).join("dead.part"), b"x").unwrap();
    assert_eq!(storage.list().await.unwrap(), vec!["stored.bin".to_owned()]);
}
