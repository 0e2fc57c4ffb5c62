//! Settings of an `S3RemoteStorage` built from scratch (rather than from a client the app owns).

pub use attachments_core::Secret;

/// The smallest part S3 accepts in a multipart upload (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// When the SDK adds checksums to requests.
///
/// `WhenSupported` (the SDK's default) sends a CRC32 with every upload, streamed as an
/// `aws-chunked` trailer; some S3-compatible servers reject that encoding and need
/// `WhenRequired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Checksum every request that supports one.
    #[default]
    WhenSupported,
    /// Checksum only requests that require one.
    WhenRequired,
}

/// Whether upload bodies are signed.
///
/// On a plain-HTTP endpoint the SDK signs a streamed body chunk by chunk, which costs a
/// SHA-256 of every byte sent (a third of the queue's CPU time for small uploads in
/// `cargo xtask bench`). `Unsigned` (the default) sends `UNSIGNED-PAYLOAD` instead: the CRC32
/// that [`ChecksumMode::WhenSupported`] adds still detects a body corrupted on the way, and
/// TLS protects it on `https` endpoints. Choose `Signed` for a plain-HTTP endpoint reached
/// through a network you do not trust.
///
/// ```
/// assert_eq!(attachments_s3::PayloadSigning::default(), attachments_s3::PayloadSigning::Unsigned);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadSigning {
    /// Sign the body (SigV4 over its SHA-256).
    Signed,
    /// Send the body as `UNSIGNED-PAYLOAD`.
    #[default]
    Unsigned,
}

/// How uploads are split.
///
/// An upload holds at most `part_size × (part_concurrency + 1)` bytes of file data, whatever
/// the file size.
///
/// ```
/// let multipart = attachments_s3::MultipartSettings::default();
/// assert_eq!(multipart.threshold, 16 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartSettings {
    /// Files of at least this many bytes (or of unknown size, once this much has been read)
    /// are uploaded in parts; smaller ones with one streamed `PutObject` (default 16 MiB).
    pub threshold: u64,
    /// Bytes per part, at least 5 MiB (default 5 MiB; raised for a file that would need more
    /// than S3's 10,000 parts).
    pub part_size: u64,
    /// Parts uploaded at once (default 4).
    pub part_concurrency: usize,
}

impl Default for MultipartSettings {
    fn default() -> Self {
        MultipartSettings {
            threshold: 16 * 1024 * 1024,
            part_size: 5 * 1024 * 1024,
            part_concurrency: 4,
        }
    }
}

/// Static credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// The access key id (not secret on its own).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
}

impl S3Credentials {
    /// Credentials from an access key pair.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret_access_key),
        }
    }
}

/// Everything needed to reach a bucket.
///
/// ```
/// use attachments_s3::{S3Config, S3Credentials};
/// let config = S3Config::new("photos")
///     .key_prefix("attachments/")
///     .endpoint_url("http://127.0.0.1:8333")
///     .force_path_style(true)
///     .credentials(S3Credentials::new("AKIA", "very-secret"));
/// assert!(!format!("{config:?}").contains("very-secret"));
/// ```
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Prepended to every attachment's filename to form the object key (e.g. `attachments/`).
    pub key_prefix: String,
    /// The region (default `us-east-1`, which S3-compatible servers accept).
    pub region: String,
    /// A custom endpoint (MinIO, R2, SeaweedFS, ...); `None` for Amazon S3.
    pub endpoint_url: Option<String>,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (most self-hosted
    /// servers need this).
    pub force_path_style: bool,
    /// Static credentials; `None` uses the standard AWS chain (environment, profile, ...).
    pub credentials: Option<S3Credentials>,
    /// When requests carry checksums.
    pub checksum_mode: ChecksumMode,
    /// Whether upload bodies are signed.
    pub payload_signing: PayloadSigning,
    /// How uploads are split.
    pub multipart: MultipartSettings,
}

impl S3Config {
    /// Settings for `bucket`, with defaults for the rest.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            key_prefix: String::new(),
            region: "us-east-1".to_owned(),
            endpoint_url: None,
            force_path_style: false,
            credentials: None,
            checksum_mode: ChecksumMode::default(),
            payload_signing: PayloadSigning::default(),
            multipart: MultipartSettings::default(),
        }
    }

    /// Settings from environment variables `{prefix}_ENDPOINT`, `{prefix}_BUCKET`,
    /// `{prefix}_ACCESS_KEY`, `{prefix}_SECRET_KEY` (path-style addressing, for self-hosted
    /// servers), and optionally `{prefix}_CHECKSUMS=when_required`. `None` unless the four are
    /// all set and not empty.
    ///
    /// ```
    /// assert!(attachments_s3::S3Config::from_env("NO_SUCH_PREFIX").is_none());
    /// ```
    pub fn from_env(prefix: &str) -> Option<Self> {
        let read = |name: &str| {
            std::env::var(format!("{prefix}_{name}"))
                .ok()
                .filter(|value| !value.is_empty())
        };
        let checksum_mode = match read("CHECKSUMS").as_deref() {
            Some("when_required") => ChecksumMode::WhenRequired,
            _ => ChecksumMode::WhenSupported,
        };
        Some(
            S3Config::new(read("BUCKET")?)
                .endpoint_url(read("ENDPOINT")?)
                .force_path_style(true)
                .checksum_mode(checksum_mode)
                .credentials(S3Credentials::new(read("ACCESS_KEY")?, read("SECRET_KEY")?)),
        )
    }

    /// Set the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Set the region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Set a custom endpoint.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Use path-style addressing.
    pub fn force_path_style(mut self, enabled: bool) -> Self {
        self.force_path_style = enabled;
        self
    }

    /// Use static credentials.
    pub fn credentials(mut self, credentials: S3Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Set the checksum mode.
    pub fn checksum_mode(mut self, mode: ChecksumMode) -> Self {
        self.checksum_mode = mode;
        self
    }

    /// Set whether upload bodies are signed.
    pub fn payload_signing(mut self, signing: PayloadSigning) -> Self {
        self.payload_signing = signing;
        self
    }

    /// Set how uploads are split.
    pub fn multipart(mut self, multipart: MultipartSettings) -> Self {
        self.multipart = multipart;
        self
    }
}
