//! The trait of the table that records every attachment's state.
//!
//! The core knows no SQL: a store applies [`RowChange`]s with compare-and-set on the row's
//! `version`, and runs the app's update hook inside the same transaction when asked.

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::model::{Attachment, AttachmentId, AttachmentState};

/// The app's own SQL, run inside the transaction that writes the attachment row. `C` is the
/// store's connection type (for SQLite, `sqlx::SqliteConnection`).
pub type UpdateHook<C> =
    Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<(), BoxError>> + Send + 'static>;

/// Computes, from the current row (if any), the change [`AttachmentStore::apply_with_hook`]
/// applies; runs inside the store's transaction.
pub type ChangeDecider = Box<dyn FnOnce(Option<Attachment>) -> Result<RowChange> + Send + 'static>;

/// One write to the table. Every applied change gives the row a new `version` (see
/// [`AttachmentStore`]); the row's other fields are written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// Insert the row unless a row with its id, or another row with its `filename`, exists.
    Insert(Attachment),
    /// Replace the row if its version is still `expected_version`.
    Update {
        /// The version the change was computed from.
        expected_version: i64,
        /// The new contents.
        row: Attachment,
    },
    /// Remove the row if its version is still `expected_version`.
    Delete {
        /// The row to remove.
        id: AttachmentId,
        /// The version the change was computed from.
        expected_version: i64,
    },
}

impl RowChange {
    /// The id of the row this change writes.
    pub fn id(&self) -> &AttachmentId {
        match self {
            RowChange::Insert(row) | RowChange::Update { row, .. } => &row.id,
            RowChange::Delete { id, .. } => id,
        }
    }

    /// The state the row has after the change (`None` when it is removed).
    pub fn new_state(&self) -> Option<AttachmentState> {
        match self {
            RowChange::Insert(row) | RowChange::Update { row, .. } => Some(row.state),
            RowChange::Delete { .. } => None,
        }
    }
}

/// The error [`AttachmentStore::insert_with_hook`] returns for an id that is taken.
///
/// ```
/// use attachments_core::{AttachmentId, ErrorKind, already_exists};
/// let error = already_exists(&AttachmentId::new("a").unwrap());
/// assert_eq!(error.kind(), ErrorKind::AlreadyExists);
/// ```
pub fn already_exists(id: &AttachmentId) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!("attachment {id} already exists; delete it first or save under a new id"),
    )
}

/// Whether start-up verification may change `row` (see
/// [`AttachmentStore::list_page_to_verify`]).
fn needs_verifying(row: &Attachment, retry_after_ms: i64) -> bool {
    row.local_uri.is_some()
        || matches!(
            row.state,
            AttachmentState::QueuedUpload | AttachmentState::Synced
        )
        || (row.state.is_queued() && row.next_attempt_at.is_some_and(|at| at > retry_after_ms))
}

/// How many attachments are in each state.
///
/// ```
/// use attachments_core::{AttachmentState, StateCounts};
/// let mut counts = StateCounts::default();
/// counts.add(AttachmentState::Synced, 2);
/// assert_eq!(counts.get(AttachmentState::Synced), 2);
/// assert_eq!(counts.total(), 2);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Rows in `QueuedDownload`.
    pub queued_download: u64,
    /// Rows in `QueuedUpload`.
    pub queued_upload: u64,
    /// Rows in `QueuedDelete`.
    pub queued_delete: u64,
    /// Rows in `Synced`.
    pub synced: u64,
    /// Rows in `Archived`.
    pub archived: u64,
}

impl StateCounts {
    /// The count for one state.
    pub fn get(&self, state: AttachmentState) -> u64 {
        match state {
            AttachmentState::QueuedDownload => self.queued_download,
            AttachmentState::QueuedUpload => self.queued_upload,
            AttachmentState::QueuedDelete => self.queued_delete,
            AttachmentState::Synced => self.synced,
            AttachmentState::Archived => self.archived,
        }
    }

    /// Add `n` to the count for `state`.
    pub fn add(&mut self, state: AttachmentState, n: u64) {
        let slot = match state {
            AttachmentState::QueuedDownload => &mut self.queued_download,
            AttachmentState::QueuedUpload => &mut self.queued_upload,
            AttachmentState::QueuedDelete => &mut self.queued_delete,
            AttachmentState::Synced => &mut self.synced,
            AttachmentState::Archived => &mut self.archived,
        };
        *slot += n;
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        AttachmentState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Rows with a transfer pending.
    pub fn queued(&self) -> u64 {
        self.queued_download + self.queued_upload + self.queued_delete
    }
}

/// The attachment table.
///
/// # Contract
/// Every write gives the row a new `version`, greater than every version the store has given
/// any row before, so a version never repeats for an id across its lives (deleted and saved
/// again, cleared, evicted): a transfer of an earlier life can never pass the compare-and-set
/// of a later one. `Update` and `Delete` apply only while the stored version equals
/// `expected_version`; otherwise they change nothing and report `false`. Two rows never share
/// a `filename`: an insert that would is not applied (`apply`) or refused with
/// `AlreadyExists` (`insert_with_hook`). A row that cannot be read (an unknown state code, an invalid id) is an
/// `InvalidInput` error from `get` and is left out (with a logged warning) by `list`, so one
/// bad row never stops the sync of the others; `count_by_state` leaves out unknown states.
///
/// ```
/// use attachments_core::AttachmentStore;
/// // dyn-compatible once the connection type is named
/// fn takes_any<C: ?Sized + Send>(_store: std::sync::Arc<dyn AttachmentStore<Connection = C>>) {}
/// ```
#[async_trait]
pub trait AttachmentStore: Send + Sync + 'static {
    /// The connection an [`UpdateHook`] runs the app's SQL on.
    type Connection: ?Sized + Send;

    /// The row with this id.
    async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>>;

    /// The rows with these ids, in no particular order; ids without a row are left out, and so
    /// (with a logged warning) are rows that cannot be read, as in `list`. The default asks
    /// `get` for each id; a store may do it in fewer round trips.
    async fn get_many(&self, ids: &[AttachmentId]) -> Result<Vec<Attachment>> {
        let mut rows = Vec::with_capacity(ids.len());
        let mut asked = std::collections::HashSet::with_capacity(ids.len());
        // an id asked for twice is still one row
        for id in ids.iter().filter(|id| asked.insert(*id)) {
            match self.get(id).await {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(error) if error.kind() == ErrorKind::InvalidInput => {
                    tracing::warn!(%error, "unreadable attachment row left out");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(rows)
    }

    /// Every row, or only those in `states`, oldest `timestamp` first.
    async fn list(&self, states: Option<&[AttachmentState]>) -> Result<Vec<Attachment>>;

    /// Up to `limit` rows with ids after `after` (from the first when `None`), in id order:
    /// start-up reads the table a page at a time, so its memory does not grow with the
    /// table. Unreadable rows are left out, as in `list`, so a page may be shorter than
    /// `limit` with more rows after it: only an empty page says the table has ended. The
    /// default sorts `list`; a store should answer from its primary key.
    async fn list_page(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let mut rows: Vec<Attachment> = self
            .list(None)
            .await?
            .into_iter()
            .filter(|row| after.is_none_or(|after| row.id.as_str() > after.as_str()))
            .collect();
        rows.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        rows.truncate(limit);
        Ok(rows)
    }

    /// A page as [`list_page`](AttachmentStore::list_page) of only the rows start-up
    /// verification may change: rows that point at a local file (`local_uri` set) or should
    /// (`Synced`, `QueuedUpload`), and queued rows whose `next_attempt_at` is after
    /// `retry_after_ms`. The rest of the table (rows waiting for a download or a delete, an
    /// evicted cache) is skipped by the store, never read into memory. The default filters
    /// `list_page`; a store should filter in its query.
    async fn list_page_to_verify(
        &self,
        after: Option<&AttachmentId>,
        limit: usize,
        retry_after_ms: i64,
    ) -> Result<Vec<Attachment>> {
        let mut found = Vec::new();
        let mut after = after.cloned();
        loop {
            let rows = self.list_page(after.as_ref(), limit).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in rows {
                if found.len() < limit && needs_verifying(&row, retry_after_ms) {
                    found.push(row);
                }
            }
            // only an empty page ends the table: unreadable rows are left out of a page
            if found.len() == limit {
                break;
            }
        }
        Ok(found)
    }

    /// The rows whose `local_uri` is one of `paths`, in no particular order: start-up finds
    /// the owners of the few files a crash left staged without reading the table. Unreadable
    /// rows are left out, as in `list`. The default filters `list`.
    async fn list_by_local_uri(&self, paths: &[String]) -> Result<Vec<Attachment>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: std::collections::HashSet<&str> = paths.iter().map(String::as_str).collect();
        Ok(self
            .list(None)
            .await?
            .into_iter()
            .filter(|row| {
                row.local_uri
                    .as_deref()
                    .is_some_and(|path| wanted.contains(path))
            })
            .collect())
    }

    /// The queued rows that are due at `now_ms` (no `next_attempt_at`, or one at or before
    /// it), oldest `timestamp` first, at most `limit`; `QueuedDownload` rows only when
    /// `downloads` is true. A pass reads only these, so rows waiting out a backoff cost nothing.
    /// The default filters `list`; a store should answer from an index.
    async fn list_due(
        &self,
        now_ms: i64,
        downloads: bool,
        limit: usize,
    ) -> Result<Vec<Attachment>> {
        let mut due: Vec<Attachment> = self
            .list(Some(&AttachmentState::QUEUED))
            .await?
            .into_iter()
            .filter(|row| downloads || row.state != AttachmentState::QueuedDownload)
            .filter(|row| row.next_attempt_at.is_none_or(|at| at <= now_ms))
            .collect();
        due.truncate(limit);
        Ok(due)
    }

    /// The earliest `next_attempt_at` of a queued row (`QueuedDownload` only when `downloads`
    /// is true), so the worker knows when to wake without listing the table.
    async fn next_attempt_at(&self, downloads: bool) -> Result<Option<i64>> {
        Ok(self
            .list(Some(&AttachmentState::QUEUED))
            .await?
            .iter()
            .filter(|row| downloads || row.state != AttachmentState::QueuedDownload)
            .filter_map(|row| row.next_attempt_at)
            .min())
    }

    /// Apply `changes` in one transaction; report for each whether it applied.
    async fn apply(&self, changes: Vec<RowChange>) -> Result<Vec<bool>>;

    /// In one write transaction: read the row `id`, let `decide` compute the change from it,
    /// apply the change, then run `hook`. Returns the applied change, its row (if any)
    /// carrying the version the store wrote.
    ///
    /// # Errors
    /// `decide`'s error, or a `Hook` error when the hook fails; either way everything is rolled
    /// back and the table is unchanged.
    async fn apply_with_hook(
        &self,
        id: &AttachmentId,
        decide: ChangeDecider,
        hook: Option<UpdateHook<Self::Connection>>,
    ) -> Result<RowChange>;

    /// Insert `row` as a new row, then run `hook`, in one write transaction: what `save_file`
    /// does. Returns the row as written (with its version). The default runs
    /// [`AttachmentStore::apply_with_hook`]; a store may do it in fewer round trips (SQLite,
    /// with no hook: one statement).
    ///
    /// # Errors
    /// `AlreadyExists` when a row with that id, or another row with that `filename`, exists;
    /// a `Hook` error when the hook fails. On any error the table is unchanged.
    async fn insert_with_hook(
        &self,
        row: Attachment,
        hook: Option<UpdateHook<Self::Connection>>,
    ) -> Result<Attachment> {
        let id = row.id.clone();
        let decide: ChangeDecider = Box::new(move |existing| match existing {
            None => Ok(RowChange::Insert(row)),
            Some(existing) => Err(already_exists(&existing.id)),
        });
        match self.apply_with_hook(&id, decide, hook).await? {
            RowChange::Insert(written) | RowChange::Update { row: written, .. } => Ok(written),
            RowChange::Delete { .. } => Err(Error::new(
                ErrorKind::Database,
                format!("the store answered an insert of {id} with a delete"),
            )),
        }
    }

    /// How many rows are in each state.
    async fn count_by_state(&self) -> Result<StateCounts>;

    /// Remove every row; return how many.
    async fn clear(&self) -> Result<u64>;

    /// Take this table for one queue: a second queue on the same table (in this process or
    /// another) must be refused, since both would transfer and repair the same rows. The
    /// queue holds the lock until it is closed or dropped.
    ///
    /// The default takes no lock (`Ok(None)`).
    ///
    /// # Errors
    /// `InUse` while another holder has the lock.
    fn lock_exclusive(&self) -> Result<Option<crate::storage::ExclusiveLock>> {
        Ok(None)
    }
}
