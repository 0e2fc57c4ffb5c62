//! What only a file system can get wrong about staging: where staged files live, what a crash
//! between two steps leaves behind, and what the app may have put in the way.

use attachments_core::{ErrorKind, LocalStorage, byte_stream_from, collect_bytes};
use attachments_fs::{FsLocalStorage, TEMP_DIR};
use attachments_testkit::failing_stream;

fn bytes(text: &str) -> attachments_core::ByteStream {
    byte_stream_from(vec![text.as_bytes().to_vec()])
}

async fn staged_contents(storage: &FsLocalStorage, name: &str) -> Vec<u8> {
    collect_bytes(storage.read_staged(name).await.unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn staged_names_mirror_their_directories_below_the_staging_area() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage
        .write_staged("photos/2024/a.jpg", bytes("jpeg"))
        .await
        .unwrap();
    let staging = dir.path().join(TEMP_DIR).join("staged");
    assert_eq!(
        std::fs::read(staging.join("photos/2024/a.jpg")).unwrap(),
        b"jpeg",
        "a staged name is its path below .attachments-tmp/staged"
    );
    storage.promote_staged("photos/2024/a.jpg").await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("photos/2024/a.jpg")).unwrap(),
        b"jpeg"
    );
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "the emptied staging directories are removed"
    );
}

#[tokio::test]
async fn staged_files_outlive_the_storage_that_wrote_them() {
    let dir = tempfile::tempdir().unwrap();
    let first = FsLocalStorage::new(dir.path()).unwrap();
    first
        .write_staged("photos/a.jpg", bytes("saved"))
        .await
        .unwrap();
    first.write("b.jpg", bytes("kept")).await.unwrap();
    assert!(first.stage_existing("b.jpg").await.unwrap());
    drop(first);

    // a new process after a crash
    let second = FsLocalStorage::new(dir.path()).unwrap();
    second.remove_temp_files().await.unwrap();
    let mut staged = second.list_staged().await.unwrap();
    staged.sort();
    assert_eq!(staged, ["b.jpg", "photos/a.jpg"]);
    assert_eq!(staged_contents(&second, "photos/a.jpg").await, b"saved");
    assert_eq!(staged_contents(&second, "b.jpg").await, b"kept");
    assert_eq!(second.list().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn every_state_a_crash_can_leave_is_handled_by_a_new_storage() {
    let dir = tempfile::tempdir().unwrap();
    let hidden = dir.path().join(TEMP_DIR);
    let staging = hidden.join("staged");
    // The states a crash can leave between two steps of a write, a promote or a stage: a
    // temp file not yet renamed, staging directories created for a rename that never came
    // (or left after one), a staged file, and the file at its path.
    std::fs::create_dir_all(staging.join("empty/deeper")).unwrap();
    std::fs::create_dir_all(staging.join("photos")).unwrap();
    std::fs::write(hidden.join("0123-7.part"), b"half a file").unwrap();
    std::fs::write(staging.join("photos/a.jpg"), b"staged").unwrap();
    std::fs::write(dir.path().join("b.jpg"), b"stored").unwrap();

    let storage = FsLocalStorage::new(dir.path()).unwrap();
    assert_eq!(storage.remove_temp_files().await.unwrap(), 1);
    assert_eq!(storage.list_staged().await.unwrap(), ["photos/a.jpg"]);
    assert_eq!(storage.list().await.unwrap(), ["b.jpg"]);
    storage.promote_staged("photos/a.jpg").await.unwrap();
    storage
        .write_staged("empty/deeper/c.jpg", bytes("new"))
        .await
        .unwrap();
    assert_eq!(storage.list_staged().await.unwrap(), ["empty/deeper/c.jpg"]);
    let mut stored = storage.list().await.unwrap();
    stored.sort();
    assert_eq!(stored, ["b.jpg", "photos/a.jpg"]);
}

#[tokio::test]
async fn promoting_onto_a_directory_fails_and_keeps_the_file_staged() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage.write_staged("a.jpg", bytes("saved")).await.unwrap();
    // the app made a directory of that name meanwhile
    std::fs::create_dir(dir.path().join("a.jpg")).unwrap();
    std::fs::write(dir.path().join("a.jpg/app.txt"), b"the app's").unwrap();

    let err = storage.promote_staged("a.jpg").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(staged_contents(&storage, "a.jpg").await, b"saved");
    assert_eq!(
        std::fs::read(dir.path().join("a.jpg/app.txt")).unwrap(),
        b"the app's"
    );
}

#[tokio::test]
async fn writing_where_a_directory_stands_is_refused_whatever_the_stream_does() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    std::fs::create_dir(dir.path().join("a.jpg")).unwrap();
    // a stream that fails when read, or one that does not: the refusal is what is reported
    for stream in [failing_stream(1, 10), bytes("fine")] {
        let err = storage.write("a.jpg", stream).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    storage.write_staged("b/c.jpg", bytes("x")).await.unwrap();
    for stream in [failing_stream(2, 10), bytes("fine")] {
        let err = storage.write_staged("b", stream).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    assert_eq!(storage.list_staged().await.unwrap(), ["b/c.jpg"]);
    assert!(
        dir.path().join("a.jpg").is_dir(),
        "the directory is left alone"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join(".attachments-tmp"))
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".part"))
            .count(),
        0,
        "no temp file stays"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn stage_existing_leaves_links_and_directories_at_the_path_alone() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage.write("real.jpg", bytes("real")).await.unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.jpg"), dir.path().join("linked.jpg")).unwrap();
    std::fs::create_dir(dir.path().join("folder.jpg")).unwrap();

    assert!(
        !storage.stage_existing("linked.jpg").await.unwrap(),
        "a link is not a file the queue wrote"
    );
    assert!(!storage.stage_existing("folder.jpg").await.unwrap());
    assert!(dir.path().join("linked.jpg").symlink_metadata().is_ok());
    assert!(dir.path().join("folder.jpg").is_dir());
    assert_eq!(std::fs::read(dir.path().join("real.jpg")).unwrap(), b"real");
    assert_eq!(storage.list_staged().await.unwrap(), Vec::<String>::new());
}

#[cfg(unix)]
#[tokio::test]
async fn list_staged_skips_odd_entries_instead_of_failing() {
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), b"keep me").unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage
        .write_staged("good.jpg", bytes("good"))
        .await
        .unwrap();
    let staging = dir.path().join(TEMP_DIR).join("staged");
    std::fs::write(staging.join("back\\slash.jpg"), b"x").unwrap();
    std::fs::write(
        staging.join(std::ffi::OsStr::from_bytes(b"not-utf8-\xff.jpg")),
        b"x",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path().join("victim"), staging.join("link.jpg")).unwrap();

    assert_eq!(storage.list_staged().await.unwrap(), ["good.jpg"]);
    let err = storage.read_staged("link.jpg").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        storage.discard_staged("link.jpg").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"keep me"
    );
}

#[tokio::test]
async fn the_hidden_area_cannot_be_named_by_a_staged_name() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let _lock = storage.lock_exclusive().unwrap();
    for name in [
        format!("{TEMP_DIR}/lock"),
        format!("{TEMP_DIR}/staged/x"),
        TEMP_DIR.to_owned(),
    ] {
        let refused = |result: attachments_core::Result<()>| {
            assert_eq!(
                result.unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{name}"
            );
        };
        refused(storage.write_staged(&name, bytes("x")).await.map(drop));
        refused(storage.promote_staged(&name).await);
        refused(storage.stage_existing(&name).await.map(drop));
        refused(storage.discard_staged(&name).await);
        refused(storage.read_staged(&name).await.map(drop));
    }
    assert!(dir.path().join(TEMP_DIR).join("lock").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_at_a_stored_or_staged_path_is_not_a_file_and_never_hangs_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    storage.write_staged("real.bin", bytes("x")).await.unwrap();
    let staging = dir.path().join(TEMP_DIR).join("staged");
    for fifo in [dir.path().join("pipe.bin"), staging.join("pipe.bin")] {
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) runs");
        assert!(made.success());
    }
    let err = storage.read("pipe.bin").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!storage.exists("pipe.bin").await.unwrap());
    assert_eq!(storage.list().await.unwrap(), Vec::<String>::new());
    let err = storage.read_staged("pipe.bin").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(storage.list_staged().await.unwrap(), ["real.bin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotions_at_the_same_time_each_end_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let mut names: Vec<String> = (0..40).map(|n| format!("file-{n}.jpg")).collect();
    names.push("photos/nested.jpg".to_owned());
    for name in &names {
        storage.write_staged(name, bytes(name)).await.unwrap();
    }
    // a directory of the app in the way of one, and one never staged
    std::fs::create_dir(dir.path().join("file-3.jpg")).unwrap();
    names.push("never-staged.jpg".to_owned());
    let promotions: Vec<_> = names
        .iter()
        .map(|name| {
            let (storage, name) = (storage.clone(), name.clone());
            tokio::spawn(async move { (name.clone(), storage.promote_staged(&name).await) })
        })
        .collect();
    for promotion in promotions {
        let (name, result) = promotion.await.unwrap();
        match name.as_str() {
            "file-3.jpg" => {
                assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyExists);
                // still staged, untouched
                assert_eq!(staged_contents(&storage, &name).await, name.as_bytes());
            }
            "never-staged.jpg" => assert_eq!(result.unwrap_err().kind(), ErrorKind::NotFound),
            _ => {
                result.unwrap();
                assert_eq!(
                    std::fs::read(dir.path().join(&name)).unwrap(),
                    name.as_bytes()
                );
            }
        }
    }
    assert_eq!(storage.list_staged().await.unwrap(), ["file-3.jpg"]);
}
