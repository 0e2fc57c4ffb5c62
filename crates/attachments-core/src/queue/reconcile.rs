//! Reconciling the table with the app's references, reading only the rows that can differ.
//!
//! A full reconcile reads every row. After one, the queue keeps a baseline: the ids the last
//! emission referenced, and the ids of rows the queue wrote since (saves, deletes, transfer
//! outcomes, repairs: every write but the reconcile's own). The next emission can only change
//! what the last one left in place for ids whose reference appeared or disappeared, or whose
//! row was written since; every other row already holds what a full reconcile would decide, so
//! the next reconcile reads and decides only those rows. One changed id on 100,000 rows reads
//! a handful of rows instead of all of them.
//!
//! The baseline assumes the queue is the only writer of its table, as it is for every app
//! that goes through the queue. It is dropped (the next reconcile is full) after an error,
//! `clear_queue`, a change of the download toggle, and when too many rows were written since
//! the last reconcile for reading them one by one to pay off.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tracing::{debug, warn};

use super::Shared;
use super::engine::now_ms;
use crate::error::Result;
use crate::model::{AttachmentId, AttachmentState, WatchedAttachmentItem};
use crate::state_machine::{ReconcileContext, reconcile_watched};
use crate::store::AttachmentStore;

/// Above this many rows to read, a reconcile reads the whole table instead.
const MAX_ROWS_READ_BY_ID: usize = 10_000;

/// What the last reconcile left in place; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct ReconcileBaseline {
    /// The ids the last reconciled emission referenced.
    referenced: HashSet<AttachmentId>,
    /// The download toggle the last reconcile ran with.
    download_attachments: bool,
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

impl<S: AttachmentStore> Shared<S> {
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
    pub(super) fn drop_baseline(&self) {
        *self.baseline.lock().expect("baseline lock poisoned") = None;
    }

    /// Apply the latest watched references to the table.
    pub(super) async fn reconcile(&self) -> Result<()> {
        // one at a time: each starts from the baseline the previous one left
        let _one_at_a_time = self.reconciling.lock().await;
        let Some(items) = self
            .latest_items
            .lock()
            .expect("items lock poisoned")
            .clone()
        else {
            return Ok(());
        };
        let download_attachments = self.download_attachments.load(Ordering::SeqCst);
        let referenced: HashSet<AttachmentId> = items.iter().map(|item| item.id.clone()).collect();
        let scope = self.begin_reconcile(&referenced, download_attachments);
        let result = self
            .reconcile_scope(&items, &referenced, scope, download_attachments)
            .await;
        let mut baseline = self.baseline.lock().expect("baseline lock poisoned");
        match (&result, baseline.as_mut()) {
            (Ok(()), Some(current)) => {
                current.referenced = referenced;
                current.download_attachments = download_attachments;
            }
            _ => *baseline = None,
        }
        result
    }

    /// Decide which rows to read, and start recording the writes made from now on.
    fn begin_reconcile(
        &self,
        referenced: &HashSet<AttachmentId>,
        download_attachments: bool,
    ) -> Scope {
        let mut baseline = self.baseline.lock().expect("baseline lock poisoned");
        let Some(current) = baseline
            .as_mut()
            .filter(|current| current.download_attachments == download_attachments)
        else {
            *baseline = Some(ReconcileBaseline {
                download_attachments,
                ..ReconcileBaseline::default()
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

    async fn reconcile_scope(
        &self,
        items: &[WatchedAttachmentItem],
        referenced: &HashSet<AttachmentId>,
        scope: Scope,
        download_attachments: bool,
    ) -> Result<()> {
        let in_scope: Vec<WatchedAttachmentItem>;
        let (rows, items) = match scope {
            Scope::Table => (self.store.list(None).await?, items),
            Scope::Rows(ids) => {
                if ids.is_empty() {
                    return Ok(());
                }
                let rows = self.store.get_many(&ids).await?;
                let ids: HashSet<AttachmentId> = ids.into_iter().collect();
                in_scope = items
                    .iter()
                    .filter(|item| ids.contains(&item.id))
                    .cloned()
                    .collect();
                (rows, &in_scope[..])
            }
        };
        debug!(rows = rows.len(), "reconciling references");
        let mut local_files_present = HashSet::new();
        for row in &rows {
            if row.state == AttachmentState::Archived
                && referenced.contains(&row.id)
                && let Some(path) = &row.local_uri
                && self.local_file_present(path).await?
            {
                local_files_present.insert(row.id.clone());
            }
        }
        let context = ReconcileContext {
            download_attachments,
            local_files_present,
            recently_deleted: self
                .deleted_ids
                .lock()
                .expect("deleted set lock poisoned")
                .clone(),
            now_ms: now_ms(),
        };
        let reconciliation = reconcile_watched(&rows, items, &context);
        for (id, error) in reconciliation.rejected {
            warn!(%id, %error, "referenced attachment refused");
            self.emit_error(Some(id), None, error);
        }
        self.apply_and_report(&rows, reconciliation.changes, false)
            .await?;
        Ok(())
    }
}
