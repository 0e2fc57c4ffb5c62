//! Test servers for the S3 adapter: s3s-fs in process (hermetic, on every `cargo test`), and an
//! external S3-compatible server (SeaweedFS from `cargo xtask test`) named by environment
//! variables.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use attachments_s3::{MultipartSettings, S3Config, S3Credentials, S3RemoteStorage};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub const ACCESS_KEY: &str = "attachments-test-key";
pub const SECRET_KEY: &str = "attachments-test-secret";

/// What an in-process server saw of one request.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, e.g. `/bucket/key?partNumber=1&uploadId=...`.
    pub target: String,
    pub headers: http::HeaderMap,
    /// Bytes of the body as sent (aws-chunked framing included).
    pub body_len: usize,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// An upload of a whole object (`PutObject`) or of a part (`UploadPart`) under `key`.
    pub fn uploads(&self, key: &str) -> bool {
        let path = self.target.split('?').next().unwrap_or_default();
        self.method == "PUT" && path.ends_with(&format!("/{key}"))
    }

    pub fn is_part(&self) -> bool {
        self.target.contains("partNumber=")
    }
}

/// Refusals the in-process server adds in front of s3s-fs, each one what a real server does
/// (Garage refuses aws-chunked bodies with signed trailers and any region but its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Strictness {
    /// Answer `400 InvalidRequest "Bad request: Invalid payload signature"` to aws-chunked
    /// bodies.
    pub refuse_aws_chunked: bool,
    /// Answer `400 InvalidRequest` to `UNSIGNED-PAYLOAD` bodies.
    pub refuse_unsigned_payload: bool,
    /// Accept only requests signed for this region; others get
    /// `400 AuthorizationHeaderMalformed`, or a bare 400 to a `HEAD`.
    pub region: Option<&'static str>,
    /// Flip the first byte of every upload body before storing it (a body damaged on the
    /// way in a way TCP did not notice).
    pub damage_bodies: bool,
}

/// An s3s-fs server on a loopback port, storing under a directory; stops when dropped.
pub struct InProcessS3 {
    pub endpoint: String,
    tasks: JoinSet<()>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl InProcessS3 {
    pub async fn start(root: &Path) -> InProcessS3 {
        InProcessS3::start_strict(root, Strictness::default()).await
    }

    pub async fn start_strict(root: &Path, strictness: Strictness) -> InProcessS3 {
        std::fs::create_dir_all(root).unwrap();
        let mut builder = S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).unwrap());
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // connections live in their own set, dropped (closed) with the accept loop
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                let recorder = Arc::clone(&recorder);
                let handler = service_fn(move |request: http::Request<Incoming>| {
                    let service = service.clone();
                    let recorder = Arc::clone(&recorder);
                    async move { handle(&service, &recorder, strictness, request).await }
                });
                connections.spawn(async move {
                    let _ = ConnectionBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        InProcessS3 {
            endpoint,
            tasks,
            seen,
        }
    }

    /// The requests seen so far, oldest first; forgets them.
    pub fn take_requests(&self) -> Vec<SeenRequest> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Stop answering: the listener and every open connection close.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }

    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config::new(bucket)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials(S3Credentials::new(ACCESS_KEY, SECRET_KEY))
    }

    /// A storage on a fresh bucket of this server.
    pub async fn storage(&self, bucket: &str) -> S3RemoteStorage {
        storage_for(self.config(bucket)).await
    }
}

/// Record the request, refuse it as `strictness` says, or hand it to s3s-fs.
async fn handle(
    service: &S3Service,
    recorder: &Mutex<Vec<SeenRequest>>,
    strictness: Strictness,
    request: http::Request<Incoming>,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    let (parts, body) = request.into_parts();
    // read the whole body first, so a refusal is an answer rather than a broken connection
    let Ok(body) = body.collect().await.map(|body| body.to_bytes()) else {
        return Ok(refusal(400, "IncompleteBody", "the body broke off", false));
    };
    let seen = SeenRequest {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body_len: body.len(),
    };
    recorder.lock().unwrap().push(seen.clone());
    let is_head = parts.method == http::Method::HEAD;
    if let Some(region) = strictness.region {
        let scope = format!("/{region}/s3/aws4_request");
        if !seen
            .header("authorization")
            .is_some_and(|auth| auth.contains(&scope))
        {
            return Ok(refusal(
                400,
                "AuthorizationHeaderMalformed",
                &format!("unexpected scope, expected region {region}"),
                is_head,
            ));
        }
    }
    if strictness.refuse_aws_chunked
        && seen
            .header("content-encoding")
            .is_some_and(|e| e.contains("aws-chunked"))
    {
        return Ok(refusal(
            400,
            "InvalidRequest",
            "Bad request: Invalid payload signature",
            is_head,
        ));
    }
    if strictness.refuse_unsigned_payload
        && seen.method == "PUT"
        && seen.header("x-amz-content-sha256") == Some("UNSIGNED-PAYLOAD")
    {
        return Ok(refusal(
            400,
            "InvalidRequest",
            "unsigned payloads are not accepted",
            is_head,
        ));
    }
    let body = if strictness.damage_bodies && seen.method == "PUT" && !body.is_empty() {
        let mut damaged = body.to_vec();
        damaged[0] ^= 0xff;
        Bytes::from(damaged)
    } else {
        body
    };
    service
        .call(http::Request::from_parts(parts, s3s::Body::from(body)))
        .await
}

/// An S3 error response; a `HEAD` gets none of the XML, as from real servers.
fn refusal(status: u16, code: &str, message: &str, bare: bool) -> http::Response<s3s::Body> {
    let body = if bare {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body))
        .unwrap()
}

pub async fn storage_for(config: S3Config) -> S3RemoteStorage {
    let storage = S3RemoteStorage::from_config(config).await.unwrap();
    storage.create_bucket_if_missing().await.unwrap();
    storage
}

/// Small parts so multipart paths run on small files: 5 MiB parts from 5 MiB on.
pub fn small_parts() -> MultipartSettings {
    MultipartSettings {
        threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        part_concurrency: 3,
    }
}

/// The external server from `ATTACHMENTS_TEST_S3_*`, if configured. Without it, say so; under
/// `CI=true` that is a failure, never a silent pass.
pub fn external_config() -> Option<S3Config> {
    if let Some(config) = S3Config::from_env("ATTACHMENTS_TEST_S3") {
        return Some(config);
    }
    let message = "ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY are not all set: \
                   the tests against an external S3 server did not run (cargo xtask test sets them)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("{message}");
    None
}
