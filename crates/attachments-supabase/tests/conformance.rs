//! The Supabase adapter against the test kit's loopback Supabase Storage server (and a real
//! one when `ATTACHMENTS_TEST_SUPABASE_*` name it): the suite, TUS resumption, upserts, token
//! refresh, secrets. Each answer of the API the adapter relies on, byte for byte, is in
//! `tests/server_answers.rs`; what a user sees with a user's token under row-level security,
//! and the adversarial cases (hosts, bodies, names), are in `tests/boundaries.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use attachments_core::{ErrorKind, RemoteStorage, collect_bytes};
use attachments_supabase::{
    AccessTokenProvider, Secret, SupabaseConfig, SupabaseRemoteStorage, is_key_char,
};
use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};
use attachments_testkit::{
    KeyRules, patterned_bytes, patterned_stream, remote_storage_suite_with_keys, upload_row,
};

const BUCKET: &str = "attachments";
const API_KEY: &str = "project-anon-key";
const MIB: u64 = 1 << 20;

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
    remote_storage_suite_with_keys(&storage(&server, |c| c), supabase_keys()).await;
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

#[tokio::test]
async fn resumable_uploads_overwrite_large_objects() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = storage(&server, |c| c);
    let row = upload_row("video/long.mp4", Some(0));
    // 30 MiB, then a shorter 6 MiB + 1 over it, then 12 MiB + 3: each a new TUS upload (with
    // x-upsert) over the object the previous one left
    for (seed, len) in [(1u64, 30 * MIB), (2, 6 * MIB + 1), (3, 12 * MIB + 3)] {
        let mut again = row.clone();
        again.size = Some(len);
        remote
            .upload(&again, patterned_stream(seed, len))
            .await
            .unwrap();
        let back = collect_bytes(remote.download(&again).await.unwrap())
            .await
            .unwrap();
        assert!(back == patterned_bytes(seed, len), "{len} bytes read back");
    }
    assert_eq!(
        server.stats().tus_creates,
        3,
        "every upload went through TUS"
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
async fn an_expired_token_is_refreshed_on_every_route() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let session = Arc::new(ExpiringSession {
        expired: server.expired_token(),
        fresh: server.token("service_role"),
        calls: AtomicU32::new(0),
        refreshes: AtomicU32::new(0),
    });
    let remote = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), "new-bucket", API_KEY)
            .resumable(MIB, MIB)
            .access_token_provider(Arc::clone(&session)),
    )
    .unwrap();
    // every request below starts with the expired token (POST /bucket, POST /object, TUS
    // POST, PATCH and HEAD, GET, DELETE) and is sent again with a fresh one
    remote.create_bucket_if_missing().await.unwrap();
    let small = upload_row("b.jpg", Some(10));
    remote
        .upload(&small, patterned_stream(1, 10))
        .await
        .unwrap();
    let big = upload_row("c.mp4", Some(2 * MIB));
    server.interrupt_next_patch_after(300_000);
    remote
        .upload(&big, patterned_stream(2, 2 * MIB))
        .await
        .unwrap();
    for (row, seed) in [(&small, 1), (&big, 2)] {
        let back = collect_bytes(remote.download(row).await.unwrap())
            .await
            .unwrap();
        assert!(back == patterned_bytes(seed, row.size.unwrap()));
        remote.delete(row).await.unwrap();
        assert!(remote.download(row).await.is_err(), "deleted");
    }
    let refused = server.stats().expired_refusals;
    for method in ["POST", "PATCH", "HEAD", "GET", "DELETE"] {
        assert!(
            refused.get(method).copied().unwrap_or(0) > 0,
            "an expired token was refused on {method}: {refused:?}"
        );
    }
    let refusals: u64 = refused.values().sum();
    assert_eq!(
        u64::from(session.refreshes.load(Ordering::SeqCst)),
        refusals,
        "one refresh per refused request"
    );
}

/// Always hands out an expired token, even when asked for a fresh one.
struct StuckSession(String);

#[attachments_core::async_trait]
impl AccessTokenProvider for StuckSession {
    async fn access_token(&self, _refused: Option<&Secret>) -> attachments_core::Result<Secret> {
        Ok(Secret::new(self.0.clone()))
    }
}

#[tokio::test]
async fn a_token_still_expired_after_a_refresh_is_a_retryable_permission_error() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let expired = server.expired_token();
    let remote = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
            .resumable(MIB, MIB)
            .access_token_provider(StuckSession(expired.clone())),
    )
    .unwrap();
    let small = upload_row("d.jpg", Some(10));
    let big = upload_row("e.mp4", Some(2 * MIB));
    let errors = [
        remote
            .upload(&small, patterned_stream(1, 10))
            .await
            .unwrap_err(),
        remote
            .upload(&big, patterned_stream(1, 2 * MIB))
            .await
            .unwrap_err(),
        remote.download(&small).await.err().unwrap(),
        remote.delete(&small).await.unwrap_err(),
    ];
    for err in errors {
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (ErrorKind::PermissionDenied, true),
            "{err}"
        );
        assert!(err.to_string().contains("expired"), "{err}");
        assert!(!err.to_string().contains(&expired), "no token in {err}");
    }
    assert!(server.object(BUCKET, "d.jpg").is_none());
}

#[tokio::test]
async fn neither_debug_output_nor_errors_show_the_key_or_the_token() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let forged = attachments_testkit::supabase_server::make_jwt(
        "another-secret",
        "service_role",
        4_000_000_000,
    );
    let denied = storage(&server, |c| {
        c.access_token_provider(attachments_supabase::StaticAccessToken(Secret::new(
            forged.clone(),
        )))
    });
    assert!(!format!("{denied:?}").contains(API_KEY), "no key in Debug");
    let err = denied
        .upload(&upload_row("y.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    for secret in [forged.as_str(), API_KEY] {
        assert!(!err.to_string().contains(secret), "{err}");
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_retryable() {
    let port_closed =
        SupabaseRemoteStorage::new(SupabaseConfig::new("http://127.0.0.1:9", BUCKET, API_KEY))
            .unwrap();
    let err = port_closed
        .download(&upload_row("a.jpg", Some(3)))
        .await
        .err()
        .unwrap();
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
    remote_storage_suite_with_keys(&remote, supabase_keys()).await;
}

fn supabase_keys() -> KeyRules {
    KeyRules::only("Supabase's key alphabet", is_key_char)
}
