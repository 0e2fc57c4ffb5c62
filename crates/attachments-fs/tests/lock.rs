//! One attachment queue per root: `lock_exclusive` refuses a second holder, in this process or
//! another, and a holder that dies releases it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use attachments_core::{ErrorKind, LocalStorage};
use attachments_fs::FsLocalStorage;

/// Set in the environment of the helper process: the root it locks.
const HOLDER_ROOT: &str = "ATTACHMENTS_FS_TEST_LOCK_HOLDER_ROOT";

/// What the helper prints once it holds the lock.
const HOLDING: &str = "lock-holder: holding the lock";

#[test]
fn a_second_storage_cannot_lock_the_root_until_the_first_lock_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = FsLocalStorage::new(dir.path()).unwrap();
    let second = FsLocalStorage::new(dir.path()).unwrap();
    let lock = first.lock_exclusive().unwrap().expect("a lock is taken");

    let err = second.lock_exclusive().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(
        message.contains("another attachment queue uses the directory"),
        "{message}"
    );
    assert!(
        message.contains(&second.root().display().to_string()),
        "the message names the root: {message}"
    );

    drop(lock);
    assert!(second.lock_exclusive().unwrap().is_some());
}

#[test]
fn a_lock_held_by_another_process_refuses_until_that_process_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_process_holding_the_lock",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ROOT, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(holder.stdout.take().unwrap());
    let mut holding = false;
    for line in stdout.lines() {
        if line.unwrap().contains(HOLDING) {
            holding = true;
            break;
        }
    }
    assert!(holding, "the helper process took the lock");

    let storage = FsLocalStorage::new(dir.path()).unwrap();
    let err = storage.lock_exclusive().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");

    // a crash, not a clean exit: the operating system releases the lock
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        storage.lock_exclusive().unwrap().is_some(),
        "the lock of a dead process is free"
    );
}

/// The other process of `a_lock_held_by_another_process_refuses_until_that_process_dies`
/// (this same test binary, started again with `HOLDER_ROOT` set); without it, nothing to do.
#[test]
fn helper_process_holding_the_lock() {
    let Some(root) = std::env::var_os(HOLDER_ROOT) else {
        return;
    };
    let storage = FsLocalStorage::new(root).unwrap();
    let _lock = storage.lock_exclusive().unwrap().expect("a lock is taken");
    println!("\n{HOLDING}");
    // hold it until the parent kills this process (or closes its end of stdin)
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
