//! The routes of the loopback Supabase Storage server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::jwt::{self, Caller};
use super::{NextAnswer, State, StoredObject, SupabaseServerOptions, TusUpload, is_valid_key};

pub(super) type Reply = Response<BoxBody<Bytes, std::io::Error>>;

const RLS_VIOLATION: &str = "new row violates row-level security policy";

#[derive(Clone)]
pub(super) struct Handler {
    options: SupabaseServerOptions,
    state: Arc<Mutex<State>>,
    /// This server's `scheme://host:port`.
    origin: String,
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
    pub(super) fn new(
        options: SupabaseServerOptions,
        state: Arc<Mutex<State>>,
        origin: String,
    ) -> Self {
        Handler {
            options,
            state,
            origin,
        }
    }

    pub(super) async fn handle(&self, request: Request<Incoming>) -> Result<Reply, std::io::Error> {
        match self.route(request).await {
            Ok(reply) => Ok(reply),
            Err(Stop::Reply(reply)) => Ok(*reply),
            Err(Stop::Cut) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "connection cut on purpose",
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock")
    }

    async fn route(&self, request: Request<Incoming>) -> Result<Reply, Stop> {
        let next_answer = {
            let mut state = self.lock();
            state.stats.requests += 1;
            let headers = request.headers();
            if let Some(key) = header(headers, "apikey") {
                state.stats.api_keys.insert(key);
            }
            if let Some(authorization) = header(headers, "authorization") {
                state.stats.authorizations.insert(authorization);
            }
            state.next_answer.take()
        };
        match next_answer {
            Some(NextAnswer::HugeErrorBody(len)) => return Ok(self.huge_error(len)),
            Some(NextAnswer::Redirect(url)) => {
                let mut reply = text(StatusCode::TEMPORARY_REDIRECT, "");
                reply
                    .headers_mut()
                    .insert("location", url.parse().expect("a valid header"));
                return Ok(reply);
            }
            None => {}
        }
        let path = request.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/storage/v1/") else {
            return Ok(text(StatusCode::NOT_FOUND, "Route not found"));
        };
        let rest = percent_decode(rest).ok_or_else(|| invalid_key(""))?;
        let method = request.method().clone();
        if let Some(id) = rest.strip_prefix("upload/resumable") {
            let id = id.trim_start_matches('/').to_owned();
            if header(request.headers(), "x-upsert").as_deref() != Some("true") {
                *self
                    .lock()
                    .stats
                    .tus_without_upsert
                    .entry(method.to_string())
                    .or_default() += 1;
            }
            let caller = self.authorize(&request, Dialect::Tus)?;
            tus_protocol_check(&request)?;
            return match (method, id.is_empty()) {
                (Method::POST, true) => self.tus_create(&request, &caller),
                (Method::PATCH, false) => self.tus_patch(&id, request, &caller).await,
                (Method::HEAD, false) => self.tus_head(&id),
                _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")),
            };
        }
        let caller = self.authorize(&request, Dialect::Rest)?;
        if method == Method::POST && rest == "bucket" {
            return self.create_bucket(request, &caller).await;
        }
        if let Some(target) = rest.strip_prefix("object/authenticated/")
            && method == Method::GET
        {
            let (bucket, key) = split_target(target)?;
            return self.get_object(&bucket, &key, &caller);
        }
        if let Some(target) = rest.strip_prefix("object/") {
            let (bucket, key) = split_target(target)?;
            return match method {
                Method::POST => self.post_object(&bucket, &key, request, &caller).await,
                Method::DELETE => self.delete_object(&bucket, &key, &caller),
                _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")),
            };
        }
        Ok(text(StatusCode::NOT_FOUND, "Route not found"))
    }

    /// The JWT check the real server runs before every route's handler, TUS included, so its
    /// refusals always come through the JSON error handler (HTTP 400, the status in the body;
    /// a `HEAD` answer carries no body at all).
    ///
    /// A missing `Authorization` header differs by route: the `/object` and `/bucket` routes
    /// declare it required in their schema, so Fastify's validation refuses the request before
    /// the JWT check; the TUS routes declare no headers, so the check runs on an empty token,
    /// which `jose` calls `Invalid Compact JWS`.
    fn authorize(&self, request: &Request<Incoming>, dialect: Dialect) -> Result<Caller, Stop> {
        let refuse = |reply: Reply, expired: bool| -> Stop {
            let mut state = self.lock();
            state.stats.auth_refusals += 1;
            if expired {
                *state
                    .stats
                    .expired_refusals
                    .entry(request.method().to_string())
                    .or_default() += 1;
            }
            reply.into()
        };
        let access_denied =
            |message: &str| json_error(dialect, "403", "Unauthorized", "AccessDenied", message);
        let header = match header(request.headers(), "authorization") {
            Some(header) => header,
            None if dialect == Dialect::Rest => {
                return Err(refuse(
                    json_error(
                        dialect,
                        "400",
                        "Error",
                        "InvalidRequest",
                        "headers must have required property 'authorization'",
                    ),
                    false,
                ));
            }
            None => String::new(),
        };
        match jwt::verify(&self.options.jwt_secret, strip_bearer(&header)) {
            jwt::Verdict::Valid(caller) => Ok(caller),
            jwt::Verdict::Expired => Err(refuse(access_denied(jwt::EXPIRED_MESSAGE), true)),
            jwt::Verdict::Invalid(why) => Err(refuse(access_denied(&why), false)),
        }
    }

    fn huge_error(&self, len: u64) -> Reply {
        let state = Arc::clone(&self.state);
        const PIECE: usize = 64 * 1024;
        let piece = Bytes::from(vec![b'x'; PIECE]);
        // produced as hyper pulls it, so the count says how much the client let through
        let frames = futures_util::stream::unfold(len, move |left| {
            let piece = piece.clone();
            let state = Arc::clone(&state);
            async move {
                if left == 0 {
                    return None;
                }
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(PIECE);
                state.lock().expect("lock").stats.error_body_bytes_sent += take as u64;
                Some((
                    Ok::<_, std::io::Error>(Frame::data(piece.slice(..take))),
                    left - take as u64,
                ))
            }
        });
        let mut reply = Response::new(StreamBody::new(frames).boxed());
        *reply.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        reply
    }

    async fn create_bucket(
        &self,
        request: Request<Incoming>,
        caller: &Caller,
    ) -> Result<Reply, Stop> {
        let (body, cut) = read_body(request.into_body(), None).await?;
        if cut {
            return Err(Stop::Cut);
        }
        let name = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .ok_or_else(|| rest_error("400", "Error", "InvalidRequest", "body must have name"))?;
        if caller.role != "service_role" {
            return Err(rest_error("403", "Unauthorized", "AccessDenied", RLS_VIOLATION).into());
        }
        let mut state = self.lock();
        if !state.buckets.insert(name.clone()) {
            return Err(rest_error(
                "409",
                "Duplicate",
                "BucketAlreadyExists",
                "The resource already exists",
            )
            .into());
        }
        Ok(json(StatusCode::OK, serde_json::json!({ "name": name })))
    }

    fn check_bucket(state: &State, bucket: &str) -> Result<(), Stop> {
        if state.buckets.contains(bucket) {
            Ok(())
        } else {
            Err(rest_error(
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
        caller: &Caller,
    ) -> Result<Reply, Stop> {
        Self::check_bucket(&self.lock(), bucket)?;
        let headers = request.headers();
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let content_type = header(headers, "content-type");
        // as on the real server, the limit is checked against Content-Length when one is sent
        if let Some(length) = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
            && length > self.options.max_object_size
        {
            return Err(too_large().into());
        }
        let (body, cut) = read_body(request.into_body(), None).await?;
        if cut {
            return Err(Stop::Cut);
        }
        let mut state = self.lock();
        state.stats.object_posts += 1;
        let id = (bucket.to_owned(), key.to_owned());
        if let Some(existing) = state.objects.get(&id) {
            if !upsert {
                return Err(rest_error(
                    "409",
                    "Duplicate",
                    "KeyAlreadyExists",
                    "The resource already exists",
                )
                .into());
            }
            if !may_touch(caller, existing) {
                return Err(
                    rest_error("403", "Unauthorized", "AccessDenied", RLS_VIOLATION).into(),
                );
            }
        }
        state.objects.insert(
            id,
            StoredObject {
                bytes: body,
                content_type,
                owner: caller.sub.clone(),
            },
        );
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "Key": format!("{bucket}/{key}"), "Id": uuid::Uuid::new_v4().to_string() }),
        ))
    }

    fn get_object(&self, bucket: &str, key: &str, caller: &Caller) -> Result<Reply, Stop> {
        let state = self.lock();
        Self::check_bucket(&state, bucket)?;
        let object = state
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            // row-level security hides other users' objects: they read as missing
            .filter(|object| may_touch(caller, object))
            .ok_or_else(not_found)?;
        let mut reply = Response::new(full(object.bytes.clone()));
        if let Some(content_type) = &object.content_type
            && let Ok(value) = content_type.parse()
        {
            reply.headers_mut().insert("content-type", value);
        }
        Ok(reply)
    }

    fn delete_object(&self, bucket: &str, key: &str, caller: &Caller) -> Result<Reply, Stop> {
        let mut state = self.lock();
        let id = (bucket.to_owned(), key.to_owned());
        // the real server looks the object up as superuser first, without looking for the
        // bucket (missing either way: NoSuchKey), then deletes as the caller (nothing deleted
        // under the policy: AccessDenied)
        let object = state.objects.get(&id).ok_or_else(not_found)?;
        if !may_touch(caller, object) {
            return Err(rest_error("403", "Unauthorized", "AccessDenied", "Access denied").into());
        }
        state.objects.remove(&id);
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "message": "Successfully deleted" }),
        ))
    }

    /// What the real server checks before an upload's bytes are written (`canUpload`, on TUS
    /// `POST` and on every `PATCH`), with the `x-upsert` of this very request: an existing
    /// object needs an upsert, and the caller's right to overwrite it.
    fn can_upload(
        state: &State,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upsert: bool,
    ) -> Result<(), Stop> {
        if let Some(existing) = state.objects.get(&(bucket.to_owned(), key.to_owned())) {
            if !upsert {
                return Err(tus_text(StatusCode::CONFLICT, "The resource already exists").into());
            }
            if !may_touch(caller, existing) {
                return Err(tus_text(StatusCode::FORBIDDEN, RLS_VIOLATION).into());
            }
        }
        Ok(())
    }

    fn tus_create(&self, request: &Request<Incoming>, caller: &Caller) -> Result<Reply, Stop> {
        let headers = request.headers();
        let length = header(headers, "upload-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                tus_text(
                    StatusCode::BAD_REQUEST,
                    "Upload-Length or Upload-Defer-Length header required\n",
                )
            })?;
        let Some(metadata) = header(headers, "upload-metadata") else {
            return Err(tus_text(StatusCode::BAD_REQUEST, "Metadata header is required").into());
        };
        let metadata = parse_tus_metadata(&metadata);
        let text_of = |name: &str| metadata.get(name).cloned().unwrap_or_default();
        let (bucket, path) = (text_of("bucketName"), text_of("objectName"));
        // the upload id is named first, which validates both names
        if !is_valid_key(&bucket) || bucket.contains('/') {
            return Err(tus_text(StatusCode::BAD_REQUEST, "Bucket name invalid").into());
        }
        if !is_valid_key(&path) {
            return Err(tus_text(StatusCode::BAD_REQUEST, &format!("Invalid key: {path}")).into());
        }
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let mut state = self.lock();
        // then the size limit, read from the bucket
        if !state.buckets.contains(&bucket) {
            return Err(tus_text(StatusCode::NOT_FOUND, "Bucket not found").into());
        }
        if length > self.options.max_object_size {
            return Err(tus_text(StatusCode::PAYLOAD_TOO_LARGE, "Maximum size exceeded\n").into());
        }
        Self::can_upload(&state, caller, &bucket, &path, upsert)?;
        state.stats.tus_creates += 1;
        let id = uuid::Uuid::new_v4().simple().to_string();
        if !std::mem::take(&mut state.forget_next_upload) {
            state.uploads.insert(
                id.clone(),
                TusUpload {
                    bucket,
                    path,
                    length,
                    content_type: metadata.get("contentType").cloned(),
                    data: BytesMut::new(),
                    finished: false,
                },
            );
        }
        let origin = state
            .tus_location_origin
            .clone()
            .unwrap_or_else(|| self.origin.clone());
        let mut reply = tus_text(StatusCode::CREATED, "");
        let location = format!("{origin}/storage/v1/upload/resumable/{id}");
        reply
            .headers_mut()
            .insert("location", location.parse().expect("a valid header"));
        Ok(reply)
    }

    async fn tus_patch(
        &self,
        id: &str,
        request: Request<Incoming>,
        caller: &Caller,
    ) -> Result<Reply, Stop> {
        let headers = request.headers();
        let offset = header(headers, "upload-offset")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| tus_text(StatusCode::FORBIDDEN, "Upload-Offset header required\n"))?;
        if header(headers, "content-type").is_none() {
            return Err(tus_text(StatusCode::FORBIDDEN, "Content-Type header required\n").into());
        }
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let (length, cut_after) = {
            let mut state = self.lock();
            state.stats.tus_patches += 1;
            let upload = state.uploads.get(id).ok_or_else(file_not_found)?;
            let (bucket, path) = (upload.bucket.clone(), upload.path.clone());
            let (current, length) = (upload.offset(), upload.length);
            Self::can_upload(&state, caller, &bucket, &path, upsert)?;
            if offset != current {
                return Err(tus_text(StatusCode::CONFLICT, "Upload-Offset conflict\n").into());
            }
            (length, state.interrupt_next_patch_after.take())
        };
        // a cut connection keeps what arrived, as the real server's store does
        let (received, cut) = read_body(request.into_body(), cut_after).await?;
        let mut state = self.lock();
        let upload = state.uploads.get_mut(id).ok_or_else(file_not_found)?;
        if upload.offset() + received.len() as u64 > length {
            return Err(tus_text(StatusCode::PAYLOAD_TOO_LARGE, "upload's size exceeded\n").into());
        }
        upload.data.extend_from_slice(&received);
        let new_offset = upload.offset();
        if new_offset == length && !upload.finished {
            // the upload record stays (a HEAD still answers), its bytes become the object,
            // owned by whoever sent the last bytes
            upload.finished = true;
            let object = StoredObject {
                bytes: std::mem::take(&mut upload.data).freeze(),
                content_type: upload.content_type.clone(),
                owner: caller.sub.clone(),
            };
            let key = (upload.bucket.clone(), upload.path.clone());
            state.objects.insert(key, object);
        }
        if cut {
            return Err(Stop::Cut);
        }
        let mut reply = tus_text(StatusCode::NO_CONTENT, "");
        reply.headers_mut().insert(
            "upload-offset",
            new_offset.to_string().parse().expect("a number"),
        );
        Ok(reply)
    }

    fn tus_head(&self, id: &str) -> Result<Reply, Stop> {
        let mut state = self.lock();
        state.stats.tus_heads += 1;
        let upload = state.uploads.get(id).ok_or_else(file_not_found)?;
        let mut reply = tus_text(StatusCode::OK, "");
        let headers = reply.headers_mut();
        headers.insert(
            "upload-offset",
            upload.offset().to_string().parse().expect("a number"),
        );
        headers.insert(
            "upload-length",
            upload.length.to_string().parse().expect("a number"),
        );
        headers.insert("cache-control", "no-store".parse().expect("a valid header"));
        Ok(reply)
    }
}

/// Which of the real server's two JSON error layouts a route answers with. Routes that declare
/// the shared error response schema (`/object`, `/bucket`) are serialized in the schema's
/// order; the TUS routes declare none, so their errors keep the order the error renders in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dialect {
    Rest,
    Tus,
}

/// The TUS server's own checks of every request, before its handlers run.
fn tus_protocol_check(request: &Request<Incoming>) -> Result<(), Stop> {
    let headers = request.headers();
    if header(headers, "tus-resumable").is_none() {
        return Err(tus_text(StatusCode::PRECONDITION_FAILED, "Tus-Resumable Required\n").into());
    }
    if request.method() == Method::PATCH
        && let Some(content_type) = header(headers, "content-type")
        && content_type != "application/offset+octet-stream"
    {
        return Err(tus_text(StatusCode::BAD_REQUEST, "Invalid content-type\n").into());
    }
    if let Some(offset) = header(headers, "upload-offset")
        && offset.parse::<u64>().is_err()
    {
        return Err(tus_text(StatusCode::BAD_REQUEST, "Invalid upload-offset\n").into());
    }
    Ok(())
}

/// `Authorization` without its `Bearer` scheme (any case, any spaces), as the real server
/// reads it; a header without the scheme is taken whole.
fn strip_bearer(header: &str) -> &str {
    match header.get(..6) {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("bearer")
                && header[6..].starts_with(char::is_whitespace) =>
        {
            header[6..].trim_start()
        }
        _ => header,
    }
}

/// The "own objects" policy: the service role bypasses it; anyone else reaches only what
/// their `sub` wrote.
fn may_touch(caller: &Caller, object: &StoredObject) -> bool {
    caller.role == "service_role" || caller.sub == object.owner
}

/// Read a request body; with `cut_after`, stop once that many bytes arrived and say the
/// connection is to be cut (`true`), returning what arrived.
async fn read_body(mut body: Incoming, cut_after: Option<u64>) -> Result<(Bytes, bool), Stop> {
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // the client went away: what arrived is kept, nothing is answered
            return Ok((data.freeze(), true));
        };
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
            if cut_after.is_some_and(|limit| data.len() as u64 >= limit) {
                return Ok((data.freeze(), true));
            }
        }
    }
    Ok((data.freeze(), false))
}

/// `{bucket}/{key}` of an object route; the key must be in the real server's alphabet.
fn split_target(target: &str) -> Result<(String, String), Stop> {
    match target.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && is_valid_key(key) => {
            Ok((bucket.to_owned(), key.to_owned()))
        }
        Some((_, key)) => Err(invalid_key(key)),
        None => Err(invalid_key("")),
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

fn full(bytes: Bytes) -> BoxBody<Bytes, std::io::Error> {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(full(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "content-type",
        "text/plain".parse().expect("a valid header"),
    );
    reply
}

/// An answer of the TUS handler: the real status, a text body (the TUS server's own errors
/// end in a newline, the storage's errors it relays do not), `Tus-Resumable` always.
fn tus_text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(full(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    let headers = reply.headers_mut();
    if status != StatusCode::NO_CONTENT {
        // what a fetch `Response` built from a string carries
        headers.insert(
            "content-type",
            "text/plain;charset=UTF-8".parse().expect("a valid header"),
        );
    }
    headers.insert("tus-resumable", "1.0.0".parse().expect("a valid header"));
    reply
}

fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    json_text(status, body.to_string())
}

fn json_text(status: StatusCode, body: String) -> Reply {
    let mut reply = Response::new(full(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "content-type",
        "application/json; charset=utf-8"
            .parse()
            .expect("a valid header"),
    );
    reply
}

/// A JSON error of the real server's error handler (`src/http/error-handler.ts`): HTTP 400,
/// except 500 for real 500s and 429 for throttling, with the real status in the body, the
/// keys in the order the route's `dialect` writes them.
fn json_error(dialect: Dialect, status: &str, error: &str, code: &str, message: &str) -> Reply {
    let http = match status {
        "500" => StatusCode::INTERNAL_SERVER_ERROR,
        "429" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let (status, error, code, message) =
        (quoted(status), quoted(error), quoted(code), quoted(message));
    let body = match dialect {
        Dialect::Rest => format!(
            r#"{{"statusCode":{status},"error":{error},"message":{message},"code":{code}}}"#
        ),
        Dialect::Tus => format!(
            r#"{{"statusCode":{status},"code":{code},"error":{error},"message":{message}}}"#
        ),
    };
    json_text(http, body)
}

fn rest_error(status: &str, error: &str, code: &str, message: &str) -> Reply {
    json_error(Dialect::Rest, status, error, code, message)
}

fn not_found() -> Stop {
    rest_error("404", "not_found", "NoSuchKey", "Object not found").into()
}

/// `InvalidKey` sets no `error` of its own, so the handler repeats the code there.
fn invalid_key(key: &str) -> Stop {
    rest_error(
        "400",
        "InvalidKey",
        "InvalidKey",
        &format!("Invalid key: {key}"),
    )
    .into()
}

fn file_not_found() -> Stop {
    tus_text(
        StatusCode::NOT_FOUND,
        "The file for this url was not found\n",
    )
    .into()
}

fn too_large() -> Reply {
    rest_error(
        "413",
        "Payload too large",
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
    )
}
