//! Settings are checked once, when the queue is built, and each lives in one place.

mod common;

use attachments::{ErrorKind, QueueConfig};
use common::Device;

#[tokio::test]
async fn a_setting_that_cannot_work_is_refused_when_the_queue_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    // through `.config()` as well as through the builder's own setters
    let mut config = QueueConfig::default();
    config.max_concurrency = 0;
    let error = device
        .builder()
        .await
        .config(config)
        .build()
        .expect_err("a queue that could never start a transfer is refused");
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("max_concurrency"), "{error}");

    let error = device
        .builder()
        .await
        .transfer_timeout(std::time::Duration::ZERO)
        .build()
        .expect_err("a zero timeout would fail every transfer");
    assert!(error.to_string().contains("transfer_timeout"), "{error}");

    // a refused build holds no lock: a good one goes through right after
    device.builder().await.build().unwrap();
}

#[tokio::test]
async fn the_download_toggle_shows_its_current_value() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device
        .builder()
        .await
        .download_attachments(true)
        .build()
        .unwrap();
    queue.set_download_attachments(false);
    let shown = format!("{queue:?}");
    assert!(shown.contains("download_attachments: false"), "{shown}");
}
