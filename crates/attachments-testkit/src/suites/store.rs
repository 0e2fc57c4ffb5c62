use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, Error, ErrorKind, RowChange,
};

fn row(id: &str, state: AttachmentState, timestamp: i64) -> Attachment {
    Attachment::new(
        AttachmentId::new(id).unwrap(),
        format!("{id}.jpg"),
        state,
        timestamp,
    )
}

/// Check an [`AttachmentStore`] against its contract. Needs an empty table and leaves it empty.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # // the SQLite store runs this suite in attachments-sqlite's tests
/// # });
/// ```
pub async fn store_suite<S: AttachmentStore>(store: &S) {
    use AttachmentState::*;
    assert_eq!(
        store.count_by_state().await.unwrap().total(),
        0,
        "the suite needs an empty table"
    );

    // every field round trips
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
    assert_eq!(
        store
            .apply(vec![RowChange::Insert(full.clone())])
            .await
            .unwrap(),
        vec![true]
    );
    let stored = store
        .get(&full.id)
        .await
        .unwrap()
        .expect("inserted row is readable");
    assert_eq!(stored.version, 1, "a new row starts at version 1");
    full.version = 1;
    assert_eq!(stored, full, "every field round trips");

    // insert never replaces
    let mut other = full.clone();
    other.filename = "changed.jpg".into();
    assert_eq!(
        store.apply(vec![RowChange::Insert(other)]).await.unwrap(),
        vec![false]
    );
    assert_eq!(
        store.get(&full.id).await.unwrap().unwrap().filename,
        "full.jpg"
    );

    // compare-and-set update
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
    let applied = store
        .apply(vec![RowChange::Update {
            expected_version: 1,
            row: synced.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(applied, vec![true]);
    let after = store.get(&full.id).await.unwrap().unwrap();
    assert_eq!(
        (after.state, after.version),
        (Synced, 2),
        "an update bumps the version"
    );
    let mut expected = synced.clone();
    expected.version = 2;
    assert_eq!(after, expected, "an update writes every field");
    let stale = store
        .apply(vec![RowChange::Update {
            expected_version: 1,
            row: synced.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(
        stale,
        vec![false],
        "an update from a stale version is refused"
    );
    assert_eq!(store.get(&full.id).await.unwrap().unwrap().version, 2);

    // compare-and-set delete
    let stale = store
        .apply(vec![RowChange::Delete {
            id: full.id.clone(),
            expected_version: 1,
        }])
        .await
        .unwrap();
    assert_eq!(
        stale,
        vec![false],
        "a delete from a stale version is refused"
    );
    assert!(store.get(&full.id).await.unwrap().is_some());
    let done = store
        .apply(vec![RowChange::Delete {
            id: full.id.clone(),
            expected_version: 2,
        }])
        .await
        .unwrap();
    assert_eq!(done, vec![true]);
    assert!(
        store.get(&full.id).await.unwrap().is_none(),
        "a deleted row is gone"
    );

    // list: filtered by state, oldest timestamp first; counts per state
    let rows = [
        row("c", QueuedDownload, 30),
        row("a", QueuedUpload, 10),
        row("b", Archived, 20),
        row("d", QueuedDownload, 5),
    ];
    let inserted = store
        .apply(rows.iter().cloned().map(RowChange::Insert).collect())
        .await
        .unwrap();
    assert_eq!(inserted, vec![true; 4], "a batch applies each change");
    let ids = |rows: Vec<Attachment>| {
        rows.into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
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

    // a batch of inserts reports each row: new ones true, existing ones (and repeats) false
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
        store
            .get(&AttachmentId::new("a").unwrap())
            .await
            .unwrap()
            .unwrap()
            .state,
        QueuedUpload
    );
    assert_eq!(
        store
            .get(&AttachmentId::new("f").unwrap())
            .await
            .unwrap()
            .unwrap()
            .state,
        QueuedDownload
    );
    let many: Vec<RowChange> = (0..1200)
        .map(|n| RowChange::Insert(row(&format!("bulk-{n}"), QueuedDownload, 50)))
        .collect();
    assert!(store.apply(many).await.unwrap().into_iter().all(|new| new));
    assert_eq!(store.count_by_state().await.unwrap().total(), 1206);
    let bulk: Vec<RowChange> = (0..1200)
        .map(|n| RowChange::Delete {
            id: AttachmentId::new(format!("bulk-{n}")).unwrap(),
            expected_version: 1,
        })
        .chain(["e", "f"].map(|id| RowChange::Delete {
            id: AttachmentId::new(id).unwrap(),
            expected_version: 1,
        }))
        .collect();
    assert!(
        store
            .apply(bulk)
            .await
            .unwrap()
            .into_iter()
            .all(|gone| gone)
    );

    // get_many: the rows that exist, whatever the order asked
    let wanted: Vec<AttachmentId> = ["c", "nope", "a", "c"]
        .into_iter()
        .map(|id| AttachmentId::new(id).unwrap())
        .collect();
    let mut found = ids(store.get_many(&wanted).await.unwrap());
    found.sort();
    assert_eq!(
        found,
        ["a", "c"],
        "existing rows once each, missing ids left out"
    );
    let many: Vec<AttachmentId> = (0..1200)
        .map(|n| AttachmentId::new(format!("absent-{n}")).unwrap())
        .chain([AttachmentId::new("d").unwrap()])
        .collect();
    assert_eq!(
        ids(store.get_many(&many).await.unwrap()),
        ["d"],
        "more ids than one query takes"
    );
    assert!(store.get_many(&[]).await.unwrap().is_empty());

    // a batch of updates reports each: stale versions are refused, and a repeated id sees the
    // version its first update wrote
    let id = |n: usize| AttachmentId::new(format!("upd-{n}")).unwrap();
    let inserts: Vec<RowChange> = (0..700)
        .map(|n| RowChange::Insert(row(id(n).as_str(), QueuedUpload, 60)))
        .collect();
    store.apply(inserts).await.unwrap();
    let updates: Vec<RowChange> = (0..700)
        .map(|n| RowChange::Update {
            expected_version: if n % 7 == 0 { 9 } else { 1 },
            row: row(id(n).as_str(), Synced, 61),
        })
        .collect();
    assert_eq!(
        store.apply(updates).await.unwrap(),
        (0..700).map(|n| n % 7 != 0).collect::<Vec<_>>()
    );
    let updated = store.get(&id(1)).await.unwrap().unwrap();
    assert_eq!(
        (updated.state, updated.version, updated.timestamp),
        (Synced, 2, 61)
    );
    let refused = store.get(&id(7)).await.unwrap().unwrap();
    assert_eq!((refused.state, refused.version), (QueuedUpload, 1));
    let repeated = vec![
        RowChange::Update {
            expected_version: 2,
            row: row(id(1).as_str(), Archived, 62),
        },
        RowChange::Update {
            expected_version: 3,
            row: row(id(1).as_str(), QueuedDownload, 63),
        },
        RowChange::Update {
            expected_version: 2,
            row: row(id(2).as_str(), Archived, 62),
        },
    ];
    assert_eq!(store.apply(repeated).await.unwrap(), vec![true; 3]);
    let twice = store.get(&id(1)).await.unwrap().unwrap();
    assert_eq!((twice.state, twice.version), (QueuedDownload, 4));
    let cleanup: Vec<RowChange> = (0..700)
        .map(|n| RowChange::Delete {
            id: id(n),
            expected_version: match n {
                _ if n % 7 == 0 => 1,
                1 => 4,
                2 => 3,
                _ => 2,
            },
        })
        .collect();
    assert!(
        store
            .apply(cleanup)
            .await
            .unwrap()
            .into_iter()
            .all(|gone| gone)
    );

    // apply_with_hook: decide sees the current row; its error rolls back
    let id_a = AttachmentId::new("a").unwrap();
    let change = store
        .apply_with_hook(
            &id_a,
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
    assert_eq!(store.get(&id_a).await.unwrap().unwrap().state, QueuedDelete);
    let err = store
        .apply_with_hook(
            &id_a,
            Box::new(|_| Err(Error::new(ErrorKind::NotFound, "refused by decide"))),
            None,
        )
        .await
        .expect_err("decide's error is returned");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        store.get(&id_a).await.unwrap().unwrap().state,
        QueuedDelete,
        "nothing changed"
    );
    let missing = AttachmentId::new("missing").unwrap();
    store
        .apply_with_hook(
            &missing,
            Box::new(|current| {
                assert!(current.is_none(), "decide sees no row for an unknown id");
                Ok(RowChange::Insert(row("missing", QueuedUpload, 1)))
            }),
            None,
        )
        .await
        .unwrap();
    assert!(store.get(&missing).await.unwrap().is_some());

    // clear
    assert_eq!(store.clear().await.unwrap(), 5);
    assert_eq!(store.count_by_state().await.unwrap().total(), 0);
}
