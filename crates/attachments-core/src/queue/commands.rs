//! What the app asks of the queue directly: save, delete, retry, expire the cache, clear.
//!
//! Each command claims the ids and paths it touches (see `claims`), so it never races a
//! transfer over the same files.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::SaveFile;
use super::engine::{Engine, run_to_the_end};
use super::hooks::BoundHook;
use super::transfer::stream_checksum;
use crate::error::{Error, ErrorKind, Result};
use crate::meter::Meter;
use crate::model::{Attachment, AttachmentId, AttachmentState, default_filename};
use crate::state_machine::{
    SavedFile, request_delete, retry_failed, saved_file_row, select_evictions,
};
use crate::store::{AttachmentStore, RowChange};

impl<S: AttachmentStore> Engine<S> {
    /// Stream the file into the staging area, record the row (with the app's hook) in one
    /// transaction, then promote the file to its path. A crash before the commit leaves only a
    /// staged file, which start-up removes; one after it, a staged file start-up promotes.
    /// Once the file is staged, the rest runs in a task of its own: a caller that stops
    /// waiting (a timeout, a dropped future) cannot leave a committed row with its file still
    /// staged.
    pub(super) async fn save_file(
        self: &Arc<Self>,
        file: SaveFile,
        hook: Option<BoundHook<S::Connection>>,
    ) -> Result<Attachment> {
        self.lifecycle.ensure_open()?;
        let cancel = self.lifecycle.current_cancel();
        // a crashed process's staged files are settled before this save stages one
        self.ensure_verified(&cancel).await?;
        let given_id = file.id.is_some();
        let id = file.id.unwrap_or_else(AttachmentId::generate);
        let filename = default_filename(&id, file.file_extension.as_deref())?;
        // Both claimed before the checks below: a second save of the same id or file name
        // cannot pass them while this one is between them and its commit.
        let busy = || {
            Error::new(
                ErrorKind::AlreadyExists,
                format!("a save or transfer of {filename:?} is in progress"),
            )
            .with_attachment(&id)
        };
        let Some(path_claim) = self.claimed_paths.try_claim(filename.clone(), &cancel) else {
            return Err(busy());
        };
        let Some(id_claim) = self.claimed_ids.try_claim(id.clone(), &cancel) else {
            return Err(busy());
        };
        // An id the app chose may exist: refuse it before any byte is written. A generated
        // UUID cannot, and the insert checks again anyway, so it skips this round trip.
        if given_id && self.store.get(&id).await?.is_some() {
            return Err(crate::store::already_exists(&id));
        }
        let meter = Meter::new();
        let size = self
            .local
            .write_staged(&filename, meter.wrap(file.data))
            .await?;
        let checksum = stream_checksum(&meter).await?;
        let row = saved_file_row(
            SavedFile {
                id: id.clone(),
                filename: filename.clone(),
                size,
                checksum,
                media_type: file.media_type,
                meta_data: file.meta_data,
            },
            self.clock.now_ms(),
        );
        let hook = hook.map(|bind| bind(row.clone()));
        let engine = Arc::clone(self);
        run_to_the_end(async move {
            let _claims = (path_claim, id_claim);
            engine.commit_save(row, hook).await
        })
        .await
    }

    /// The second half of a save: the row, then the file at its path.
    async fn commit_save(
        &self,
        row: Attachment,
        hook: Option<crate::store::UpdateHook<S::Connection>>,
    ) -> Result<Attachment> {
        let (id, filename, size) = (row.id.clone(), row.filename.clone(), row.size);
        let saved = match self.store.insert_with_hook(row, hook).await {
            Ok(saved) => saved,
            Err(error) => {
                if let Err(cleanup) = self.local.discard_staged(&filename).await {
                    warn!(%id, %cleanup, "could not remove the staged file of a failed save");
                }
                return Err(error);
            }
        };
        if let Err(error) = self.local.promote_staged(&filename).await {
            // The row is committed and the file is safe in the staging area: start-up
            // promotes it. Until then its upload fails and is retried.
            warn!(%id, %error, "could not move a saved file to its path");
            self.emit_error(Some(id.clone()), None, error);
        }
        self.report_write(None, &RowChange::Insert(saved.clone()));
        info!(%id, ?size, "attachment saved");
        self.schedule.trigger();
        Ok(saved)
    }

    pub(super) async fn delete_file(
        &self,
        id: &AttachmentId,
        hook: Option<BoundHook<S::Connection>>,
    ) -> Result<()> {
        self.lifecycle.ensure_open()?;
        let current = self.store.get(id).await?.ok_or_else(|| missing(id))?;
        let now = self.clock.now_ms();
        let missing_id = id.clone();
        let decide = Box::new(move |existing: Option<Attachment>| match existing {
            Some(row) => Ok(request_delete(&row, now)),
            None => Err(missing(&missing_id)),
        });
        let hook = hook.map(|bind| bind(current.clone()));
        // Guarded before the commit, so no reconcile can find the row gone without the guard;
        // the guard records when the delete committed once it has.
        let guard = self.references.guard_delete(id);
        let change = match self.store.apply_with_hook(id, decide, hook).await {
            Ok(change) => {
                guard.committed();
                change
            }
            Err(error) => return Err(error),
        };
        self.report_write(Some(current.state), &change);
        self.schedule.trigger();
        Ok(())
    }

    pub(super) async fn retry(&self, id: &AttachmentId) -> Result<()> {
        let row = self.store.get(id).await?.ok_or_else(|| missing(id))?;
        if row.failed_state == Some(AttachmentState::QueuedUpload) {
            let present = match &row.local_uri {
                Some(path) => self.local_file_present(path).await?,
                None => false,
            };
            if !present {
                return Err(Error::not_found(
                    "the attachment failed to upload and its local file is gone: nothing to retry",
                )
                .with_attachment(id));
            }
        }
        let now = self.clock.now_ms();
        let missing_id = id.clone();
        let decide = Box::new(move |existing: Option<Attachment>| match existing {
            Some(row) => retry_failed(&row, now),
            None => Err(missing(&missing_id)),
        });
        let change = self.store.apply_with_hook(id, decide, None).await?;
        self.report_write(Some(row.state), &change);
        self.schedule.trigger();
        Ok(())
    }

    /// Evict archived rows beyond the cache limits. An evicted file leaves through the
    /// staging area: moved there, its row removed, then discarded (or put back if the row
    /// was revived meanwhile). Runs to its end even if the pass is cancelled.
    pub(super) async fn expire_cache(self: &Arc<Self>, cancel: &CancellationToken) -> Result<u64> {
        let (engine, cancel) = (Arc::clone(self), cancel.clone());
        run_to_the_end(async move { engine.evict(&cancel).await }).await
    }

    async fn evict(&self, cancel: &CancellationToken) -> Result<u64> {
        let archived = self.store.list(Some(&[AttachmentState::Archived])).await?;
        let evictions = select_evictions(
            &archived,
            self.config.archived_cache_limit,
            self.config.archived_cache_bytes,
        );
        let mut evicted = 0;
        for row in evictions {
            let Some(_id) = self.claimed_ids.try_claim(row.id.clone(), cancel) else {
                continue; // busy: the next expiry looks again
            };
            let path = match &row.local_uri {
                Some(path) => match self.claimed_paths.try_claim(path.clone(), cancel) {
                    Some(claim) => Some((path.as_str(), claim)),
                    None => continue,
                },
                None => None,
            };
            if self
                .remove_row_and_file(&row, path.map(|(path, _)| path))
                .await?
            {
                evicted += 1;
            }
        }
        if evicted > 0 {
            debug!(evicted, "archived attachments evicted from the cache");
        }
        Ok(evicted)
    }

    /// Forget every attachment: cancel the work in flight and wait for it to end, then remove
    /// each row and the local file it references (nothing else). Runs to its end even if the
    /// caller stops waiting. No pass starts a transfer while it runs.
    pub(super) async fn clear_queue(self: &Arc<Self>) -> Result<u64> {
        let engine = Arc::clone(self);
        run_to_the_end(async move {
            let _no_new_transfers = engine.lifecycle.hold_transfers();
            engine.clear().await
        })
        .await
    }

    async fn clear(&self) -> Result<u64> {
        self.claimed_ids.cancel_all();
        let cancel = CancellationToken::new();
        let listed = self.store.list(None).await?;
        // Claiming every path and id waits for the transfers of these lives to end, so none
        // of them can write a file or a row after its row is gone. Paths before ids, as a save
        // takes them; saves and transfers never wait for a claim, so this cannot deadlock.
        let paths: std::collections::BTreeSet<&String> = listed
            .iter()
            .filter_map(|row| row.local_uri.as_ref())
            .collect();
        let mut path_claims = Vec::with_capacity(paths.len());
        for path in &paths {
            path_claims.push(self.claimed_paths.claim((*path).clone(), &cancel).await);
        }
        let mut id_claims = Vec::with_capacity(listed.len());
        for row in &listed {
            id_claims.push(self.claimed_ids.claim(row.id.clone(), &cancel).await);
        }
        // read again: outcomes written before the claims were taken changed versions
        let claimed: std::collections::HashSet<&AttachmentId> =
            listed.iter().map(|row| &row.id).collect();
        let rows: Vec<Attachment> = self
            .store
            .list(None)
            .await?
            .into_iter()
            .filter(|row| claimed.contains(&row.id))
            .collect();
        let mut removed = 0;
        for row in &rows {
            // only paths claimed above are touched; a row whose path changed keeps its file
            let path = row
                .local_uri
                .as_ref()
                .filter(|path| paths.contains(path))
                .map(String::as_str);
            if self.remove_row_and_file(row, path).await? {
                removed += 1;
            }
        }
        self.references.forget_baseline();
        drop((id_claims, path_claims));
        info!(removed, "attachment queue cleared");
        Ok(removed)
    }

    /// Remove one row (compare-and-set on its version) and its local file at `path`. The file
    /// goes to the staging area first: a crash then leaves it where start-up finds it (and
    /// puts it back if the row is still there, or removes it if not). Returns whether the row
    /// was removed.
    async fn remove_row_and_file(&self, row: &Attachment, path: Option<&str>) -> Result<bool> {
        let staged = match path {
            Some(path) => match self.local.stage_existing(path).await {
                Ok(moved) => moved,
                Err(error) => {
                    warn!(id = %row.id, path, %error, "could not move a local file aside; the row stays");
                    return Ok(false);
                }
            },
            None => false,
        };
        let change = RowChange::Delete {
            id: row.id.clone(),
            expected_version: row.version,
        };
        let applied = match self.store.apply(vec![change.clone()]).await {
            Ok(applied) => applied[0],
            Err(error) => {
                if staged && let Some(path) = path {
                    self.restore_staged(path).await;
                }
                return Err(error);
            }
        };
        if let Some(path) = path.filter(|_| staged) {
            if applied {
                if let Err(error) = self.local.discard_staged(path).await {
                    warn!(path, %error, "could not remove a staged file; start-up removes it");
                }
            } else {
                self.restore_staged(path).await;
            }
        }
        if applied {
            self.report_write(Some(row.state), &change);
        }
        Ok(applied)
    }

    async fn restore_staged(&self, path: &str) {
        if let Err(error) = self.local.promote_staged(path).await {
            warn!(path, %error, "could not put a staged file back; start-up puts it back");
        }
    }

    /// Whether the file a row points at exists. A `local_uri` the storage refuses (a row
    /// written by something else, pointing outside the root) counts as missing: nothing is
    /// read there, and the row is repaired like any row whose file is gone.
    pub(super) async fn local_file_present(&self, path: &str) -> Result<bool> {
        match self.local.exists(path).await {
            Ok(present) => Ok(present),
            Err(error) if error.kind() == ErrorKind::InvalidInput => {
                warn!(path, %error, "a row points at a path the local storage refuses");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// [`local_file_present`](Self::local_file_present) for many paths, in one call to the
    /// local storage; one answer per path, in order.
    pub(super) async fn local_files_present(&self, paths: &[String]) -> Vec<Result<bool>> {
        if paths.is_empty() {
            return Vec::new();
        }
        let answers = self.local.exists_many(paths).await;
        paths
            .iter()
            .zip(answers)
            .map(|(path, answer)| match answer {
                Err(error) if error.kind() == ErrorKind::InvalidInput => {
                    warn!(path, %error, "a row points at a path the local storage refuses");
                    Ok(false)
                }
                answer => answer,
            })
            .collect()
    }
}

fn missing(id: &AttachmentId) -> Error {
    Error::not_found("no such attachment").with_attachment(id)
}
