//! A loopback server speaking the Supabase Storage API (server 1.x, under `/storage/v1`), for
//! the Supabase adapter's tests. The real server is a Node service with a Postgres database
//! that this project cannot install from its registries; this one implements the surface the
//! adapter uses, with the status codes and error bodies the real server's source produces
//! (`src/http/error-handler.ts`, `src/http/routes/tus/`, `src/storage/limits.ts`,
//! `src/http/plugins/jwt.ts`):
//!
//! - `POST /bucket` (`{"name": ...}`) creates a bucket (service role only, as under the
//!   default row-level security of `storage.buckets`);
//! - `POST /object/{bucket}/{path}`: raw body upload; `x-upsert: true` overwrites, otherwise an
//!   existing object is `409 Duplicate`; `Content-Length` above the size limit is `413`;
//! - `GET /object/authenticated/{bucket}/{path}`: the object;
//! - `DELETE /object/{bucket}/{path}`: a missing object (in a missing bucket too) is
//!   `NoSuchKey`;
//! - TUS 1.0.0 at `/upload/resumable`: `POST` (create; `Location` is an absolute URL),
//!   `PATCH` (append at `Upload-Offset`), `HEAD` (current offset; a finished upload still
//!   answers, with `Upload-Offset` equal to `Upload-Length`). The real server reads `x-upsert`
//!   on every request, so a `PATCH` without it over an existing object is `409 The resource
//!   already exists`. Errors of the TUS handler are text bodies with real status codes:
//!   `409 Upload-Offset conflict`, `404 The file for this url was not found` (the TUS
//!   server's own messages end in a newline, the storage's errors it relays do not);
//! - every request needs `Authorization: Bearer <jwt>`, an HS256 JWT signed with the server's
//!   secret and not expired. A refused token is `AccessDenied` in a JSON body on every route,
//!   TUS included (the real server checks the JWT before the TUS handler runs): an expired
//!   one says `"exp" claim timestamp check failed`, one signed with another secret
//!   `signature verification failed`, as `jose` does. Without the header, the `/object` and
//!   `/bucket` routes fail their schema (`InvalidRequest`), the TUS routes verify an empty
//!   token (`Invalid Compact JWS`).
//! - Object keys must match the real server's alphabet ([`is_valid_key`]), else `InvalidKey`
//!   (JSON on `/object`, `400 Invalid key: ...` as text on TUS).
//! - Row-level security with the usual "own objects" policy: an object belongs to the `sub`
//!   of the token that wrote it. A token of another `sub` does not see it (`NoSuchKey`), may
//!   not overwrite it (`AccessDenied`, "new row violates row-level security policy") nor
//!   delete it (`AccessDenied`, "Access denied"; it stays). `service_role` bypasses the
//!   policy. A token without `sub` owns what it wrote without one.
//!
//! JSON errors come back as HTTP 400 (500 for real 500s, the real status for 429) with the
//! real code in the body, as the real server does, and with its key order: the `/object` and
//! `/bucket` routes serialize through their response schema, `{"statusCode":"404",
//! "error":"not_found","message":"Object not found","code":"NoSuchKey"}`; the TUS routes have
//! none and keep the rendered order, `{"statusCode":"403","code":"AccessDenied",
//! "error":"Unauthorized","message":"..."}`.

mod handler;
mod jwt;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use handler::Handler;
pub use jwt::{make_jwt, make_user_jwt};

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
    /// Every request received, on any route.
    pub requests: u64,
    /// Simple uploads (`POST /object`).
    pub object_posts: u64,
    /// TUS uploads created.
    pub tus_creates: u64,
    /// TUS `PATCH` requests.
    pub tus_patches: u64,
    /// TUS `HEAD` requests.
    pub tus_heads: u64,
    /// TUS requests without `x-upsert: true`, by method (`POST`, `PATCH`, `HEAD`). The real
    /// server reads the header on every request of an upload, not only on its creation.
    pub tus_without_upsert: HashMap<String, u64>,
    /// Requests refused for their token (invalid or expired).
    pub auth_refusals: u64,
    /// Requests refused as expired, by method (`GET`, `POST`, `PATCH`, `HEAD`, `DELETE`).
    pub expired_refusals: HashMap<String, u64>,
    /// `apikey` header values received.
    pub api_keys: HashSet<String>,
    /// `Authorization` header values received.
    pub authorizations: HashSet<String>,
    /// Bytes of an oversized error body (see
    /// [`answer_next_with_error_body`](SupabaseStorageServer::answer_next_with_error_body))
    /// the server produced before the client stopped reading.
    pub error_body_bytes_sent: u64,
}

#[derive(Debug)]
struct StoredObject {
    bytes: Bytes,
    content_type: Option<String>,
    /// The `sub` of the token that wrote it.
    owner: Option<String>,
}

#[derive(Debug)]
struct TusUpload {
    bucket: String,
    path: String,
    length: u64,
    content_type: Option<String>,
    /// What arrived so far; emptied into the object when the upload finishes.
    data: BytesMut,
    /// All `length` bytes arrived and became the object; the upload still answers `HEAD`.
    finished: bool,
}

impl TusUpload {
    /// Where the next `PATCH` must start.
    fn offset(&self) -> u64 {
        if self.finished {
            self.length
        } else {
            self.data.len() as u64
        }
    }
}

/// A one-shot misbehaviour for the next request.
#[derive(Debug)]
enum NextAnswer {
    /// A `500` whose body has this many bytes.
    HugeErrorBody(u64),
    /// A `307` to this URL.
    Redirect(String),
}

#[derive(Debug, Default)]
struct State {
    buckets: HashSet<String>,
    objects: HashMap<(String, String), StoredObject>,
    uploads: HashMap<String, TusUpload>,
    stats: SupabaseServerStats,
    /// Cut the connection of the next PATCH after this many body bytes.
    interrupt_next_patch_after: Option<u64>,
    next_answer: Option<NextAnswer>,
    /// Drop the next TUS upload as soon as it is created.
    forget_next_upload: bool,
    /// Where TUS `Location` headers point, when not to this server.
    tus_location_origin: Option<String>,
}

/// A running server; stops when dropped.
pub struct SupabaseStorageServer {
    base_url: String,
    origin: String,
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
        let origin = format!("http://{}", listener.local_addr().expect("local address"));
        let base_url = format!("{origin}/storage/v1");
        let state = Arc::new(Mutex::new(State {
            buckets: options.buckets.iter().cloned().collect(),
            ..State::default()
        }));
        let handler = Handler::new(options.clone(), Arc::clone(&state), origin.clone());
        let mut tasks = JoinSet::new();
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
            origin,
            options,
            state,
            _tasks: tasks,
        }
    }

    /// The base URL, including `/storage/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Scheme, host and port: `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A valid token (expiring in an hour) for `role`, without a user (`sub`).
    pub fn token(&self, role: &str) -> String {
        make_jwt(&self.options.jwt_secret, role, jwt::now() + 3600)
    }

    /// A valid token (expiring in an hour) of the signed-in user `user_id`.
    pub fn user_token(&self, user_id: &str) -> String {
        make_user_jwt(&self.options.jwt_secret, user_id, jwt::now() + 3600)
    }

    /// A correctly signed token that expired a minute ago.
    pub fn expired_token(&self) -> String {
        make_jwt(&self.options.jwt_secret, "authenticated", jwt::now() - 60)
    }

    /// The stored object, if any (whoever owns it).
    pub fn object(&self, bucket: &str, path: &str) -> Option<Bytes> {
        let state = self.state.lock().expect("lock");
        state
            .objects
            .get(&(bucket.to_owned(), path.to_owned()))
            .map(|object| object.bytes.clone())
    }

    /// The stored object's content type, if any.
    pub fn content_type(&self, bucket: &str, path: &str) -> Option<String> {
        let state = self.state.lock().expect("lock");
        state
            .objects
            .get(&(bucket.to_owned(), path.to_owned()))
            .and_then(|object| object.content_type.clone())
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

    /// Answer the next request, whatever it is, with a `500` whose body is `bytes` long,
    /// produced as the client reads it (a misbehaving proxy's error page).
    pub fn answer_next_with_error_body(&self, bytes: u64) {
        self.state.lock().expect("lock").next_answer = Some(NextAnswer::HugeErrorBody(bytes));
    }

    /// From now on, point the `Location` of new TUS uploads to `origin` (`scheme://host:port`)
    /// instead of this server: the real server builds it from `STORAGE_PUBLIC_URL` or
    /// forwarded headers, which a misconfigured deployment can point elsewhere.
    pub fn put_tus_uploads_on(&self, origin: impl Into<String>) {
        self.state.lock().expect("lock").tus_location_origin = Some(origin.into());
    }

    /// Forget the next TUS upload right after answering its creation, as the real server does
    /// when its cleanup removes an upload before the client's first `PATCH` arrives: every
    /// request to its URL then answers `404 The file for this url was not found`.
    pub fn forget_next_upload(&self) {
        self.state.lock().expect("lock").forget_next_upload = true;
    }

    /// Answer the next request, whatever it is, with `307 Temporary Redirect` to `url`.
    pub fn redirect_next_to(&self, url: impl Into<String>) {
        self.state.lock().expect("lock").next_answer = Some(NextAnswer::Redirect(url.into()));
    }
}

/// Whether the real server accepts `key` as an object name (`src/storage/limits.ts`): ASCII
/// letters and digits and ``_/!.*'() &$=@;:+,?-``, nothing else (no `%`, `#`, `~`, `[`, no
/// non-ASCII).
///
/// ```
/// use attachments_testkit::supabase_server::is_valid_key;
/// assert!(is_valid_key("user-1/photo (2).jpg"));
/// assert!(!is_valid_key("user-1/été.jpg"));
/// ```
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/!.*'() &$=@;:+,?-".contains(c))
}
