//! Start-up verification, once per queue before its first pass: bring files and rows back in
//! line after a crash. It looks only at what the queue owns: the storage's temporary and
//! staging areas, and the files its rows point at. It never judges the rest of the local root,
//! which may hold the app's own files.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::engine::Engine;
use super::transfer::stream_checksum;
use crate::error::Result;
use crate::meter::Meter;
use crate::model::Attachment;
use crate::state_machine::verify_on_start;
use crate::store::AttachmentStore;

/// Rows read per page: memory stays flat however large the table.
const VERIFY_PAGE: usize = 1_000;

impl<S: AttachmentStore> Engine<S> {
    /// Run start-up verification unless it has run: once per queue, before its first pass or
    /// save. A failed verification runs again next time.
    pub(super) async fn ensure_verified(&self, cancel: &CancellationToken) -> Result<()> {
        let mut verified = self.schedule.verified.lock().await;
        if !*verified {
            self.verify_local_files(cancel).await?;
            *verified = true;
        }
        Ok(())
    }

    /// Remove leftover temporary files, finish or undo staged files, and repair rows whose
    /// file is gone. A problem with one file is logged and skipped: it never stops a pass.
    async fn verify_local_files(&self, cancel: &CancellationToken) -> Result<()> {
        let temp_removed = match self.local.remove_temp_files().await {
            Ok(removed) => removed,
            Err(error) => {
                warn!(%error, "could not remove leftover temporary files");
                0
            }
        };
        let (promoted, discarded) = self.settle_staged_files(cancel).await?;
        let now = self.clock.now_ms();
        let retry_after = now.saturating_add(self.longest_backoff_ms());
        let mut repaired = 0;
        // A page at a time, so start-up memory does not grow with the table; the store skips
        // the rows start-up cannot change (waiting for a download or a delete, evicted), so
        // a table of those costs one walk of its index and nothing per row in this process.
        let mut rows = self
            .store
            .list_page_to_verify(None, VERIFY_PAGE, retry_after)
            .await?;
        while let Some(last) = rows.last().map(|row| row.id.clone()) {
            // the next page is read while this page's files are checked (the store and the
            // file system work on threads of their own); its rows are other ids. Only an
            // empty page ends the walk: a store leaves unreadable rows out of a page, so a
            // short page is not the last one.
            let next = self
                .store
                .list_page_to_verify(Some(&last), VERIFY_PAGE, retry_after);
            let (changes, next) = futures_util::future::join(self.repairs(&rows, now), next).await;
            repaired += self.apply_and_report(&rows, changes, true).await?;
            rows = next?;
        }
        info!(
            temp_removed,
            promoted, discarded, repaired, "local files verified"
        );
        Ok(())
    }

    /// What start-up changes in one page of rows: rows whose file is gone, retry times from a
    /// clock that was wrong. Work in flight is left alone. The page's files are checked in
    /// one call to the local storage.
    async fn repairs(&self, rows: &[Attachment], now: i64) -> Vec<crate::store::RowChange> {
        // work in flight (a save between its commit and its promotion) is not a crash
        let idle: Vec<&Attachment> = rows
            .iter()
            .filter(|row| {
                !self.claimed_ids.is_claimed(&row.id)
                    && !row
                        .local_uri
                        .as_ref()
                        .is_some_and(|path| self.claimed_paths.is_claimed(path))
            })
            .collect();
        let paths: Vec<String> = idle
            .iter()
            .filter_map(|row| row.local_uri.clone())
            .collect();
        let mut answers = self.local_files_present(&paths).await.into_iter();
        let mut changes = Vec::new();
        for row in idle {
            let exists = match &row.local_uri {
                Some(path) => match answers.next() {
                    Some(Ok(exists)) => exists,
                    Some(Err(error)) => {
                        warn!(id = %row.id, path, %error, "could not check a local file; left as is");
                        continue;
                    }
                    None => {
                        warn!(id = %row.id, path, "the local storage gave no answer for a file; left as is");
                        continue;
                    }
                },
                None => false,
            };
            if let Some(change) = verify_on_start(row, exists, now) {
                warn!(id = %row.id, state = %row.state, "local file missing");
                changes.push(change);
            } else if let Some(change) = self.clamp_retry_time(row, now) {
                changes.push(change);
            }
        }
        changes
    }

    /// The longest backoff, in milliseconds.
    fn longest_backoff_ms(&self) -> i64 {
        i64::try_from(self.config.retry.max_backoff.as_millis()).unwrap_or(i64::MAX)
    }

    /// A retry time further away than the longest backoff was written by a clock that was
    /// wrong (or by another program): the row is due now instead of waiting for it.
    fn clamp_retry_time(&self, row: &Attachment, now: i64) -> Option<crate::store::RowChange> {
        let at = row.next_attempt_at?;
        if !row.state.is_queued() || at <= now.saturating_add(self.longest_backoff_ms()) {
            return None;
        }
        warn!(id = %row.id, at, "a retry time beyond the longest backoff; due now");
        let mut due = row.clone();
        due.next_attempt_at = Some(now);
        Some(crate::store::RowChange::Update {
            expected_version: row.version,
            row: due,
        })
    }

    /// Each staged file left by a crash: promoted when a row points at its path and its bytes
    /// are the row's (a save or download whose row committed), removed otherwise (a save that
    /// never committed, a download or removal whose row moved on). Files staged by work still
    /// running in this process are left alone.
    async fn settle_staged_files(&self, cancel: &CancellationToken) -> Result<(u64, u64)> {
        let staged = match self.local.list_staged().await {
            Ok(staged) => staged,
            Err(error) => {
                warn!(%error, "could not list staged files");
                return Ok((0, 0));
            }
        };
        if staged.is_empty() {
            return Ok((0, 0));
        }
        // the rows that point at a staged path (few: a crash leaves a handful of staged
        // files), asked of the store by path rather than found by reading the table
        let owners = self.store.list_by_local_uri(&staged).await?;
        let by_path: HashMap<&str, &Attachment> = owners
            .iter()
            .filter_map(|row| row.local_uri.as_deref().map(|path| (path, row)))
            .collect();
        let (mut promoted, mut discarded) = (0, 0);
        for path in staged {
            let Some(_claim) = self.claimed_paths.try_claim(path.clone(), cancel) else {
                continue; // a save or download in progress
            };
            let keep = match by_path.get(path.as_str()) {
                Some(row) => match self.staged_file_matches(&path, row).await {
                    Some(matches) => matches,
                    None => continue, // unreadable now: decided at the next start
                },
                None => false,
            };
            let result = if keep {
                self.local.promote_staged(&path).await
            } else {
                self.local.discard_staged(&path).await
            };
            match result {
                Ok(()) if keep => promoted += 1,
                Ok(()) => discarded += 1,
                Err(error) => warn!(path, %error, keep, "could not settle a staged file"),
            }
        }
        Ok((promoted, discarded))
    }

    /// Whether the staged file at `path` holds what `row` recorded (size and checksum, as far
    /// as the row knows them); `None` when it cannot be read.
    async fn staged_file_matches(&self, path: &str, row: &Attachment) -> Option<bool> {
        let meter = Meter::new();
        let read = async {
            let mut stream = meter.wrap(self.local.read_staged(path).await?);
            while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                chunk?;
            }
            drop(stream);
            stream_checksum(&meter).await
        };
        match read.await {
            Ok(checksum) => Some(
                row.size.is_none_or(|size| size == meter.bytes())
                    && row.checksum.as_ref().is_none_or(|want| *want == checksum),
            ),
            Err(error) => {
                warn!(path, %error, "could not read a staged file");
                None
            }
        }
    }
}
