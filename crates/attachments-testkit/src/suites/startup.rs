//! The promises start-up verification relies on, one function each: the store reads a page of
//! only the rows start-up may change and finds the owners of staged files by path; the local
//! storage checks many files at once. [`store_suite`](super::store_suite) and
//! [`local_storage_suite_with`](super::local_storage_suite_with) run them with the others.
//!
//! ```no_run
//! # async fn demo(store: impl attachments_core::AttachmentStore) {
//! attachments_testkit::startup::list_page_to_verify_skips_rows_start_up_cannot_change(&store).await;
//! # }
//! ```

use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, ErrorKind, LocalStorage, RowChange,
};

use super::{HOSTILE_PATHS, unique_prefix};
use crate::data::patterned_stream;

use AttachmentState::*;

fn row(id: &str, state: AttachmentState) -> Attachment {
    Attachment::new(
        AttachmentId::new(id).unwrap(),
        format!("{id}.jpg"),
        state,
        0,
    )
}

fn ids(rows: &[Attachment]) -> Vec<&str> {
    rows.iter().map(|row| row.id.as_str()).collect()
}

async fn fill<S: AttachmentStore>(store: &S, promise: &str, rows: Vec<Attachment>) {
    assert_eq!(
        store.count_by_state().await.unwrap().total(),
        0,
        "{promise} needs an empty table"
    );
    let applied = store
        .apply(rows.into_iter().map(RowChange::Insert).collect())
        .await
        .unwrap();
    assert!(applied.iter().all(|new| *new), "test rows are new");
}

/// `list_page` reads the table in id order, `limit` rows after `after`, to its end.
pub async fn list_page_reads_the_table_in_id_order<S: AttachmentStore>(store: &S) {
    let names = ["b", "a", "d", "c", "e"];
    let rows = names.iter().map(|id| row(id, Archived)).collect();
    fill(store, "list_page_reads_the_table_in_id_order", rows).await;
    let mut pages = Vec::new();
    let mut after: Option<AttachmentId> = None;
    loop {
        let page = store.list_page(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2, "a page holds at most `limit` rows");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        pages.push(ids(&page).join(""));
    }
    assert_eq!(pages, ["ab", "cd", "e"], "pages in id order, none skipped");
    store.clear().await.unwrap();
}

/// `list_page_to_verify` returns, in id order and a page at a time, exactly the rows that
/// point at a local file or should (`Synced`, `QueuedUpload`), and the queued rows waiting for
/// a retry time after the one given; rows waiting for a download or a delete, and archived
/// rows without a file, are skipped.
pub async fn list_page_to_verify_skips_rows_start_up_cannot_change<S: AttachmentStore>(store: &S) {
    let mut rows = Vec::new();
    // skipped: nothing of theirs is on this device, no retry time beyond the limit
    rows.push(row("a-download", QueuedDownload));
    let mut soon = row("b-download-soon", QueuedDownload);
    soon.next_attempt_at = Some(1_000);
    rows.push(soon);
    let mut delete = row("c-delete", QueuedDelete);
    delete.has_synced = true;
    rows.push(delete);
    rows.push(row("d-archived-evicted", Archived));
    // returned
    let mut far = row("e-download-far", QueuedDownload);
    far.next_attempt_at = Some(1_001);
    rows.push(far);
    let mut upload = row("f-upload", QueuedUpload);
    upload.local_uri = Some("f-upload.jpg".into());
    rows.push(upload);
    let mut synced = row("g-synced", Synced);
    synced.local_uri = Some("g-synced.jpg".into());
    rows.push(synced);
    rows.push(row("h-synced-without-file", Synced));
    let mut cached = row("i-archived-cached", Archived);
    cached.local_uri = Some("i-archived-cached.jpg".into());
    rows.push(cached);
    let mut deleting = row("j-delete-with-file", QueuedDelete);
    deleting.local_uri = Some("j-delete-with-file.jpg".into());
    rows.push(deleting);
    let promise = "list_page_to_verify_skips_rows_start_up_cannot_change";
    fill(store, promise, rows).await;
    let all = store.list_page_to_verify(None, 100, 1_000).await.unwrap();
    let expected = [
        "e-download-far",
        "f-upload",
        "g-synced",
        "h-synced-without-file",
        "i-archived-cached",
        "j-delete-with-file",
    ];
    assert_eq!(ids(&all), expected, "only the rows start-up may change");
    let first = store.list_page_to_verify(None, 2, 1_000).await.unwrap();
    assert_eq!(ids(&first), expected[..2], "at most `limit`, in id order");
    let after = first.last().map(|row| row.id.clone());
    let next = store
        .list_page_to_verify(after.as_ref(), 3, 1_000)
        .await
        .unwrap();
    assert_eq!(
        ids(&next),
        expected[2..5],
        "the next page starts after `after`"
    );
    let later = store.list_page_to_verify(None, 100, 1_001).await.unwrap();
    assert!(
        !ids(&later).contains(&"e-download-far"),
        "a retry time at the limit is not beyond it"
    );
    store.clear().await.unwrap();
}

/// `list_by_local_uri` returns the rows whose `local_uri` is one of the paths, whatever their
/// state, and no row for a path nobody points at (a row's `filename` alone does not count).
pub async fn list_by_local_uri_finds_the_owners_of_paths<S: AttachmentStore>(store: &S) {
    let mut upload = row("a", QueuedUpload);
    upload.local_uri = Some("photos/a.jpg".into());
    let mut synced = row("b", Synced);
    synced.local_uri = Some("b.jpg".into());
    let mut deleting = row("c", QueuedDelete);
    deleting.local_uri = Some("c.jpg".into());
    // its filename is d.jpg, but it has no local file
    let downloading = row("d", QueuedDownload);
    let promise = "list_by_local_uri_finds_the_owners_of_paths";
    fill(store, promise, vec![upload, synced, deleting, downloading]).await;
    let paths: Vec<String> = ["photos/a.jpg", "c.jpg", "d.jpg", "nobody.jpg"]
        .map(String::from)
        .to_vec();
    let mut found = store.list_by_local_uri(&paths).await.unwrap();
    found.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(ids(&found), ["a", "c"], "the rows pointing at those paths");
    assert!(store.list_by_local_uri(&[]).await.unwrap().is_empty());
    store.clear().await.unwrap();
}

/// `exists_many` answers each path in order as `exists` would: present, missing, a directory
/// (not a file), and a hostile path refused on its own without spoiling the other answers.
pub async fn exists_many_answers_each_path_in_order(storage: &dyn LocalStorage) {
    let prefix = unique_prefix("local");
    let present = format!("{prefix}/nested/present.bin");
    storage
        .write(&present, patterned_stream(1, 10))
        .await
        .unwrap();
    let paths = vec![
        format!("{prefix}/missing.bin"),
        present.clone(),
        format!("{prefix}/nested"),
        HOSTILE_PATHS[0].to_owned(),
        present.clone(),
    ];
    let answers = storage.exists_many(&paths).await;
    assert_eq!(answers.len(), paths.len(), "one answer per path");
    let plain: Vec<Option<bool>> = answers.iter().map(|a| a.as_ref().ok().copied()).collect();
    assert_eq!(
        plain,
        [Some(false), Some(true), Some(false), None, Some(true)],
        "each path answered in order: {answers:?}"
    );
    let refused = answers[3].as_ref().expect_err("a hostile path is refused");
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
    assert!(storage.exists_many(&[]).await.is_empty());
    storage.delete(&present).await.unwrap();
}
