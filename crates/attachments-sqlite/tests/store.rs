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
