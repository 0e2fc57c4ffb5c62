//! Property tests of the state machine against a model: random sequences of saves, deletes,
//! watched emissions, start-up verifications and transfer outcomes, including late outcomes
//! for rows that changed, applied through a compare-and-set table like the real store's.
//!
//! Invariants checked after every step:
//! - a requested delete is never lost: the row stays `QueuedDelete` until the delete completes
//!   (row gone) or fails for good (archived with `failed_state = QueuedDelete`);
//! - a pending upload is never dropped: a never-synced `QueuedUpload` row only becomes
//!   `Synced` by its upload, `QueuedDelete` by a delete, or archived *with* its failure;
//! - states are consistent: `Synced` rows have synced;
//! - an outcome never applies to a row that changed since its transfer started.
//!
//! Like the engine, the model runs at most one transfer per id at a time.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ReconcileContext, SavedFile, TransferOutcome, apply_outcome, pending_operation,
    reconcile_watched, request_delete, saved_file_row, verify_on_start,
};
use crate::{
    Attachment, AttachmentId, AttachmentState, Error, ErrorAction, ErrorKind, RetryPolicy,
    RowChange, WatchedAttachmentItem,
};
use proptest::prelude::*;

const IDS: u8 = 4;

#[derive(Debug, Clone)]
enum Step {
    Save(u8),
    Delete(u8),
    Emit(Vec<u8>, bool),
    StartTransfer(u8),
    FinishTransfer(usize, u8),
    Restart(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..IDS).prop_map(Step::Save),
        (0..IDS).prop_map(Step::Delete),
        (proptest::collection::vec(0..IDS, 0..4), any::<bool>())
            .prop_map(|(ids, files)| Step::Emit(ids, files)),
        (0..IDS).prop_map(Step::StartTransfer),
        (0..4usize, 0..4u8).prop_map(|(k, outcome)| Step::FinishTransfer(k, outcome)),
        (0..IDS).prop_map(Step::Restart),
    ]
}

fn id(n: u8) -> AttachmentId {
    AttachmentId::new(format!("a{n}")).unwrap()
}

/// The table, with the store's compare-and-set semantics.
#[derive(Default)]
struct Table {
    rows: BTreeMap<AttachmentId, Attachment>,
}

impl Table {
    fn apply(&mut self, change: RowChange) -> bool {
        match change {
            RowChange::Insert(mut row) => {
                if self.rows.contains_key(&row.id) {
                    return false;
                }
                row.version = 1;
                self.rows.insert(row.id.clone(), row);
                true
            }
            RowChange::Update {
                expected_version,
                mut row,
            } => match self.rows.get(&row.id) {
                Some(current) if current.version == expected_version => {
                    row.version = expected_version + 1;
                    self.rows.insert(row.id.clone(), row);
                    true
                }
                _ => false,
            },
            RowChange::Delete {
                id,
                expected_version,
            } => match self.rows.get(&id) {
                Some(current) if current.version == expected_version => {
                    self.rows.remove(&id);
                    true
                }
                _ => false,
            },
        }
    }
}

/// What the invariants remember between steps.
#[derive(Default)]
struct Ghost {
    deletes_requested: BTreeSet<AttachmentId>,
    pending_uploads: BTreeSet<AttachmentId>,
}

fn check(table: &Table, ghost: &mut Ghost) -> Result<(), TestCaseError> {
    for id in ghost.deletes_requested.clone() {
        match table.rows.get(&id) {
            None => {
                ghost.deletes_requested.remove(&id);
            }
            Some(row) if row.state == AttachmentState::QueuedDelete => {}
            Some(row)
                if row.state == AttachmentState::Archived
                    && row.failed_state == Some(AttachmentState::QueuedDelete) =>
            {
                ghost.deletes_requested.remove(&id);
            }
            Some(row) => {
                return Err(TestCaseError::fail(format!("delete of {id} lost: {row:?}")));
            }
        }
    }
    for id in ghost.pending_uploads.clone() {
        match table.rows.get(&id) {
            Some(row) if row.state == AttachmentState::QueuedUpload => {}
            Some(row) if row.state == AttachmentState::Synced && row.has_synced => {
                ghost.pending_uploads.remove(&id);
            }
            Some(row) if row.state == AttachmentState::QueuedDelete => {
                ghost.pending_uploads.remove(&id);
            }
            Some(row)
                if row.state == AttachmentState::Archived
                    && row.failed_state == Some(AttachmentState::QueuedUpload) =>
            {
                ghost.pending_uploads.remove(&id);
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "pending upload {id} dropped: {other:?}"
                )));
            }
        }
    }
    for row in table.rows.values() {
        prop_assert!(
            row.state != AttachmentState::Synced || row.has_synced,
            "{row:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_for_any_sequence(steps in proptest::collection::vec(step(), 1..60)) {
        let mut table = Table::default();
        let mut ghost = Ghost::default();
        let mut in_flight: Vec<Attachment> = Vec::new();
        let policy = RetryPolicy { max_attempts: Some(3), ..RetryPolicy::default() };
        let mut now = 1_000i64;
        for step in steps {
            now += 1;
            match step {
                Step::Save(n) => {
                    if table.rows.contains_key(&id(n)) {
                        continue; // save_file refuses an existing id
                    }
                    let row = saved_file_row(
                        SavedFile {
                            id: id(n),
                            filename: format!("a{n}.bin"),
                            size: 1,
                            checksum: "sha256:00".into(),
                            media_type: None,
                            meta_data: None,
                        },
                        now,
                    );
                    prop_assert!(table.apply(RowChange::Insert(row)));
                    ghost.pending_uploads.insert(id(n));
                }
                Step::Delete(n) => {
                    if let Some(row) = table.rows.get(&id(n)).cloned() {
                        prop_assert!(table.apply(request_delete(&row, now)));
                        ghost.deletes_requested.insert(id(n));
                    }
                }
                Step::Emit(referenced, files_present) => {
                    let items: Vec<WatchedAttachmentItem> = referenced
                        .iter()
                        .map(|n| WatchedAttachmentItem::new(id(*n)).with_file_extension("bin"))
                        .collect();
                    let rows: Vec<Attachment> = table.rows.values().cloned().collect();
                    let context = ReconcileContext {
                        download_attachments: true,
                        local_files_present: if files_present {
                            rows.iter().filter(|r| r.local_uri.is_some()).map(|r| r.id.clone()).collect()
                        } else {
                            Default::default()
                        },
                        recently_deleted: Default::default(),
                        now_ms: now,
                    };
                    for change in reconcile_watched(&rows, &items, &context).changes {
                        table.apply(change);
                    }
                }
                Step::StartTransfer(n) => {
                    // as the engine's claim set does: one transfer per id at a time. (Without
                    // it, a row deleted and saved again restarts at version 1, and a late
                    // outcome of its first life could pass the compare-and-set.)
                    if in_flight.iter().any(|started| started.id == id(n)) {
                        continue;
                    }
                    if let Some(row) = table.rows.get(&id(n))
                        && pending_operation(row.state).is_some()
                    {
                        in_flight.push(row.clone());
                    }
                }
                Step::FinishTransfer(k, outcome) => {
                    if in_flight.is_empty() {
                        continue;
                    }
                    let started = in_flight.remove(k % in_flight.len());
                    let operation = pending_operation(started.state).expect("queued when started");
                    let outcome = match outcome {
                        0 => match operation {
                            crate::Operation::Upload => TransferOutcome::Uploaded,
                            crate::Operation::Download => TransferOutcome::Downloaded {
                                size: 1,
                                checksum: "sha256:00".into(),
                            },
                            crate::Operation::Delete => TransferOutcome::Deleted,
                        },
                        1 | 2 => TransferOutcome::Failed {
                            error: Error::new(ErrorKind::Unavailable, "503"),
                            action: ErrorAction::Retry,
                        },
                        _ => TransferOutcome::Failed {
                            error: Error::new(ErrorKind::PermissionDenied, "403"),
                            action: ErrorAction::Archive,
                        },
                    };
                    let current_version = table.rows.get(&started.id).map(|r| r.version);
                    let change = apply_outcome(&started, outcome, &policy, 0.5, now);
                    let applied = table.apply(change);
                    // an outcome applies exactly when the row is still the one the transfer started from
                    prop_assert_eq!(applied, current_version == Some(started.version));
                }
                Step::Restart(n) => {
                    // the local file of one attachment vanished while the app was not running
                    in_flight.clear();
                    let rows: Vec<Attachment> = table.rows.values().cloned().collect();
                    for row in rows {
                        let exists = row.local_uri.is_some() && row.id != id(n);
                        if let Some(change) = verify_on_start(&row, exists, now) {
                            table.apply(change);
                        }
                    }
                }
            }
            check(&table, &mut ghost)?;
        }
    }
}
