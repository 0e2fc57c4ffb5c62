//! The app's references, and reconciling the table with them, reading only the rows that can
//! differ.
//!
//! References are a state, not a stream of events: a pass judges every row the queue wrote
//! since the last reconcile (saves, deletes, transfer outcomes, repairs) against the latest
//! reading, so a change the watcher never saw (saved and unreferenced between two readings)
//! still ends where a full reconcile would put it.
//!
//! A full reconcile reads every row. After one, the queue keeps a baseline: the ids the last
//! reading referenced, and the ids of rows the queue wrote since. The next reconcile can only
//! change what the last one left in place for ids whose reference appeared or disappeared, or
//! whose row was written since; every other row already holds what a full reconcile would
//! decide. One changed id on 100,000 rows reads a handful of rows instead of all of them.
//!
//! The baseline assumes the queue is the only writer of its table (the store's exclusive lock
//! makes it so). It is dropped (the next reconcile is full) after an error, `clear_queue`, a
//! change of the download toggle, and when too many rows were written since the last
//! reconcile for reading them one by one to pay off.
//!
//! Deletes are ordered against readings: a reading that began before a delete committed still
//! names the deleted id and must not bring it back; one that began after it may (the app
//! reused the id).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{debug, warn};

use super::engine::Engine;
use crate::error::Result;
use crate::model::{AttachmentId, AttachmentState, ReferencedAttachments, WatchedAttachmentItem};
use crate::state_machine::{ReconcileContext, reconcile_watched};
use crate::store::AttachmentStore;

/// Rows a full reconcile reads at a time.
const RECONCILE_PAGE: usize = 1_000;

/// Above this many rows to read, a reconcile reads the whole table instead.
const MAX_ROWS_READ_BY_ID: usize = 10_000;

/// The app's references and what the last reconcile left in place.
pub(super) struct References {
    /// The newest reading; an older one arriving late never replaces it.
    latest: Mutex<Option<Arc<ReferencedAttachments>>>,
    /// Whether a reading (or the download toggle) changed since the last reconcile.
    changed: AtomicBool,
    /// Whether referenced attachments are downloaded: the one place the toggle lives.
    downloads: AtomicBool,
    /// Ids deleted through this queue, with when the delete committed (`None`: not yet).
    /// An entry is dropped once a reading that began after the commit arrives.
    deleted: Mutex<HashMap<AttachmentId, Option<Instant>>>,
    baseline: Mutex<Option<Baseline>>,
    /// Reconciles run one at a time, each from the baseline the previous one left.
    reconciling: tokio::sync::Mutex<()>,
}

/// What the last reconcile left in place; see the module documentation.
#[derive(Debug, Default)]
struct Baseline {
    /// The ids the last reconciled reading referenced.
    referenced: HashSet<AttachmentId>,
    /// The download toggle the last reconcile ran with.
    downloads: bool,
    /// Ids of rows the queue wrote since the last reconcile began, but for its own writes.
    written: HashSet<AttachmentId>,
}

/// Which rows a reconcile reads.
enum Scope {
    /// Every row.
    Table,
    /// Only the rows with these ids.
    Rows(Vec<AttachmentId>),
}

impl References {
    pub(super) fn new(downloads: bool) -> Self {
        References {
            latest: Mutex::new(None),
            changed: AtomicBool::new(false),
            downloads: AtomicBool::new(downloads),
            deleted: Mutex::new(HashMap::new()),
            baseline: Mutex::new(None),
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// Take a new reading, unless a newer one is already known.
    pub(super) fn set_latest(&self, reading: ReferencedAttachments) {
        {
            let mut latest = self.latest.lock().expect("references lock poisoned");
            if latest
                .as_ref()
                .is_some_and(|known| known.read_at > reading.read_at)
            {
                debug!("a reading older than the latest one arrived late; ignored");
                return;
            }
            // deletes that committed before this reading began no longer need a guard
            self.deleted
                .lock()
                .expect("deleted lock poisoned")
                .retain(|_, committed| committed.is_none_or(|at| at >= reading.read_at));
            *latest = Some(Arc::new(reading));
        }
        self.changed.store(true, Ordering::SeqCst);
    }

    pub(super) fn downloads_enabled(&self) -> bool {
        self.downloads.load(Ordering::SeqCst)
    }

    pub(super) fn set_downloads(&self, enabled: bool) {
        self.downloads.store(enabled, Ordering::SeqCst);
        self.changed.store(true, Ordering::SeqCst);
    }

    /// Guard `id` against readings taken before its delete commits; call
    /// [`DeleteGuard::committed`] once it has. Dropped uncommitted, the guard is withdrawn.
    pub(super) fn guard_delete(&self, id: &AttachmentId) -> DeleteGuard<'_> {
        let previous = self
            .deleted
            .lock()
            .expect("deleted lock poisoned")
            .insert(id.clone(), None);
        DeleteGuard {
            references: self,
            id: id.clone(),
            previous,
            committed: false,
        }
    }

    /// Ids that readings taken at `read_at` may still name although they were deleted.
    fn deleted_after(&self, read_at: Instant) -> HashSet<AttachmentId> {
        self.deleted
            .lock()
            .expect("deleted lock poisoned")
            .iter()
            .filter(|(_, committed)| committed.is_none_or(|at| at >= read_at))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Note that the queue wrote the row `id`, for the next reconcile.
    pub(super) fn note_written(&self, id: &AttachmentId) {
        let mut baseline = self.baseline.lock().expect("baseline lock poisoned");
        if let Some(current) = baseline.as_mut() {
            current.written.insert(id.clone());
            if current.written.len() > MAX_ROWS_READ_BY_ID {
                *baseline = None;
            }
        }
    }

    /// Forget the baseline: the next reconcile reads the whole table.
    pub(super) fn forget_baseline(&self) {
        *self.baseline.lock().expect("baseline lock poisoned") = None;
        self.changed.store(true, Ordering::SeqCst);
    }

    /// Whether a pass must reconcile: there are references, and they changed or rows were
    /// written since the last reconcile.
    pub(super) fn reconcile_due(&self) -> bool {
        if self
            .latest
            .lock()
            .expect("references lock poisoned")
            .is_none()
        {
            return false;
        }
        self.changed.load(Ordering::SeqCst)
            || self
                .baseline
                .lock()
                .expect("baseline lock poisoned")
                .as_ref()
                .is_none_or(|baseline| !baseline.written.is_empty())
    }

    /// Decide which rows to read, and start recording the writes made from now on.
    fn begin(&self, referenced: &HashSet<AttachmentId>, downloads: bool) -> Scope {
        let mut baseline = self.baseline.lock().expect("baseline lock poisoned");
        let Some(current) = baseline
            .as_mut()
            .filter(|current| current.downloads == downloads)
        else {
            *baseline = Some(Baseline {
                downloads,
                ..Baseline::default()
            });
            return Scope::Table;
        };
        let mut ids = std::mem::take(&mut current.written);
        ids.extend(
            referenced
                .symmetric_difference(&current.referenced)
                .cloned(),
        );
        if ids.len() > MAX_ROWS_READ_BY_ID {
            return Scope::Table;
        }
        Scope::Rows(ids.into_iter().collect())
    }

    /// Record the outcome of a reconcile that began with `begin`.
    fn end(&self, succeeded: bool, referenced: HashSet<AttachmentId>, downloads: bool) {
        let mut baseline = self.baseline.lock().expect("baseline lock poisoned");
        match (succeeded, baseline.as_mut()) {
            (true, Some(current)) => {
                current.referenced = referenced;
                current.downloads = downloads;
            }
            _ => {
                *baseline = None;
                self.changed.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A delete's guard against readings taken before it committed.
pub(super) struct DeleteGuard<'a> {
    references: &'a References,
    id: AttachmentId,
    previous: Option<Option<Instant>>,
    committed: bool,
}

impl DeleteGuard<'_> {
    /// The delete committed now: readings that began from now on may name the id again.
    pub(super) fn committed(mut self) {
        self.committed = true;
        self.references
            .deleted
            .lock()
            .expect("deleted lock poisoned")
            .insert(self.id.clone(), Some(Instant::now()));
    }
}

impl Drop for DeleteGuard<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Ok(mut deleted) = self.references.deleted.lock() {
            match self.previous.take() {
                Some(previous) => deleted.insert(self.id.clone(), previous),
                None => deleted.remove(&self.id),
            };
        }
    }
}

impl<S: AttachmentStore> Engine<S> {
    /// Apply the latest reading to the table.
    pub(super) async fn reconcile(&self) -> Result<()> {
        // one at a time: each starts from the baseline the previous one left
        let _one_at_a_time = self.references.reconciling.lock().await;
        self.references.changed.store(false, Ordering::SeqCst);
        let Some(reading) = self
            .references
            .latest
            .lock()
            .expect("references lock poisoned")
            .clone()
        else {
            return Ok(());
        };
        let downloads = self.references.downloads_enabled();
        let referenced: HashSet<AttachmentId> =
            reading.items.iter().map(|item| item.id.clone()).collect();
        // Deleted ids this reading may still name: left alone now, and looked at again by
        // the next reconcile (a newer reading may reference them again: a reused id).
        let guarded = self.references.deleted_after(reading.read_at);
        let scope = self.references.begin(&referenced, downloads);
        let result = self
            .reconcile_scope(&reading, &referenced, scope, downloads, &guarded)
            .await;
        self.references.end(result.is_ok(), referenced, downloads);
        for id in &guarded {
            self.references.note_written(id);
        }
        result
    }

    async fn reconcile_scope(
        &self,
        reading: &ReferencedAttachments,
        referenced: &HashSet<AttachmentId>,
        scope: Scope,
        downloads: bool,
        guarded: &HashSet<AttachmentId>,
    ) -> Result<()> {
        let ids = match scope {
            Scope::Table => {
                return self
                    .reconcile_table(reading, referenced, downloads, guarded)
                    .await;
            }
            Scope::Rows(ids) if ids.is_empty() => return Ok(()),
            Scope::Rows(ids) => ids,
        };
        let rows = self.store.get_many(&ids).await?;
        let ids: HashSet<AttachmentId> = ids.into_iter().collect();
        let items: Vec<&WatchedAttachmentItem> = reading
            .items
            .iter()
            .filter(|item| ids.contains(&item.id))
            .collect();
        self.reconcile_rows(&rows, &items, referenced, downloads, guarded)
            .await
    }

    /// The whole table, a page at a time in id order, each page with the references whose ids
    /// fall in its range (a reference's fate depends on its own row alone): memory holds one
    /// page of rows, however large the table.
    async fn reconcile_table(
        &self,
        reading: &ReferencedAttachments,
        referenced: &HashSet<AttachmentId>,
        downloads: bool,
        guarded: &HashSet<AttachmentId>,
    ) -> Result<()> {
        let mut items: Vec<&WatchedAttachmentItem> = reading.items.iter().collect();
        items.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let mut rest = &items[..];
        let mut after: Option<AttachmentId> = None;
        // Only an empty page ends the walk: a store leaves unreadable rows out of a page, so
        // a short page is not the last one.
        loop {
            let rows = self.store.list_page(after.as_ref(), RECONCILE_PAGE).await?;
            let Some(last) = rows.last() else { break };
            let split = rest.partition_point(|item| item.id.as_str() <= last.id.as_str());
            let (page_items, later) = rest.split_at(split);
            after = Some(last.id.clone());
            self.reconcile_rows(&rows, page_items, referenced, downloads, guarded)
                .await?;
            rest = later;
        }
        // references beyond the table's last id (or an empty table): new rows
        if !rest.is_empty() {
            self.reconcile_rows(&[], rest, referenced, downloads, guarded)
                .await?;
        }
        Ok(())
    }

    async fn reconcile_rows(
        &self,
        rows: &[crate::model::Attachment],
        items: &[&WatchedAttachmentItem],
        referenced: &HashSet<AttachmentId>,
        downloads: bool,
        guarded: &HashSet<AttachmentId>,
    ) -> Result<()> {
        debug!(rows = rows.len(), "reconciling references");
        // the files of archived rows referenced again, checked in one call to the storage
        let (revived, paths): (Vec<&AttachmentId>, Vec<String>) = rows
            .iter()
            .filter(|row| row.state == AttachmentState::Archived && referenced.contains(&row.id))
            .filter_map(|row| Some((&row.id, row.local_uri.clone()?)))
            .unzip();
        let mut local_files_present = HashSet::new();
        let answers = self.local_files_present(&paths).await;
        for ((id, path), answer) in revived.into_iter().zip(&paths).zip(answers) {
            match answer {
                Ok(true) => {
                    local_files_present.insert(id.clone());
                }
                Ok(false) => {}
                // taken as missing: the row is revived as a download, never stuck
                Err(error) => warn!(%id, path, %error, "could not check a local file"),
            }
        }
        let context = ReconcileContext {
            download_attachments: downloads,
            local_files_present,
            recently_deleted: guarded.clone(),
            now_ms: self.clock.now_ms(),
        };
        let reconciliation = reconcile_watched(rows, items.iter().copied(), &context);
        for (id, error) in reconciliation.rejected {
            warn!(%id, %error, "referenced attachment refused");
            self.emit_error(Some(id), None, error);
        }
        if reconciliation.changes.is_empty() {
            return Ok(()); // most pages of a table in step with its references
        }
        let applied = self.store.apply(reconciliation.changes.clone()).await?;
        self.report_reconciled(rows, &reconciliation.changes, &applied);
        Ok(())
    }

    /// Events for what a reconcile wrote. An insert that did not apply met a row that took its
    /// id or its file name first: reported, since the store never lets two rows share a file
    /// (deleting one would delete the other's data).
    fn report_reconciled(
        &self,
        before: &[crate::model::Attachment],
        changes: &[crate::store::RowChange],
        applied: &[bool],
    ) {
        let states_before: HashMap<&AttachmentId, AttachmentState> =
            before.iter().map(|row| (&row.id, row.state)).collect();
        for (change, applied) in changes.iter().zip(applied) {
            if *applied {
                self.report_change(states_before.get(change.id()).copied(), change);
            } else if let crate::store::RowChange::Insert(row) = change {
                // looked at again by the next reconcile: the file name may be free by then
                self.references.note_written(&row.id);
                let error = crate::error::Error::new(
                    crate::error::ErrorKind::AlreadyExists,
                    format!(
                        "id or file name {:?} is taken by another attachment; not tracked",
                        row.filename
                    ),
                )
                .with_attachment(&row.id);
                warn!(id = %row.id, %error, "referenced attachment refused");
                self.emit_error(Some(row.id.clone()), None, error);
            }
        }
    }
}
