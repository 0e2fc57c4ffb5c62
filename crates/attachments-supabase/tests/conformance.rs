//! The Supabase adapter against the test kit's loopback Supabase Storage server (and a real
//! one when `ATTACHMENTS_TEST_SUPABASE_*` name it): the suite, TUS resumption, upserts, token
//! refresh, and the error rows of the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use attachments_core::{ErrorKind, RemoteStorage, collect_bytes};
use attachments_supabase::{AccessTokenProvider, Secret, SupabaseConfig, SupabaseRemoteStorage};
use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};
use attachments_testkit::{patterned_bytes, patterned_stream, remote_storage_suite, upload_row};

const BUCKET: &str = "attachments";
const API_KEY: &str = "project-anon-key";

fn storage(
    server: &SupabaseStorageServer,
    config: impl FnOnce(SupabaseConfig) -> SupabaseConfig,
) -> SupabaseRemoteStorage {
    let base = SupabaseConfig::new(server.base_url(), BUCKET, API_KEY).access_token_provider(
        attachments_supabase::StaticAccessToken(Secret::new(server.token("service_role"))),
    );
    SupabaseRemoteStorage::new(config(base)).unwrap()
}

#[tokio::test]
async fn supabase_storage_keeps_the_contract() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    remote_storage_suite(&storage(&server, |c| c)).await;
    let stats = server.stats();
    assert!(stats.tus_creates >= 1, "the 20 MiB file went through TUS");
    assert!(
        stats.object_posts >= 1,
        "small files went through POST /object"
    );
    assert!(
        stats.api_keys.contains(API_KEY),
        "the apikey header is sent"
    );
}

#[tokio::test]
async fn an_interrupted_resumable_upload_resumes_from_head() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = storage(&server, |c| c.resumable(1 << 20, 1 << 20));
    let len = 3 * (1 << 20) + 123;
    let row = upload_row("video/clip.mp4", Some(len));
    // the first chunk's connection breaks after 300 KB arrived (and were kept by the server)
    server.interrupt_next_patch_after(300_000);
    remote.upload(&row, patterned_stream(7, len)).await.unwrap();
    assert_eq!(
        server.object(BUCKET, "video/clip.mp4").unwrap(),
        patterned_bytes(7, len)
    );
    assert_eq!(
        server.content_type(BUCKET, "video/clip.mp4").as_deref(),
        Some("image/jpeg")
    );
    let stats = server.stats();
    assert_eq!(stats.tus_heads, 1, "one HEAD to learn where to resume");
    assert_eq!(
        stats.tus_creates, 1,
        "the same upload was resumed, not restarted"
    );
}

#[tokio::test]
async fn a_retried_upload_overwrites() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = storage(&server, |c| c);
    let row = upload_row("a.jpg", Some(100));
    remote.upload(&row, patterned_stream(1, 100)).await.unwrap();
    // the same upload again (a retry after a crash): x-upsert makes it succeed
    remote.upload(&row, patterned_stream(2, 100)).await.unwrap();
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(2, 100)
    );
    // and through TUS too
    let remote = storage(&server, |c| c.resumable(50, 40));
    remote.upload(&row, patterned_stream(3, 100)).await.unwrap();
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(3, 100)
    );
}

/// Hands out an expired token first; a fresh one once told it was refused.
struct ExpiringSession {
    expired: String,
    fresh: String,
    calls: AtomicU32,
    refreshes: AtomicU32,
}

#[attachments_core::async_trait]
impl AccessTokenProvider for ExpiringSession {
    async fn access_token(&self, refused: Option<&Secret>) -> attachments_core::Result<Secret> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if refused.is_some() {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            return Ok(Secret::new(self.fresh.clone()));
        }
        Ok(Secret::new(self.expired.clone()))
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_through_the_provider() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let session = Arc::new(ExpiringSession {
        expired: server.expired_token(),
        fresh: server.token("authenticated"),
        calls: AtomicU32::new(0),
        refreshes: AtomicU32::new(0),
    });
    let remote = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
            .access_token_provider(Arc::clone(&session)),
    )
    .unwrap();
    let row = upload_row("b.jpg", Some(10));
    remote.upload(&row, patterned_stream(1, 10)).await.unwrap();
    let back = collect_bytes(remote.download(&row).await.unwrap())
        .await
        .unwrap();
    assert_eq!(back, patterned_bytes(1, 10));
    assert_eq!(
        session.refreshes.load(Ordering::SeqCst),
        2,
        "one refresh per refused request"
    );
    assert_eq!(server.stats().auth_refusals, 2);
}

#[tokio::test]
async fn the_error_rows_map_to_kinds() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions {
        max_object_size: 1000,
        ..SupabaseServerOptions::default()
    })
    .await;
    let good = storage(&server, |c| c);

    // NoSuchKey: download of a missing object, permanent; delete of one is Ok
    let missing = upload_row("missing.jpg", Some(0));
    let err = good.download(&missing).await.err().unwrap();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::NotFound, false),
        "{err}"
    );
    good.delete(&missing).await.unwrap();

    // NoSuchBucket: a configuration error
    let wrong_bucket = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), "no-such-bucket", API_KEY).access_token_provider(
            attachments_supabase::StaticAccessToken(Secret::new(server.token("service_role"))),
        ),
    )
    .unwrap();
    let err = wrong_bucket
        .upload(&upload_row("x.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Config, false),
        "{err}"
    );

    // AccessDenied: a token signed with another secret
    let forged = attachments_testkit::supabase_server::make_jwt(
        "another-secret",
        "service_role",
        4_000_000_000,
    );
    let denied = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY).access_token_provider(
            attachments_supabase::StaticAccessToken(Secret::new(forged.clone())),
        ),
    )
    .unwrap();
    let err = denied
        .upload(&upload_row("y.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::PermissionDenied, false),
        "{err}"
    );
    assert!(
        !err.to_string().contains(&forged),
        "no token in error messages"
    );
    assert!(!format!("{denied:?}").contains(API_KEY), "no key in Debug");

    // EntityTooLarge: over the server's limit, by POST and by TUS
    let err = good
        .upload(
            &upload_row("big.jpg", Some(2000)),
            patterned_stream(1, 2000),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::InvalidInput, false),
        "{err}"
    );
    let tus = storage(&server, |c| c.resumable(1500, 1000));
    let err = tus
        .upload(
            &upload_row("big.jpg", Some(2000)),
            patterned_stream(1, 2000),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::InvalidInput, false),
        "{err}"
    );

    // a stopped server: retryable
    let port_closed =
        SupabaseRemoteStorage::new(SupabaseConfig::new("http://127.0.0.1:9", BUCKET, API_KEY))
            .unwrap();
    let err = port_closed.download(&missing).await.err().unwrap();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Unavailable, true),
        "{err}"
    );
}

#[tokio::test]
async fn a_real_supabase_server_when_configured() {
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(url), Some(key), Some(bucket)) = (
        read("ATTACHMENTS_TEST_SUPABASE_URL"),
        read("ATTACHMENTS_TEST_SUPABASE_KEY"),
        read("ATTACHMENTS_TEST_SUPABASE_BUCKET"),
    ) else {
        eprintln!(
            "ATTACHMENTS_TEST_SUPABASE_URL, _KEY and _BUCKET are not set: the Supabase adapter ran only against the local server"
        );
        return;
    };
    let remote = SupabaseRemoteStorage::new(SupabaseConfig::new(url, bucket, key)).unwrap();
    remote.create_bucket_if_missing().await.unwrap();
    remote_storage_suite(&remote).await;
}
