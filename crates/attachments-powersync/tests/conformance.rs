//! `PowerSyncStore` on a real PowerSync database file (offline): the test kit's store suite.

use attachments_powersync::{PowerSyncStore, open_offline};
use powersync::schema::Schema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powersync_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_offline(dir.path().join("app.db"), Schema::default()).unwrap();
    let store = PowerSyncStore::new(db).await.unwrap();
    attachments_testkit::store_suite(&store).await;
}

#[tokio::test]
async fn the_store_works_on_a_current_thread_runtime() {
    // leases run on blocking threads, so one runtime thread is enough
    let dir = tempfile::tempdir().unwrap();
    let db = open_offline(dir.path().join("app.db"), Schema::default()).unwrap();
    let store = PowerSyncStore::new(db).await.unwrap();
    attachments_testkit::store_suite(&store).await;
}
