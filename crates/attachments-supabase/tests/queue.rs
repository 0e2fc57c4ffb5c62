//! The queue with Supabase Storage as the remote: upload (through TUS), download on a second
//! device, delete; as an app runs it (a signed-in user's token, under row-level security) and
//! as a backend does (the service role).

use std::path::Path;

use attachments_core::{AttachmentQueue, AttachmentState, SaveFile, WatchedAttachmentItem};
use attachments_fs::FsLocalStorage;
use attachments_sqlite::SqliteStore;
use attachments_supabase::{Secret, StaticAccessToken, SupabaseConfig, SupabaseRemoteStorage};
use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};
use attachments_testkit::{patterned_bytes, patterned_stream};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

async fn device(dir: &Path, remote: SupabaseRemoteStorage) -> AttachmentQueue<SqliteStore> {
    std::fs::create_dir_all(dir).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.join("app.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .unwrap();
    AttachmentQueue::builder(
        SqliteStore::new(pool).await.unwrap(),
        FsLocalStorage::new(dir.join("files")).unwrap(),
        remote,
    )
    .build()
    .unwrap()
}

#[tokio::test]
async fn queue_scenarios_with_a_users_token() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    // the same user signed in on both devices
    let token = server.user_token("user-1");
    queue_scenarios(&server, token).await;
}

#[tokio::test]
async fn queue_scenarios_with_the_service_role() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let token = server.token("service_role");
    queue_scenarios(&server, token).await;
}

async fn queue_scenarios(server: &SupabaseStorageServer, token: String) {
    let remote = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), "attachments", "anon-key")
            .key_prefix("user-1/")
            .resumable(1 << 20, 1 << 20)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let phone = device(&dir.path().join("phone"), remote.clone()).await;
    let tablet = device(&dir.path().join("tablet"), remote).await;

    let len = (5 << 20) + 17;
    let video = phone
        .save_file(
            SaveFile::new(patterned_stream(1, len))
                .media_type("video/mp4")
                .file_extension("mp4"),
        )
        .await
        .unwrap();
    assert_eq!(phone.sync_now().await.unwrap().uploaded, 1);
    let key = format!("user-1/{}", video.filename);
    assert_eq!(
        server.object("attachments", &key).unwrap(),
        patterned_bytes(1, len)
    );
    assert_eq!(
        server.content_type("attachments", &key).as_deref(),
        Some("video/mp4")
    );

    tablet
        .set_referenced(vec![
            WatchedAttachmentItem::new(video.id.clone()).with_file_extension("mp4"),
        ])
        .await
        .unwrap();
    assert_eq!(tablet.sync_now().await.unwrap().downloaded, 1);
    let row = tablet.get(&video.id).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.checksum),
        (AttachmentState::Synced, video.checksum.clone())
    );

    phone.delete_file(&video.id).await.unwrap();
    assert_eq!(phone.sync_now().await.unwrap().deleted, 1);
    assert!(server.object("attachments", &key).is_none());
    assert!(
        server.stats().tus_without_upsert.is_empty(),
        "every TUS request said x-upsert"
    );
}
