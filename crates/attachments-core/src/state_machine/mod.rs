//! The state machine, as pure functions: they take rows and facts, and return the
//! [`RowChange`]s the engine should apply. No I/O happens here, which is what lets every
//! transition be tested from a table.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::model::{Attachment, AttachmentId, AttachmentState, WatchedAttachmentItem};
use crate::policy::{ErrorAction, Operation, RetryPolicy};
use crate::store::RowChange;

/// The transfer a row in `state` is waiting for, if any.
pub(crate) fn pending_operation(state: AttachmentState) -> Option<Operation> {
    match state {
        AttachmentState::QueuedUpload => Some(Operation::Upload),
        AttachmentState::QueuedDownload => Some(Operation::Download),
        AttachmentState::QueuedDelete => Some(Operation::Delete),
        AttachmentState::Synced | AttachmentState::Archived => None,
    }
}

/// What `save_file` wrote to local storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedFile {
    /// The attachment id.
    pub(crate) id: AttachmentId,
    /// The file name (also the local path).
    pub(crate) filename: String,
    /// Bytes written.
    pub(crate) size: u64,
    /// `sha256:<hex>` of what was written.
    pub(crate) checksum: String,
    /// Media type given by the app.
    pub(crate) media_type: Option<String>,
    /// Metadata given by the app.
    pub(crate) meta_data: Option<String>,
}

/// The row `save_file` writes: a fresh `QueuedUpload`, replacing any row with the same id.
pub(crate) fn saved_file_row(saved: SavedFile, now_ms: i64) -> Attachment {
    let mut row = Attachment::new(
        saved.id,
        saved.filename.clone(),
        AttachmentState::QueuedUpload,
        now_ms,
    );
    row.local_uri = Some(saved.filename);
    row.size = Some(saved.size);
    row.checksum = Some(saved.checksum);
    row.media_type = saved.media_type;
    row.meta_data = saved.meta_data;
    row
}

/// The change `delete_file` writes: the row to `QueuedDelete`, with fresh retry bookkeeping.
pub(crate) fn request_delete(row: &Attachment, now_ms: i64) -> RowChange {
    let mut new = row.clone();
    new.state = AttachmentState::QueuedDelete;
    reset_retries(&mut new);
    new.timestamp = now_ms;
    update(row, new)
}

/// Facts the engine gathers before reconciling a watched emission.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReconcileContext {
    /// Whether new references should be downloaded.
    pub(crate) download_attachments: bool,
    /// Archived, referenced rows whose local file exists.
    pub(crate) local_files_present: HashSet<AttachmentId>,
    /// Ids the app deleted, which references read before the delete committed may still
    /// name: never inserted as new downloads.
    pub(crate) recently_deleted: HashSet<AttachmentId>,
    /// Now, in ms since the epoch.
    pub(crate) now_ms: i64,
}

/// The result of [`reconcile_watched`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Reconciliation {
    /// The writes to apply.
    pub(crate) changes: Vec<RowChange>,
    /// Referenced items that were refused (a hostile file name or extension), with why.
    pub(crate) rejected: Vec<(AttachmentId, Error)>,
}

/// Bring the table in line with the full set of attachments the app references.
///
/// - a new id, when downloads are enabled, is inserted as `QueuedDownload` (when disabled it is
///   left untracked, and picked up once they are enabled), unless it is one the app just
///   deleted (`recently_deleted`);
/// - an `Archived` id referenced again becomes `Synced` if it has synced and its file exists,
///   else `QueuedDownload` if it synced before or has no local file, else `QueuedUpload`; but
///   one archived by a permanent failure stays archived until `retry`;
/// - an id no longer referenced is archived when `Synced` or `QueuedDownload`; pending uploads
///   and deletes are kept.
pub(crate) fn reconcile_watched<'a>(
    rows: &[Attachment],
    items: impl IntoIterator<Item = &'a WatchedAttachmentItem>,
    context: &ReconcileContext,
) -> Reconciliation {
    let mut result = Reconciliation::default();
    let by_id: HashMap<&AttachmentId, &Attachment> = rows.iter().map(|r| (&r.id, r)).collect();
    let mut referenced: HashSet<&AttachmentId> = HashSet::new();

    for item in items {
        if !referenced.insert(&item.id) {
            continue; // the same id twice in one emission
        }
        match by_id.get(&item.id) {
            None => {
                if !context.download_attachments || context.recently_deleted.contains(&item.id) {
                    continue;
                }
                match item.resolved_filename() {
                    Ok(filename) => {
                        let mut row = Attachment::new(
                            item.id.clone(),
                            filename,
                            AttachmentState::QueuedDownload,
                            context.now_ms,
                        );
                        row.media_type = item.media_type.clone();
                        row.meta_data = item.meta_data.clone();
                        result.changes.push(RowChange::Insert(row));
                    }
                    Err(error) => result.rejected.push((item.id.clone(), error)),
                }
            }
            Some(row) if row.state == AttachmentState::Archived && row.failed_state.is_none() => {
                let file_present = context.local_files_present.contains(&row.id);
                let mut new = (*row).clone();
                reset_retries(&mut new);
                new.timestamp = context.now_ms;
                if row.has_synced && file_present {
                    new.state = AttachmentState::Synced;
                } else if row.has_synced || row.local_uri.is_none() || !file_present {
                    new.state = AttachmentState::QueuedDownload;
                    new.local_uri = None;
                } else {
                    new.state = AttachmentState::QueuedUpload;
                }
                result.changes.push(update(row, new));
            }
            Some(_) => {}
        }
    }

    for row in rows {
        if referenced.contains(&row.id) {
            continue;
        }
        if matches!(
            row.state,
            AttachmentState::Synced | AttachmentState::QueuedDownload
        ) {
            let mut new = row.clone();
            new.state = AttachmentState::Archived;
            reset_retries(&mut new);
            new.timestamp = context.now_ms;
            result.changes.push(update(row, new));
        }
    }
    result
}

/// How a transfer ended.
#[derive(Debug, Clone)]
pub(crate) enum TransferOutcome {
    /// The local file is on the remote.
    Uploaded,
    /// The remote object is in local storage.
    Downloaded {
        /// Bytes written.
        size: u64,
        /// `sha256:<hex>` of what was written.
        checksum: String,
    },
    /// Remote object and local file are gone.
    Deleted,
    /// The transfer failed; `action` is the error handler's decision.
    Failed {
        /// What went wrong.
        error: Error,
        /// Retry or archive, as the error handler decided.
        action: ErrorAction,
    },
}

/// The change a transfer outcome makes to the row it started from. The change is a
/// compare-and-set on that row's version: if the row changed meanwhile (a delete during an
/// upload), the store discards it.
///
/// `jitter` in `[0, 1]` spreads the backoff of a retryable failure.
pub(crate) fn apply_outcome(
    row: &Attachment,
    outcome: TransferOutcome,
    policy: &RetryPolicy,
    jitter: f64,
    now_ms: i64,
) -> RowChange {
    let mut new = row.clone();
    new.timestamp = now_ms;
    match outcome {
        TransferOutcome::Uploaded => {
            new.state = AttachmentState::Synced;
            new.has_synced = true;
            reset_retries(&mut new);
        }
        TransferOutcome::Downloaded { size, checksum } => {
            new.state = AttachmentState::Synced;
            new.has_synced = true;
            new.local_uri = Some(row.filename.clone());
            new.size = Some(size);
            new.checksum = Some(checksum);
            reset_retries(&mut new);
        }
        TransferOutcome::Deleted => {
            return RowChange::Delete {
                id: row.id.clone(),
                expected_version: row.version,
            };
        }
        TransferOutcome::Failed { error, action } => {
            let attempts = row.attempts.saturating_add(1);
            new.attempts = attempts;
            new.last_error = Some(error.to_string());
            let give_up = action == ErrorAction::Archive || policy.is_exhausted(attempts);
            if give_up {
                new.failed_state = Some(row.state);
                new.state = AttachmentState::Archived;
                new.next_attempt_at = None;
            } else {
                let wait = policy.backoff(attempts, jitter);
                let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                new.next_attempt_at = Some(now_ms.saturating_add(wait_ms));
            }
        }
    }
    update(row, new)
}

/// Start-up verification of one row against local storage. `local_file_exists` is whether
/// the file at `local_uri` exists (false when there is none).
///
/// - `Synced` without its file goes back to `QueuedDownload`;
/// - `QueuedUpload` without its file cannot be uploaded: archived with a clear error;
/// - `Archived` without its file forgets the `local_uri`.
pub(crate) fn verify_on_start(
    row: &Attachment,
    local_file_exists: bool,
    now_ms: i64,
) -> Option<RowChange> {
    if local_file_exists {
        return None;
    }
    let mut new = row.clone();
    new.timestamp = now_ms;
    match row.state {
        AttachmentState::Synced => {
            new.state = AttachmentState::QueuedDownload;
            new.local_uri = None;
            reset_retries(&mut new);
        }
        AttachmentState::QueuedUpload => {
            new.state = AttachmentState::Archived;
            new.failed_state = Some(AttachmentState::QueuedUpload);
            new.local_uri = None;
            new.next_attempt_at = None;
            new.last_error = Some(format!(
                "local file {:?} is missing: nothing to upload",
                row.local_uri.as_deref().unwrap_or(&row.filename)
            ));
        }
        AttachmentState::Archived if row.local_uri.is_some() => {
            new.local_uri = None;
        }
        _ => return None,
    }
    Some(update(row, new))
}

/// The change `retry(id)` makes: an attachment archived by a permanent failure goes back to
/// the state it failed in, with fresh retry bookkeeping.
///
/// # Errors
/// `InvalidInput` when the row was not archived by a failure.
pub(crate) fn retry_failed(row: &Attachment, now_ms: i64) -> Result<RowChange> {
    let failed_state = match (row.state, row.failed_state) {
        (AttachmentState::Archived, Some(state)) => state,
        _ => {
            return Err(Error::invalid_input(format!(
                "attachment {} is {} and was not archived by a failure: nothing to retry",
                row.id, row.state
            )));
        }
    };
    let mut new = row.clone();
    new.state = failed_state;
    reset_retries(&mut new);
    new.timestamp = now_ms;
    Ok(update(row, new))
}

/// The archived rows the cache must evict: all but the newest `limit` by `timestamp`, and,
/// with a byte budget, the oldest until the newest kept ones fit in it.
///
/// Never evicted: an archived row whose local file was never uploaded (a failed upload), since
/// evicting it would lose the only copy of the user's data; nor one whose pending work is a
/// delete (a failed delete), since the remote object would then stay forever and `retry`
/// could no longer remove it.
pub(crate) fn select_evictions(
    archived: &[Attachment],
    limit: usize,
    byte_budget: Option<u64>,
) -> Vec<Attachment> {
    let mut candidates: Vec<&Attachment> = archived
        .iter()
        .filter(|row| row.state == AttachmentState::Archived)
        .filter(|row| row.has_synced || row.local_uri.is_none())
        .filter(|row| row.failed_state != Some(AttachmentState::QueuedDelete))
        .collect();
    // newest first; the id breaks ties so the choice is deterministic
    candidates.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(a.id.cmp(&b.id)));
    let mut kept_bytes = 0u64;
    let mut evicted = Vec::new();
    for (index, row) in candidates.into_iter().enumerate() {
        let stored_bytes = if row.local_uri.is_some() {
            row.size.unwrap_or(0)
        } else {
            0
        };
        let over_budget =
            byte_budget.is_some_and(|budget| kept_bytes.saturating_add(stored_bytes) > budget);
        if index >= limit || over_budget {
            evicted.push(row.clone());
        } else {
            kept_bytes += stored_bytes;
        }
    }
    evicted
}

fn reset_retries(row: &mut Attachment) {
    row.attempts = 0;
    row.next_attempt_at = None;
    row.last_error = None;
    row.failed_state = None;
}

fn update(old: &Attachment, new: Attachment) -> RowChange {
    RowChange::Update {
        expected_version: old.version,
        row: new,
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use AttachmentState::*;

    const NOW: i64 = 1_000_000;

    /// A row as the tests describe it: id, state, has_synced, local file name or none.
    fn row(id: &str, state: AttachmentState, has_synced: bool, local: bool) -> Attachment {
        let mut row = Attachment::new(
            AttachmentId::new(id).unwrap(),
            format!("{id}.jpg"),
            state,
            1,
        );
        row.has_synced = has_synced;
        row.local_uri = local.then(|| format!("{id}.jpg"));
        row.version = 7;
        row
    }

    fn item(id: &str) -> WatchedAttachmentItem {
        WatchedAttachmentItem::new(AttachmentId::new(id).unwrap()).with_file_extension("jpg")
    }

    /// The state each change leads to, by id (`None`: row removed), sorted by id.
    fn outcome(changes: &[RowChange]) -> Vec<(String, Option<AttachmentState>)> {
        let mut out: Vec<_> = changes
            .iter()
            .map(|c| (c.id().to_string(), c.new_state()))
            .collect();
        out.sort();
        out
    }

    fn check_reconcile(
        rows: &[Attachment],
        referenced: &[&str],
        files_present: &[&str],
        downloads: bool,
        expected: &[(&str, Option<AttachmentState>)],
    ) {
        let context = ReconcileContext {
            download_attachments: downloads,
            local_files_present: files_present
                .iter()
                .map(|id| AttachmentId::new(*id).unwrap())
                .collect(),
            recently_deleted: HashSet::new(),
            now_ms: NOW,
        };
        let items: Vec<_> = referenced.iter().map(|id| item(id)).collect();
        let result = reconcile_watched(rows, &items, &context);
        let expected: Vec<_> = expected
            .iter()
            .map(|(id, s)| (id.to_string(), *s))
            .collect();
        assert_eq!(
            outcome(&result.changes),
            expected,
            "rows {rows:?} referenced {referenced:?}"
        );
        for change in &result.changes {
            match change {
                RowChange::Update {
                    expected_version,
                    row,
                } => {
                    assert_eq!(*expected_version, 7, "compare-and-set on the version read");
                    assert_eq!(row.timestamp, NOW, "every write sets the timestamp");
                }
                RowChange::Insert(row) => assert_eq!(row.timestamp, NOW),
                other => panic!("reconcile never produces {other:?}"),
            }
        }
    }

    #[test]
    fn reconcile_table() {
        // (rows, referenced ids, archived rows with a local file, downloads enabled, expected)
        type Case<'a> = (
            Vec<Attachment>,
            &'a [&'a str],
            &'a [&'a str],
            bool,
            &'a [(&'a str, Option<AttachmentState>)],
        );
        let cases: Vec<Case> = vec![
            // a new reference is downloaded
            (vec![], &["a"], &[], true, &[("a", Some(QueuedDownload))]),
            // unless downloads are off
            (vec![], &["a"], &[], false, &[]),
            // referenced rows in any live state are left alone
            (
                vec![
                    row("a", Synced, true, true),
                    row("b", QueuedUpload, false, true),
                    row("c", QueuedDownload, false, false),
                    row("d", QueuedDelete, true, true),
                ],
                &["a", "b", "c", "d"],
                &[],
                true,
                &[],
            ),
            // archived + synced + file present: back to Synced
            (
                vec![row("a", Archived, true, true)],
                &["a"],
                &["a"],
                true,
                &[("a", Some(Synced))],
            ),
            // archived + synced + file gone: download again
            (
                vec![row("a", Archived, true, true)],
                &["a"],
                &[],
                true,
                &[("a", Some(QueuedDownload))],
            ),
            // archived, never synced, no local file (an unreferenced download): download
            (
                vec![row("a", Archived, false, false)],
                &["a"],
                &[],
                true,
                &[("a", Some(QueuedDownload))],
            ),
            // archived, never synced, local file present: upload it
            (
                vec![row("a", Archived, false, true)],
                &["a"],
                &["a"],
                true,
                &[("a", Some(QueuedUpload))],
            ),
            // unreferenced Synced and QueuedDownload are archived
            (
                vec![
                    row("a", Synced, true, true),
                    row("b", QueuedDownload, false, false),
                ],
                &[],
                &[],
                true,
                &[("a", Some(Archived)), ("b", Some(Archived))],
            ),
            // unreferenced pending uploads and deletes stay pending; archived stays archived
            (
                vec![
                    row("a", QueuedUpload, false, true),
                    row("b", QueuedDelete, true, true),
                    row("c", Archived, true, true),
                ],
                &[],
                &[],
                true,
                &[],
            ),
        ];
        for (rows, referenced, present, downloads, expected) in cases {
            check_reconcile(&rows, referenced, present, downloads, expected);
        }
    }

    #[test]
    fn a_recently_deleted_id_is_not_downloaded_again() {
        let context = ReconcileContext {
            download_attachments: true,
            recently_deleted: [AttachmentId::new("gone").unwrap()].into_iter().collect(),
            now_ms: NOW,
            ..Default::default()
        };
        let result = reconcile_watched(&[], &[item("gone"), item("new")], &context);
        assert_eq!(
            outcome(&result.changes),
            vec![("new".into(), Some(QueuedDownload))]
        );
    }

    #[test]
    fn archived_by_failure_stays_archived_until_retry() {
        let mut failed = row("a", Archived, false, true);
        failed.failed_state = Some(QueuedUpload);
        check_reconcile(std::slice::from_ref(&failed), &["a"], &["a"], true, &[]);
        let change = retry_failed(&failed, NOW).unwrap();
        assert_eq!(outcome(&[change]), vec![("a".into(), Some(QueuedUpload))]);
        let plain = row("b", Archived, true, true);
        assert_eq!(
            retry_failed(&plain, NOW).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn hostile_watched_filenames_are_rejected_not_inserted() {
        let bad = WatchedAttachmentItem::new(AttachmentId::new("a").unwrap())
            .with_filename("../outside.jpg");
        let context = ReconcileContext {
            download_attachments: true,
            ..Default::default()
        };
        let result = reconcile_watched(&[], &[bad], &context);
        assert!(result.changes.is_empty());
        assert_eq!(result.rejected.len(), 1);
        assert_eq!(result.rejected[0].1.kind(), ErrorKind::InvalidInput);
    }

    fn check_outcome(
        start: AttachmentState,
        outcome_: TransferOutcome,
        policy: &RetryPolicy,
        expected_state: Option<AttachmentState>,
    ) -> RowChange {
        let before = row("a", start, false, true);
        let change = apply_outcome(&before, outcome_.clone(), policy, 0.5, NOW);
        assert_eq!(
            change.new_state(),
            expected_state,
            "{start:?} + {outcome_:?}"
        );
        match &change {
            RowChange::Update {
                expected_version, ..
            }
            | RowChange::Delete {
                expected_version, ..
            } => assert_eq!(*expected_version, before.version),
            other => panic!("outcomes are compare-and-set, got {other:?}"),
        }
        change
    }

    #[test]
    fn transfer_outcome_table() {
        let policy = RetryPolicy::default();
        let retryable = Error::new(ErrorKind::Unavailable, "503");
        let permanent = Error::new(ErrorKind::PermissionDenied, "403");
        let failed = |error: &Error, action| TransferOutcome::Failed {
            error: error.clone(),
            action,
        };
        let downloaded = TransferOutcome::Downloaded {
            size: 3,
            checksum: "sha256:00".into(),
        };
        let cases = [
            (QueuedUpload, TransferOutcome::Uploaded, Some(Synced)),
            (QueuedDownload, downloaded, Some(Synced)),
            (QueuedDelete, TransferOutcome::Deleted, None),
            (
                QueuedUpload,
                failed(&retryable, ErrorAction::Retry),
                Some(QueuedUpload),
            ),
            (
                QueuedDownload,
                failed(&retryable, ErrorAction::Retry),
                Some(QueuedDownload),
            ),
            (
                QueuedDelete,
                failed(&retryable, ErrorAction::Retry),
                Some(QueuedDelete),
            ),
            (
                QueuedUpload,
                failed(&retryable, ErrorAction::Archive),
                Some(Archived),
            ),
            (
                QueuedDownload,
                failed(&permanent, ErrorAction::Archive),
                Some(Archived),
            ),
        ];
        for (start, outcome_, expected) in cases {
            let change = check_outcome(start, outcome_.clone(), &policy, expected);
            if let (RowChange::Update { row, .. }, TransferOutcome::Failed { .. }) =
                (&change, &outcome_)
            {
                assert_eq!(row.attempts, 1);
                assert!(row.last_error.is_some());
                if row.state == Archived {
                    assert_eq!(row.failed_state, Some(start));
                    assert_eq!(row.next_attempt_at, None);
                } else {
                    // half the 1 s initial backoff fixed, plus half of it times the 0.5 jitter
                    assert_eq!(row.next_attempt_at, Some(NOW + 750));
                }
            }
        }
    }

    #[test]
    fn success_clears_retry_bookkeeping_and_records_download() {
        let mut before = row("a", QueuedDownload, false, false);
        before.attempts = 3;
        before.last_error = Some("x".into());
        before.next_attempt_at = Some(5);
        let change = apply_outcome(
            &before,
            TransferOutcome::Downloaded {
                size: 42,
                checksum: "sha256:ab".into(),
            },
            &RetryPolicy::default(),
            0.0,
            NOW,
        );
        let RowChange::Update { row, .. } = change else {
            panic!("expected an update")
        };
        assert_eq!(
            (row.attempts, row.next_attempt_at, row.last_error),
            (0, None, None)
        );
        assert_eq!(row.local_uri.as_deref(), Some("a.jpg"));
        assert_eq!(row.size, Some(42));
        assert!(row.has_synced);
    }

    #[test]
    fn attempts_exhausted_archive() {
        let policy = RetryPolicy {
            max_attempts: Some(2),
            ..RetryPolicy::default()
        };
        let mut before = row("a", QueuedUpload, false, true);
        before.attempts = 1;
        let change = apply_outcome(
            &before,
            TransferOutcome::Failed {
                error: Error::new(ErrorKind::Unavailable, "down"),
                action: ErrorAction::Retry,
            },
            &policy,
            0.0,
            NOW,
        );
        assert_eq!(change.new_state(), Some(Archived));
    }

    #[test]
    fn verify_on_start_table() {
        let cases = [
            (Synced, true, Some(QueuedDownload)),
            (QueuedUpload, false, Some(Archived)),
            (Archived, true, Some(Archived)),
            (QueuedDownload, false, None),
            (QueuedDelete, true, None),
        ];
        for (state, has_local_uri, expected) in cases {
            let before = row("a", state, true, has_local_uri);
            let change = verify_on_start(&before, false, NOW);
            assert_eq!(
                change.as_ref().and_then(|c| c.new_state()),
                expected,
                "{state:?}"
            );
            if let Some(RowChange::Update { row, .. }) = change {
                assert_eq!(row.local_uri, None, "a missing file is forgotten");
                if row.state == Archived && state == QueuedUpload {
                    assert!(row.last_error.unwrap().contains("missing"));
                }
            }
            assert_eq!(
                verify_on_start(&before, true, NOW),
                None,
                "file present: no change"
            );
        }
    }

    #[test]
    fn delete_request() {
        let mut before = row("a", Synced, true, true);
        before.attempts = 2;
        let change = request_delete(&before, NOW);
        let RowChange::Update {
            row,
            expected_version,
        } = change
        else {
            panic!("expected an update")
        };
        assert_eq!(
            (row.state, row.attempts, expected_version),
            (QueuedDelete, 0, 7)
        );
    }

    #[test]
    fn eviction_keeps_the_newest() {
        let archived: Vec<Attachment> = (0..5)
            .map(|n| {
                let mut r = row(&format!("r{n}"), Archived, true, true);
                r.timestamp = n;
                r.size = Some(10);
                r
            })
            .collect();
        let ids = |rows: Vec<Attachment>| {
            let mut ids: Vec<String> = rows.into_iter().map(|r| r.id.to_string()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(select_evictions(&archived, 3, None)), vec!["r0", "r1"]);
        assert!(select_evictions(&archived, 5, None).is_empty());
        assert!(select_evictions(&archived, 100, None).is_empty());
        // 25 bytes hold the two newest files
        assert_eq!(
            ids(select_evictions(&archived, 100, Some(25))),
            vec!["r0", "r1", "r2"]
        );
        // a failed upload (never synced, file present) is never evicted
        let mut failed = row("f", Archived, false, true);
        failed.failed_state = Some(QueuedUpload);
        assert!(select_evictions(&[failed], 0, None).is_empty());
    }

    #[test]
    fn a_failed_delete_is_never_evicted() {
        // an expired token archived it: evicting would leave the remote object forever
        for has_synced in [true, false] {
            let mut failed = row("d", Archived, has_synced, false);
            failed.failed_state = Some(QueuedDelete);
            assert!(select_evictions(&[failed], 0, Some(0)).is_empty());
        }
    }
}
