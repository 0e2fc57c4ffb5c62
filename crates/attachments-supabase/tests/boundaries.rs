//! What the Supabase adapter does at its edges, against the loopback Supabase Storage server:
//! two users under row-level security, names outside Supabase's alphabet, hosts other than
//! the configured one, and error bodies too big to read.

use attachments_core::{Error, ErrorKind, RemoteStorage, collect_bytes};
use attachments_supabase::{Secret, StaticAccessToken, SupabaseConfig, SupabaseRemoteStorage};
use attachments_testkit::supabase_server::{SupabaseServerOptions, SupabaseStorageServer};
use attachments_testkit::{patterned_bytes, patterned_stream, upload_row};

const BUCKET: &str = "attachments";
const API_KEY: &str = "project-anon-key";
const MIB: u64 = 1 << 20;

fn signed_in(server: &SupabaseStorageServer, token: String) -> SupabaseRemoteStorage {
    SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
            .resumable(MIB, MIB)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap()
}

fn kind(err: &Error) -> (ErrorKind, bool) {
    (err.kind(), err.is_retryable())
}

/// Alice's photo and video (the video above the TUS threshold), stored by Alice.
async fn alice_and_bob(
    server: &SupabaseStorageServer,
) -> (SupabaseRemoteStorage, SupabaseRemoteStorage) {
    let alice = signed_in(server, server.user_token("alice"));
    let bob = signed_in(server, server.user_token("bob"));
    alice
        .upload(
            &upload_row("shared/photo.jpg", Some(100)),
            patterned_stream(1, 100),
        )
        .await
        .unwrap();
    alice
        .upload(
            &upload_row("shared/video.mp4", Some(2 * MIB)),
            patterned_stream(2, 2 * MIB),
        )
        .await
        .unwrap();
    (alice, bob)
}

#[tokio::test]
async fn under_row_level_security_another_users_object_reads_as_not_found() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let (alice, bob) = alice_and_bob(&server).await;
    let photo = upload_row("shared/photo.jpg", Some(100));
    let err = bob.download(&photo).await.err().unwrap();
    assert_eq!(kind(&err), (ErrorKind::NotFound, false), "{err}");
    let back = collect_bytes(alice.download(&photo).await.unwrap())
        .await
        .unwrap();
    assert_eq!(back, patterned_bytes(1, 100), "the owner still reads it");
}

#[tokio::test]
async fn under_row_level_security_deleting_another_users_object_is_refused_and_it_stays() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let (_alice, bob) = alice_and_bob(&server).await;
    let err = bob
        .delete(&upload_row("shared/photo.jpg", Some(100)))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    assert_eq!(
        server.object(BUCKET, "shared/photo.jpg").unwrap(),
        patterned_bytes(1, 100),
        "the object stays"
    );
}

#[tokio::test]
async fn under_row_level_security_overwriting_another_users_object_is_refused() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let (_alice, bob) = alice_and_bob(&server).await;
    // a small one through POST /object, a large one through TUS
    for (name, len, seed) in [
        ("shared/photo.jpg", 100, 1),
        ("shared/video.mp4", 2 * MIB, 2),
    ] {
        let err = bob
            .upload(&upload_row(name, Some(len)), patterned_stream(9, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
        assert_eq!(
            server.object(BUCKET, name).unwrap(),
            patterned_bytes(seed, len),
            "{name} keeps its owner's contents"
        );
    }
}

#[tokio::test]
async fn names_outside_supabases_alphabet_are_refused_before_any_request() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = signed_in(&server, server.token("service_role"));
    for name in [
        "été.jpg",
        "100%.jpg",
        "a#b.jpg",
        "~me/a.jpg",
        "a[1].jpg",
        "📷.jpg",
    ] {
        let row = upload_row(name, Some(10));
        let errors = [
            remote
                .upload(&row, patterned_stream(1, 10))
                .await
                .unwrap_err(),
            remote.download(&row).await.err().unwrap(),
            remote.delete(&row).await.unwrap_err(),
        ];
        for err in errors {
            assert_eq!(
                kind(&err),
                (ErrorKind::InvalidInput, false),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("does not accept"), "{err}");
        }
    }
    assert_eq!(server.stats().requests, 0, "nothing was sent");
}

#[tokio::test]
async fn a_bad_key_prefix_bucket_or_url_is_refused_at_construction() {
    let config = |url: &str, bucket: &str, prefix: &str| {
        SupabaseConfig::new(url, bucket, "key").key_prefix(prefix)
    };
    let url = "https://abc.supabase.co";
    for bad in [
        config(url, BUCKET, "été/"),
        config(url, BUCKET, "user#1/"),
        config(url, BUCKET, "~/"),
        config(url, BUCKET, "[a]/"),
        config(url, BUCKET, "📷/"),
        config(url, BUCKET, "50%/"),
        config(url, BUCKET, "/abs/"),
        config(url, BUCKET, "a//"),
        config(url, BUCKET, "../"),
        config(url, "a/b", ""),
        config(url, "", ""),
        config("abc.supabase.co", BUCKET, ""),
        config("ftp://abc.supabase.co", BUCKET, ""),
        config("https://user:pass@abc.supabase.co", BUCKET, ""),
        config("https://abc.supabase.co?x=1", BUCKET, ""),
    ] {
        let described = format!("{bad:?}");
        let err = SupabaseRemoteStorage::new(bad).unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::InvalidInput, false), "{described}");
        assert!(!err.to_string().contains("pass@"), "{err}");
    }
    SupabaseRemoteStorage::new(config(url, BUCKET, "user-1/photos (2024)/")).unwrap();
}

#[tokio::test]
async fn a_tus_location_on_another_origin_is_refused_without_sending_it_anything() {
    let elsewhere = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = signed_in(&server, server.token("service_role"));
    // another port, another scheme on the same host and port, another host
    let same_port_https = server.origin().replace("http://", "https://");
    let other_host = server.origin().replace("127.0.0.1", "localhost");
    for origin in [elsewhere.origin(), &same_port_https, &other_host] {
        server.put_tus_uploads_on(origin);
        let err = remote
            .upload(
                &upload_row("v.mp4", Some(2 * MIB)),
                patterned_stream(1, 2 * MIB),
            )
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::Config, false), "{err}");
        assert!(err.to_string().contains(origin), "names the origin: {err}");
    }
    assert_eq!(server.stats().tus_patches, 0, "no PATCH anywhere");
    let stats = elsewhere.stats();
    assert_eq!(stats.requests, 0, "the other origin received nothing");
    assert!(stats.api_keys.is_empty() && stats.authorizations.is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = signed_in(&server, server.token("service_role"));
    let row = upload_row("a.jpg", Some(10));
    server.redirect_next_to(format!(
        "{}/object/authenticated/{BUCKET}/a.jpg",
        elsewhere.base_url()
    ));
    let err = remote.download(&row).await.err().unwrap();
    assert_eq!(kind(&err), (ErrorKind::Config, false), "{err}");
    assert_eq!(
        elsewhere.stats().requests,
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn an_error_body_is_read_only_up_to_64_kib() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions::default()).await;
    let remote = signed_in(&server, server.token("service_role"));
    // far more than loopback socket buffers hold, so the count below shows the client stopped
    // reading rather than the kernel absorbing it
    let len = 64 * MIB;
    server.answer_next_with_error_body(len);
    let err = remote
        .download(&upload_row("a.jpg", Some(10)))
        .await
        .err()
        .unwrap();
    assert_eq!(
        kind(&err),
        (ErrorKind::Unavailable, true),
        "a 500 is retryable"
    );
    assert!(err.to_string().len() < 1024, "a short message");
    assert!(
        server.stats().error_body_bytes_sent < len,
        "the body was not read whole"
    );
    // the next request finds the server (and the adapter) in order
    remote
        .upload(&upload_row("a.jpg", Some(10)), patterned_stream(1, 10))
        .await
        .unwrap();
}
