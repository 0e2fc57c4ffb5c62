//! Update hooks run in PowerSync's write transaction: the hook's change to a synced table, the
//! attachment row and PowerSync's upload queue (`ps_crud`) commit or roll back together.

mod common;

use attachments_core::{AttachmentState, BoxError, ErrorKind, SaveFile};
use attachments_testkit::patterned_stream;
use common::{App, set_photo_of_todo_1};

fn photo(seed: u64, len: u64) -> SaveFile {
    SaveFile::new(patterned_stream(seed, len)).file_extension("jpg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_photo_and_its_reference_reach_the_upload_queue_together() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let before = app.pending_uploads().await;
    let queue = app.builder().await.build().unwrap();

    let saved = queue
        .save_file_with_hook(photo(1, 1000), set_photo_of_todo_1)
        .await
        .unwrap();

    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedUpload
    );
    assert_eq!(
        app.photo_of("todo-1").await.as_deref(),
        Some(saved.id.as_str())
    );
    let uploads = app.pending_uploads().await;
    assert_eq!(
        uploads[before.len()..],
        [format!(
            r#"PATCH todos todo-1 {{"photo_id":"{}"}}"#,
            saved.id
        )],
        "the reference is queued for the backend, and nothing of the attachment table is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_rolls_back_the_row_the_reference_and_the_upload_queue() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let before = app.pending_uploads().await;
    let queue = app.builder().await.build().unwrap();

    let error = queue
        .save_file_with_hook(photo(1, 1000), |connection, attachment| {
            Box::pin(async move {
                connection.execute(
                    "UPDATE todos SET photo_id = ?1 WHERE id = 'todo-1'",
                    [attachment.id.as_str()],
                )?;
                Err::<(), BoxError>("the app changed its mind".into())
            })
        })
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Hook, "{error}");
    assert_eq!(queue.status().await.unwrap().total(), 0, "no row");
    assert!(app.local_files().is_empty(), "no file");
    assert_eq!(
        app.photo_of("todo-1").await,
        None,
        "the app's write rolled back"
    );
    assert_eq!(app.pending_uploads().await, before, "nothing new to upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_clears_the_reference_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let queue = app.builder().await.build().unwrap();
    let saved = queue
        .save_file_with_hook(photo(1, 1000), set_photo_of_todo_1)
        .await
        .unwrap();
    let before = app.pending_uploads().await;

    queue
        .delete_file_with_hook(&saved.id, |connection, _| {
            Box::pin(async move {
                connection.execute("UPDATE todos SET photo_id = NULL WHERE id = 'todo-1'", [])?;
                Ok(())
            })
        })
        .await
        .unwrap();

    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedDelete
    );
    assert_eq!(app.photo_of("todo-1").await, None);
    assert_eq!(
        app.pending_uploads().await[before.len()..],
        [r#"PATCH todos todo-1 {"photo_id":null}"#.to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delete_hook_keeps_the_row_and_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let queue = app.builder().await.build().unwrap();
    let saved = queue
        .save_file_with_hook(photo(1, 1000), set_photo_of_todo_1)
        .await
        .unwrap();
    let before = app.pending_uploads().await;

    let error = queue
        .delete_file_with_hook(&saved.id, |connection, _| {
            Box::pin(async move {
                connection.execute("UPDATE todos SET photo_id = NULL WHERE id = 'todo-1'", [])?;
                Err::<(), BoxError>("not now".into())
            })
        })
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Hook, "{error}");
    assert_eq!(
        queue.get(&saved.id).await.unwrap().unwrap().state,
        AttachmentState::QueuedUpload
    );
    assert_eq!(
        app.photo_of("todo-1").await.as_deref(),
        Some(saved.id.as_str())
    );
    assert_eq!(app.pending_uploads().await, before);
}

#[tokio::test]
async fn a_hook_runs_on_a_current_thread_runtime() {
    // the transaction runs on a blocking thread that drives the hook: one runtime thread is
    // enough, and it is never blocked by SQLite
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&dir.path().join("a"), &dir.path().join("remote"));
    app.add_todo("todo-1", None).await;
    let queue = app.builder().await.build().unwrap();
    let saved = queue
        .save_file_with_hook(photo(1, 1000), set_photo_of_todo_1)
        .await
        .unwrap();
    assert_eq!(
        app.photo_of("todo-1").await.as_deref(),
        Some(saved.id.as_str())
    );
}
