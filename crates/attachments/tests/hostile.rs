//! Hostile input the queue must survive without losing or leaking anything: rows written by
//! something else (unknown state, invalid id, a `local_uri` outside the root) and a remote that
//! answers with a truncated or oversized body.

mod common;

use std::time::Duration;

use attachments::{AttachmentState, ErrorKind, RetryPolicy, SaveFile};
use attachments_testkit::patterned_stream;
use common::Device;

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len)).file_extension("jpg")
}

#[tokio::test]
async fn corrupt_rows_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build().unwrap();
    for insert in [
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('bad-state', 'b.jpg', 0, 9)",
        "INSERT INTO attachments_queue (id, filename, timestamp, state) VALUES ('../evil', 'e.jpg', 0, 1)",
    ] {
        sqlx::query(insert).execute(&device.pool).await.unwrap();
    }
    let saved = queue.save_file(photo(1, 100)).await.unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.uploaded, 1, "the good attachment still syncs");
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::Synced
    );
    let err = queue
        .get(&attachments::AttachmentId::new("bad-state").unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "reading the bad row says why"
    );
}

#[tokio::test]
async fn a_local_uri_outside_the_root_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, b"not yours").unwrap();
    let queue = device.builder().await.build().unwrap(); // creates the table
    sqlx::query(
        "INSERT INTO attachments_queue (id, filename, local_uri, timestamp, state, has_synced)
         VALUES ('planted', 'planted.txt', '../../outside.txt', 0, 1, 0)",
    )
    .execute(&device.pool)
    .await
    .unwrap();
    let summary = queue.sync_now().await.unwrap();
    assert_eq!(summary.uploaded, 0, "nothing outside the root is uploaded");
    let row = queue
        .get(&attachments::AttachmentId::new("planted").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.state,
        AttachmentState::Archived,
        "treated as a missing file"
    );
    assert_eq!(row.local_uri, None);
    assert!(row.last_error.unwrap().contains("missing"));
    assert_eq!(std::fs::read(&outside).unwrap(), b"not yours", "untouched");
    assert!(!dir.path().join("remote").join("planted.txt").exists());
}

#[tokio::test]
async fn truncated_and_oversized_downloads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = dir.path().join("remote");
    let device = Device::new(&dir.path().join("a"), &remote_dir).await;
    let immediate = RetryPolicy {
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    };
    let queue = device
        .builder()
        .await
        .retry(immediate.clone())
        .build()
        .unwrap();
    let saved = queue.save_file(photo(1, 10_000)).await.unwrap();
    queue.sync_now().await.unwrap();
    queue.close().await;
    let good = std::fs::read(remote_dir.join(&saved.filename)).unwrap();

    // the local copy vanishes, and the remote answers with a cut or padded body
    std::fs::remove_file(device.local_dir().join(&saved.filename)).unwrap();
    let restarted = device.builder().await.retry(immediate).build().unwrap();
    let mut events = restarted.subscribe();
    for bad in [
        good[..5_000].to_vec(),
        [good.clone(), b"extra".to_vec()].concat(),
    ] {
        std::fs::write(remote_dir.join(&saved.filename), &bad).unwrap();
        let summary = restarted.sync_now().await.unwrap();
        assert_eq!(
            (summary.downloaded, summary.retrying),
            (0, 1),
            "refused, to be retried"
        );
        assert!(
            !device.local_dir().join(&saved.filename).exists(),
            "a body that fails the check is not kept"
        );
        let event = common::wait_for_event(&mut events, "the error", |e| {
            matches!(e, attachments::AttachmentEvent::Error { .. })
        })
        .await;
        let attachments::AttachmentEvent::Error { error, .. } = event else {
            unreachable!()
        };
        assert_eq!(error.kind(), ErrorKind::Corrupt);
    }

    // the real object comes back: the retry downloads it
    std::fs::write(remote_dir.join(&saved.filename), &good).unwrap();
    assert_eq!(restarted.sync_now().await.unwrap().downloaded, 1);
    assert_eq!(
        std::fs::read(device.local_dir().join(&saved.filename)).unwrap(),
        good
    );
}
