//! `SqliteStore` on real SQLite files: the testkit suite, the schema as other SDKs read it,
//! migrations beside the app's own, update hooks, corrupt rows, and watched queries.

use std::time::Duration;

use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, ErrorKind, RowChange,
};
use attachments_sqlite::{SqliteStore, WatchOptions, watch_referenced_attachments_with};
use futures_util::StreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

async fn file_pool(dir: &tempfile::TempDir) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    attachments_testkit::store_suite(&store).await;
}

#[tokio::test]
async fn the_table_has_the_powersync_layout() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    SqliteStore::new(pool.clone()).await.unwrap();
    let columns: Vec<String> =
        sqlx::query("SELECT name FROM pragma_table_info('attachments_queue') ORDER BY cid")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
    assert_eq!(
        columns,
        [
            "id",
            "filename",
            "local_uri",
            "timestamp",
            "size",
            "media_type",
            "state",
            "has_synced",
            "meta_data",
            "attempts",
            "next_attempt_at",
            "last_error",
            "checksum",
            "version",
            "failed_state"
        ]
    );
    let indexes: Vec<String> = sqlx::query(
        "SELECT name FROM pragma_index_list('attachments_queue') WHERE origin = 'c' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    // migration 2 dropped the index on state alone: (state, timestamp) serves those queries
    assert_eq!(
        indexes,
        [
            "attachments_queue_filename",
            "attachments_queue_queued_next_attempt",
            "attachments_queue_state_timestamp"
        ]
    );
}

#[tokio::test]
async fn migrations_live_beside_the_apps_own() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    let app_migrations = || {
        sqlx::migrate::Migrator::with_migrations(vec![sqlx::migrate::Migration::new(
            1,
            "todos".into(),
            sqlx::migrate::MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(
                "CREATE TABLE todos (id INTEGER PRIMARY KEY, photo_id TEXT)",
            ),
            false,
        )])
    };
    app_migrations().run(&pool).await.unwrap();
    SqliteStore::new(pool.clone()).await.unwrap();
    SqliteStore::with_table(pool.clone(), "avatars")
        .await
        .unwrap();
    // the app's migrator still runs cleanly: it finds no version it does not know
    app_migrations()
        .run(&pool)
        .await
        .expect("the app's migrator is unaffected");
    // and the store opens again on the migrated database
    SqliteStore::new(pool.clone()).await.unwrap();
    let app_versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        app_versions, 1,
        "the store records nothing in _sqlx_migrations"
    );
    let ours: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _attachments_queue_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ours, 5, "each of the store's migrations, once");
}

#[tokio::test]
async fn bad_table_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    for bad in ["", "1abc", "a-b", "a\"; DROP TABLE x; --", &"x".repeat(65)] {
        let err = SqliteStore::with_table(pool.clone(), bad)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[tokio::test]
async fn corrupt_rows_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    let store = SqliteStore::new(pool.clone()).await.unwrap();
    sqlx::query("INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('bad', 'bad.jpg', 0, 9)")
        .execute(&pool)
        .await
        .unwrap();
    let err = store
        .get(&AttachmentId::new("bad").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("unknown attachment state code 9"),
        "{err}"
    );
    // listing and counting leave it out, so the other rows keep syncing
    for insert in [
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('good', 'good.jpg', 0, 1)",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('../evil', 'e.jpg', 0, 1)",
    ] {
        sqlx::query(insert).execute(&pool).await.unwrap();
    }
    let listed: Vec<String> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(listed, ["good"]);
    // counting goes by state code only: the unknown code is left out
    assert_eq!(store.count_by_state().await.unwrap().total(), 2);
}

/// Start-up's pages (read as one JSON row) leave out only the rows that cannot be read, also
/// when a row holds a value JSON cannot carry (a BLOB) or one of the wrong type.
#[tokio::test]
async fn pages_to_verify_leave_out_only_unreadable_rows() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    let store = SqliteStore::new(pool.clone()).await.unwrap();
    let ids = |rows: Vec<Attachment>| -> Vec<String> {
        rows.into_iter().map(|r| r.id.to_string()).collect()
    };
    for insert in [
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('a', 'a.jpg', 0, 3)",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('b-bad', 'b.jpg', 0, 9)",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('c', 'c.jpg', 0, 1)",
    ] {
        sqlx::query(insert).execute(&pool).await.unwrap();
    }
    let page = store.list_page_to_verify(None, 10, 0).await.unwrap();
    assert_eq!(ids(page), ["a", "c"], "the unknown state code is left out");
    for insert in [
        "INSERT INTO attachments_queue (id, filename, timestamp, state, meta_data) VALUES ('d-blob', 'd.jpg', 0, 3, x'00ff')",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('e-text-time', 'e.jpg', 'noon', 3)",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('f', 'f.jpg', 0, 3)",
    ] {
        sqlx::query(insert).execute(&pool).await.unwrap();
    }
    let page = store.list_page_to_verify(None, 10, 0).await.unwrap();
    let listed = ids(store.list(None).await.unwrap());
    assert!(listed.contains(&"f".to_owned()), "{listed:?}");
    let mut expected: Vec<String> = listed.into_iter().filter(|id| id != "b-bad").collect();
    expected.sort();
    assert_eq!(
        ids(page),
        expected,
        "the same rows as a listing, in id order"
    );
}

#[tokio::test]
async fn update_hooks_share_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    sqlx::query("CREATE TABLE todos (id INTEGER PRIMARY KEY, photo_id TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO todos (id) VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let store = SqliteStore::new(pool.clone()).await.unwrap();
    let id = AttachmentId::new("p1").unwrap();
    let row = Attachment::new(id.clone(), "p1.jpg", AttachmentState::QueuedUpload, 1);

    // a failing hook rolls back the row too
    let inserted = row.clone();
    let err = store
        .apply_with_hook(
            &id,
            Box::new(move |_| Ok(RowChange::Insert(inserted))),
            Some(Box::new(|connection| {
                Box::pin(async move {
                    sqlx::query("UPDATE no_such_table SET x = 1")
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                })
            })),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Hook);
    assert!(
        store.get(&id).await.unwrap().is_none(),
        "the row was rolled back with the hook"
    );

    // a good hook commits with the row
    let inserted = row.clone();
    store
        .apply_with_hook(
            &id,
            Box::new(move |_| Ok(RowChange::Insert(inserted))),
            Some(Box::new(|connection| {
                Box::pin(async move {
                    sqlx::query("UPDATE todos SET photo_id = 'p1' WHERE id = 1")
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                })
            })),
        )
        .await
        .unwrap();
    let photo: Option<String> = sqlx::query_scalar("SELECT photo_id FROM todos WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(photo.as_deref(), Some("p1"));
    assert!(store.get(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn watched_query_emits_a_fresh_reading_after_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    sqlx::query("CREATE TABLE todos (id INTEGER PRIMARY KEY, photo_id TEXT, title TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO todos (id, photo_id) VALUES (1, 'b'), (2, NULL), (3, '../bad')")
        .execute(&pool)
        .await
        .unwrap();
    let options = WatchOptions {
        poll_interval: Duration::from_millis(5),
    };
    let mut watch = watch_referenced_attachments_with(
        pool.clone(),
        "SELECT photo_id AS id, 'jpg' AS file_extension FROM todos",
        options,
    );
    let ids = |reading: attachments_core::ReferencedAttachments| {
        reading
            .items
            .into_iter()
            .map(|i| i.id.to_string())
            .collect::<Vec<_>>()
    };
    let first = watch.next().await.unwrap().unwrap();
    let first_read_at = first.read_at;
    assert_eq!(first.items[0].file_extension.as_deref(), Some("jpg"));
    assert_eq!(ids(first), ["b"], "NULL and invalid ids are skipped");

    // a commit that does not alter the result still emits a reading, with the same items and
    // a later read_at: the queue orders deletes against it
    sqlx::query("UPDATE todos SET title = 'x'")
        .execute(&pool)
        .await
        .unwrap();
    let same = watch.next().await.unwrap().unwrap();
    assert!(same.read_at > first_read_at, "a fresh reading");
    let same_read_at = same.read_at;
    assert_eq!(ids(same), ["b"]);

    sqlx::query("INSERT INTO todos (id, photo_id) VALUES (4, 'a')")
        .execute(&pool)
        .await
        .unwrap();
    // the reading after the insert: none came from the polls in between, where nothing
    // committed
    let second = watch.next().await.unwrap().unwrap();
    assert!(second.read_at > same_read_at);
    assert_eq!(ids(second), ["a", "b"], "sorted by id");

    // a commit from another process (here: a separate pool on the same file) is seen too
    let other = file_pool(&dir).await;
    sqlx::query("DELETE FROM todos WHERE photo_id = 'b'")
        .execute(&other)
        .await
        .unwrap();
    let third = watch.next().await.unwrap().unwrap();
    assert_eq!(ids(third), ["a"]);
}

/// Put the database back to what an older version of this crate left: migrations 1 and 2
/// only, versions per row (restarting at 1), and rows that share a filename.
async fn downgrade_to_the_first_release(pool: &SqlitePool) {
    for statement in [
        "DROP INDEX attachments_queue_filename",
        "DROP INDEX attachments_queue_queued_next_attempt",
        "DROP TRIGGER attachments_queue_version_after_insert",
        "DROP TRIGGER attachments_queue_version_after_update",
        "DROP TABLE _attachments_queue_versions",
        "DELETE FROM _attachments_queue_migrations WHERE version > 2",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

#[tokio::test]
async fn a_table_from_an_older_version_migrates_and_keeps_the_row_written_last() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    drop(SqliteStore::new(pool.clone()).await.unwrap());
    downgrade_to_the_first_release(&pool).await;
    // (id, filename, timestamp, version): "shared.jpg" three times, "pair.jpg" twice with
    // equal timestamps (the higher version stays), "alone.jpg" once
    for (id, filename, timestamp, version) in [
        ("old", "shared.jpg", 10, 7),
        ("newest", "shared.jpg", 30, 1),
        ("middle", "shared.jpg", 20, 2),
        ("p1", "pair.jpg", 5, 3),
        ("p2", "pair.jpg", 5, 4),
        ("alone", "alone.jpg", 1, 5),
    ] {
        sqlx::query(
            "INSERT INTO attachments_queue (id, filename, timestamp, state, version)
             VALUES (?, ?, ?, 3, ?)",
        )
        .bind(id)
        .bind(filename)
        .bind(timestamp)
        .bind(version)
        .execute(&pool)
        .await
        .unwrap();
    }

    let store = SqliteStore::new(pool.clone())
        .await
        .expect("start-up does not fail on rows that share a filename");
    let mut kept: Vec<String> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id.to_string())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        ["alone", "newest", "p2"],
        "of each group, the row written last"
    );
    let reborn = store
        .insert_with_hook(
            Attachment::new(
                AttachmentId::new("old").unwrap(),
                "old-again.jpg",
                AttachmentState::QueuedUpload,
                40,
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        reborn.version, 8,
        "the counter starts above every version the old table held, removed rows included"
    );
    // and the migrated table now refuses a shared filename
    let mut twin = reborn.clone();
    twin.id = AttachmentId::new("twin").unwrap();
    let err = store.insert_with_hook(twin, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // the same store opens again without running anything twice
    drop(store);
    SqliteStore::new(pool.clone()).await.unwrap();
}

#[tokio::test]
async fn versions_stay_unique_with_two_writers_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    // two pools: as two processes on one database
    let first = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let second = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let write = |store: SqliteStore, prefix: &'static str| {
        tokio::spawn(async move {
            for n in 0..100 {
                let id = AttachmentId::new(format!("{prefix}-{n}")).unwrap();
                let row = Attachment::new(
                    id.clone(),
                    format!("{prefix}-{n}.jpg"),
                    AttachmentState::QueuedUpload,
                    n,
                );
                let written = store.insert_with_hook(row, None).await.unwrap();
                let mut synced = written.clone();
                synced.state = AttachmentState::Synced;
                let batch = vec![RowChange::Update {
                    expected_version: written.version,
                    row: synced,
                }];
                assert_eq!(store.apply(batch).await.unwrap(), [true]);
            }
        })
    };
    let (a, b) = tokio::join!(write(first.clone(), "a"), write(second.clone(), "b"));
    a.unwrap();
    b.unwrap();
    let versions: std::collections::BTreeSet<i64> = first
        .list(None)
        .await
        .unwrap()
        .iter()
        .map(|row| row.version)
        .collect();
    assert_eq!(versions.len(), 200, "no two rows share a version");
    assert_eq!(
        versions.last().copied(),
        Some(400),
        "400 writes, each its own version"
    );
}

#[tokio::test]
async fn a_second_store_on_the_same_table_is_refused_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    // separate pools, as two processes would have
    let first = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let second = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let lock_path = first.lock_path().expect("a file database has a lock file");
    assert_eq!(
        lock_path,
        dir.path().join("app.db.attachments_queue.lock"),
        "beside the database, named for it and the table"
    );

    let held = first
        .lock_exclusive()
        .unwrap()
        .expect("the first is granted");
    let err = second.lock_exclusive().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(
        message.contains("another attachment queue is using this database table"),
        "{message}"
    );
    assert!(
        message.contains(&lock_path.display().to_string()),
        "names the lock file: {message}"
    );

    // another table of the same database is another queue's own
    let avatars = SqliteStore::with_table(file_pool(&dir).await, "avatars")
        .await
        .unwrap();
    let other = avatars.lock_exclusive().unwrap();
    assert!(other.is_some(), "a different table does not conflict");

    drop(held);
    assert!(
        second.lock_exclusive().unwrap().is_some(),
        "granted once the first holder is gone"
    );
}

#[tokio::test]
async fn an_in_memory_database_is_locked_within_the_process() {
    // no file to lock, but two queues of this process may share one pool
    let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
    let store = SqliteStore::new(pool.clone()).await.unwrap();
    let twin = SqliteStore::new(pool).await.unwrap();
    let held = store
        .lock_exclusive()
        .unwrap()
        .expect("a lock in the process");
    let err = twin.lock_exclusive().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    drop(held);
    assert!(
        twin.lock_exclusive().unwrap().is_some(),
        "granted once released"
    );
    // another in-memory database is another table
    let other = SqliteStore::new(SqlitePool::connect("sqlite::memory:").await.unwrap())
        .await
        .unwrap();
    assert!(other.lock_exclusive().unwrap().is_some());
}

#[tokio::test]
async fn list_due_returns_the_due_rows_of_a_large_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let pool = file_pool(&dir).await;
    let store = SqliteStore::new(pool.clone()).await.unwrap();
    let now = 1_700_000_000_000_i64;
    // 100,000 rows waiting out a backoff, in every queued state
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO attachments_queue (id, filename, timestamp, state, next_attempt_at)
         SELECT 'wait-' || i, 'wait-' || i || '.jpg', i, i % 3, ?1 + i FROM n",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    let due = |id: &str, state, next_attempt_at| {
        let mut row = Attachment::new(
            AttachmentId::new(id).unwrap(),
            format!("{id}.jpg"),
            state,
            0,
        );
        row.next_attempt_at = next_attempt_at;
        RowChange::Insert(row)
    };
    store
        .apply(vec![
            due("due-up", AttachmentState::QueuedUpload, Some(now)),
            due("due-down", AttachmentState::QueuedDownload, None),
            due("due-delete", AttachmentState::QueuedDelete, Some(now - 1)),
        ])
        .await
        .unwrap();
    let mut ids: Vec<String> = store
        .list_due(now, true, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["due-delete", "due-down", "due-up"]);
    assert_eq!(store.list_due(now, false, 1000).await.unwrap().len(), 2);
    assert_eq!(store.next_attempt_at(true).await.unwrap(), Some(now - 1));
    assert_eq!(store.next_attempt_at(false).await.unwrap(), Some(now - 1));
}

#[tokio::test]
async fn a_write_that_would_share_a_filename_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let new = |id: &str, filename: &str| {
        Attachment::new(
            AttachmentId::new(id).unwrap(),
            filename,
            AttachmentState::QueuedUpload,
            1,
        )
    };
    store
        .insert_with_hook(new("a", "a.jpg"), None)
        .await
        .unwrap();
    let b = store
        .insert_with_hook(new("b", "b.jpg"), None)
        .await
        .unwrap();

    // through apply_with_hook: a clear error naming the filename and the row that has it
    let intruder = new("c", "a.jpg");
    let err = store
        .apply_with_hook(
            &intruder.id.clone(),
            Box::new(move |_| Ok(RowChange::Insert(intruder))),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("\"a.jpg\""), "{err}");
    assert!(err.to_string().contains("attachment a"), "{err}");

    // an update that would take another row's filename is not applied, in a batch too, and
    // the rest of the batch still is
    let mut renamed = b.clone();
    renamed.filename = "a.jpg".into();
    let mut synced = store
        .get(&AttachmentId::new("a").unwrap())
        .await
        .unwrap()
        .unwrap();
    let a_version = synced.version;
    synced.state = AttachmentState::Synced;
    let applied = store
        .apply(vec![
            RowChange::Update {
                expected_version: b.version,
                row: renamed,
            },
            RowChange::Update {
                expected_version: a_version,
                row: synced,
            },
        ])
        .await
        .unwrap();
    assert_eq!(applied, [false, true]);
    assert_eq!(
        store.get(&b.id).await.unwrap().unwrap(),
        b,
        "b is unchanged"
    );
    assert_eq!(store.count_by_state().await.unwrap().total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saves_at_the_same_time_are_each_written_or_refused_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(file_pool(&dir).await).await.unwrap();
    let new = |id: &str, filename: &str| {
        Attachment::new(
            AttachmentId::new(id).unwrap(),
            filename,
            AttachmentState::QueuedUpload,
            1,
        )
    };
    store
        .insert_with_hook(new("taken", "taken.jpg"), None)
        .await
        .unwrap();
    // saves at once (they meet waiting for the writer and go in shared statements): the
    // fresh ones written, each with a version of its own; a taken id, a taken filename and
    // two saves of one new id refused as they would be one at a time
    let save_at_once = |rows: Vec<Attachment>| {
        let store = store.clone();
        async move {
            let saves: Vec<_> = rows
                .into_iter()
                .map(|row| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let id = row.id.clone();
                        (id, store.insert_with_hook(row, None).await)
                    })
                })
                .collect();
            let mut results = Vec::new();
            for save in saves {
                results.push(save.await.unwrap());
            }
            results
        }
    };
    let mut first: Vec<Attachment> = (0..60)
        .map(|n| new(&format!("fresh-{n}"), &format!("fresh-{n}.jpg")))
        .collect();
    first.push(new("taken", "other.jpg"));
    first.push(new("intruder", "taken.jpg"));
    first.push(new("late", "fresh-7.jpg"));
    let second = vec![
        new("twice", "twice-1.jpg"),
        new("twice", "twice-2.jpg"),
        new("after", "after.jpg"),
    ];
    let mut results = save_at_once(first).await;
    results.extend(save_at_once(second).await);
    let mut versions = std::collections::BTreeSet::new();
    let mut twice_written = 0;
    let mut late_written = false;
    for (id, result) in results {
        match id.as_str() {
            "taken" | "intruder" => {
                let error = result.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::AlreadyExists, "{id}: {error}");
            }
            // "late" and "fresh-7" want one filename: one of them is refused
            "late" | "fresh-7" => match result {
                Ok(written) => {
                    late_written |= id.as_str() == "late";
                    versions.insert(written.version);
                }
                Err(error) => assert_eq!(error.kind(), ErrorKind::AlreadyExists),
            },
            "twice" => match result {
                Ok(written) => {
                    twice_written += 1;
                    versions.insert(written.version);
                }
                Err(error) => assert_eq!(error.kind(), ErrorKind::AlreadyExists),
            },
            _ => {
                let written = result.unwrap();
                // what the save returned is what the table holds
                assert_eq!(store.get(&id).await.unwrap(), Some(written.clone()));
                versions.insert(written.version);
            }
        }
    }
    assert_eq!(twice_written, 1, "one save of an id wins");
    // 60 fresh (or 59 and "late"), "twice", "after"
    assert_eq!(
        versions.len(),
        62,
        "every written row has a version of its own"
    );
    let rows = store.list(None).await.unwrap();
    assert_eq!(rows.len(), 63);
    let holder = rows
        .iter()
        .find(|row| row.filename == "fresh-7.jpg")
        .unwrap();
    assert_eq!(holder.id.as_str() == "late", late_written);
    let taken = store
        .get(&AttachmentId::new("taken").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        taken.filename, "taken.jpg",
        "the refused save changed nothing"
    );
}
