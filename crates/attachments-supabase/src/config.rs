//! Settings and credentials of a `SupabaseRemoteStorage`.

use std::fmt;

pub use attachments_core::Secret;
use std::sync::Arc;

use async_trait::async_trait;
use attachments_core::Result;

/// Supplies the JWT sent as `Authorization: Bearer <jwt>`: the signed-in user's access token,
/// which expires and is refreshed by the app's auth client.
///
/// ```
/// use attachments_supabase::{AccessTokenProvider, Secret};
/// struct FromMyAuthClient;
/// #[attachments_core::async_trait]
/// impl AccessTokenProvider for FromMyAuthClient {
///     async fn access_token(&self, refused: Option<&Secret>) -> attachments_core::Result<Secret> {
///         // `refused` is the token the server just rejected as expired: refresh the session
///         let _ = refused;
///         Ok(Secret::new("eyJ..."))
///     }
/// }
/// ```
#[async_trait]
pub trait AccessTokenProvider: Send + Sync + 'static {
    /// The current token. When `refused` is set, the server has just rejected that token as
    /// expired: return a fresh one (the request is then retried once).
    async fn access_token(&self, refused: Option<&Secret>) -> Result<Secret>;
}

/// Share one provider (the app's session) with the storage: `Arc<MySession>` is a provider too.
#[async_trait]
impl<T: AccessTokenProvider + ?Sized> AccessTokenProvider for Arc<T> {
    async fn access_token(&self, refused: Option<&Secret>) -> Result<Secret> {
        (**self).access_token(refused).await
    }
}

/// A token that never changes (a service-role key, or the anon key).
#[derive(Debug, Clone)]
pub struct StaticAccessToken(pub Secret);

#[async_trait]
impl AccessTokenProvider for StaticAccessToken {
    async fn access_token(&self, _refused: Option<&Secret>) -> Result<Secret> {
        Ok(self.0.clone())
    }
}

/// Everything needed to reach a Supabase Storage bucket.
///
/// ```
/// use attachments_supabase::SupabaseConfig;
/// let config = SupabaseConfig::new("https://abc.supabase.co", "attachments", "service-role-key");
/// assert_eq!(config.storage_url(), "https://abc.supabase.co/storage/v1");
/// assert!(!format!("{config:?}").contains("service-role-key"));
/// ```
#[derive(Clone)]
pub struct SupabaseConfig {
    /// The project URL, or the storage URL ending in `/storage/v1`.
    pub url: String,
    /// The bucket.
    pub bucket: String,
    /// The project API key, sent as `apikey`.
    pub api_key: Secret,
    /// The JWT provider (default: the API key itself, the service-role case).
    pub access_token: Arc<dyn AccessTokenProvider>,
    /// Prepended to every attachment's filename (e.g. `user-42/`).
    pub key_prefix: String,
    /// Uploads of at least this many bytes use TUS resumable uploads (default 6 MiB).
    pub resumable_threshold: u64,
    /// Bytes per TUS `PATCH` (default 6 MiB): the file data an upload holds at most.
    pub chunk_size: u64,
}

impl fmt::Debug for SupabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseConfig")
            .field("url", &self.url)
            .field("bucket", &self.bucket)
            .field("api_key", &self.api_key)
            .field("key_prefix", &self.key_prefix)
            .field("resumable_threshold", &self.resumable_threshold)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// The TUS chunk size Supabase recommends: 6 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 6 * 1024 * 1024;

impl SupabaseConfig {
    /// Settings for `bucket` at `url` with the project API key (also used as the token until
    /// [`access_token_provider`](Self::access_token_provider) says otherwise).
    pub fn new(
        url: impl Into<String>,
        bucket: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        let api_key = Secret::new(api_key);
        SupabaseConfig {
            url: url.into(),
            bucket: bucket.into(),
            access_token: Arc::new(StaticAccessToken(api_key.clone())),
            api_key,
            key_prefix: String::new(),
            resumable_threshold: DEFAULT_CHUNK_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Use the signed-in user's tokens.
    pub fn access_token_provider(mut self, provider: impl AccessTokenProvider) -> Self {
        self.access_token = Arc::new(provider);
        self
    }

    /// Set the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Set the TUS threshold and chunk size.
    pub fn resumable(mut self, threshold: u64, chunk_size: u64) -> Self {
        self.resumable_threshold = threshold;
        self.chunk_size = chunk_size;
        self
    }

    /// The storage API's base URL, ending in `/storage/v1`.
    pub fn storage_url(&self) -> String {
        let url = self.url.trim_end_matches('/');
        if url.ends_with("/storage/v1") {
            url.to_owned()
        } else {
            format!("{url}/storage/v1")
        }
    }
}
