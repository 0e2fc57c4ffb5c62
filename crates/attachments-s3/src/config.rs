//! Settings of an `S3RemoteStorage` built from scratch (rather than from a client the app owns).

pub use attachments_core::Secret;

/// The smallest part S3 accepts in a multipart upload (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// When requests carry checksums.
///
/// Whatever the mode, no upload is ever sent with `content-encoding: aws-chunked`: some
/// S3-compatible servers (Garage) refuse that encoding, and it is the only way the SDK can
/// attach a checksum to a body it streams. What each body shape carries:
///
/// | body | `WhenSupported` (default) | `WhenRequired` |
/// | --- | --- | --- |
/// | from memory (up to 1 MiB) | `x-amz-checksum-crc32` header | none |
/// | streamed (1 MiB to the multipart threshold) | none on the wire; the MD5 of what was sent is compared with the `ETag` the server answers | none |
/// | multipart part | `x-amz-checksum-crc32` header | none |
///
/// A streamed body whose MD5 differs from the `ETag` is a retryable `Corrupt` error (the
/// check is skipped when the `ETag` is not an MD5: SSE-KMS, SSE-C, or a server with other
/// `ETag`s). Choose `WhenRequired` for a server that refuses checksum headers or answers
/// `ETag`s that look like an MD5 but are not one.
///
/// ```
/// assert_eq!(attachments_s3::ChecksumMode::default(), attachments_s3::ChecksumMode::WhenSupported);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Checksum every request that supports one (and validate downloads that carry one).
    #[default]
    WhenSupported,
    /// Checksum only requests that require one.
    WhenRequired,
}

/// Whether upload bodies are signed.
///
/// What goes out as `x-amz-content-sha256`, per body shape:
///
/// | body | `Unsigned` (default) | `Signed` |
/// | --- | --- | --- |
/// | from memory (up to 1 MiB) | `UNSIGNED-PAYLOAD` | the body's SHA-256 |
/// | streamed (1 MiB to the multipart threshold) | `UNSIGNED-PAYLOAD` | never streamed: up to the part size (5 MiB) read into memory and signed, above it multipart |
/// | multipart part | `UNSIGNED-PAYLOAD` | the part's SHA-256 |
///
/// Signing costs a SHA-256 of every byte sent (a third of the queue's CPU time for small
/// uploads in `cargo xtask bench`). Unsigned bodies are still guarded: by the CRC32 or MD5 of
/// [`ChecksumMode`], and by TLS on `https` endpoints. Choose `Signed` for a plain-HTTP
/// endpoint reached through a network you do not trust, or for a server that refuses
/// `UNSIGNED-PAYLOAD`. `Signed` never streams a body, since the SDK can sign a stream only by
/// `aws-chunked` encoding, which some servers refuse; an upload still holds at most
/// `part_size × (part_concurrency + 1)` bytes.
///
/// ```
/// assert_eq!(attachments_s3::PayloadSigning::default(), attachments_s3::PayloadSigning::Unsigned);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadSigning {
    /// Sign every body (SigV4 over its SHA-256).
    Signed,
    /// Send every body as `UNSIGNED-PAYLOAD`.
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
    /// The region the requests are signed for (default `us-east-1`). It must be the region
    /// the server expects: AWS S3 the bucket's region, Cloudflare R2 `auto`, Garage its
    /// `s3_region` setting (often `garage`); SeaweedFS, MinIO, Ceph, moto and s3s-fs accept
    /// `us-east-1` unless configured otherwise. A server that expects another region answers
    /// `AuthorizationHeaderMalformed` (or a bare 400 to a `HEAD`), reported as a `Config` error.
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

    /// Settings from environment variables, for tests and tools pointed at a self-hosted
    /// server (always path-style addressing). `None` unless the first four are all set and
    /// not empty:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `{prefix}_ENDPOINT` | the endpoint URL, e.g. `http://127.0.0.1:8333` |
    /// | `{prefix}_BUCKET` | the bucket |
    /// | `{prefix}_ACCESS_KEY` | the access key id |
    /// | `{prefix}_SECRET_KEY` | the secret access key |
    /// | `{prefix}_REGION` | optional, the region (default `us-east-1`) |
    /// | `{prefix}_CHECKSUMS` | optional, `when_required` for [`ChecksumMode::WhenRequired`] |
    /// | `{prefix}_PAYLOAD_SIGNING` | optional, `signed` for [`PayloadSigning::Signed`] |
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
        let payload_signing = match read("PAYLOAD_SIGNING").as_deref() {
            Some("signed") => PayloadSigning::Signed,
            _ => PayloadSigning::Unsigned,
        };
        let mut config = S3Config::new(read("BUCKET")?)
            .endpoint_url(read("ENDPOINT")?)
            .force_path_style(true)
            .checksum_mode(checksum_mode)
            .payload_signing(payload_signing)
            .credentials(S3Credentials::new(read("ACCESS_KEY")?, read("SECRET_KEY")?));
        if let Some(region) = read("REGION") {
            config = config.region(region);
        }
        Some(config)
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
