//! `SupabaseRemoteStorage`: attachments as objects in a Supabase Storage bucket.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use attachments_core::{
    Attachment, ByteStream, ChunkedReader, Error, ErrorKind, RemoteStorage, Result,
};
use bytes::Bytes;
use futures_util::TryStreamExt;
use reqwest::{Method, Url};

use crate::config::{AccessTokenProvider, Secret, SupabaseConfig};
use crate::error::Route;
use crate::keys;

/// A transfer that receives nothing for this long fails (retryable `TimedOut`); the queue's
/// own stall watchdog usually acts first.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Attachments as objects in a Supabase Storage bucket.
///
/// - Small files (below the resumable threshold, 6 MiB) go up in one `POST /object` with
///   `x-upsert: true` and an exact `Content-Length`; larger ones through TUS resumable uploads
///   in chunks, resumed from the server's offset (`HEAD`) when a chunk is interrupted. The file
///   data held stays below the threshold or the chunk size, whatever the file size.
/// - Downloads stream `GET /object/authenticated/...`; deleting a missing object is Ok.
/// - A request refused for an expired token asks the [`AccessTokenProvider`] for a fresh one
///   and is sent once more; still refused, it is a retryable `PermissionDenied`.
/// - Names are checked against Supabase's key alphabet ([`is_key_char`](crate::is_key_char))
///   before any request; keys and tokens go only to the configured origin (redirects and TUS
///   `Location`s elsewhere are refused); error bodies are read up to 64 KiB.
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
    pub(crate) http: reqwest::Client,
    /// The storage API's URL, ending in `/storage/v1/`, so that joining a relative path keeps it.
    pub(crate) base_url: Url,
    pub(crate) bucket: String,
    pub(crate) api_key: Secret,
    pub(crate) tokens: Arc<dyn AccessTokenProvider>,
    key_prefix: String,
    resumable_threshold: u64,
    pub(crate) chunk_size: u64,
}

impl fmt::Debug for SupabaseRemoteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseRemoteStorage")
            .field("base_url", &self.base_url.as_str())
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
    /// `InvalidInput` for a URL that is not `http(s)://host[:port][/path]` (credentials, query
    /// or fragment in it included), a bucket name or key prefix outside Supabase's alphabet
    /// ([`is_key_char`](crate::is_key_char)), a zero threshold or chunk size; `Config` when the
    /// HTTP client cannot be built. Nothing is sent.
    pub fn new(config: SupabaseConfig) -> Result<Self> {
        if config.chunk_size == 0 || config.resumable_threshold == 0 {
            return Err(Error::invalid_input(
                "the TUS threshold and chunk size must be at least 1 byte",
            ));
        }
        keys::check_bucket(&config.bucket)?;
        keys::check_prefix(&config.key_prefix)?;
        let base_url = parse_base_url(&config.storage_url())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            // a redirect would carry the `apikey` header to wherever it points
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "building the HTTP client").with_source(e)
            })?;
        Ok(SupabaseRemoteStorage {
            http,
            base_url,
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
        let url = self.endpoint("bucket")?;
        let body = serde_json::json!({ "id": self.bucket, "name": self.bucket, "public": false })
            .to_string();
        let context = format!("creating bucket {}", self.bucket);
        let result = self
            .send(&context, Route::Object, |token| {
                self.request(Method::POST, url.clone(), token)
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
        keys::object_key(&self.key_prefix, &attachment.filename)
    }

    /// `{base}/{path}`; `path` is ASCII made of checked or percent-encoded parts.
    pub(crate) fn endpoint(&self, path: &str) -> Result<Url> {
        self.base_url
            .join(path)
            .map_err(|e| Error::invalid_input(format!("{path:?} does not make a URL: {e}")))
    }

    fn object_url(&self, route: &str, key: &str) -> Result<Url> {
        self.endpoint(&format!(
            "{route}/{}/{}",
            encode_path(&self.bucket),
            encode_path(key)
        ))
    }

    async fn post_object(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<()> {
        let url = self.object_url("object", key)?;
        let context = format!("uploading {key}");
        self.send(&context, Route::Object, |token| {
            self.request(Method::POST, url.clone(), token)
                .header("content-type", content_type)
                .header("content-length", bytes.len())
                .header("x-upsert", "true")
                .body(bytes.clone())
        })
        .await?;
        Ok(())
    }
}

/// The storage URL, checked: `http` or `https`, a host, no credentials, query or fragment.
fn parse_base_url(storage_url: &str) -> Result<Url> {
    let refuse = |why: &str| {
        Err(Error::invalid_input(format!(
            "the Supabase URL is not usable: {why} (expected https://<project>.supabase.co)"
        )))
    };
    let Ok(url) = Url::parse(&format!("{storage_url}/")) else {
        return refuse("not a URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("the scheme is neither http nor https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return refuse("no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        // they would travel as Basic credentials and show in Debug output
        return refuse("it contains credentials; the key goes in `api_key`");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return refuse("it has a query or fragment");
    }
    Ok(url)
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
        let url = self.object_url("object/authenticated", &key)?;
        let context = format!("downloading {key}");
        let response = self
            .send(&context, Route::Object, |token| {
                self.request(Method::GET, url.clone(), token)
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
        let url = self.object_url("object", &key)?;
        let context = format!("deleting {key}");
        match self
            .send(&context, Route::Object, |token| {
                self.request(Method::DELETE, url.clone(), token)
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
