//! Claims: which attachment ids and local paths have work in flight in this process.
//!
//! Every piece of work that writes or removes an attachment's files holds a claim for as long
//! as it runs: a transfer claims its id (and, for a download, the path it stages), a save
//! claims its path and id from its first byte until its file is promoted, eviction and
//! `clear_queue` claim what they remove. So two pieces of work never touch the same files at
//! once, and `clear_queue` can cancel what is in flight and wait until it has ended before it
//! removes anything: no transfer of an earlier life of an id outlives that life.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A set of claimed keys, each with a token that cancels the work holding it.
pub(super) struct Claims<K> {
    held: Mutex<HashMap<K, CancellationToken>>,
    /// Notified whenever a claim is released, for `claim` and `wait_for`.
    released: Notify,
}

impl<K: Hash + Eq + Clone> Claims<K> {
    pub(super) fn new() -> Self {
        Claims {
            held: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }
    }

    /// Claim `key` if nobody holds it; the claim's token is a child of `parent`, so cancelling
    /// the pass (or `stop_sync`) cancels the work too.
    pub(super) fn try_claim(
        self: &Arc<Self>,
        key: K,
        parent: &CancellationToken,
    ) -> Option<Claim<K>> {
        let mut held = self.held.lock().expect("claims lock poisoned");
        if held.contains_key(&key) {
            return None;
        }
        let token = parent.child_token();
        held.insert(key.clone(), token.clone());
        Some(Claim {
            claims: Arc::clone(self),
            key,
            token,
        })
    }

    /// Claim `key`, waiting for its current holder to let go.
    pub(super) async fn claim(self: &Arc<Self>, key: K, parent: &CancellationToken) -> Claim<K> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // registered before the check, so a release in between is not missed
            released.as_mut().enable();
            if let Some(claim) = self.try_claim(key.clone(), parent) {
                return claim;
            }
            released.await;
        }
    }

    /// Ask every holder to stop (its token is cancelled); they release their claims as they
    /// end.
    pub(super) fn cancel_all(&self) {
        for token in self.held.lock().expect("claims lock poisoned").values() {
            token.cancel();
        }
    }

    /// Wait until nobody holds `key`, without claiming it.
    pub(super) async fn wait_until_released(&self, key: &K) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // registered before the check, so a release in between is not missed
            released.as_mut().enable();
            if !self.is_claimed(key) {
                return;
            }
            released.await;
        }
    }

    /// Whether `key` is claimed right now.
    pub(super) fn is_claimed(&self, key: &K) -> bool {
        self.held
            .lock()
            .expect("claims lock poisoned")
            .contains_key(key)
    }
}

/// A held claim; released when dropped, however the work holding it ends. It owns its share
/// of the claim set, so work that must finish even when its caller goes away (a save's commit
/// and promotion, a pass's outcomes) can carry it into a task of its own.
pub(super) struct Claim<K: Hash + Eq> {
    claims: Arc<Claims<K>>,
    key: K,
    token: CancellationToken,
}

impl<K: Hash + Eq> Claim<K> {
    /// Cancelled when the work should stop (`clear_queue`, `stop_sync`, its pass cancelled).
    pub(super) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl<K: Hash + Eq> Drop for Claim<K> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.claims.held.lock() {
            held.remove(&self.key);
        }
        self.claims.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claimed_key_cannot_be_claimed_twice_until_released() {
        let claims = Arc::new(Claims::new());
        let root = CancellationToken::new();
        let first = claims.try_claim("a", &root).expect("free");
        assert!(claims.try_claim("a", &root).is_none());
        assert!(claims.try_claim("b", &root).is_some());
        drop(first);
        assert!(claims.try_claim("a", &root).is_some());
    }

    #[tokio::test]
    async fn claim_waits_for_the_holder_and_cancel_all_reaches_it() {
        let claims = Arc::new(Claims::new());
        let root = CancellationToken::new();
        let holder = claims.try_claim("a", &root).expect("free");
        let token = holder.token().clone();
        let waiter = {
            let claims = Arc::clone(&claims);
            let root = root.clone();
            tokio::spawn(async move {
                let _claim = claims.claim("a", &root).await;
            })
        };
        claims.cancel_all();
        token.cancelled().await; // the holder is told to stop
        assert!(!waiter.is_finished());
        drop(holder);
        waiter
            .await
            .expect("the waiter gets the claim once it is released");
        assert!(!claims.is_claimed(&"a"));
    }
}
