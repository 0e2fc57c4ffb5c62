//! PowerSync's status, read as "connected" only when uploads can succeed.

use std::time::Duration;

use async_trait::async_trait;
use attachments_powersync::{is_connected, open_offline};
use futures_util::StreamExt;
use powersync::error::PowerSyncError;
use powersync::schema::Schema;
use powersync::{BackendConnector, PowerSyncCredentials, SyncOptions};

/// A backend whose PowerSync service is unreachable ([`open_offline`]'s client fails every
/// request).
struct UnreachableBackend;

#[async_trait]
impl BackendConnector for UnreachableBackend {
    async fn fetch_credentials(&self) -> Result<PowerSyncCredentials, PowerSyncError> {
        Ok(PowerSyncCredentials {
            endpoint: "http://powersync.invalid".to_owned(),
            token: "token".to_owned(),
        })
    }

    async fn upload_data(&self) -> Result<(), PowerSyncError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connection_attempt_is_not_connected() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_offline(dir.path().join("app.db"), Schema::default()).unwrap();
    let tasks = db.async_tasks().spawn_with_tokio();
    let mut statuses = std::pin::pin!(db.watch_status());
    let mut options = SyncOptions::new(UnreachableBackend);
    // one attempt is enough to see; no retry during the test
    options.with_retry_delay(Duration::from_secs(3600));
    db.connect(options).await;

    let failed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let status = statuses.next().await.expect("the status stream goes on");
            if status.download_error().is_some() {
                return status;
            }
        }
    })
    .await
    .expect("the failed attempt is reported");
    assert!(
        !is_connected(&failed),
        "a failed request is not a connection, whatever is_connected() says"
    );
    db.disconnect().await;
    for task in tasks {
        task.abort();
    }
}
