//! TUS 1.0.0 resumable uploads: create, `PATCH` chunk by chunk, resume from `HEAD`.

use attachments_core::{ByteStream, ChunkedReader, Error, ErrorKind, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::{Method, Response, Url};
use tracing::{debug, warn};

use crate::error::Route;
use crate::remote::SupabaseRemoteStorage;

/// How often one TUS chunk is resumed after an interruption before the upload gives up (and
/// the queue retries it later).
const RESUME_ATTEMPTS: u32 = 3;

impl SupabaseRemoteStorage {
    pub(crate) async fn resumable_upload(
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
            if offset + chunk.len() as u64 > size {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!("{key}: more than the {size} bytes announced"),
                ));
            }
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

    async fn create_resumable(&self, key: &str, content_type: &str, size: u64) -> Result<Url> {
        let url = self.endpoint("upload/resumable")?;
        let metadata = format!(
            "bucketName {},objectName {},contentType {}",
            STANDARD.encode(&self.bucket),
            STANDARD.encode(key),
            STANDARD.encode(content_type)
        );
        let context = format!("creating a resumable upload of {key}");
        let response = self
            .send(&context, Route::TusCreate, |token| {
                self.request(Method::POST, url.clone(), token)
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
        self.upload_url(location, &context)
    }

    /// Send `chunk`, which starts at `chunk_start`; after an interruption ask the server where
    /// it stands and send the rest. Returns the offset after the chunk.
    async fn send_chunk(
        &self,
        location: &Url,
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
                        )
                        .with_retryable(true));
                    }
                    offset = server_offset;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(offset)
    }

    async fn patch(&self, location: &Url, key: &str, offset: u64, piece: Bytes) -> Result<u64> {
        let context = format!("sending bytes {offset}.. of {key}");
        let response = self
            .send(&context, Route::TusPatch, |token| {
                self.request(Method::PATCH, location.clone(), token)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-offset", offset)
                    .header("content-type", "application/offset+octet-stream")
                    // the server checks the right to write on every request of an upload,
                    // with that request's `x-upsert`: without it, a PATCH over an existing
                    // object is refused
                    .header("x-upsert", "true")
                    .header("content-length", piece.len())
                    .body(piece.clone())
            })
            .await?;
        upload_offset(&response, &context)
    }

    async fn head(&self, location: &Url, key: &str) -> Result<u64> {
        let context = format!("resuming {key}");
        let response = self
            .send(&context, Route::TusHead, |token| {
                self.request(Method::HEAD, location.clone(), token)
                    .header("tus-resumable", "1.0.0")
                    .header("x-upsert", "true")
            })
            .await?;
        upload_offset(&response, &context)
    }
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
