//! What each device does until it is killed.

use std::path::Path;
use std::time::Duration;

use attachments::{AttachmentId, BoxError, ErrorKind, SaveFile, SqliteAttachmentQueue};
use sqlx::SqlitePool;

use crate::Rng;
use crate::content::{content_stream, pick_size};
use crate::device::{Remote, app_database, open_queue};
use crate::journal::{JournalWriter, Outcome};

/// The author: saves (every upload path, new ids and reused ones), deletes (often the file
/// just saved, so during its upload), and now and then logs out (its references removed, then
/// `clear_queue`) and saves again under an id it had just cleared, while the queue syncs.
pub(crate) async fn author(
    dir: &Path,
    journal_path: &Path,
    remote: &Remote,
    seed: u64,
) -> Result<(), BoxError> {
    let remote = remote.open().await?;
    let references = app_database(dir).await?;
    let (pool, queue) = open_queue(dir, references, remote.storage()).await?;
    queue.start_sync().await?;
    let mut journal = JournalWriter::open(journal_path)?;
    let mut rng = Rng::new(seed);
    // ids whose life ended (deleted or cleared) are saved again: apps reuse ids like `avatar`
    let mut reusable: Vec<String> = crate::journal::Model::read(journal_path)?
        .ids
        .into_iter()
        .filter(|(_, expected)| {
            !expected
                .allowed
                .iter()
                .any(|o| matches!(o, Outcome::Synced(_)))
        })
        .map(|(id, _)| id)
        .collect();
    let mut last_saved: Option<String> = None;
    loop {
        match rng.below(1000) {
            0..=599 => {
                let id = format!("f{:016x}", rng.next());
                save(&queue, &mut journal, &mut rng, &id).await?;
                last_saved = Some(id);
            }
            600..=679 => {
                if !reusable.is_empty() {
                    let index = usize::try_from(rng.below(reusable.len() as u64)).unwrap_or(0);
                    let id = reusable.swap_remove(index);
                    // a delete completes in the background: until then the id is taken
                    if queue.get(&AttachmentId::new(id.clone())?).await?.is_none() {
                        save(&queue, &mut journal, &mut rng, &id).await?;
                        last_saved = Some(id);
                    } else {
                        reusable.push(id);
                    }
                }
            }
            680..=899 => {
                // half the time the file just saved: its upload is likely still running
                let candidate = if rng.below(2) == 0 {
                    last_saved.take()
                } else {
                    sqlx::query_scalar("SELECT id FROM items ORDER BY random() LIMIT 1")
                        .fetch_optional(&pool)
                        .await?
                };
                if let Some(id) = candidate {
                    delete(&queue, &pool, &mut journal, &id).await?;
                    reusable.push(id);
                }
            }
            // a pass of the app's own beside the background ones: claims must keep them apart
            900..=949 => {
                queue.sync_now().await?;
            }
            950..=994 => {
                queue.expire_cache().await?;
            }
            _ => {
                let cleared: Vec<String> = sqlx::query_scalar("SELECT id FROM items")
                    .fetch_all(&pool)
                    .await?;
                logout(&queue, &pool, &mut journal).await?;
                reusable.extend(cleared);
                // the same id again at once, while the cleared life's upload may still run
                if let Some(id) = last_saved.take() {
                    if let Some(index) = reusable.iter().position(|r| *r == id) {
                        reusable.swap_remove(index);
                    }
                    save(&queue, &mut journal, &mut rng, &id).await?;
                    last_saved = Some(id);
                }
            }
        }
        // pacing, so that the background passes run between the app's calls
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
}

async fn save(
    queue: &SqliteAttachmentQueue,
    journal: &mut JournalWriter,
    rng: &mut Rng,
    id: &str,
) -> Result<(), BoxError> {
    let draw = rng.next();
    let len = pick_size(draw, &mut |n| rng.below(n));
    let content_seed = rng.next();
    // the intent first: a kill between the commit and the `saved` line leaves a save the
    // journal cannot confirm, and the verifier then accepts either result
    journal.write(&format!("saving {id} {content_seed} {len}"))?;
    let result = queue
        .save_file_with_hook(
            SaveFile::new(content_stream(content_seed, len))
                .id(AttachmentId::new(id)?)
                .file_extension("bin"),
            |connection, attachment| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO items (id) VALUES (?)")
                        .bind(attachment.id.as_str())
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                })
            },
        )
        .await;
    match result {
        Ok(saved) => {
            let checksum = saved.checksum.as_deref().unwrap_or("none");
            journal.write(&format!("saved {id} {} {checksum}", saved.filename))
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            journal.write(&format!("save-refused {id}"))
        }
        Err(error) => Err(error.into()),
    }
}

async fn delete(
    queue: &SqliteAttachmentQueue,
    pool: &SqlitePool,
    journal: &mut JournalWriter,
    id: &str,
) -> Result<(), BoxError> {
    let referenced: Option<String> = sqlx::query_scalar("SELECT id FROM items WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    if referenced.is_none() {
        return Ok(()); // deleted already, or forgotten by a logout
    }
    journal.write(&format!("deleting {id}"))?;
    let result = queue
        .delete_file_with_hook(&AttachmentId::new(id)?, |connection, attachment| {
            Box::pin(async move {
                sqlx::query("DELETE FROM items WHERE id = ?")
                    .bind(attachment.id.as_str())
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await;
    match result {
        Ok(()) => journal.write(&format!("deleted {id}")),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            journal.write(&format!("delete-refused {id}"))
        }
        Err(error) => Err(error.into()),
    }
}

/// What an app does when its user logs out: its own data goes, then the queue's.
async fn logout(
    queue: &SqliteAttachmentQueue,
    pool: &SqlitePool,
    journal: &mut JournalWriter,
) -> Result<(), BoxError> {
    journal.write("clearing")?;
    sqlx::query("DELETE FROM items").execute(pool).await?;
    queue.clear_queue().await?;
    journal.write("cleared")
}

/// The reader: references what the author's table references and downloads it, until killed.
pub(crate) async fn reader(dir: &Path, author_dir: &Path, remote: &Remote) -> Result<(), BoxError> {
    let remote = remote.open().await?;
    let references = app_database(author_dir).await?;
    let (_pool, queue) = open_queue(dir, references, remote.storage()).await?;
    queue.start_sync().await?;
    std::future::pending::<()>().await;
    Ok(())
}
