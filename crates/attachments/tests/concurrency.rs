//! Concurrency: several tasks saving and deleting while background passes run and the watcher
//! emits, the app writing its own tables at the same time, and a second connection pool (as
//! another process would) writing to the same database file. No call may fail with
//! `database is locked`, and the end state must be exactly what the app asked for.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use attachments::SaveFile;
use attachments_testkit::patterned_stream;
use common::{Device, files_below, wait_for_counts};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

const TASKS: u64 = 4;
const SAVES_PER_TASK: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_deletes_and_app_writes_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = dir.path().join("remote");
    let device = Device::new(&dir.path().join("a"), &remote_dir).await;
    sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)")
        .execute(&device.pool)
        .await
        .unwrap();
    let queue = device
        .watching_builder()
        .await
        .max_concurrency(4)
        .build()
        .unwrap();
    queue.start_sync().await.unwrap();

    // the app's own writes, and another "process" with its own pool on the same file
    let other_process = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(device.dir.join("app.db"))
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let mut writers = Vec::new();
    for pool in [device.pool.clone(), other_process.clone()] {
        writers.push(tokio::spawn(async move {
            for n in 0..100 {
                sqlx::query("INSERT INTO notes (body) VALUES (?)")
                    .bind(format!("note {n}"))
                    .execute(&pool)
                    .await
                    .expect("the app's writes never see `database is locked`");
            }
        }));
    }

    let mut savers = Vec::new();
    for task in 0..TASKS {
        let queue = queue.clone();
        savers.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for n in 0..SAVES_PER_TASK {
                let todo = i64::try_from(task * 1_000 + n).unwrap();
                let saved = queue
                    .save_file_with_hook(
                        SaveFile::new(patterned_stream(task * 1_000 + n, 2_000))
                            .file_extension("jpg"),
                        move |connection, attachment| {
                            Box::pin(async move {
                                sqlx::query(
                                    "INSERT INTO todos (id, title, photo_id) VALUES (?, 't', ?)",
                                )
                                .bind(todo)
                                .bind(attachment.id.as_str())
                                .execute(&mut *connection)
                                .await?;
                                Ok(())
                            })
                        },
                    )
                    .await
                    .expect("save");
                if n % 3 == 0 {
                    queue
                        .delete_file_with_hook(&saved.id, move |connection, _| {
                            Box::pin(async move {
                                sqlx::query("DELETE FROM todos WHERE id = ?")
                                    .bind(todo)
                                    .execute(&mut *connection)
                                    .await?;
                                Ok(())
                            })
                        })
                        .await
                        .expect("delete");
                } else {
                    kept.push(saved);
                }
            }
            kept
        }));
    }
    let mut kept = Vec::new();
    for saver in savers {
        kept.extend(saver.await.unwrap());
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let expected = kept.len() as u64;
    wait_for_counts(&queue, "every transfer", |c| {
        c.queued() == 0 && c.synced == expected
    })
    .await;
    queue.close().await;

    let counts_of_notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(&device.pool)
        .await
        .unwrap();
    assert_eq!(counts_of_notes, 200, "every app write landed");
    let on_remote: BTreeSet<String> = files_below(&remote_dir).into_iter().collect();
    let wanted: BTreeSet<String> = kept.iter().map(|a| a.filename.clone()).collect();
    assert_eq!(
        on_remote, wanted,
        "the remote holds exactly the attachments still referenced"
    );
    let referenced: Vec<String> =
        sqlx::query_scalar("SELECT photo_id FROM todos ORDER BY photo_id")
            .fetch_all(&device.pool)
            .await
            .unwrap();
    let mut kept_ids: Vec<String> = kept.iter().map(|a| a.id.to_string()).collect();
    kept_ids.sort();
    assert_eq!(referenced, kept_ids);
}
