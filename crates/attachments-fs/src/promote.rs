//! Promotions of staged files that wait at the same time are done together: one trip to the
//! blocking pool renames them all, then one sync of the root makes them durable.
//!
//! Saves made at once commit their rows in groups and promote their files right after, so
//! their promotions arrive together. The first one starts a blocking task that takes every
//! promotion waiting, renames each, syncs the directories they entered, answers each, and
//! looks again until none waits. Each promotion is reported done only once a sync that
//! started after its rename has finished, as when it had a trip and a sync of its own.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use attachments_core::{Error, ErrorKind, Result};
use tokio::sync::oneshot;

use crate::dirsync::SharedWrites;
use crate::local::promote_unsynced;

/// Promotions waiting for the blocking task that does them.
#[derive(Debug, Default)]
pub(crate) struct Promotions {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<(String, oneshot::Sender<Result<()>>)>,
    /// Whether a blocking task is doing promotions (it looks again before it ends).
    draining: bool,
}

impl Promotions {
    /// Promote the staged file `name` (already checked) to its path, durably.
    pub(crate) async fn promote(
        self: &Arc<Self>,
        root: &Path,
        name: &str,
        shared: &Arc<SharedWrites>,
    ) -> Result<()> {
        let (answer, done) = oneshot::channel();
        let start = {
            let mut state = self.lock();
            state.waiting.push((name.to_owned(), answer));
            !std::mem::replace(&mut state.draining, true)
        };
        if start {
            let (promotions, root, shared) =
                (Arc::clone(self), root.to_path_buf(), Arc::clone(shared));
            tokio::task::spawn_blocking(move || promotions.drain(&root, &shared));
        }
        done.await.map_err(|_| {
            Error::new(
                ErrorKind::Other,
                "a file-system task failed while promoting a staged file",
            )
        })?
    }

    /// Do every waiting promotion, until none waits.
    fn drain(&self, root: &Path, shared: &SharedWrites) {
        loop {
            let batch = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.draining = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            // a panic drops the batch's answers (each caller gets an error) and lets the next
            // promotion start a task of its own
            if catch_unwind(AssertUnwindSafe(|| promote_batch(root, shared, batch))).is_err() {
                self.lock().draining = false;
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Rename every staged file of `batch`, sync each directory entered once, answer each.
fn promote_batch(
    root: &Path,
    shared: &SharedWrites,
    batch: Vec<(String, oneshot::Sender<Result<()>>)>,
) {
    let moved: Vec<(String, oneshot::Sender<Result<()>>, Result<PathBuf>)> = batch
        .into_iter()
        .map(|(name, answer)| {
            let entered = promote_unsynced(root, &name, shared);
            (name, answer, entered)
        })
        .collect();
    let entered: BTreeSet<&Path> = moved
        .iter()
        .filter_map(|(_, _, entered)| entered.as_deref().ok())
        .collect();
    let synced: Vec<(PathBuf, Result<()>)> = entered
        .into_iter()
        .map(|dir| {
            (
                dir.to_path_buf(),
                shared.sync_dir(dir, &dir.display().to_string()),
            )
        })
        .collect();
    for (name, answer, entered) in moved {
        let result =
            entered.and_then(
                |dir| match synced.iter().find(|(synced, _)| *synced == dir) {
                    Some((_, Ok(()))) => Ok(()),
                    Some((_, Err(error))) => Err(error.clone()),
                    None => Err(Error::new(
                        ErrorKind::Other,
                        format!("the directory of {name:?} was not synced"),
                    )),
                },
            );
        let _ = answer.send(result);
    }
}
