//! The queue's lifecycle: open or closed, the background worker, the cancellation token the
//! current work runs under, and the exclusive locks on the store and the local storage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::storage::ExclusiveLock;

pub(super) struct Lifecycle {
    closed: AtomicBool,
    /// Cancelled by `stop_sync`/`close` and replaced by a fresh one; every pass runs under the
    /// token current at its start. Shared with the handles' drop guard.
    cancel: Arc<Mutex<CancellationToken>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Held from `build()` until `close()` (or the engine is dropped): no second queue runs on
    /// the same table or files.
    locks: Mutex<Vec<ExclusiveLock>>,
    /// How many `clear_queue` calls are running: passes start no transfer meanwhile, so a
    /// clear never waits for a transfer it did not cancel.
    transfers_held: Arc<std::sync::atomic::AtomicUsize>,
}

/// While alive, passes start no transfer; see [`Lifecycle::hold_transfers`].
pub(super) struct TransfersHeld(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for TransfersHeld {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Lifecycle {
    pub(super) fn new(locks: Vec<ExclusiveLock>) -> Self {
        Lifecycle {
            closed: AtomicBool::new(false),
            cancel: Arc::new(Mutex::new(CancellationToken::new())),
            worker: Mutex::new(None),
            locks: Mutex::new(locks),
            transfers_held: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Keep passes from starting transfers until the returned guard is dropped.
    pub(super) fn hold_transfers(&self) -> TransfersHeld {
        self.transfers_held.fetch_add(1, Ordering::SeqCst);
        TransfersHeld(Arc::clone(&self.transfers_held))
    }

    /// Whether a pass may start a transfer now.
    pub(super) fn transfers_allowed(&self) -> bool {
        self.transfers_held.load(Ordering::SeqCst) == 0
    }

    /// The token the handles' drop guard cancels when the app drops its last handle.
    pub(super) fn cancel_slot(&self) -> std::sync::Weak<Mutex<CancellationToken>> {
        Arc::downgrade(&self.cancel)
    }

    /// `Closed` once the queue was closed.
    pub(super) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::closed());
        }
        Ok(())
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The token new work runs under.
    pub(super) fn current_cancel(&self) -> CancellationToken {
        self.cancel.lock().expect("cancel lock poisoned").clone()
    }

    /// Start the worker made by `spawn` unless one is running.
    pub(super) fn start_worker(&self, spawn: impl FnOnce(CancellationToken) -> JoinHandle<()>) {
        let mut worker = self.worker.lock().expect("worker lock poisoned");
        if worker.as_ref().is_some_and(|handle| !handle.is_finished()) {
            return;
        }
        *worker = Some(spawn(self.current_cancel()));
    }

    /// Cancel everything running under the current token, and wait for the worker to end.
    pub(super) async fn stop(&self) {
        let cancelled = std::mem::take(&mut *self.cancel.lock().expect("cancel lock poisoned"));
        cancelled.cancel();
        let worker = self.worker.lock().expect("worker lock poisoned").take();
        if let Some(worker) = worker
            && let Err(error) = worker.await
            && error.is_panic()
        {
            tracing::error!(%error, "attachment sync worker panicked");
        }
    }

    /// Refuse every later call, stop, and release the locks so another queue may start.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stop().await;
        self.locks.lock().expect("locks lock poisoned").clear();
    }
}
