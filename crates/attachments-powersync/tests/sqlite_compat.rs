//! One table, two stores: a table `SqliteStore` (sqlx) created and filled is adopted by
//! `PowerSyncStore` as it is, and the two stores' queues exclude each other through one lock
//! file. This is how an app moves from the sqlx store to PowerSync without losing a row.

use attachments_core::{Attachment, AttachmentId, AttachmentState, AttachmentStore, ErrorKind};
use attachments_powersync::{PowerSyncStore, open_offline};
use attachments_sqlite::SqliteStore;
use powersync::schema::Schema;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

async fn sqlite_store(path: &std::path::Path) -> SqliteStore {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    SqliteStore::new(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_made_by_the_sqlx_store_is_adopted_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let before = sqlite_store(&path).await;
    let id = AttachmentId::new("photo-1").unwrap();
    let row = Attachment::new(id.clone(), "photo-1.jpg", AttachmentState::QueuedUpload, 1);
    let written = before.insert_with_hook(row, None).await.unwrap();
    before.pool().close().await;

    let db = open_offline(&path, Schema::default()).unwrap();
    let store = PowerSyncStore::new(db.clone()).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(written.clone()));

    // every migration counts as applied, none ran twice, and the version counter goes on
    let reader = db.reader().await.unwrap();
    let versions: Vec<i64> = reader
        .prepare(&format!(
            "SELECT version FROM {} ORDER BY version",
            store.migrations_table_name()
        ))
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(reader);
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let other = Attachment::new(
        AttachmentId::new("photo-2").unwrap(),
        "photo-2.jpg",
        AttachmentState::QueuedUpload,
        2,
    );
    let next = store.insert_with_hook(other, None).await.unwrap();
    assert!(next.version > written.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_stores_lock_one_table_with_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    // sqlx first: the PowerSync store adopts its table (the other way round is not supported)
    let sqlx = sqlite_store(&path).await;
    let db = open_offline(&path, Schema::default()).unwrap();
    let powersync = PowerSyncStore::new(db).await.unwrap();
    assert_eq!(powersync.lock_path(), sqlx.lock_path());

    let held = powersync
        .lock_exclusive()
        .unwrap()
        .expect("a file database is locked");
    let refused = sqlx.lock_exclusive().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InUse);
    drop(held);
    assert!(sqlx.lock_exclusive().unwrap().is_some());
}
