//! References from PowerSync's table-update notifications: readings at every commit through
//! PowerSync, none lost between readings, and the queue acting on them; start, stop and restart
//! on one PowerSync database.

mod common;

use std::time::Instant;

use attachments_core::{AttachmentId, SaveFile, StateCounts};
use attachments_powersync::watch_referenced_attachments;
use attachments_testkit::patterned_stream;
use common::{
    App, PATIENCE, REFERENCED_QUERY, set_photo_of_todo_1, wait_for_counts, wait_for_pass,
};
use futures_util::StreamExt;

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len)).file_extension("jpg")
}

async fn next_reading(
    readings: &mut (
             impl futures_util::Stream<
        Item = attachments_core::Result<attachments_core::ReferencedAttachments>,
    > + Unpin
         ),
) -> attachments_core::ReferencedAttachments {
    tokio::time::timeout(PATIENCE, readings.next())
        .await
        .expect("a reading within the patience bound")
        .expect("the stream goes on")
        .expect("the reading succeeds")
}

fn ids(reading: &attachments_core::ReferencedAttachments) -> Vec<&str> {
    reading.items.iter().map(|item| item.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_comes_at_once_then_after_every_commit_to_the_watched_view() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    let mut readings = watch_referenced_attachments(app.db.clone(), REFERENCED_QUERY);
    assert!(next_reading(&mut readings).await.items.is_empty());

    let before_write = Instant::now();
    let photo_id = AttachmentId::new("p1").unwrap();
    app.add_todo("todo-1", Some(&photo_id)).await;
    let reading = next_reading(&mut readings).await;
    assert_eq!(ids(&reading), ["p1"]);
    assert_eq!(reading.items[0].file_extension.as_deref(), Some("jpg"));
    assert!(
        reading.read_at >= before_write,
        "the reading began after the commit it reflects"
    );

    app.set_photo("todo-1", None).await;
    assert!(next_reading(&mut readings).await.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_made_while_a_reading_waits_are_merged_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    let mut readings = watch_referenced_attachments(app.db.clone(), REFERENCED_QUERY);
    assert!(next_reading(&mut readings).await.items.is_empty());

    // three commits before the consumer asks again: the next reading shows where they ended
    for (todo, photo) in [("t1", "p1"), ("t2", "p2"), ("t3", "p3")] {
        app.add_todo(todo, Some(&AttachmentId::new(photo).unwrap()))
            .await;
    }
    app.set_photo("t2", None).await;
    assert_eq!(ids(&next_reading(&mut readings).await), ["p1", "p3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_added_and_removed_between_readings_still_ends_archived() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let queue = app.watching_builder().await.build().unwrap();
    queue.start_sync().await.unwrap();

    // saved with a reference, then unreferenced at once: whichever readings the watcher
    // took, the photo is uploaded (it never synced) and then archived (nothing references it)
    let saved = queue
        .save_file_with_hook(photo(1, 1000), set_photo_of_todo_1)
        .await
        .unwrap();
    app.set_photo("todo-1", None).await;

    wait_for_counts(&queue, "the unreferenced photo archived", |c| {
        c.archived == 1 && c.total() == 1
    })
    .await;
    assert!(
        app.remote_dir.join(&saved.filename).exists(),
        "it was uploaded first"
    );
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_synced_from_another_device_is_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote");
    let phone = App::new(&dir.path().join("phone"), &remote);
    phone.add_todo("todo-1", None).await;
    let phone_queue = phone.builder().await.build().unwrap();
    let saved = phone_queue
        .save_file_with_hook(photo(7, 5000), set_photo_of_todo_1)
        .await
        .unwrap();
    phone_queue.sync_now().await.unwrap();

    // the tablet receives the todo through PowerSync (here: written on its database)
    let tablet = App::new(&dir.path().join("tablet"), &remote);
    let tablet_queue = tablet.watching_builder().await.build().unwrap();
    let mut events = tablet_queue.subscribe();
    tablet_queue.start_sync().await.unwrap();
    tablet.add_todo("todo-1", Some(&saved.id)).await;

    // a pass ends once its downloaded files are in place
    wait_for_pass(&tablet_queue, &mut events, "the photo downloaded", |c| {
        c.synced == 1 && c.total() == 1
    })
    .await;
    let mut contents = tablet_queue.read_file(&saved.id).await.unwrap();
    let mut local = Vec::new();
    while let Some(chunk) = contents.next().await {
        local.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(local, attachments_testkit::patterned_bytes(7, 5000));
    tablet_queue.close().await;
    phone_queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_starts_stops_and_restarts_on_one_powersync_database() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote");
    let phone = App::new(&dir.path().join("phone"), &remote);
    let phone_queue = phone.builder().await.build().unwrap();
    let first = phone_queue.save_file(photo(1, 100)).await.unwrap();
    let second = phone_queue.save_file(photo(2, 100)).await.unwrap();
    phone_queue.sync_now().await.unwrap();

    let app = App::new(&dir.path().join("tablet"), &remote);
    let queue = app.watching_builder().await.build().unwrap();
    queue.start_sync().await.unwrap();
    app.add_todo("t1", Some(&first.id)).await;
    wait_for_counts(&queue, "the first photo", |c| c.synced == 1).await;

    // stopped: a new reference waits; started again: it is handled
    queue.stop_sync().await;
    app.add_todo("t2", Some(&second.id)).await;
    queue.start_sync().await.unwrap();
    wait_for_counts(&queue, "the second photo", |c| c.synced == 2).await;

    // closed, and a new queue on the same database (the table lock is free again) sees a
    // reference removed meanwhile
    queue.close().await;
    app.set_photo("t1", None).await;
    let restarted = app.watching_builder().await.build().unwrap();
    restarted.start_sync().await.unwrap();
    let counts = wait_for_counts(&restarted, "the unreferenced photo archived", |c| {
        c.archived == 1
    })
    .await;
    assert_eq!(
        counts,
        StateCounts {
            synced: 1,
            archived: 1,
            ..StateCounts::default()
        }
    );
    restarted.close().await;
    phone_queue.close().await;
}
