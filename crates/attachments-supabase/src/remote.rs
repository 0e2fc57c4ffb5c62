//! `SupabaseRemoteStorage`: attachments as objects in a Supabase Storage bucket.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use attachments_core::{
    Attachment, ByteStream, ChunkedReader, Error, ErrorKind, RemoteStorage, Result,
    validate_relative_path,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::{Method, RequestBuilder, Response};
use tracing::{debug, warn};

use crate::config::{AccessTokenProvider, Secret, SupabaseConfig};
use crate::error::{Refusal, object_refusal, transport_error, tus_refusal};

/// How often one TUS chunk is resumed after an interruption before the upload gives up (and
/// the queue retries it later).
const RESUME_ATTEMPTS: u32 = 3;

/// Attachments as objects in a Supabase Storage bucket.
///
/// - Small files (below the resumable threshold, 6 MiB) go up in one `POST /object` with
///   `x-upsert: true` and an exact `Content-Length`; larger ones through TUS resumable uploads
///   in chunks, resumed from the server's offset (`HEAD`) when a chunk is interrupted. The file
///   data held stays below the threshold or the chunk size, whatever the file size.
/// - Downloads stream `GET /object/authenticated/...`; deleting a missing object is Ok.
/// - A request refused for an expired token asks the [`AccessTokenProvider`] for a fresh one
///   and is sent once more.
///
/// ```no_run
/// # async fn demo() -> attachments_core::Result<()> {
/// use attachments_supabase::{SupabaseConfig, SupabaseRemoteStorage};
/// let remote = SupabaseRemoteStorage::new(SupabaseConfig::new(
///     "https://abc.supabase.co",
///     "attachments",
///     "service-role-key",
/// ))?;
/// # drop(remote); Ok(()) }
/// ```
#[derive(Clone)]
pub struct SupabaseRemoteStorage {
    http: reqwest::Client,
    base_url: String,
    bucket: String,
    api_key: Secret,
    tokens: Arc<dyn AccessTokenProvider>,
    key_prefix: String,
    resumable_threshold: u64,
    chunk_size: u64,
}

impl fmt::Debug for SupabaseRemoteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseRemoteStorage")
            .field("base_url", &self.base_url)
            .field("bucket", &self.bucket)
            .field("api_key", &self.api_key)
            .field("key_prefix", &self.key_prefix)
            .field("resumable_threshold", &self.resumable_threshold)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl SupabaseRemoteStorage {
    /// A storage for `config`.
    ///
    /// # Errors
    /// `InvalidInput` for a zero chunk size; `Config` when the HTTP client cannot be built.
    pub fn new(config: SupabaseConfig) -> Result<Self> {
        if config.chunk_size == 0 {
            return Err(Error::invalid_input(
                "the TUS chunk size must be at least 1 byte",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "building the HTTP client").with_source(e)
            })?;
        Ok(SupabaseRemoteStorage {
            http,
            base_url: config.storage_url(),
            bucket: config.bucket,
            api_key: config.api_key,
            tokens: config.access_token,
            key_prefix: config.key_prefix,
            resumable_threshold: config.resumable_threshold,
            chunk_size: config.chunk_size,
        })
    }

    /// Create the bucket (private) unless it exists.
    ///
    /// # Errors
    /// Classified errors (creating buckets needs a service-role key).
    pub async fn create_bucket_if_missing(&self) -> Result<()> {
        let url = format!("{}/bucket", self.base_url);
        let body = serde_json::json!({ "id": self.bucket, "name": self.bucket, "public": false })
            .to_string();
        let context = format!("creating bucket {}", self.bucket);
        let result = self
            .send(&context, Route::Object, |token| {
                self.request(Method::POST, &url, token)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn key(&self, attachment: &Attachment) -> Result<String> {
        validate_relative_path(&attachment.filename)?;
        Ok(format!("{}{}", self.key_prefix, attachment.filename))
    }

    fn object_url(&self, route: &str, key: &str) -> String {
        format!(
            "{}/{route}/{}/{}",
            self.base_url,
            encode_path(&self.bucket),
            encode_path(key)
        )
    }

    fn request(&self, method: Method, url: &str, token: &Secret) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("apikey", self.api_key.expose())
            .header("authorization", format!("Bearer {}", token.expose()))
    }

    /// Send a request built by `build` with the current token; if the server refuses the token
    /// as expired, once more with a fresh one. Non-success answers become classified errors.
    async fn send(
        &self,
        context: &str,
        route: Route,
        build: impl Fn(&Secret) -> RequestBuilder,
    ) -> Result<Response> {
        let mut token = self.tokens.access_token(None).await?;
        let mut refreshed = false;
        loop {
            let response = build(&token)
                .send()
                .await
                .map_err(|e| transport_error(e, context))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let body = response.text().await.unwrap_or_default();
            let refusal = match route {
                Route::Object => object_refusal(status.as_u16(), &body, context),
                Route::TusCreate => tus_refusal(status.as_u16(), &body, context, false),
                Route::TusUpload => tus_refusal(status.as_u16(), &body, context, true),
            };
            match refusal {
                Refusal::TokenExpired if !refreshed => {
                    debug!(context, "access token expired; asking for a fresh one");
                    token = self.tokens.access_token(Some(&token)).await?;
                    refreshed = true;
                }
                Refusal::TokenExpired => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "{context}: the access token was refused as expired, also after a refresh"
                        ),
                    ));
                }
                Refusal::Failed(error) => return Err(error),
            }
        }
    }

    async fn post_object(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<()> {
        let url = self.object_url("object", key);
        let context = format!("uploading {key}");
        self.send(&context, Route::Object, |token| {
            self.request(Method::POST, &url, token)
                .header("content-type", content_type)
                .header("content-length", bytes.len())
                .header("x-upsert", "true")
                .body(bytes.clone())
        })
        .await?;
        Ok(())
    }

    async fn resumable_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        data: ByteStream,
    ) -> Result<()> {
        let location = self.create_resumable(key, content_type, size).await?;
        let chunk_size = usize::try_from(self.chunk_size).unwrap_or(usize::MAX);
        let mut reader = ChunkedReader::new(data, chunk_size);
        let mut offset = 0u64;
        while let Some(chunk) = reader.next_chunk().await? {
            offset = self.send_chunk(&location, key, offset, chunk).await?;
        }
        if offset != size {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("{key}: {offset} bytes read, {size} announced"),
            ));
        }
        debug!(key, size, "resumable upload completed");
        Ok(())
    }

    async fn create_resumable(&self, key: &str, content_type: &str, size: u64) -> Result<String> {
        let url = format!("{}/upload/resumable", self.base_url);
        let metadata = format!(
            "bucketName {},objectName {},contentType {}",
            STANDARD.encode(&self.bucket),
            STANDARD.encode(key),
            STANDARD.encode(content_type)
        );
        let context = format!("creating a resumable upload of {key}");
        let response = self
            .send(&context, Route::TusCreate, |token| {
                self.request(Method::POST, &url, token)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-length", size)
                    .header("upload-metadata", metadata.clone())
                    .header("x-upsert", "true")
            })
            .await?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::new(ErrorKind::Corrupt, format!("{context}: no Location"))
                    .with_retryable(true)
            })?;
        Ok(self.absolute(location))
    }

    /// Send `chunk`, which starts at `chunk_start`; after an interruption ask the server where
    /// it stands and send the rest. Returns the offset after the chunk.
    async fn send_chunk(
        &self,
        location: &str,
        key: &str,
        chunk_start: u64,
        chunk: Bytes,
    ) -> Result<u64> {
        let chunk_end = chunk_start + chunk.len() as u64;
        let mut offset = chunk_start;
        let mut resumes = 0;
        while offset < chunk_end {
            let start = usize::try_from(offset - chunk_start).unwrap_or(usize::MAX);
            let piece = chunk.slice(start..);
            match self.patch(location, key, offset, piece).await {
                Ok(new_offset) if new_offset > offset && new_offset <= chunk_end => {
                    offset = new_offset
                }
                Ok(new_offset) => {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("{key}: the server moved from offset {offset} to {new_offset}"),
                    )
                    .with_retryable(true));
                }
                Err(error) if error.is_retryable() && resumes < RESUME_ATTEMPTS => {
                    resumes += 1;
                    let server_offset = self.head(location, key).await?;
                    warn!(key, offset, server_offset, %error, "chunk interrupted; resuming");
                    if !(chunk_start..=chunk_end).contains(&server_offset) {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "{key}: the server is at offset {server_offset}, outside the chunk held ({chunk_start}..{chunk_end})"
                            ),
                        ));
                    }
                    offset = server_offset;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(offset)
    }

    async fn patch(&self, location: &str, key: &str, offset: u64, piece: Bytes) -> Result<u64> {
        let context = format!("sending bytes {offset}.. of {key}");
        let response = self
            .send(&context, Route::TusUpload, |token| {
                self.request(Method::PATCH, location, token)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-offset", offset)
                    .header("content-type", "application/offset+octet-stream")
                    .header("content-length", piece.len())
                    .body(piece.clone())
            })
            .await?;
        upload_offset(&response, &context)
    }

    async fn head(&self, location: &str, key: &str) -> Result<u64> {
        let context = format!("resuming {key}");
        let response = self
            .send(&context, Route::TusUpload, |token| {
                self.request(Method::HEAD, location, token)
                    .header("tus-resumable", "1.0.0")
            })
            .await?;
        upload_offset(&response, &context)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_owned();
        }
        // a path: keep the scheme and authority of the base URL
        let authority_end = self
            .base_url
            .find("://")
            .and_then(|scheme| {
                self.base_url[scheme + 3..]
                    .find('/')
                    .map(|i| i + scheme + 3)
            })
            .unwrap_or(self.base_url.len());
        format!("{}{location}", &self.base_url[..authority_end])
    }
}

/// Which error dialect a route speaks.
#[derive(Clone, Copy)]
enum Route {
    /// `/object` and `/bucket`: JSON error bodies.
    Object,
    /// `POST /upload/resumable`.
    TusCreate,
    /// `PATCH`/`HEAD` of an upload created before.
    TusUpload,
}

fn upload_offset(response: &Response, context: &str) -> Result<u64> {
    response
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            Error::new(ErrorKind::Corrupt, format!("{context}: no Upload-Offset"))
                .with_retryable(true)
        })
}

/// Percent-encode each `/`-separated segment (RFC 3986 unreserved characters stay).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[async_trait]
impl RemoteStorage for SupabaseRemoteStorage {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        let key = self.key(attachment)?;
        let content_type = attachment
            .media_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        match attachment.size {
            Some(size) if size >= self.resumable_threshold => {
                self.resumable_upload(&key, &content_type, size, data).await
            }
            _ => {
                // small, or of unknown size: read up to the threshold
                let limit = usize::try_from(self.resumable_threshold).unwrap_or(usize::MAX);
                let mut reader = ChunkedReader::new(data, limit);
                let bytes = reader.next_chunk().await?.unwrap_or_default();
                if !reader.is_done() && reader.next_chunk().await?.is_some() {
                    return Err(Error::invalid_input(format!(
                        "{key}: files of {limit} bytes or more need a known size for a resumable upload"
                    )));
                }
                if let Some(size) = attachment.size
                    && size != bytes.len() as u64
                {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("{key}: {} bytes read, {size} announced", bytes.len()),
                    ));
                }
                self.post_object(&key, &content_type, bytes).await
            }
        }
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        let key = self.key(attachment)?;
        let url = self.object_url("object/authenticated", &key);
        let context = format!("downloading {key}");
        let response = self
            .send(&context, Route::Object, |token| {
                self.request(Method::GET, &url, token)
            })
            .await?;
        let stream = response.bytes_stream().map_err(|error| {
            // the connection broke mid-body: worth another try
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, error)
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        let key = self.key(attachment)?;
        let url = self.object_url("object", &key);
        let context = format!("deleting {key}");
        match self
            .send(&context, Route::Object, |token| {
                self.request(Method::DELETE, &url, token)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_per_segment() {
        assert_eq!(encode_path("a/b c/été.jpg"), "a/b%20c/%C3%A9t%C3%A9.jpg");
        assert_eq!(encode_path("x?y#z"), "x%3Fy%23z");
    }
}
