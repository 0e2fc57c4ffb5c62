//! Directory syncs shared by the writers that need one at the same time, and the lock that
//! keeps them from creating files in the same directory at once.
//!
//! A rename survives a power cut once its directory is synced, and one `fsync` of a directory
//! makes durable every rename into or out of it that happened before the sync started. So
//! writers that rename into the same directory at about the same time (saves of many files at
//! once) can share syncs: a writer whose rename is done waits for a sync that started after
//! it, and starts one itself when none is running. Each writer still returns only once its
//! own rename is on disk; there are just fewer syncs than renames.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use attachments_core::Result;

use crate::hidden::{self, STAGED_DIR, TEMP_DIR};

/// What the writers of one storage share (clones of a storage share one).
#[derive(Debug)]
pub(crate) struct SharedWrites {
    /// Held while a temp file is created. Creating a file holds its directory's lock in the
    /// kernel while it finds a free inode, which can take long on a busy file system; other
    /// creators in the same directory spin on that lock and burn CPU (a tenth of the queue's
    /// CPU time when saving 16 small files at once, measured with `perf`). Waiting here
    /// instead puts them to sleep.
    create: Mutex<()>,
    /// Syncs of the root, where most promoted files land.
    root: SharedDirSync,
    /// Syncs of the staging directory, where most staged files land.
    staged: SharedDirSync,
}

impl SharedWrites {
    pub(crate) fn new(root: &Path) -> Self {
        SharedWrites {
            create: Mutex::new(()),
            root: SharedDirSync::new(root.to_path_buf()),
            staged: SharedDirSync::new(root.join(TEMP_DIR).join(STAGED_DIR)),
        }
    }

    /// Hold this while creating a temp file.
    pub(crate) fn creating(&self) -> MutexGuard<'_, ()> {
        self.create.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Make every rename into or out of `dir` done before this call durable: through a sync
    /// shared with other writers for the root and the staging directory, with a sync of its
    /// own for any other directory.
    ///
    /// # Errors
    /// The error of a sync that started after this call.
    pub(crate) fn sync_dir(&self, dir: &Path, what: &str) -> Result<()> {
        for shared in [&self.root, &self.staged] {
            if shared.dir == dir {
                return shared.sync(what);
            }
        }
        hidden::sync_dir(dir, what)
    }
}

/// The syncs of one directory, numbered in the order they start; at most one runs at a time.
#[derive(Debug)]
struct SharedDirSync {
    dir: PathBuf,
    rounds: Mutex<Rounds>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct Rounds {
    /// The number of the last sync started.
    started: u64,
    /// The number of the last sync finished.
    finished: u64,
    /// Whether a sync is running now.
    running: bool,
    /// The last sync that failed, and its error.
    last_failure: Option<(u64, attachments_core::Error)>,
}

impl Rounds {
    /// The answer for a writer that needs sync `needed`, once it has finished: the error of a
    /// failed sync at or after it, else success. After a failed `fsync` nothing says what
    /// reached the disk, and a later sync may not report the same error again, so every
    /// writer the failed sync covered is told, never only the one that ran it. (A writer
    /// whose own sync succeeded but a later one failed is told too: a false alarm costs a
    /// retry, a false success could cost its data.)
    fn answer(&self, needed: u64) -> Option<Result<()>> {
        if self.finished < needed {
            return None;
        }
        Some(match &self.last_failure {
            Some((round, error)) if *round >= needed => Err(error.clone()),
            _ => Ok(()),
        })
    }
}

impl SharedDirSync {
    fn new(dir: PathBuf) -> Self {
        SharedDirSync {
            dir,
            rounds: Mutex::new(Rounds::default()),
            finished: Condvar::new(),
        }
    }

    /// Wait for the end of a sync that started after this call, running it when none runs;
    /// its error is this caller's error.
    fn sync(&self, what: &str) -> Result<()> {
        let mut rounds = self.lock();
        // a sync that is running now may have started before the caller's rename: only a
        // later one counts
        let needed = rounds.started + 1;
        loop {
            if let Some(answer) = rounds.answer(needed) {
                return answer;
            }
            if !rounds.running {
                // none runs: this caller runs the next one, for itself and whoever waits
                rounds.running = true;
                rounds.started += 1;
                let round = rounds.started;
                drop(rounds);
                let result = hidden::sync_dir(&self.dir, what);
                let mut rounds = self.lock();
                rounds.running = false;
                rounds.finished = round;
                if let Err(error) = &result {
                    rounds.last_failure = Some((round, error.clone()));
                }
                self.finished.notify_all();
                return result;
            }
            rounds = self
                .finished
                .wait(rounds)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rounds> {
        self.rounds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_caller_returns_after_a_sync_that_started_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(SharedDirSync::new(dir.path().to_path_buf()));
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let before = shared.lock().started;
                    shared.sync("a test").unwrap();
                    let after = shared.lock().finished;
                    (before, after)
                })
            })
            .collect();
        for caller in callers {
            let (started_before, finished_after) = caller.join().unwrap();
            // the sync that let it go started after the caller came
            assert!(finished_after > started_before);
        }
        let rounds = shared.lock();
        assert!(!rounds.running);
        assert!(rounds.started >= 1 && rounds.started <= 16);
        assert_eq!(rounds.started, rounds.finished);
    }

    #[test]
    fn a_failed_sync_fails_its_caller_and_the_next_caller_syncs_again() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let shared = SharedDirSync::new(missing.clone());
        let error = shared.sync("a missing directory").unwrap_err();
        assert_eq!(error.kind(), attachments_core::ErrorKind::NotFound);
        std::fs::create_dir(&missing).unwrap();
        shared.sync("the directory, now there").unwrap();
        let rounds = shared.lock();
        assert_eq!((rounds.started, rounds.finished), (2, 2));
    }

    #[test]
    fn every_writer_a_failed_sync_covered_gets_its_error() {
        let failed = attachments_core::Error::new(attachments_core::ErrorKind::Other, "EIO");
        let after_failure = |round: u64| Rounds {
            started: 3,
            finished: 3,
            running: false,
            last_failure: Some((round, failed.clone())),
        };
        // sync 3 failed: every writer who needed it is told, not only the one who ran it (a
        // later sync would not say it again), and so is one who needed sync 2 but woke late
        let rounds = after_failure(3);
        assert!(rounds.answer(3).unwrap().is_err());
        assert!(rounds.answer(2).unwrap().is_err());
        // one who needs sync 4 waits for it
        assert!(rounds.answer(4).is_none());
        // sync 1 failed: the writers who needed sync 2 or 3 (run after it) are fine
        let rounds = after_failure(1);
        assert!(rounds.answer(2).unwrap().is_ok());
        assert!(rounds.answer(3).unwrap().is_ok());
    }

    #[test]
    fn other_directories_get_a_sync_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedWrites::new(dir.path());
        let other = dir.path().join("photos");
        std::fs::create_dir(&other).unwrap();
        shared.sync_dir(&other, "photos").unwrap();
        shared.sync_dir(dir.path(), "the root").unwrap();
        assert_eq!(shared.root.lock().finished, 1);
        assert_eq!(shared.staged.lock().finished, 0);
    }
}
