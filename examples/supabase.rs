//! Sync attachments with Supabase Storage.
//!
//! With `SUPABASE_URL`, `SUPABASE_KEY` (a service-role key, or the anon key with a user's JWT
//! in `SUPABASE_ACCESS_TOKEN`) and `SUPABASE_BUCKET` set, it talks to that project; under
//! row-level security a user usually writes below a folder of their own, given in
//! `SUPABASE_KEY_PREFIX` (e.g. `<user id>/`). Without them it starts the test kit's loopback
//! server, which speaks the same API, so
//! `cargo run -p attachments-examples --example supabase --features supabase` always runs.
//! `cargo run -p attachments-testkit --features supabase-server --example supabase_server`
//! runs that server on its own and prints the variables for the project mode.

use attachments::fs::FsLocalStorage;
use attachments::sqlite::SqliteStore;
use attachments::supabase::{Secret, StaticAccessToken, SupabaseConfig, SupabaseRemoteStorage};
use attachments::{
    BoxError, ErrorKind, SaveFile, SqliteAttachmentQueue, WatchedAttachmentItem, byte_stream_from,
};
use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    // keep the local server alive for the whole run when there is no real project
    let mut local_server = None;
    let config = match (
        read("SUPABASE_URL"),
        read("SUPABASE_KEY"),
        read("SUPABASE_BUCKET"),
    ) {
        (Some(url), Some(key), Some(bucket)) => {
            let mut config = SupabaseConfig::new(url, bucket, key);
            if let Some(token) = read("SUPABASE_ACCESS_TOKEN") {
                // a real app passes its auth client's session here, which refreshes the token
                config = config.access_token_provider(StaticAccessToken(Secret::new(token)));
            }
            if let Some(prefix) = read("SUPABASE_KEY_PREFIX") {
                config = config.key_prefix(prefix);
            }
            config
        }
        _ => {
            let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
            println!(
                "no SUPABASE_* variables: using the local test server at {}",
                server.base_url()
            );
            let token = server.token("service_role");
            let config = SupabaseConfig::new(server.base_url(), "attachments", "local-anon-key")
                .access_token_provider(StaticAccessToken(Secret::new(token)));
            local_server = Some(server);
            config
        }
    };
    println!("remote: {config:?}");
    let remote = SupabaseRemoteStorage::new(config)?;
    match remote.create_bucket_if_missing().await {
        Ok(()) => {}
        // a user's token may not create buckets: the project's owner made it beforehand
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            println!("not allowed to create the bucket ({error}); using it as it is");
        }
        Err(error) => return Err(error.into()),
    }

    let dir = tempfile::tempdir()?;
    let mut queues = Vec::new();
    for name in ["phone", "laptop"] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(path.join("app.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new().connect_with(options).await?;
        let queue = SqliteAttachmentQueue::builder(
            SqliteStore::new(pool).await?,
            FsLocalStorage::new(path.join("files"))?,
            remote.clone(),
        )
        .build()?;
        queues.push(queue);
    }
    let (phone, laptop) = (&queues[0], &queues[1]);

    // a 7 MiB "video": above the 6 MiB threshold, so it goes up through TUS in chunks
    let video = phone
        .save_file(
            SaveFile::new(byte_stream_from(vec![vec![42u8; 7 * 1024 * 1024]]))
                .media_type("video/mp4")
                .file_extension("mp4"),
        )
        .await?;
    let pass = phone.sync_now().await?;
    println!("[phone] uploaded {} ({pass:?})", video.id);
    if pass.uploaded != 1 {
        let row = phone.get(&video.id).await?;
        let why = row.and_then(|row| row.last_error).unwrap_or_default();
        return Err(format!("the phone's upload did not complete: {why}").into());
    }
    laptop
        .set_referenced(vec![
            WatchedAttachmentItem::new(video.id.clone()).with_file_extension("mp4"),
        ])
        .await?;
    let pass = laptop.sync_now().await?;
    println!("[laptop] downloaded {} ({pass:?})", video.id);
    check(
        pass.downloaded == 1,
        "the laptop's download did not complete",
    )?;
    phone.delete_file(&video.id).await?;
    let pass = phone.sync_now().await?;
    println!("[phone] deleted {} ({pass:?})", video.id);
    check(pass.deleted == 1, "the phone's delete did not complete")?;
    for queue in &queues {
        println!("{:?}", queue.status().await?);
        queue.close().await;
    }
    drop(local_server);
    Ok(())
}

/// Fail the example (with the reason) when a step did not do what it printed.
fn check(ok: bool, failure: &str) -> Result<(), BoxError> {
    if ok { Ok(()) } else { Err(failure.into()) }
}
