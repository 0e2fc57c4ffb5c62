//! One test per answer of the Supabase Storage API that the adapter relies on: what the
//! loopback server sends on the wire (status, body byte for byte, as the real server's source
//! produces it), and what the adapter makes of it where it can meet it. A change of the loopback
//! server away from the real one fails here, not silently in the adapter's other tests.

use attachments_core::{Error, ErrorKind, RemoteStorage};
use attachments_supabase::{Secret, StaticAccessToken, SupabaseConfig, SupabaseRemoteStorage};
use attachments_testkit::supabase_server::{
    SupabaseServerOptions, SupabaseStorageServer, make_jwt,
};
use attachments_testkit::{patterned_bytes, patterned_stream, upload_row};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;

const BUCKET: &str = "attachments";
const API_KEY: &str = "project-anon-key";
const MIB: u64 = 1 << 20;

fn remote(server: &SupabaseStorageServer, bucket: &str, token: String) -> SupabaseRemoteStorage {
    SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), bucket, API_KEY)
            .resumable(MIB, MIB)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap()
}

fn kind(err: &Error) -> (ErrorKind, bool) {
    (err.kind(), err.is_retryable())
}

/// An answer as it came over the wire.
struct Answer {
    status: u16,
    body: String,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Plain HTTP requests to the loopback server, with exactly the headers given.
struct Wire<'a> {
    server: &'a SupabaseStorageServer,
    http: reqwest::Client,
}

impl<'a> Wire<'a> {
    fn new(server: &'a SupabaseStorageServer) -> Self {
        Wire {
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{path}", self.server.base_url())
        };
        let mut request = self.http.request(method, url).header("apikey", API_KEY);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Answer {
            status,
            body,
            headers,
        }
    }

    /// `POST /upload/resumable` of `len` bytes for `key`.
    async fn tus_create(&self, token: Option<&str>, key: &str, len: u64, upsert: bool) -> Answer {
        let metadata = format!(
            "bucketName {},objectName {},contentType {}",
            STANDARD.encode(BUCKET),
            STANDARD.encode(key),
            STANDARD.encode("video/mp4")
        );
        let len = len.to_string();
        let mut headers = vec![
            ("tus-resumable", "1.0.0"),
            ("upload-length", len.as_str()),
            ("upload-metadata", metadata.as_str()),
        ];
        if upsert {
            headers.push(("x-upsert", "true"));
        }
        self.send(
            Method::POST,
            "upload/resumable",
            token,
            &headers,
            Vec::new(),
        )
        .await
    }

    /// The `Location` of a new upload.
    async fn tus_location(&self, token: &str, key: &str, len: u64) -> String {
        let created = self.tus_create(Some(token), key, len, true).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.header("location").unwrap().to_owned()
    }

    async fn tus_patch(
        &self,
        token: &str,
        location: &str,
        offset: u64,
        body: Vec<u8>,
        upsert: bool,
    ) -> Answer {
        let offset = offset.to_string();
        let mut headers = vec![
            ("tus-resumable", "1.0.0"),
            ("upload-offset", offset.as_str()),
            ("content-type", "application/offset+octet-stream"),
        ];
        if upsert {
            headers.push(("x-upsert", "true"));
        }
        self.send(Method::PATCH, location, Some(token), &headers, body)
            .await
    }

    async fn tus_head(&self, token: &str, location: &str) -> Answer {
        let headers = [("tus-resumable", "1.0.0"), ("x-upsert", "true")];
        self.send(Method::HEAD, location, Some(token), &headers, Vec::new())
            .await
    }
}

/// A JSON error of an `/object` or `/bucket` route: keys in the order of the routes' response
/// schema.
fn rest_error(status: &str, error: &str, message: &str, code: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"statusCode":{},"error":{},"message":{},"code":{}}}"#,
        q(status),
        q(error),
        q(message),
        q(code)
    )
}

/// A JSON error of a TUS route, which has no response schema: keys in the order the error
/// renders them.
fn tus_json_error(status: &str, code: &str, error: &str, message: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"statusCode":{},"code":{},"error":{},"message":{}}}"#,
        q(status),
        q(code),
        q(error),
        q(message)
    )
}

async fn start() -> SupabaseStorageServer {
    SupabaseStorageServer::start(SupabaseServerOptions::default()).await
}

const EXPIRED: &str = "\"exp\" claim timestamp check failed";

#[tokio::test]
async fn an_expired_token_is_access_denied_with_joses_message_on_every_route() {
    let server = start().await;
    let wire = Wire::new(&server);
    let expired = server.expired_token();
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/a.jpg"),
            Some(&expired),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error("403", "Unauthorized", EXPIRED, "AccessDenied")
        )
    );
    let tus = wire.tus_create(Some(&expired), "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", EXPIRED)
        )
    );
    // still expired after the refresh: the app's session may come back, so it is retried later
    let adapter = remote(&server, BUCKET, expired);
    let err = adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(1, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, true), "{err}");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_fails_signature_verification() {
    let server = start().await;
    let wire = Wire::new(&server);
    let forged = make_jwt("another-secret", "service_role", 4_000_000_000);
    let why = "signature verification failed";
    let delete = wire
        .send(
            Method::DELETE,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&forged),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (400, rest_error("403", "Unauthorized", why, "AccessDenied"))
    );
    let tus = wire.tus_create(Some(&forged), "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", why)
        )
    );
    let adapter = remote(&server, BUCKET, forged);
    for len in [10, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("v.mp4", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    }
}

#[tokio::test]
async fn without_authorization_tus_routes_answer_invalid_compact_jws() {
    let server = start().await;
    let wire = Wire::new(&server);
    let tus = wire.tus_create(None, "v.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body),
        (
            400,
            tus_json_error("403", "AccessDenied", "Unauthorized", "Invalid Compact JWS")
        )
    );
    // the object routes require the header in their schema, checked before the token
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/a.jpg"),
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error(
                "400",
                "Error",
                "headers must have required property 'authorization'",
                "InvalidRequest"
            )
        )
    );
    // an empty token is no token: refused for good
    let adapter = remote(&server, BUCKET, String::new());
    let err = adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(1, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
}

#[tokio::test]
async fn a_patch_at_another_offset_is_an_upload_offset_conflict() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let location = wire.tus_location(&token, "v.mp4", 10).await;
    let patch = wire.tus_patch(&token, &location, 5, vec![1; 5], true).await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (409, "Upload-Offset conflict\n")
    );
    let head = wire.tus_head(&token, &location).await;
    assert_eq!(
        (head.status, head.header("upload-offset")),
        (200, Some("0")),
        "the upload is unchanged"
    );
}

#[tokio::test]
async fn an_unknown_upload_url_is_not_found_and_the_next_upload_starts_over() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let unknown = format!("{}/upload/resumable/0123456789abcdef", server.base_url());
    let patch = wire.tus_patch(&token, &unknown, 0, vec![1; 5], true).await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (404, "The file for this url was not found\n")
    );
    let head = wire.tus_head(&token, &unknown).await;
    assert_eq!(head.status, 404);

    let adapter = remote(&server, BUCKET, token);
    let row = upload_row("v.mp4", Some(2 * MIB));
    server.forget_next_upload();
    let err = adapter
        .upload(&row, patterned_stream(1, 2 * MIB))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::Unavailable, true), "{err}");
    adapter
        .upload(&row, patterned_stream(1, 2 * MIB))
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(1, 2 * MIB)
    );
}

#[tokio::test]
async fn head_after_the_upload_finished_reports_the_whole_length() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let location = wire.tus_location(&token, "w.mp4", 10).await;
    let patch = wire
        .tus_patch(&token, &location, 0, vec![7; 10], true)
        .await;
    assert_eq!(
        (patch.status, patch.header("upload-offset")),
        (204, Some("10"))
    );
    let head = wire.tus_head(&token, &location).await;
    assert_eq!(
        (
            head.status,
            head.header("upload-offset"),
            head.header("upload-length")
        ),
        (200, Some("10"), Some("10"))
    );

    // the last PATCH's answer is lost after every byte arrived: HEAD says the upload is done
    let adapter = SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
            .resumable(MIB, 2 * MIB)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap();
    server.interrupt_next_patch_after(2 * MIB);
    adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(3, 2 * MIB),
        )
        .await
        .unwrap();
    let stats = server.stats();
    assert_eq!(
        (stats.tus_creates, stats.tus_patches, stats.tus_heads),
        (2, 2, 2),
        "one PATCH and one HEAD per upload, nothing sent again"
    );
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(3, 2 * MIB)
    );
}

#[tokio::test]
async fn a_patch_without_upsert_over_an_existing_object_is_refused_as_existing() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let adapter = remote(&server, BUCKET, token.clone());
    adapter
        .upload(&upload_row("v.mp4", Some(10)), patterned_stream(1, 10))
        .await
        .unwrap();
    // created as an upsert, but the PATCH does not say so again
    let location = wire.tus_location(&token, "v.mp4", 10).await;
    let patch = wire
        .tus_patch(&token, &location, 0, vec![9; 10], false)
        .await;
    assert_eq!(
        (patch.status, patch.body.as_str()),
        (409, "The resource already exists")
    );
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(1, 10)
    );
    let patch = wire
        .tus_patch(&token, &location, 0, vec![9; 10], true)
        .await;
    assert_eq!(patch.status, 204, "{}", patch.body);

    // the adapter says x-upsert on every TUS request: create, PATCH and the HEAD of a resume
    server.interrupt_next_patch_after(300_000);
    adapter
        .upload(
            &upload_row("v.mp4", Some(2 * MIB)),
            patterned_stream(2, 2 * MIB),
        )
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "v.mp4").unwrap(),
        patterned_bytes(2, 2 * MIB)
    );
    let stats = server.stats();
    assert!(stats.tus_heads >= 1, "a resume happened");
    assert_eq!(
        stats.tus_without_upsert.keys().collect::<Vec<_>>(),
        vec!["PATCH"],
        "only this test's own PATCH lacked it"
    );
}

#[tokio::test]
async fn an_invalid_key_is_json_on_object_routes_and_text_on_tus() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a%23b.jpg"),
            Some(&token),
            &[("x-upsert", "true")],
            vec![1; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error("400", "InvalidKey", "Invalid key: a#b.jpg", "InvalidKey")
        )
    );
    let tus = wire.tus_create(Some(&token), "a#b.mp4", 10, true).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (400, "Invalid key: a#b.mp4")
    );
    // the adapter knows the alphabet and asks nothing
    let before = server.stats().requests;
    let adapter = remote(&server, BUCKET, token);
    for len in [3, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("a#b.jpg", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::InvalidInput, false), "{err}");
    }
    assert_eq!(server.stats().requests, before);
}

#[tokio::test]
async fn deleting_in_a_missing_bucket_is_no_such_key_and_the_adapter_reports_ok() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let delete = wire
        .send(
            Method::DELETE,
            "object/no-such-bucket/a.jpg",
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (
            400,
            rest_error("404", "not_found", "Object not found", "NoSuchKey")
        )
    );
    remote(&server, "no-such-bucket", token)
        .delete(&upload_row("a.jpg", Some(3)))
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_an_object_hidden_by_row_level_security_is_access_denied_and_it_stays() {
    let server = start().await;
    let wire = Wire::new(&server);
    remote(&server, BUCKET, server.user_token("alice"))
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let bob = server.user_token("bob");
    let delete = wire
        .send(
            Method::DELETE,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&bob),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (delete.status, delete.body),
        (
            400,
            rest_error("403", "Unauthorized", "Access denied", "AccessDenied")
        )
    );
    let err = remote(&server, BUCKET, bob)
        .delete(&upload_row("a.jpg", Some(3)))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(1, 3)
    );
}

#[tokio::test]
async fn a_missing_object_is_no_such_key() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let get = wire
        .send(
            Method::GET,
            &format!("object/authenticated/{BUCKET}/gone.jpg"),
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error("404", "not_found", "Object not found", "NoSuchKey")
        )
    );
    let adapter = remote(&server, BUCKET, token);
    let gone = upload_row("gone.jpg", Some(3));
    let err = adapter.download(&gone).await.err().unwrap();
    assert_eq!(kind(&err), (ErrorKind::NotFound, false), "{err}");
    adapter.delete(&gone).await.unwrap();
}

#[tokio::test]
async fn a_missing_bucket_is_no_such_bucket() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let get = wire
        .send(
            Method::GET,
            "object/authenticated/no-such-bucket/a.jpg",
            Some(&token),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (get.status, get.body),
        (
            400,
            rest_error(
                "404",
                "Bucket not found",
                "Bucket not found",
                "NoSuchBucket"
            )
        )
    );
    let adapter = remote(&server, "no-such-bucket", token);
    for len in [3, 2 * MIB] {
        let err = adapter
            .upload(&upload_row("a.jpg", Some(len)), patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::Config, false), "{len}: {err}");
    }
}

#[tokio::test]
async fn an_object_above_the_size_limit_is_too_large() {
    let server = SupabaseStorageServer::start(SupabaseServerOptions {
        max_object_size: 1000,
        ..SupabaseServerOptions::default()
    })
    .await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/big.jpg"),
            Some(&token),
            &[("x-upsert", "true")],
            vec![1; 2000],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "413",
                "Payload too large",
                "The object exceeded the maximum allowed size",
                "EntityTooLarge"
            )
        )
    );
    let tus = wire.tus_create(Some(&token), "big.mp4", 2000, true).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (413, "Maximum size exceeded\n")
    );
    for (threshold, chunk) in [(MIB, MIB), (1500, 1000)] {
        let adapter = SupabaseRemoteStorage::new(
            SupabaseConfig::new(server.base_url(), BUCKET, API_KEY)
                .resumable(threshold, chunk)
                .access_token_provider(StaticAccessToken(Secret::new(token.clone()))),
        )
        .unwrap();
        let err = adapter
            .upload(
                &upload_row("big.jpg", Some(2000)),
                patterned_stream(1, 2000),
            )
            .await
            .unwrap_err();
        assert_eq!(kind(&err), (ErrorKind::InvalidInput, false), "{err}");
    }
}

#[tokio::test]
async fn an_upload_without_upsert_over_an_existing_object_is_a_duplicate() {
    let server = start().await;
    let wire = Wire::new(&server);
    let token = server.token("service_role");
    let adapter = remote(&server, BUCKET, token.clone());
    adapter
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a.jpg"),
            Some(&token),
            &[],
            vec![2; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "409",
                "Duplicate",
                "The resource already exists",
                "KeyAlreadyExists"
            )
        )
    );
    let tus = wire.tus_create(Some(&token), "a.jpg", 3, false).await;
    assert_eq!(
        (tus.status, tus.body.as_str()),
        (409, "The resource already exists")
    );
    // the adapter upserts, so uploading again (a retry) overwrites
    adapter
        .upload(&upload_row("a.jpg", Some(3)), patterned_stream(3, 3))
        .await
        .unwrap();
    assert_eq!(
        server.object(BUCKET, "a.jpg").unwrap(),
        patterned_bytes(3, 3)
    );
}

#[tokio::test]
async fn overwriting_another_users_object_violates_row_level_security() {
    let server = start().await;
    let wire = Wire::new(&server);
    let rls = "new row violates row-level security policy";
    let (alice, bob) = (server.user_token("alice"), server.user_token("bob"));
    // Bob starts an upload before Alice's object exists; its PATCH comes after
    let bobs_upload = wire.tus_location(&bob, "a.mp4", 3).await;
    remote(&server, BUCKET, alice)
        .upload(&upload_row("a.mp4", Some(3)), patterned_stream(1, 3))
        .await
        .unwrap();
    let post = wire
        .send(
            Method::POST,
            &format!("object/{BUCKET}/a.mp4"),
            Some(&bob),
            &[("x-upsert", "true")],
            vec![2; 3],
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (400, rest_error("403", "Unauthorized", rls, "AccessDenied"))
    );
    let tus = wire.tus_create(Some(&bob), "a.mp4", 3, true).await;
    assert_eq!((tus.status, tus.body.as_str()), (403, rls));
    let patch = wire
        .tus_patch(&bob, &bobs_upload, 0, vec![2; 3], true)
        .await;
    assert_eq!((patch.status, patch.body.as_str()), (403, rls));
    let err = remote(&server, BUCKET, bob)
        .upload(
            &upload_row("a.mp4", Some(2 * MIB)),
            patterned_stream(2, 2 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    assert_eq!(
        server.object(BUCKET, "a.mp4").unwrap(),
        patterned_bytes(1, 3)
    );
}

#[tokio::test]
async fn creating_a_bucket_with_a_users_token_is_refused() {
    let server = start().await;
    let wire = Wire::new(&server);
    let user = server.user_token("alice");
    let post = wire
        .send(
            Method::POST,
            "bucket",
            Some(&user),
            &[("content-type", "application/json")],
            br#"{"id":"photos","name":"photos","public":false}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (post.status, post.body),
        (
            400,
            rest_error(
                "403",
                "Unauthorized",
                "new row violates row-level security policy",
                "AccessDenied"
            )
        )
    );
    let err = remote(&server, "photos", user)
        .create_bucket_if_missing()
        .await
        .unwrap_err();
    assert_eq!(kind(&err), (ErrorKind::PermissionDenied, false), "{err}");
    // an existing bucket is a duplicate, which the adapter takes as done
    let admin = server.token("service_role");
    let again = wire
        .send(
            Method::POST,
            "bucket",
            Some(&admin),
            &[("content-type", "application/json")],
            br#"{"name":"attachments"}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (again.status, again.body),
        (
            400,
            rest_error(
                "409",
                "Duplicate",
                "The resource already exists",
                "BucketAlreadyExists"
            )
        )
    );
    remote(&server, BUCKET, admin)
        .create_bucket_if_missing()
        .await
        .unwrap();
}
