//! After the kills: let each device's queue drain, then hold the table, the local files and
//! the remote against the author's journal.
//!
//! - `lost`: a journaled save that is not `Synced` with its bytes on the remote, a journaled
//!   delete whose row or object remains, a referenced attachment the reader does not hold, an
//!   app file (not the queue's) that disappeared;
//! - `corrupt`: bytes (a `Synced` row's local file, hashed here, or the remote object) that
//!   differ from every life the journal knows for the id;
//! - `stuck`: a row still queued, or archived by a failure;
//! - `leftovers`: a temp file, a local file no row references, a remote object no row or
//!   journal entry accounts for, an unfinished multipart upload, a `Synced` row nothing
//!   references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use attachments::{
    Attachment, AttachmentEvent, AttachmentId, AttachmentState, AttachmentStore, BoxError,
    ErrorKind, RemoteStorage, SqliteAttachmentQueue, WatchedAttachmentItem,
};

use crate::content::{file_checksum, stream_checksum};
use crate::device::{APP_FILES, OpenRemote, Remote, app_database, files_dir, open_queue};
use crate::journal::{Model, Outcome};

/// A drain gives up when no count changed for this long: a row that cannot converge must be
/// reported, not waited on forever.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Tally {
    lost: u64,
    corrupt: u64,
    stuck: u64,
    leftovers: u64,
    /// The reader holds an earlier life of a reused id: it cannot know the bytes changed
    /// when it never saw the id unreferenced (it was killed meanwhile). Reported, not counted.
    stale: u64,
    /// Remote objects of attachments a logout forgot: `clear_queue` leaves server data alone.
    forgotten_objects: u64,
}

/// Passes until nothing is queued, or until nothing has changed for `NO_PROGRESS_LIMIT`.
/// The references as the app's table holds them now, pushed to `queue` as a reading taken now:
/// the drain then judges every row against the final references, not against whatever reading
/// the watcher happened to deliver before the last kill.
async fn settle_references(
    queue: &SqliteAttachmentQueue,
    references: &sqlx::SqlitePool,
) -> Result<(), BoxError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM items")
        .fetch_all(references)
        .await?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        items.push(WatchedAttachmentItem::new(AttachmentId::new(id)?).with_file_extension("bin"));
    }
    queue.set_referenced(items).await?;
    Ok(())
}

async fn drain(queue: &SqliteAttachmentQueue, device: &str) -> Result<(), BoxError> {
    let mut events = queue.subscribe();
    queue.trigger_sync();
    let mut last = queue.status().await?;
    let mut changed_at = Instant::now();
    loop {
        let counts = queue.status().await?;
        if counts.queued() == 0 {
            return Ok(());
        }
        if counts != last {
            last = counts;
            changed_at = Instant::now();
        } else if changed_at.elapsed() > NO_PROGRESS_LIMIT {
            eprintln!("{device}: no progress for {NO_PROGRESS_LIMIT:?}, still {counts:?}");
            return Ok(());
        }
        // the next pass (the worker wakes for backed-off rows by itself); the timeout only
        // bounds a wait in which no pass runs at all
        loop {
            match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
                Ok(Ok(AttachmentEvent::PassCompleted(_))) | Err(_) => break,
                Ok(Ok(_)) => {}
                // fell behind: a pass may have ended meanwhile, look at the counts again
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                Ok(Err(closed)) => return Err(closed.into()),
            }
        }
    }
}

/// Every file below `root`, relative, with `/` separators; symlinks are not followed.
fn walk(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(_) => found.push(path.to_string_lossy().replace('\\', "/")),
                Err(_) => {}
            }
        }
    }
    found.sort();
    found
}

fn is_temp(path: &str) -> bool {
    path.split('/')
        .any(|part| part == attachments::fs::TEMP_DIR)
}

/// The file a local storage locks so that one queue at a time uses its root: it stays, by
/// design, and holds no data.
fn is_root_lock(path: &str) -> bool {
    path == format!("{}/lock", attachments::fs::TEMP_DIR)
}

async fn remote_checksum(
    remote: &dyn RemoteStorage,
    filename: &str,
) -> Result<Option<String>, BoxError> {
    let probe = Attachment::new(
        AttachmentId::new(filename.trim_end_matches(".bin"))?,
        filename.to_owned(),
        AttachmentState::Synced,
        0,
    );
    match remote.download(&probe).await {
        Ok(stream) => Ok(Some(stream_checksum(stream).await?)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn local_checksum(dir: &Path, row: &Attachment) -> Option<String> {
    let uri = row.local_uri.as_deref()?;
    file_checksum(&files_dir(dir).join(uri)).ok()
}

/// What the remote holds: object names (relative to the prefix), and the number of
/// unfinished multipart uploads.
async fn list_remote(remote: &OpenRemote) -> Result<(Vec<String>, u64), BoxError> {
    match remote {
        OpenRemote::Directory(dir, _) => Ok((walk(dir), 0)),
        OpenRemote::S3 { prefix, storage } => {
            let client = storage.client();
            let mut names = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(storage.bucket())
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for object in page?.contents() {
                    if let Some(key) = object.key() {
                        names.push(key.strip_prefix(prefix.as_str()).unwrap_or(key).to_owned());
                    }
                }
            }
            let mut unfinished = 0;
            let mut key_marker: Option<String> = None;
            let mut upload_marker: Option<String> = None;
            loop {
                let page = client
                    .list_multipart_uploads()
                    .bucket(storage.bucket())
                    .prefix(prefix)
                    .set_key_marker(key_marker.clone())
                    .set_upload_id_marker(upload_marker.clone())
                    .send()
                    .await?;
                for upload in page.uploads() {
                    eprintln!(
                        "unfinished multipart upload of {} ({})",
                        upload.key().unwrap_or("?"),
                        upload.upload_id().unwrap_or("?")
                    );
                    unfinished += 1;
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_owned);
                upload_marker = page.next_upload_id_marker().map(str::to_owned);
            }
            Ok((names, unfinished))
        }
    }
}

/// Local files: every row's file is there, no other file but the app's own, no temp file.
fn check_local_files(dir: &Path, device: &str, rows: &[Attachment], tally: &mut Tally) {
    let root = files_dir(dir);
    let referenced: BTreeSet<&str> = rows.iter().filter_map(|r| r.local_uri.as_deref()).collect();
    for (path, contents) in APP_FILES {
        if std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(contents) {
            eprintln!("{device}: the app's own file {path} was deleted or changed");
            tally.lost += 1;
        }
    }
    for file in walk(&root) {
        if is_root_lock(&file) {
            continue;
        }
        if is_temp(&file) {
            eprintln!("{device}: temp file {file} left");
            tally.leftovers += 1;
        } else if !referenced.contains(file.as_str())
            && !APP_FILES.iter().any(|(path, _)| *path == file)
        {
            eprintln!("{device}: local file {file} that no row references");
            tally.leftovers += 1;
        }
    }
}

fn check_stuck(device: &str, rows: &[Attachment], tally: &mut Tally) {
    for row in rows {
        if row.state.is_queued() || row.failed_state.is_some() {
            eprintln!(
                "{device}: {} stuck in {} (failed in {:?}, attempts {}, {:?})",
                row.id, row.state, row.failed_state, row.attempts, row.last_error
            );
            tally.stuck += 1;
        }
    }
}

/// The author's rows and the remote against the journal. Returns the ids the author holds
/// correctly (`Synced`, its bytes everywhere), with their checksum.
async fn check_author(
    dir: &Path,
    model: &Model,
    rows: &[Attachment],
    remote: &OpenRemote,
    tally: &mut Tally,
) -> Result<BTreeMap<String, String>, BoxError> {
    let storage = remote.storage();
    let by_id: BTreeMap<&str, &Attachment> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut held = BTreeMap::new();
    for (id, expected) in &model.ids {
        let row = by_id.get(id.as_str()).copied();
        if row.is_some_and(|r| r.state.is_queued() || r.failed_state.is_some()) {
            continue; // counted as stuck
        }
        let filename = format!("{id}.bin");
        let on_remote = remote_checksum(storage.as_ref(), &filename).await?;
        let local = row.and_then(|r| local_checksum(dir, r));
        let synced = row.filter(|r| r.state == AttachmentState::Synced);
        let mut wanted = Vec::new();
        let mut fits = false;
        for outcome in &expected.allowed {
            match outcome {
                Outcome::Gone => fits |= row.is_none() && on_remote.is_none(),
                Outcome::Forgotten => fits |= synced.is_none(),
                Outcome::Synced(content) => {
                    let checksum = content.checksum();
                    if synced.is_some()
                        && on_remote.as_ref() == Some(&checksum)
                        && local.as_ref() == Some(&checksum)
                    {
                        fits = true;
                        held.insert(id.clone(), checksum.clone());
                    }
                    wanted.push(checksum);
                }
            }
        }
        if fits {
            continue;
        }
        let describe = format!(
            "row {:?}, remote {}, local {}; journal allows {:?}",
            row.map(|r| r.state),
            on_remote.as_deref().unwrap_or("absent"),
            local.as_deref().unwrap_or("absent"),
            expected.allowed
        );
        let wrong_bytes =
            |found: &Option<String>| found.as_ref().is_some_and(|f| !wanted.contains(f));
        if wanted.is_empty() && synced.is_some() && expected.allowed.contains(&Outcome::Forgotten) {
            eprintln!("author: {id} forgotten by a logout but still Synced: {describe}");
            tally.leftovers += 1;
        } else if !wanted.is_empty()
            && (wrong_bytes(&on_remote) || (synced.is_some() && wrong_bytes(&local)))
        {
            eprintln!("author: {id} corrupt: {describe}");
            tally.corrupt += 1;
        } else {
            eprintln!("author: {id} lost: {describe}");
            tally.lost += 1;
        }
    }
    for row in rows {
        if !model.ids.contains_key(row.id.as_str()) {
            eprintln!(
                "author: row {} ({}) that the journal never saved",
                row.id, row.state
            );
            tally.leftovers += 1;
        }
    }

    let (objects, unfinished) = list_remote(remote).await?;
    tally.leftovers += unfinished;
    let row_files: BTreeSet<&str> = rows.iter().map(|r| r.filename.as_str()).collect();
    for object in objects {
        if is_temp(&object) {
            eprintln!("remote: temp object {object} left");
            tally.leftovers += 1;
            continue;
        }
        if row_files.contains(object.as_str()) {
            continue;
        }
        let id = object.strip_suffix(".bin").unwrap_or(&object);
        match model.ids.get(id) {
            // an object the id's check above already counted (a lost delete, a lost save)
            Some(expected) if !expected.allowed.contains(&Outcome::Forgotten) => {}
            Some(_) => tally.forgotten_objects += 1,
            None => {
                eprintln!("remote: object {object} that no row and no journal entry accounts for");
                tally.leftovers += 1;
            }
        }
    }
    Ok(held)
}

/// The reader holds every attachment the author's table references, with the author's bytes.
fn check_reader(
    dir: &Path,
    model: &Model,
    referenced: &BTreeSet<String>,
    held_by_author: &BTreeMap<String, String>,
    rows: &[Attachment],
    tally: &mut Tally,
) -> u64 {
    let by_id: BTreeMap<&str, &Attachment> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut downloaded = 0;
    for id in referenced {
        // only what the author holds can be downloaded; the author's own check counts the rest
        let Some(checksum) = held_by_author.get(id) else {
            continue;
        };
        let row = by_id.get(id.as_str()).copied();
        if row.is_some_and(|r| r.state.is_queued() || r.failed_state.is_some()) {
            continue; // counted as stuck
        }
        let Some(row) = row.filter(|r| r.state == AttachmentState::Synced) else {
            eprintln!(
                "reader: {id} referenced but not held (row {:?})",
                row.map(|r| r.state)
            );
            tally.lost += 1;
            continue;
        };
        let local = local_checksum(dir, row);
        if local.as_ref() == Some(checksum) {
            downloaded += 1;
            continue;
        }
        let lives: Vec<String> = model
            .ids
            .get(id)
            .map(|e| e.lives.iter().map(|l| l.checksum()).collect())
            .unwrap_or_default();
        match local {
            Some(found) if lives.contains(&found) => {
                eprintln!(
                    "reader: {id} holds an earlier life of the id (reused while it was down)"
                );
                tally.stale += 1;
            }
            Some(found) => {
                eprintln!("reader: {id} holds {found}, the author {checksum}");
                tally.corrupt += 1;
            }
            None => {
                eprintln!("reader: {id} is Synced but its local file is missing");
                tally.lost += 1;
            }
        }
    }
    for row in rows {
        if row.state == AttachmentState::Synced && !referenced.contains(row.id.as_str()) {
            eprintln!("reader: {} Synced but no longer referenced", row.id);
            tally.leftovers += 1;
        }
    }
    downloaded
}

/// Drain every device, check, print the verdict line; true when nothing was found.
pub(crate) async fn verify(
    author_dir: &Path,
    reader_dir: Option<&Path>,
    journal: &Path,
    remote: &Remote,
) -> Result<bool, BoxError> {
    let remote = remote.open().await?;
    let references = app_database(author_dir).await?;
    let (_pool, author) = open_queue(author_dir, references.clone(), remote.storage()).await?;
    author.start_sync().await?;
    settle_references(&author, &references).await?;
    drain(&author, "author").await?;
    // outcomes written by the drain are judged against the same final references
    settle_references(&author, &references).await?;
    drain(&author, "author").await?;
    author.stop_sync().await;
    let author_rows = author.store().list(None).await?;
    author.close().await;

    let model = Model::read(journal)?;
    let mut tally = Tally::default();
    check_stuck("author", &author_rows, &mut tally);
    check_local_files(author_dir, "author", &author_rows, &mut tally);
    let held = check_author(author_dir, &model, &author_rows, &remote, &mut tally).await?;

    let mut downloads = None;
    if let Some(reader_dir) = reader_dir {
        let (_pool, reader) = open_queue(reader_dir, references.clone(), remote.storage()).await?;
        reader.start_sync().await?;
        settle_references(&reader, &references).await?;
        drain(&reader, "reader").await?;
        settle_references(&reader, &references).await?;
        drain(&reader, "reader").await?;
        reader.stop_sync().await;
        let reader_rows = reader.store().list(None).await?;
        reader.close().await;
        let referenced: BTreeSet<String> = sqlx::query_scalar("SELECT id FROM items")
            .fetch_all(&references)
            .await?
            .into_iter()
            .collect();
        check_stuck("reader", &reader_rows, &mut tally);
        check_local_files(reader_dir, "reader", &reader_rows, &mut tally);
        downloads = Some(check_reader(
            reader_dir,
            &model,
            &referenced,
            &held,
            &reader_rows,
            &mut tally,
        ));
    }

    let mix = &model.mix;
    let saves: Vec<String> = mix.saves.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!(
        "mix: saves {} (committed {}), reused ids {}, deletes {}, logouts {}, reader holds {}, stale {}, objects left by logouts {}",
        saves.join(" "),
        mix.committed,
        mix.reused,
        mix.deletes,
        mix.clears,
        downloads.map_or("-".to_owned(), |d| d.to_string()),
        tally.stale,
        tally.forgotten_objects,
    );
    println!(
        "devices={} attachments={} lost={} corrupt={} stuck={} leftovers={}",
        if reader_dir.is_some() { 2 } else { 1 },
        model.ids.len(),
        tally.lost,
        tally.corrupt,
        tally.stuck,
        tally.leftovers
    );
    Ok(tally.lost + tally.corrupt + tally.stuck + tally.leftovers == 0)
}
