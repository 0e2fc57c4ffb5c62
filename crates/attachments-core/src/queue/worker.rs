//! The background worker: one loop that runs a pass at every trigger (at most one per
//! `sync_throttle`), every `sync_interval`, and when the earliest backed-off row comes due;
//! and the task that feeds it the app's watched references.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::engine::Engine;
use crate::error::Result;
use crate::model::ReferencedAttachments;
use crate::store::AttachmentStore;

/// When the next pass runs and what it has to do.
pub(super) struct Schedule {
    /// Every trigger (a reading, a save, a delete, `trigger_sync`) lands here; many triggers
    /// before the worker wakes collapse into one pass.
    pub(super) trigger: Notify,
    /// When the earliest backed-off row becomes due, in the clock's ms (`i64::MAX`: none), so
    /// the worker wakes for it without listing the table.
    pub(super) next_due_ms: AtomicI64,
    /// Set when a row is archived (and at start); a pass expires the cache only then.
    pub(super) cache_may_overflow: AtomicBool,
    /// Start-up verification runs once per queue, before its first pass or save (a save must
    /// not write a staged file before a crashed process's leftovers are settled); `true` once
    /// it has.
    pub(super) verified: tokio::sync::Mutex<bool>,
}

impl Schedule {
    pub(super) fn new() -> Self {
        Schedule {
            trigger: Notify::new(),
            next_due_ms: AtomicI64::new(i64::MAX),
            cache_may_overflow: AtomicBool::new(true),
            verified: tokio::sync::Mutex::new(false),
        }
    }

    /// Ask for a pass soon.
    pub(super) fn trigger(&self) {
        self.trigger.notify_one();
    }

    /// Remember a row that becomes due at `due_ms`, so the worker wakes for it.
    pub(super) fn due_at(&self, due_ms: i64) {
        self.next_due_ms.fetch_min(due_ms, Ordering::SeqCst);
    }
}

impl<S: AttachmentStore> Engine<S> {
    pub(super) async fn run_worker(self: Arc<Self>, cancel: CancellationToken) {
        let span = info_span!("attachment_sync");
        async move {
            info!("sync started");
            if let Some(source) = self.watch_source.clone() {
                let watcher = Arc::clone(&self);
                let watch_cancel = cancel.clone();
                tokio::spawn(
                    async move { watcher.run_watcher(source(), watch_cancel).await }
                        .in_current_span(),
                );
            }
            let mut last_pass: Option<Instant> = None;
            loop {
                if let Some(last) = last_pass {
                    let interval_end = last + self.config.sync_interval;
                    let wake = self
                        .next_due_instant()
                        .map_or(interval_end, |due| due.min(interval_end));
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = self.schedule.trigger.notified() => {}
                        _ = tokio::time::sleep_until(wake) => {}
                    }
                    let earliest = last + self.config.sync_throttle;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep_until(earliest) => {}
                    }
                }
                last_pass = Some(Instant::now());
                if let Err(error) = self.run_pass(&cancel).await {
                    warn!(%error, "sync pass failed");
                    self.emit_error(None, None, error);
                }
                if cancel.is_cancelled() {
                    break;
                }
            }
            info!("sync stopped");
        }
        .instrument(span)
        .await
    }

    async fn run_watcher(
        self: Arc<Self>,
        mut readings: BoxStream<'static, Result<ReferencedAttachments>>,
        cancel: CancellationToken,
    ) {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                next = readings.next() => next,
            };
            match next {
                Some(Ok(reading)) => {
                    debug!(referenced = reading.items.len(), "watched attachments read");
                    self.references.set_latest(reading);
                    self.schedule.trigger();
                }
                Some(Err(error)) => {
                    warn!(%error, "watched attachments query failed");
                    self.emit_error(None, None, error);
                }
                None => {
                    debug!("watched attachments stream ended");
                    return;
                }
            }
        }
    }

    /// When the earliest backed-off row becomes due. Rows queued after the last pass come
    /// with a trigger of their own.
    fn next_due_instant(&self) -> Option<Instant> {
        let earliest = self.schedule.next_due_ms.load(Ordering::SeqCst);
        if earliest == i64::MAX {
            return None;
        }
        let wait = u64::try_from(earliest.saturating_sub(self.clock.now_ms())).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }
}
