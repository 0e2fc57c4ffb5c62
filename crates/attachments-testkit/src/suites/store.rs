//! The promises of [`AttachmentStore`], one function each.
//!
//! Each function needs an empty table and leaves it empty, so they run in any order;
//! [`store_suite`] runs them all. A failing one names the promise it checks.
//!
//! ```no_run
//! # async fn demo(store: impl attachments_core::AttachmentStore) {
//! // one promise, while working on it
//! attachments_testkit::store::versions_never_repeat_across_lives(&store).await;
//! // or all of them
//! attachments_testkit::store_suite(&store).await;
//! # }
//! ```

use std::collections::BTreeMap;

use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, Error, ErrorKind, RowChange,
};

use AttachmentState::*;

fn id(id: &str) -> AttachmentId {
    AttachmentId::new(id).unwrap()
}

fn row(id: &str, state: AttachmentState, timestamp: i64) -> Attachment {
    Attachment::new(self::id(id), format!("{id}.jpg"), state, timestamp)
}

fn ids(rows: Vec<Attachment>) -> Vec<String> {
    rows.into_iter().map(|r| r.id.to_string()).collect()
}

async fn version<S: AttachmentStore>(store: &S, id: &str) -> i64 {
    store
        .get(&self::id(id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("row {id} exists"))
        .version
}

async fn insert<S: AttachmentStore>(store: &S, rows: &[Attachment]) {
    let applied = store
        .apply(rows.iter().cloned().map(RowChange::Insert).collect())
        .await
        .unwrap();
    assert!(applied.iter().all(|new| *new), "test rows are new");
}

async fn assert_empty<S: AttachmentStore>(store: &S, promise: &str) {
    assert_eq!(
        store.count_by_state().await.unwrap().total(),
        0,
        "{promise} needs an empty table"
    );
}

async fn empty<S: AttachmentStore>(store: &S) {
    store.clear().await.unwrap();
}

/// Check an [`AttachmentStore`] against its contract: every promise of this module in turn.
/// Needs an empty table and leaves it empty.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # // the SQLite store runs this suite in attachments-sqlite's tests
/// # });
/// ```
pub async fn store_suite<S: AttachmentStore>(store: &S) {
    every_field_round_trips(store).await;
    insert_never_replaces(store).await;
    update_is_compare_and_set(store).await;
    delete_is_compare_and_set(store).await;
    list_filters_by_state_oldest_first(store).await;
    batch_inserts_report_each_row(store).await;
    get_many_returns_the_rows_that_exist(store).await;
    batch_updates_report_each_row(store).await;
    apply_with_hook_decides_from_the_current_row(store).await;
    insert_with_hook_returns_the_written_row(store).await;
    every_write_gives_a_version_never_given_before(store).await;
    versions_never_repeat_across_lives(store).await;
    versions_never_repeat_across_clear(store).await;
    insert_refuses_a_taken_filename(store).await;
    list_due_returns_only_due_rows(store).await;
    super::startup::list_page_reads_the_table_in_id_order(store).await;
    super::startup::list_page_to_verify_skips_rows_start_up_cannot_change(store).await;
    super::startup::list_by_local_uri_finds_the_owners_of_paths(store).await;
    next_attempt_at_is_the_earliest_retry_time(store).await;
    lock_exclusive_refuses_a_second_holder(store).await;
    clear_removes_every_row(store).await;
}

/// Every field of a row reads back as it was written.
pub async fn every_field_round_trips<S: AttachmentStore>(store: &S) {
    assert_empty(store, "every_field_round_trips").await;
    let mut full = row("full", QueuedUpload, 1_700_000_000_123);
    full.local_uri = Some("full.jpg".into());
    full.size = Some(u64::from(u32::MAX) + 7);
    full.media_type = Some("image/jpeg".into());
    full.has_synced = true;
    full.meta_data = Some(r#"{"caption":"été"}"#.into());
    full.attempts = 3;
    full.next_attempt_at = Some(1_700_000_999_000);
    full.last_error = Some("unavailable: 503".into());
    full.checksum = Some("sha256:abcd".into());
    full.failed_state = Some(QueuedDownload);
    insert(store, std::slice::from_ref(&full)).await;
    let stored = store
        .get(&full.id)
        .await
        .unwrap()
        .expect("inserted row is readable");
    full.version = stored.version;
    assert_eq!(stored, full, "every field round trips");
    empty(store).await;
}

/// An insert never replaces an existing row.
pub async fn insert_never_replaces<S: AttachmentStore>(store: &S) {
    assert_empty(store, "insert_never_replaces").await;
    let first = row("a", QueuedUpload, 1);
    insert(store, std::slice::from_ref(&first)).await;
    let before = store.get(&first.id).await.unwrap().unwrap();
    let mut other = first.clone();
    other.filename = "changed.jpg".into();
    assert_eq!(
        store.apply(vec![RowChange::Insert(other)]).await.unwrap(),
        vec![false],
        "an insert of a taken id is not applied"
    );
    assert_eq!(
        store.get(&first.id).await.unwrap().unwrap(),
        before,
        "the row is unchanged"
    );
    empty(store).await;
}

/// An update applies only at the expected version, writes every field and gives a new,
/// greater version.
pub async fn update_is_compare_and_set<S: AttachmentStore>(store: &S) {
    assert_empty(store, "update_is_compare_and_set").await;
    let mut original = row("full", QueuedUpload, 10);
    original.next_attempt_at = Some(99);
    original.last_error = Some("boom".into());
    original.failed_state = Some(QueuedUpload);
    insert(store, std::slice::from_ref(&original)).await;
    let stored = store.get(&original.id).await.unwrap().unwrap();
    let mut synced = stored.clone();
    synced.state = Synced;
    synced.filename = "renamed/full.jpg".into();
    synced.local_uri = None;
    synced.size = Some(1);
    synced.attempts = 0;
    synced.next_attempt_at = None;
    synced.last_error = None;
    synced.failed_state = None;
    synced.timestamp += 1;
    let update = |expected_version| RowChange::Update {
        expected_version,
        row: synced.clone(),
    };
    assert_eq!(
        store.apply(vec![update(stored.version)]).await.unwrap(),
        vec![true]
    );
    let after = store.get(&original.id).await.unwrap().unwrap();
    assert!(
        after.version > stored.version,
        "an update gives a greater version ({} after {})",
        after.version,
        stored.version
    );
    let mut expected = synced.clone();
    expected.version = after.version;
    assert_eq!(after, expected, "an update writes every field");
    assert_eq!(
        store.apply(vec![update(stored.version)]).await.unwrap(),
        vec![false],
        "an update from a stale version is refused"
    );
    assert_eq!(
        store.get(&original.id).await.unwrap().unwrap(),
        after,
        "a refused update changes nothing"
    );
    empty(store).await;
}

/// A delete applies only at the expected version.
pub async fn delete_is_compare_and_set<S: AttachmentStore>(store: &S) {
    assert_empty(store, "delete_is_compare_and_set").await;
    insert(store, &[row("a", QueuedUpload, 1)]).await;
    let current = version(store, "a").await;
    let delete = |expected_version| RowChange::Delete {
        id: id("a"),
        expected_version,
    };
    assert_eq!(
        store.apply(vec![delete(current + 1)]).await.unwrap(),
        vec![false],
        "a delete from another version is refused"
    );
    assert!(store.get(&id("a")).await.unwrap().is_some());
    assert_eq!(
        store.apply(vec![delete(current)]).await.unwrap(),
        vec![true]
    );
    assert!(
        store.get(&id("a")).await.unwrap().is_none(),
        "a deleted row is gone"
    );
    assert_eq!(
        store.apply(vec![delete(current)]).await.unwrap(),
        vec![false],
        "deleting a missing row is not applied"
    );
    assert_empty(store, "delete_is_compare_and_set").await;
}

/// `list` filters by state, oldest `timestamp` first; `count_by_state` counts each state.
pub async fn list_filters_by_state_oldest_first<S: AttachmentStore>(store: &S) {
    assert_empty(store, "list_filters_by_state_oldest_first").await;
    insert(
        store,
        &[
            row("c", QueuedDownload, 30),
            row("a", QueuedUpload, 10),
            row("b", Archived, 20),
            row("d", QueuedDownload, 5),
        ],
    )
    .await;
    assert_eq!(
        ids(store.list(None).await.unwrap()),
        ["d", "a", "b", "c"],
        "oldest first"
    );
    assert_eq!(
        ids(store
            .list(Some(&[QueuedDownload, QueuedUpload]))
            .await
            .unwrap()),
        ["d", "a", "c"]
    );
    assert!(store.list(Some(&[Synced])).await.unwrap().is_empty());
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(
        (
            counts.queued_download,
            counts.queued_upload,
            counts.archived,
            counts.total()
        ),
        (2, 1, 1, 4)
    );
    empty(store).await;
}

/// A batch of inserts reports each row: new ones `true`, existing ones (and repeats) `false`,
/// however many rows it holds.
pub async fn batch_inserts_report_each_row<S: AttachmentStore>(store: &S) {
    assert_empty(store, "batch_inserts_report_each_row").await;
    insert(store, &[row("a", QueuedUpload, 10)]).await;
    let batch = vec![
        RowChange::Insert(row("e", QueuedDownload, 40)),
        RowChange::Insert(row("a", QueuedDownload, 40)),
        RowChange::Insert(row("f", QueuedDownload, 40)),
        RowChange::Insert(row("f", QueuedUpload, 41)),
    ];
    assert_eq!(
        store.apply(batch).await.unwrap(),
        vec![true, false, true, false]
    );
    assert_eq!(
        store.get(&id("a")).await.unwrap().unwrap().state,
        QueuedUpload
    );
    assert_eq!(
        store.get(&id("f")).await.unwrap().unwrap().state,
        QueuedDownload
    );
    let many: Vec<RowChange> = (0..1200)
        .map(|n| RowChange::Insert(row(&format!("bulk-{n}"), QueuedDownload, 50)))
        .collect();
    assert!(store.apply(many).await.unwrap().into_iter().all(|new| new));
    assert_eq!(store.count_by_state().await.unwrap().total(), 1203);
    let rows = store.list(None).await.unwrap();
    let bulk: Vec<RowChange> = rows
        .iter()
        .map(|row| RowChange::Delete {
            id: row.id.clone(),
            expected_version: row.version,
        })
        .collect();
    assert!(
        store
            .apply(bulk)
            .await
            .unwrap()
            .into_iter()
            .all(|gone| gone),
        "a batch of deletes applies each"
    );
    assert_empty(store, "batch_inserts_report_each_row").await;
}

/// `get_many` returns the rows that exist, once each, whatever the order and number asked.
pub async fn get_many_returns_the_rows_that_exist<S: AttachmentStore>(store: &S) {
    assert_empty(store, "get_many_returns_the_rows_that_exist").await;
    insert(
        store,
        &[
            row("a", QueuedUpload, 1),
            row("c", Synced, 2),
            row("d", Synced, 3),
        ],
    )
    .await;
    let wanted: Vec<AttachmentId> = ["c", "nope", "a", "c"].map(id).into();
    let mut found = ids(store.get_many(&wanted).await.unwrap());
    found.sort();
    assert_eq!(
        found,
        ["a", "c"],
        "existing rows once each, missing ids left out"
    );
    let many: Vec<AttachmentId> = (0..1200)
        .map(|n| id(&format!("absent-{n}")))
        .chain([id("d")])
        .collect();
    assert_eq!(
        ids(store.get_many(&many).await.unwrap()),
        ["d"],
        "more ids than one query takes"
    );
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    empty(store).await;
}

/// A batch of updates reports each: stale versions are refused, and a later change of the
/// same id sees what an earlier one wrote.
pub async fn batch_updates_report_each_row<S: AttachmentStore>(store: &S) {
    assert_empty(store, "batch_updates_report_each_row").await;
    let name = |n: usize| format!("upd-{n}");
    let rows: Vec<Attachment> = (0..700).map(|n| row(&name(n), QueuedUpload, 60)).collect();
    insert(store, &rows).await;
    let before: BTreeMap<String, i64> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.id.to_string(), row.version))
        .collect();
    let updates: Vec<RowChange> = (0..700)
        .map(|n| RowChange::Update {
            // every seventh is stale
            expected_version: before[&name(n)] - i64::from(n % 7 == 0),
            row: row(&name(n), Synced, 61),
        })
        .collect();
    assert_eq!(
        store.apply(updates).await.unwrap(),
        (0..700).map(|n| n % 7 != 0).collect::<Vec<_>>()
    );
    let updated = store.get(&id(&name(1))).await.unwrap().unwrap();
    assert_eq!((updated.state, updated.timestamp), (Synced, 61));
    assert!(updated.version > before[&name(1)]);
    let refused = store.get(&id(&name(7))).await.unwrap().unwrap();
    assert_eq!(
        (refused.state, refused.version),
        (QueuedUpload, before[&name(7)]),
        "a refused update changes nothing"
    );
    let versions: std::collections::BTreeSet<i64> = store
        .list(Some(&[Synced]))
        .await
        .unwrap()
        .iter()
        .map(|row| row.version)
        .collect();
    assert_eq!(
        versions.len(),
        600,
        "each row of a batch gets its own version"
    );

    // the second change of upd-1 expects the version the first one replaced: refused, since
    // it must see the first one's write
    let v1 = updated.version;
    let v2 = version(store, &name(2)).await;
    let repeated = vec![
        RowChange::Update {
            expected_version: v1,
            row: row(&name(1), Archived, 62),
        },
        RowChange::Update {
            expected_version: v1,
            row: row(&name(1), QueuedDownload, 63),
        },
        RowChange::Update {
            expected_version: v2,
            row: row(&name(2), Archived, 62),
        },
    ];
    assert_eq!(
        store.apply(repeated).await.unwrap(),
        vec![true, false, true]
    );
    let twice = store.get(&id(&name(1))).await.unwrap().unwrap();
    assert_eq!(twice.state, Archived, "the first change of upd-1 applied");
    assert!(twice.version > v1);
    empty(store).await;
}

/// `apply_with_hook` lets `decide` see the current row (or none), applies its change and
/// returns it with the version written; `decide`'s error changes nothing.
pub async fn apply_with_hook_decides_from_the_current_row<S: AttachmentStore>(store: &S) {
    assert_empty(store, "apply_with_hook_decides_from_the_current_row").await;
    insert(store, &[row("a", QueuedUpload, 1)]).await;
    let before = version(store, "a").await;
    let change = store
        .apply_with_hook(
            &id("a"),
            Box::new(|current: Option<Attachment>| {
                let current = current.expect("decide sees the stored row");
                let mut next = current.clone();
                next.state = QueuedDelete;
                Ok(RowChange::Update {
                    expected_version: current.version,
                    row: next,
                })
            }),
            None,
        )
        .await
        .unwrap();
    assert_eq!(change.new_state(), Some(QueuedDelete));
    let stored = store.get(&id("a")).await.unwrap().unwrap();
    assert_eq!(stored.state, QueuedDelete);
    let RowChange::Update {
        row: written,
        expected_version,
    } = change
    else {
        panic!("the applied change is returned: {change:?}");
    };
    assert_eq!(expected_version, before);
    assert_eq!(
        written, stored,
        "the returned row is the row as written, with its version"
    );
    assert!(stored.version > before);

    let err = store
        .apply_with_hook(
            &id("a"),
            Box::new(|_| Err(Error::new(ErrorKind::NotFound, "refused by decide"))),
            None,
        )
        .await
        .expect_err("decide's error is returned");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        store.get(&id("a")).await.unwrap().unwrap(),
        stored,
        "nothing changed"
    );

    let change = store
        .apply_with_hook(
            &id("missing"),
            Box::new(|current| {
                assert!(current.is_none(), "decide sees no row for an unknown id");
                Ok(RowChange::Insert(row("missing", QueuedUpload, 1)))
            }),
            None,
        )
        .await
        .unwrap();
    let stored = store.get(&id("missing")).await.unwrap().unwrap();
    assert_eq!(change, RowChange::Insert(stored), "an insert as written");
    empty(store).await;
}

/// `insert_with_hook` returns the row as written, with its version, and refuses a taken id
/// with `AlreadyExists`, changing nothing.
pub async fn insert_with_hook_returns_the_written_row<S: AttachmentStore>(store: &S) {
    assert_empty(store, "insert_with_hook_returns_the_written_row").await;
    let written = store
        .insert_with_hook(row("a", QueuedUpload, 1), None)
        .await
        .unwrap();
    let stored = store.get(&id("a")).await.unwrap().unwrap();
    assert_eq!(
        written, stored,
        "the returned row carries the stored version"
    );
    let mut again = row("a", QueuedDownload, 2);
    again.filename = "other.jpg".into();
    let err = store.insert_with_hook(again, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(store.get(&id("a")).await.unwrap().unwrap(), stored);
    empty(store).await;
}

/// Every write (single or batched insert, update, `insert_with_hook`, `apply_with_hook`)
/// gives its row a version greater than every version the store gave before.
pub async fn every_write_gives_a_version_never_given_before<S: AttachmentStore>(store: &S) {
    assert_empty(store, "every_write_gives_a_version_never_given_before").await;
    let mut highest = 0;
    let mut check = async |store: &S, ids: &[&str], what: &str| {
        let mut seen = Vec::new();
        for id in ids {
            seen.push(version(store, id).await);
        }
        for v in &seen {
            assert!(
                *v > highest,
                "{what}: version {v} after {highest} was given out"
            );
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), ids.len(), "{what}: each row its own version");
        highest = seen.last().copied().unwrap_or(highest);
    };
    insert(store, &[row("a", QueuedUpload, 1)]).await;
    check(store, &["a"], "a single insert").await;
    insert(
        store,
        &[row("b", QueuedUpload, 1), row("c", QueuedUpload, 1)],
    )
    .await;
    check(store, &["b", "c"], "a batch of inserts").await;
    let update = |id: &str, expected_version| RowChange::Update {
        expected_version,
        row: row(id, Synced, 2),
    };
    let (a, b, c) = (
        version(store, "a").await,
        version(store, "b").await,
        version(store, "c").await,
    );
    store.apply(vec![update("a", a)]).await.unwrap();
    check(store, &["a"], "a single update").await;
    store
        .apply(vec![update("b", b), update("c", c)])
        .await
        .unwrap();
    check(store, &["b", "c"], "a batch of updates").await;
    store
        .insert_with_hook(row("d", QueuedUpload, 3), None)
        .await
        .unwrap();
    check(store, &["d"], "insert_with_hook").await;
    store
        .apply_with_hook(
            &id("a"),
            Box::new(|current| {
                let current = current.unwrap();
                let mut next = current.clone();
                next.state = Archived;
                Ok(RowChange::Update {
                    expected_version: current.version,
                    row: next,
                })
            }),
            None,
        )
        .await
        .unwrap();
    check(store, &["a"], "apply_with_hook").await;
    empty(store).await;
}

/// An id deleted and saved again never gets a version of its earlier life, so no late
/// outcome of that life passes a compare-and-set on the new one.
pub async fn versions_never_repeat_across_lives<S: AttachmentStore>(store: &S) {
    assert_empty(store, "versions_never_repeat_across_lives").await;
    let first = store
        .insert_with_hook(row("a", QueuedUpload, 1), None)
        .await
        .unwrap();
    let mut synced = first.clone();
    synced.state = Synced;
    store
        .apply(vec![RowChange::Update {
            expected_version: first.version,
            row: synced,
        }])
        .await
        .unwrap();
    let second = version(store, "a").await;
    let old_lives = [first.version, second];
    assert_eq!(
        store
            .apply(vec![RowChange::Delete {
                id: id("a"),
                expected_version: second,
            }])
            .await
            .unwrap(),
        vec![true]
    );

    // a new life, as save_file writes it, then as a watched download
    let reborn = store
        .insert_with_hook(row("a", QueuedUpload, 3), None)
        .await
        .unwrap();
    assert!(
        reborn.version > second,
        "a re-created id starts above its earlier lives ({} after {second})",
        reborn.version
    );
    for stale in old_lives {
        let mut late = reborn.clone();
        late.state = Synced;
        assert_eq!(
            store
                .apply(vec![
                    RowChange::Update {
                        expected_version: stale,
                        row: late,
                    },
                    RowChange::Delete {
                        id: id("a"),
                        expected_version: stale,
                    },
                ])
                .await
                .unwrap(),
            vec![false, false],
            "a late outcome of an earlier life (version {stale}) is refused"
        );
    }
    assert_eq!(store.get(&id("a")).await.unwrap().unwrap(), reborn);
    store
        .apply(vec![RowChange::Delete {
            id: id("a"),
            expected_version: reborn.version,
        }])
        .await
        .unwrap();
    insert(store, &[row("a", QueuedDownload, 4)]).await;
    assert!(
        version(store, "a").await > reborn.version,
        "a third life (a batch-style insert) starts above the second"
    );
    empty(store).await;
}

/// After `clear`, a re-created id still gets a version no row had before the clear.
pub async fn versions_never_repeat_across_clear<S: AttachmentStore>(store: &S) {
    assert_empty(store, "versions_never_repeat_across_clear").await;
    insert(
        store,
        &[row("a", QueuedUpload, 1), row("b", QueuedUpload, 1)],
    )
    .await;
    let highest = version(store, "a").await.max(version(store, "b").await);
    let old_a = version(store, "a").await;
    assert_eq!(store.clear().await.unwrap(), 2);
    let reborn = store
        .insert_with_hook(row("a", QueuedUpload, 2), None)
        .await
        .unwrap();
    assert!(
        reborn.version > highest,
        "versions go on after clear ({} after {highest})",
        reborn.version
    );
    assert_eq!(
        store
            .apply(vec![RowChange::Delete {
                id: id("a"),
                expected_version: old_a,
            }])
            .await
            .unwrap(),
        vec![false],
        "an outcome from before the clear is refused"
    );
    empty(store).await;
}

/// Two rows never share a `filename`: `apply` does not apply such an insert, and
/// `insert_with_hook` refuses it with `AlreadyExists` naming the filename.
pub async fn insert_refuses_a_taken_filename<S: AttachmentStore>(store: &S) {
    assert_empty(store, "insert_refuses_a_taken_filename").await;
    let holder = row("a", Synced, 1);
    insert(store, std::slice::from_ref(&holder)).await;
    let before = store.get(&holder.id).await.unwrap().unwrap();
    let mut intruder = row("b", QueuedDownload, 2);
    intruder.filename = holder.filename.clone();

    assert_eq!(
        store
            .apply(vec![RowChange::Insert(intruder.clone())])
            .await
            .unwrap(),
        vec![false],
        "an insert of a taken filename is not applied"
    );
    let err = store
        .insert_with_hook(intruder.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(
        err.to_string().contains(&holder.filename),
        "the error names the filename: {err}"
    );
    let mut twins = row("c", QueuedDownload, 3);
    twins.filename = "twin.jpg".into();
    let mut twin = row("d", QueuedDownload, 3);
    twin.filename = "twin.jpg".into();
    assert_eq!(
        store
            .apply(vec![
                RowChange::Insert(intruder.clone()),
                RowChange::Insert(twins),
                RowChange::Insert(twin),
            ])
            .await
            .unwrap(),
        vec![false, true, false],
        "in a batch too, against stored rows and earlier rows of the batch"
    );
    assert!(store.get(&intruder.id).await.unwrap().is_none());
    assert!(store.get(&id("d")).await.unwrap().is_none());
    assert_eq!(
        store.get(&holder.id).await.unwrap().unwrap(),
        before,
        "the holder is unchanged"
    );

    // freed by the holder's delete
    store
        .apply(vec![RowChange::Delete {
            id: holder.id.clone(),
            expected_version: before.version,
        }])
        .await
        .unwrap();
    store.insert_with_hook(intruder, None).await.unwrap();
    empty(store).await;
}

/// `list_due` returns the queued rows with no retry time or one at or before now, oldest
/// first, at most `limit`, downloads only when asked.
pub async fn list_due_returns_only_due_rows<S: AttachmentStore>(store: &S) {
    assert_empty(store, "list_due_returns_only_due_rows").await;
    let at = |mut row: Attachment, next: Option<i64>| {
        row.next_attempt_at = next;
        row
    };
    let now = 1_000;
    insert(
        store,
        &[
            at(row("up-fresh", QueuedUpload, 50), None),
            at(row("up-due", QueuedUpload, 40), Some(now)),
            at(row("up-later", QueuedUpload, 10), Some(now + 1)),
            at(row("del-due", QueuedDelete, 30), Some(now - 500)),
            at(row("down-fresh", QueuedDownload, 20), None),
            at(row("down-later", QueuedDownload, 5), Some(now + 60_000)),
            at(row("synced", Synced, 1), None),
            at(row("archived", Archived, 2), Some(now - 1)),
        ],
    )
    .await;
    assert_eq!(
        ids(store.list_due(now, true, 100).await.unwrap()),
        ["down-fresh", "del-due", "up-due", "up-fresh"],
        "due queued rows, oldest first, a retry time equal to now included"
    );
    assert_eq!(
        ids(store.list_due(now, false, 100).await.unwrap()),
        ["del-due", "up-due", "up-fresh"],
        "no downloads unless asked"
    );
    assert_eq!(
        ids(store.list_due(now, true, 2).await.unwrap()),
        ["down-fresh", "del-due"],
        "at most limit, the oldest"
    );
    assert!(store.list_due(now, true, 0).await.unwrap().is_empty());
    assert_eq!(
        ids(store.list_due(now + 60_000, true, 100).await.unwrap()),
        [
            "down-later",
            "up-later",
            "down-fresh",
            "del-due",
            "up-due",
            "up-fresh"
        ],
        "backed-off rows are due once their time comes"
    );
    empty(store).await;
}

/// `next_attempt_at` is the earliest retry time of a queued row (downloads only when asked),
/// or `None` when no queued row waits.
pub async fn next_attempt_at_is_the_earliest_retry_time<S: AttachmentStore>(store: &S) {
    assert_empty(store, "next_attempt_at_is_the_earliest_retry_time").await;
    assert_eq!(store.next_attempt_at(true).await.unwrap(), None);
    let at = |mut row: Attachment, next: Option<i64>| {
        row.next_attempt_at = next;
        row
    };
    insert(
        store,
        &[
            at(row("up-fresh", QueuedUpload, 1), None),
            at(row("synced", Synced, 1), Some(5)),
            at(row("archived", Archived, 1), Some(6)),
        ],
    )
    .await;
    assert_eq!(
        store.next_attempt_at(true).await.unwrap(),
        None,
        "rows without a retry time, and rows not queued, wait for nothing"
    );
    insert(
        store,
        &[
            at(row("down", QueuedDownload, 1), Some(300)),
            at(row("up", QueuedUpload, 1), Some(700)),
            at(row("del", QueuedDelete, 1), Some(500)),
        ],
    )
    .await;
    assert_eq!(store.next_attempt_at(true).await.unwrap(), Some(300));
    assert_eq!(
        store.next_attempt_at(false).await.unwrap(),
        Some(500),
        "downloads only when asked"
    );
    empty(store).await;
}

/// While one `lock_exclusive` holder lives a second is refused with `InUse` (not retryable);
/// once it is dropped the lock is granted again. A store that needs no lock returns `None`.
pub async fn lock_exclusive_refuses_a_second_holder<S: AttachmentStore>(store: &S) {
    let Some(first) = store.lock_exclusive().unwrap() else {
        return;
    };
    let err = store
        .lock_exclusive()
        .expect_err("a second holder is refused");
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert!(!err.is_retryable(), "{err}");
    drop(first);
    let again = store.lock_exclusive().unwrap();
    assert!(again.is_some(), "granted again once released");
}

/// `clear` removes every row and says how many.
pub async fn clear_removes_every_row<S: AttachmentStore>(store: &S) {
    assert_empty(store, "clear_removes_every_row").await;
    insert(
        store,
        &[
            row("a", QueuedUpload, 1),
            row("b", Synced, 2),
            row("c", Archived, 3),
        ],
    )
    .await;
    assert_eq!(store.clear().await.unwrap(), 3);
    assert_eq!(store.count_by_state().await.unwrap().total(), 0);
    assert!(store.list(None).await.unwrap().is_empty());
}
