//! A loopback server speaking the Supabase Storage API (server 1.x, under `/storage/v1`), for
//! the Supabase adapter's tests. The real server is a Node service with a Postgres database
//! that this project cannot install from its registries; this one implements the documented
//! surface the adapter uses, with the real status codes and error bodies:
//!
//! - `POST /bucket` (`{"name": ...}`) creates a bucket;
//! - `POST /object/{bucket}/{path}`: raw body upload; `x-upsert: true` overwrites, otherwise an
//!   existing object is `409 Duplicate`; `Content-Length` above the size limit is `413`;
//! - `GET /object/authenticated/{bucket}/{path}`: the object;
//! - `DELETE /object/{bucket}/{path}`;
//! - TUS 1.0.0 at `/upload/resumable`: `POST` (create), `PATCH` (append at `Upload-Offset`),
//!   `HEAD` (current offset); errors are plain-text bodies with real status codes;
//! - every request needs `Authorization: Bearer <jwt>`, an HS256 JWT signed with the server's
//!   secret and not expired.
//!
//! `/object` errors come back as HTTP 400 (500 for real 500s) with the real code in the JSON
//! body, as the real server does: `{"statusCode":"404","error":"not_found",
//! "message":"Object not found","code":"NoSuchKey"}`.

mod jwt;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use jwt::make_jwt;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct SupabaseServerOptions {
    /// The HS256 secret JWTs must be signed with.
    pub jwt_secret: String,
    /// The largest object accepted, in bytes.
    pub max_object_size: u64,
    /// Buckets that exist from the start.
    pub buckets: Vec<String>,
}

impl Default for SupabaseServerOptions {
    fn default() -> Self {
        SupabaseServerOptions {
            jwt_secret: "super-secret-jwt-token-with-at-least-32-characters".to_owned(),
            max_object_size: 1 << 40,
            buckets: vec!["attachments".to_owned()],
        }
    }
}

/// What the server has seen, for assertions.
#[derive(Debug, Default, Clone)]
pub struct SupabaseServerStats {
    /// Simple uploads (`POST /object`).
    pub object_posts: u64,
    /// TUS uploads created.
    pub tus_creates: u64,
    /// TUS `PATCH` requests.
    pub tus_patches: u64,
    /// TUS `HEAD` requests.
    pub tus_heads: u64,
    /// Requests refused for their token.
    pub auth_refusals: u64,
    /// `apikey` header values received.
    pub api_keys: HashSet<String>,
}

#[derive(Debug)]
struct TusUpload {
    bucket: String,
    path: String,
    length: u64,
    content_type: Option<String>,
    data: BytesMut,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashSet<String>,
    objects: HashMap<(String, String), (Bytes, Option<String>)>,
    uploads: HashMap<String, TusUpload>,
    stats: SupabaseServerStats,
    /// Cut the connection of the next PATCH after this many body bytes.
    interrupt_next_patch_after: Option<u64>,
}

/// A running server; stops when dropped.
pub struct SupabaseStorageServer {
    base_url: String,
    options: SupabaseServerOptions,
    state: Arc<Mutex<State>>,
    _tasks: JoinSet<()>,
}

impl SupabaseStorageServer {
    /// Start on a free loopback port.
    pub async fn start(options: SupabaseServerOptions) -> SupabaseStorageServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base_url = format!(
            "http://{}/storage/v1",
            listener.local_addr().expect("local address")
        );
        let state = Arc::new(Mutex::new(State {
            buckets: options.buckets.iter().cloned().collect(),
            ..State::default()
        }));
        let mut tasks = JoinSet::new();
        let handler = Handler {
            options: options.clone(),
            state: Arc::clone(&state),
            base_url: base_url.clone(),
        };
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let handler = handler.clone();
                        async move { handler.handle(request).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        SupabaseStorageServer {
            base_url,
            options,
            state,
            _tasks: tasks,
        }
    }

    /// The base URL, including `/storage/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A valid token (expiring in an hour) for `role`.
    pub fn token(&self, role: &str) -> String {
        make_jwt(&self.options.jwt_secret, role, jwt::now() + 3600)
    }

    /// A correctly signed token that expired a minute ago.
    pub fn expired_token(&self) -> String {
        make_jwt(&self.options.jwt_secret, "authenticated", jwt::now() - 60)
    }

    /// The stored object, if any.
    pub fn object(&self, bucket: &str, path: &str) -> Option<Bytes> {
        let state = self.state.lock().expect("lock");
        state
            .objects
            .get(&(bucket.to_owned(), path.to_owned()))
            .map(|(bytes, _)| bytes.clone())
    }

    /// The stored object's content type, if any.
    pub fn content_type(&self, bucket: &str, path: &str) -> Option<String> {
        let state = self.state.lock().expect("lock");
        state
            .objects
            .get(&(bucket.to_owned(), path.to_owned()))
            .and_then(|(_, content_type)| content_type.clone())
    }

    /// Counters of what the server has seen.
    pub fn stats(&self) -> SupabaseServerStats {
        self.state.lock().expect("lock").stats.clone()
    }

    /// Cut the connection of the next TUS `PATCH` after `bytes` of its body were received
    /// (and kept, as a TUS server does): the client must ask `HEAD` where to resume.
    pub fn interrupt_next_patch_after(&self, bytes: u64) {
        self.state.lock().expect("lock").interrupt_next_patch_after = Some(bytes);
    }
}

type Reply = Response<Full<Bytes>>;

#[derive(Clone)]
struct Handler {
    options: SupabaseServerOptions,
    state: Arc<Mutex<State>>,
    base_url: String,
}

/// Why a request ends early: a reply to send, or a connection to cut.
enum Stop {
    Reply(Box<Reply>),
    Cut,
}

impl From<Reply> for Stop {
    fn from(reply: Reply) -> Self {
        Stop::Reply(Box::new(reply))
    }
}

impl Handler {
    async fn handle(&self, request: Request<Incoming>) -> Result<Reply, std::io::Error> {
        match self.route(request).await {
            Ok(reply) => Ok(reply),
            Err(Stop::Reply(reply)) => Ok(*reply),
            Err(Stop::Cut) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection cut on purpose",
            )),
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Result<Reply, Stop> {
        let path = request.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/storage/v1/") else {
            return Ok(text(StatusCode::NOT_FOUND, "Route not found"));
        };
        let rest = percent_decode(rest).ok_or_else(|| {
            object_error(
                "400",
                "Invalid key",
                "InvalidKey",
                "invalid percent-encoding",
            )
        })?;
        if let Some(key) = request
            .headers()
            .get("apikey")
            .and_then(|v| v.to_str().ok())
        {
            self.state
                .lock()
                .expect("lock")
                .stats
                .api_keys
                .insert(key.to_owned());
        }
        let is_tus = rest.starts_with("upload/resumable");
        self.authorize(&request, is_tus)?;
        let method = request.method().clone();
        if is_tus {
            let id = rest
                .strip_prefix("upload/resumable")
                .unwrap_or("")
                .trim_start_matches('/')
                .to_owned();
            return match (method, id.is_empty()) {
                (Method::POST, true) => self.tus_create(&request),
                (Method::PATCH, false) => self.tus_patch(&id, request).await,
                (Method::HEAD, false) => self.tus_head(&id),
                _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")),
            };
        }
        if method == Method::POST && rest == "bucket" {
            return self.create_bucket(request).await;
        }
        if let Some(target) = rest.strip_prefix("object/authenticated/")
            && method == Method::GET
        {
            let (bucket, key) = split_target(target)?;
            return self.get_object(&bucket, &key);
        }
        if let Some(target) = rest.strip_prefix("object/") {
            let (bucket, key) = split_target(target)?;
            return match method {
                Method::POST => self.post_object(&bucket, &key, request).await,
                Method::DELETE => self.delete_object(&bucket, &key),
                _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")),
            };
        }
        Ok(text(StatusCode::NOT_FOUND, "Route not found"))
    }

    fn authorize(&self, request: &Request<Incoming>, is_tus: bool) -> Result<(), Stop> {
        let refuse = |status: &str, code: &str, message: &str| -> Stop {
            self.state.lock().expect("lock").stats.auth_refusals += 1;
            if is_tus {
                let http = if status == "400" {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                text(http, message).into()
            } else {
                object_error(status, "Unauthorized", code, message).into()
            }
        };
        let Some(header) = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        else {
            return Err(refuse(
                "400",
                "InvalidRequest",
                "headers must have required property 'authorization'",
            ));
        };
        let token = header.strip_prefix("Bearer ").unwrap_or(header);
        match jwt::verify(&self.options.jwt_secret, token) {
            jwt::Verdict::Valid => Ok(()),
            jwt::Verdict::Expired => Err(refuse("403", "AccessDenied", "jwt expired")),
            jwt::Verdict::Invalid(why) => Err(refuse("403", "AccessDenied", &why)),
        }
    }

    async fn create_bucket(&self, request: Request<Incoming>) -> Result<Reply, Stop> {
        let body = read_body(request.into_body(), None).await?;
        let name = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .ok_or_else(|| object_error("400", "Error", "InvalidRequest", "body must have name"))?;
        let mut state = self.state.lock().expect("lock");
        if !state.buckets.insert(name.clone()) {
            return Err(object_error(
                "409",
                "Duplicate",
                "BucketAlreadyExists",
                "The resource already exists",
            )
            .into());
        }
        Ok(json(StatusCode::OK, serde_json::json!({ "name": name })))
    }

    fn check_bucket(&self, bucket: &str) -> Result<(), Stop> {
        if self.state.lock().expect("lock").buckets.contains(bucket) {
            Ok(())
        } else {
            Err(object_error(
                "404",
                "Bucket not found",
                "NoSuchBucket",
                "Bucket not found",
            )
            .into())
        }
    }

    async fn post_object(
        &self,
        bucket: &str,
        key: &str,
        request: Request<Incoming>,
    ) -> Result<Reply, Stop> {
        self.check_bucket(bucket)?;
        let headers = request.headers();
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let content_type = header(headers, "content-type");
        // as on the real server, the limit is checked against Content-Length when one is sent
        if let Some(length) = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
            && length > self.options.max_object_size
        {
            return Err(too_large().into());
        }
        let body = read_body(request.into_body(), None).await?;
        let mut state = self.state.lock().expect("lock");
        state.stats.object_posts += 1;
        let id = (bucket.to_owned(), key.to_owned());
        if state.objects.contains_key(&id) && !upsert {
            return Err(object_error(
                "409",
                "Duplicate",
                "KeyAlreadyExists",
                "The resource already exists",
            )
            .into());
        }
        state.objects.insert(id, (body, content_type));
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "Key": format!("{bucket}/{key}"), "Id": uuid::Uuid::new_v4().to_string() }),
        ))
    }

    fn get_object(&self, bucket: &str, key: &str) -> Result<Reply, Stop> {
        self.check_bucket(bucket)?;
        let state = self.state.lock().expect("lock");
        let Some((bytes, content_type)) = state.objects.get(&(bucket.to_owned(), key.to_owned()))
        else {
            return Err(not_found().into());
        };
        let mut reply = Response::new(Full::new(bytes.clone()));
        if let Some(content_type) = content_type
            && let Ok(value) = content_type.parse()
        {
            reply.headers_mut().insert("content-type", value);
        }
        Ok(reply)
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<Reply, Stop> {
        self.check_bucket(bucket)?;
        let mut state = self.state.lock().expect("lock");
        if state
            .objects
            .remove(&(bucket.to_owned(), key.to_owned()))
            .is_none()
        {
            return Err(not_found().into());
        }
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "message": "Successfully deleted" }),
        ))
    }

    fn tus_create(&self, request: &Request<Incoming>) -> Result<Reply, Stop> {
        let headers = request.headers();
        if header(headers, "tus-resumable").as_deref() != Some("1.0.0") {
            return Err(text(StatusCode::PRECONDITION_FAILED, "Unsupported TUS version").into());
        }
        let length = header(headers, "upload-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "Upload-Length required"))?;
        if length > self.options.max_object_size {
            return Err(text(StatusCode::PAYLOAD_TOO_LARGE, "Maximum size exceeded").into());
        }
        let metadata =
            parse_tus_metadata(header(headers, "upload-metadata").as_deref().unwrap_or(""));
        let (Some(bucket), Some(path)) = (metadata.get("bucketName"), metadata.get("objectName"))
        else {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Upload-Metadata needs bucketName and objectName",
            )
            .into());
        };
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let mut state = self.state.lock().expect("lock");
        if !state.buckets.contains(bucket) {
            return Err(text(StatusCode::NOT_FOUND, "Bucket not found").into());
        }
        if !upsert && state.objects.contains_key(&(bucket.clone(), path.clone())) {
            return Err(text(StatusCode::CONFLICT, "The resource already exists").into());
        }
        state.stats.tus_creates += 1;
        let id = uuid::Uuid::new_v4().simple().to_string();
        state.uploads.insert(
            id.clone(),
            TusUpload {
                bucket: bucket.clone(),
                path: path.clone(),
                length,
                content_type: metadata.get("contentType").cloned(),
                data: BytesMut::new(),
            },
        );
        let mut reply = text(StatusCode::CREATED, "");
        let location = format!("{}/upload/resumable/{id}", self.base_url);
        reply
            .headers_mut()
            .insert("location", location.parse().expect("a valid header"));
        reply
            .headers_mut()
            .insert("tus-resumable", "1.0.0".parse().expect("a valid header"));
        Ok(reply)
    }

    async fn tus_patch(&self, id: &str, request: Request<Incoming>) -> Result<Reply, Stop> {
        let headers = request.headers();
        if header(headers, "content-type").as_deref() != Some("application/offset+octet-stream") {
            return Err(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/offset+octet-stream",
            )
            .into());
        }
        let offset = header(headers, "upload-offset")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "Upload-Offset required"))?;
        let (current, length) = {
            let mut state = self.state.lock().expect("lock");
            state.stats.tus_patches += 1;
            let upload = state
                .uploads
                .get(id)
                .ok_or_else(|| text(StatusCode::NOT_FOUND, "Upload not found"))?;
            (upload.data.len() as u64, upload.length)
        };
        if offset != current {
            return Err(text(StatusCode::CONFLICT, "Upload-Offset does not match").into());
        }
        let cut_after = self
            .state
            .lock()
            .expect("lock")
            .interrupt_next_patch_after
            .take();
        let body = read_body(request.into_body(), cut_after).await;
        let (received, cut) = match body {
            Ok(bytes) => (bytes, false),
            Err(Stop::Cut) => (Bytes::new(), true),
            Err(stop) => return Err(stop),
        };
        let mut state = self.state.lock().expect("lock");
        let upload = state
            .uploads
            .get_mut(id)
            .ok_or_else(|| text(StatusCode::NOT_FOUND, "Upload not found"))?;
        if cut {
            return Err(Stop::Cut);
        }
        if upload.data.len() as u64 + received.len() as u64 > length {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Upload exceeds Upload-Length",
            )
            .into());
        }
        upload.data.extend_from_slice(&received);
        let new_offset = upload.data.len() as u64;
        if new_offset == length {
            let done = state.uploads.remove(id).expect("present");
            state.objects.insert(
                (done.bucket, done.path),
                (done.data.freeze(), done.content_type),
            );
        }
        let mut reply = Response::new(Full::new(Bytes::new()));
        *reply.status_mut() = StatusCode::NO_CONTENT;
        reply.headers_mut().insert(
            "upload-offset",
            new_offset.to_string().parse().expect("a number"),
        );
        reply
            .headers_mut()
            .insert("tus-resumable", "1.0.0".parse().expect("a valid header"));
        Ok(reply)
    }

    fn tus_head(&self, id: &str) -> Result<Reply, Stop> {
        let mut state = self.state.lock().expect("lock");
        state.stats.tus_heads += 1;
        let upload = state
            .uploads
            .get(id)
            .ok_or_else(|| text(StatusCode::NOT_FOUND, "Upload not found"))?;
        let mut reply = Response::new(Full::new(Bytes::new()));
        let headers = reply.headers_mut();
        headers.insert(
            "upload-offset",
            upload.data.len().to_string().parse().expect("a number"),
        );
        headers.insert(
            "upload-length",
            upload.length.to_string().parse().expect("a number"),
        );
        headers.insert("cache-control", "no-store".parse().expect("a valid header"));
        headers.insert("tus-resumable", "1.0.0".parse().expect("a valid header"));
        Ok(reply)
    }
}

/// Read a request body; with `cut_after`, keep that many bytes and then report a cut
/// connection (the bytes kept are written by the caller before it cuts).
async fn read_body(mut body: Incoming, cut_after: Option<u64>) -> Result<Bytes, Stop> {
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Stop::Cut)?;
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
            if cut_after.is_some_and(|limit| data.len() as u64 >= limit) {
                return Err(Stop::Cut);
            }
        }
    }
    Ok(data.freeze())
}

fn split_target(target: &str) -> Result<(String, String), Stop> {
    match target.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            if key
                .split('/')
                .any(|part| part == ".." || part == "." || part.is_empty())
            {
                return Err(object_error(
                    "400",
                    "Invalid key",
                    "InvalidKey",
                    &format!("Invalid key: {key}"),
                )
                .into());
            }
            Ok((bucket.to_owned(), key.to_owned()))
        }
        _ => Err(object_error("400", "Invalid key", "InvalidKey", "Invalid key").into()),
    }
}

fn header(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn parse_tus_metadata(header: &str) -> HashMap<String, String> {
    header
        .split(',')
        .filter_map(|pair| {
            let mut parts = pair.trim().splitn(2, ' ');
            let key = parts.next()?.to_owned();
            let value = STANDARD.decode(parts.next().unwrap_or("")).ok()?;
            Some((key, String::from_utf8(value).ok()?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "content-type",
        "text/plain".parse().expect("a valid header"),
    );
    reply
}

fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a valid header"),
    );
    reply
}

/// An `/object` route error: HTTP 400 (500 only for real 500s) with the real status in the body.
fn object_error(status: &str, error: &str, code: &str, message: &str) -> Reply {
    let http = if status.starts_with('5') {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    json(
        http,
        serde_json::json!({ "statusCode": status, "error": error, "message": message, "code": code }),
    )
}

fn not_found() -> Reply {
    object_error("404", "not_found", "NoSuchKey", "Object not found")
}

fn too_large() -> Reply {
    object_error(
        "413",
        "Payload too large",
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
    )
}
