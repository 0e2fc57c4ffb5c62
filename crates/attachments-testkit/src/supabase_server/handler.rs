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
        let rest = percent_decode(rest).ok_or_else(|| {
            object_error(
                "400",
                "Invalid key",
                "InvalidKey",
                "invalid percent-encoding",
            )
        })?;
        let caller = self.authorize(&request)?;
        let method = request.method().clone();
        if let Some(id) = rest.strip_prefix("upload/resumable") {
            let id = id.trim_start_matches('/').to_owned();
            return match (method, id.is_empty()) {
                (Method::POST, true) => self.tus_create(&request, &caller),
                (Method::PATCH, false) => self.tus_patch(&id, request).await,
                (Method::HEAD, false) => self.tus_head(&id),
                _ => Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")),
            };
        }
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
    fn authorize(&self, request: &Request<Incoming>) -> Result<Caller, Stop> {
        let refuse = |status: &str, code: &str, message: &str, expired: bool| -> Stop {
            let mut state = self.lock();
            state.stats.auth_refusals += 1;
            if expired {
                *state
                    .stats
                    .expired_refusals
                    .entry(request.method().to_string())
                    .or_default() += 1;
            }
            object_error(status, "Unauthorized", code, message).into()
        };
        let Some(header) = header(request.headers(), "authorization") else {
            return Err(refuse(
                "400",
                "InvalidRequest",
                "headers must have required property 'authorization'",
                false,
            ));
        };
        let token = header.strip_prefix("Bearer ").unwrap_or(&header);
        match jwt::verify(&self.options.jwt_secret, token) {
            jwt::Verdict::Valid(caller) => Ok(caller),
            jwt::Verdict::Expired => Err(refuse("403", "AccessDenied", jwt::EXPIRED_MESSAGE, true)),
            jwt::Verdict::Invalid(why) => Err(refuse("403", "AccessDenied", &why, false)),
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
        let body = read_body(request.into_body(), None).await?;
        let name = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .ok_or_else(|| object_error("400", "Error", "InvalidRequest", "body must have name"))?;
        if caller.role != "service_role" {
            return Err(object_error("403", "Unauthorized", "AccessDenied", RLS_VIOLATION).into());
        }
        let mut state = self.lock();
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

    fn check_bucket(state: &State, bucket: &str) -> Result<(), Stop> {
        if state.buckets.contains(bucket) {
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
        let body = read_body(request.into_body(), None).await?;
        let mut state = self.lock();
        state.stats.object_posts += 1;
        let id = (bucket.to_owned(), key.to_owned());
        if let Some(existing) = state.objects.get(&id) {
            if !upsert {
                return Err(object_error(
                    "409",
                    "Duplicate",
                    "KeyAlreadyExists",
                    "The resource already exists",
                )
                .into());
            }
            if !may_touch(caller, existing) {
                return Err(
                    object_error("403", "Unauthorized", "AccessDenied", RLS_VIOLATION).into(),
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
        Self::check_bucket(&state, bucket)?;
        let id = (bucket.to_owned(), key.to_owned());
        // the real server finds the object as superuser first (missing: NoSuchKey), then
        // deletes as the caller (nothing deleted under the policy: AccessDenied)
        let object = state.objects.get(&id).ok_or_else(not_found)?;
        if !may_touch(caller, object) {
            return Err(
                object_error("403", "Unauthorized", "AccessDenied", "Access denied").into(),
            );
        }
        state.objects.remove(&id);
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "message": "Successfully deleted" }),
        ))
    }

    fn tus_create(&self, request: &Request<Incoming>, caller: &Caller) -> Result<Reply, Stop> {
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
        if !is_valid_key(path) {
            return Err(text(StatusCode::BAD_REQUEST, &format!("Invalid key: {path}")).into());
        }
        let upsert = header(headers, "x-upsert").as_deref() == Some("true");
        let mut state = self.lock();
        if !state.buckets.contains(bucket) {
            return Err(text(StatusCode::NOT_FOUND, "Bucket not found").into());
        }
        if let Some(existing) = state.objects.get(&(bucket.clone(), path.clone())) {
            if !upsert {
                return Err(text(StatusCode::CONFLICT, "The resource already exists").into());
            }
            // the TUS handler's own errors keep their status and have text bodies
            if !may_touch(caller, existing) {
                return Err(text(StatusCode::FORBIDDEN, RLS_VIOLATION).into());
            }
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
                owner: caller.sub.clone(),
                data: BytesMut::new(),
            },
        );
        let origin = state
            .tus_location_origin
            .clone()
            .unwrap_or_else(|| self.origin.clone());
        let mut reply = text(StatusCode::CREATED, "");
        let location = format!("{origin}/storage/v1/upload/resumable/{id}");
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
        let (current, length, cut_after) = {
            let mut state = self.lock();
            state.stats.tus_patches += 1;
            let upload = state
                .uploads
                .get(id)
                .ok_or_else(|| text(StatusCode::NOT_FOUND, "Upload not found"))?;
            let position = (upload.data.len() as u64, upload.length);
            (
                position.0,
                position.1,
                state.interrupt_next_patch_after.take(),
            )
        };
        if offset != current {
            return Err(text(StatusCode::CONFLICT, "Upload-Offset does not match").into());
        }
        let (received, cut) = match read_body(request.into_body(), cut_after).await {
            Ok(bytes) => (bytes, false),
            Err(Stop::Cut) => (Bytes::new(), true),
            Err(stop) => return Err(stop),
        };
        let mut state = self.lock();
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
                StoredObject {
                    bytes: done.data.freeze(),
                    content_type: done.content_type,
                    owner: done.owner,
                },
            );
        }
        let mut reply = Response::new(full(Bytes::new()));
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
        let mut state = self.lock();
        state.stats.tus_heads += 1;
        let upload = state
            .uploads
            .get(id)
            .ok_or_else(|| text(StatusCode::NOT_FOUND, "Upload not found"))?;
        let mut reply = Response::new(full(Bytes::new()));
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

/// The "own objects" policy: the service role bypasses it; anyone else reaches only what
/// their `sub` wrote.
fn may_touch(caller: &Caller, object: &StoredObject) -> bool {
    caller.role == "service_role" || caller.sub == object.owner
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
    let invalid = |key: &str| -> Stop {
        object_error(
            "400",
            "Invalid key",
            "InvalidKey",
            &format!("Invalid key: {key}"),
        )
        .into()
    };
    match target.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            if !is_valid_key(key)
                || key
                    .split('/')
                    .any(|part| part == ".." || part == "." || part.is_empty())
            {
                return Err(invalid(key));
            }
            Ok((bucket.to_owned(), key.to_owned()))
        }
        _ => Err(invalid("")),
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

fn json(status: StatusCode, body: serde_json::Value) -> Reply {
    let mut reply = Response::new(full(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a valid header"),
    );
    reply
}

/// A JSON error: HTTP 400, except 500 for real 500s and 429 for throttling, with the real
/// status in the body (`src/http/error-handler.ts`).
fn object_error(status: &str, error: &str, code: &str, message: &str) -> Reply {
    let http = match status {
        "500" => StatusCode::INTERNAL_SERVER_ERROR,
        "429" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    json(
        http,
        serde_json::json!({ "statusCode": status, "error": error, "message": message, "code": code }),
    )
}

fn not_found() -> Stop {
    object_error("404", "not_found", "NoSuchKey", "Object not found").into()
}

fn too_large() -> Reply {
    object_error(
        "413",
        "Payload too large",
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
    )
}
