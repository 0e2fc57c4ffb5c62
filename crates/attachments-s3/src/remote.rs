//! `S3RemoteStorage`: attachments as objects in an S3 bucket.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use attachments_core::{
    Attachment, ByteStream, ChunkedReader, Error, ErrorKind, RangeBody, RemoteStorage, Result,
    validate_relative_path,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, TryStreamExt};
use http_body::Frame;
use http_body_util::StreamBody;
use md5::{Digest, Md5};
use sync_wrapper::SyncStream;
use tracing::{debug, warn};

use crate::config::{ChecksumMode, MIN_PART_SIZE, MultipartSettings, PayloadSigning, S3Config};
use crate::error::{BodyEncoding, classify, classify_upload};

mod ranges;

/// `request.customize()`, with payload signing turned off unless the storage signs payloads.
/// The SDK offers the switch on each operation's own type, hence a macro.
macro_rules! with_signing {
    ($storage:expr, $request:expr) => {{
        let request = $request.customize();
        match $storage.payload_signing {
            PayloadSigning::Unsigned => request.disable_payload_signing(),
            PayloadSigning::Signed => request,
        }
    }};
}

/// Attachments as objects in an S3 bucket (Amazon S3, R2, MinIO, Garage, SeaweedFS, Ceph ...).
///
/// The object key is the key prefix followed by the attachment's filename. Uploads stream
/// from local storage: one `PutObject` below the multipart threshold, a multipart upload with
/// bounded part concurrency above it (aborted on the server if it fails or is cancelled).
/// Downloads stream the body. Deleting a missing object is Ok.
///
/// ```no_run
/// # async fn demo() -> attachments_core::Result<()> {
/// use attachments_s3::{S3Config, S3Credentials, S3RemoteStorage};
/// let remote = S3RemoteStorage::from_config(
///     S3Config::new("photos")
///         .endpoint_url("http://127.0.0.1:8333")
///         .force_path_style(true)
///         .credentials(S3Credentials::new("key-id", "secret")),
/// )
/// .await?;
/// # drop(remote); Ok(()) }
/// ```
#[derive(Clone)]
pub struct S3RemoteStorage {
    client: Client,
    bucket: String,
    key_prefix: String,
    multipart: MultipartSettings,
    checksum_mode: ChecksumMode,
    payload_signing: PayloadSigning,
}

impl fmt::Debug for S3RemoteStorage {
    // The client's configuration holds credentials: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3RemoteStorage")
            .field("bucket", &self.bucket)
            .field("key_prefix", &self.key_prefix)
            .field("multipart", &self.multipart)
            .field("checksum_mode", &self.checksum_mode)
            .field("payload_signing", &self.payload_signing)
            .finish_non_exhaustive()
    }
}

impl S3RemoteStorage {
    /// A storage over a client the app configured itself. Set the client's retries to one
    /// attempt (`RetryConfig::disabled()`): the queue retries with its own policy, and SDK
    /// retries would multiply it (and cannot replay a streamed upload anyway).
    pub fn new(client: Client, bucket: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        S3RemoteStorage {
            client,
            bucket: bucket.into(),
            key_prefix: key_prefix.into(),
            multipart: MultipartSettings::default(),
            checksum_mode: ChecksumMode::default(),
            payload_signing: PayloadSigning::default(),
        }
    }

    /// A storage with its own client built from `config`.
    ///
    /// # Errors
    /// `InvalidInput` for multipart settings S3 would refuse.
    pub async fn from_config(config: S3Config) -> Result<Self> {
        validate_multipart(&config.multipart)?;
        let (request_checksums, response_checksums) = match config.checksum_mode {
            ChecksumMode::WhenSupported => (
                RequestChecksumCalculation::WhenSupported,
                ResponseChecksumValidation::WhenSupported,
            ),
            ChecksumMode::WhenRequired => (
                RequestChecksumCalculation::WhenRequired,
                ResponseChecksumValidation::WhenRequired,
            ),
        };
        let mut builder = match &config.credentials {
            Some(credentials) => aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    &credentials.access_key_id,
                    credentials.secret_access_key.expose(),
                    None,
                    None,
                    "attachments-s3",
                )),
            // only here does the standard chain (environment, profile, instance metadata) run
            None => aws_sdk_s3::config::Builder::from(
                &aws_config::defaults(BehaviorVersion::latest()).load().await,
            ),
        };
        builder = builder
            .region(Region::new(config.region.clone()))
            .force_path_style(config.force_path_style)
            .retry_config(RetryConfig::disabled())
            // The queue fails a transfer that moves no byte for `transfer_timeout`; the SDK's
            // own throughput check would only add timers to every request and body.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .request_checksum_calculation(request_checksums)
            .response_checksum_validation(response_checksums);
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3RemoteStorage {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            key_prefix: config.key_prefix,
            multipart: config.multipart,
            checksum_mode: config.checksum_mode,
            payload_signing: config.payload_signing,
        })
    }

    /// Change how uploads are split.
    ///
    /// # Errors
    /// `InvalidInput` for a part size below 5 MiB, a threshold below the part size or no
    /// part concurrency.
    pub fn with_multipart(mut self, multipart: MultipartSettings) -> Result<Self> {
        validate_multipart(&multipart)?;
        self.multipart = multipart;
        Ok(self)
    }

    /// Tell the storage which checksum mode its client uses (for a client made with
    /// [`new`](Self::new)); it decides whether multipart uploads carry part checksums.
    pub fn with_checksum_mode(mut self, mode: ChecksumMode) -> Self {
        self.checksum_mode = mode;
        self
    }

    /// Change whether upload bodies are signed (see [`PayloadSigning`]).
    pub fn with_payload_signing(mut self, signing: PayloadSigning) -> Self {
        self.payload_signing = signing;
        self
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Create the bucket unless it exists (for tests, examples and first-time setup).
    ///
    /// # Errors
    /// Classified SDK errors.
    pub async fn create_bucket_if_missing(&self) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(error)
                if error
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404) => {}
            Err(error) => return Err(classify(error, format!("checking bucket {}", self.bucket))),
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    aws_sdk_s3::error::ProvideErrorMetadata::code(&error),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(classify(error, format!("creating bucket {}", self.bucket))),
        }
    }

    /// The object key of an attachment; refuses filenames that are not safe relative paths,
    /// so a hostile name cannot address another prefix.
    fn key(&self, attachment: &Attachment) -> Result<String> {
        validate_relative_path(&attachment.filename)?;
        Ok(format!("{}{}", self.key_prefix, attachment.filename))
    }

    /// How this storage's upload bodies go out, for error hints.
    fn encoding(&self) -> BodyEncoding {
        BodyEncoding {
            signing: self.payload_signing,
            checksums: self.checksum_mode,
        }
    }

    /// One `PutObject` of a body streamed as it is read: plain bytes with their length and
    /// `UNSIGNED-PAYLOAD`, never `aws-chunked`. With checksums, the MD5 of what was sent is
    /// compared with the `ETag` the server answers.
    async fn put_streamed(
        &self,
        key: &str,
        attachment: &Attachment,
        size: u64,
        data: ByteStream,
    ) -> Result<()> {
        let length = i64::try_from(size)
            .map_err(|_| Error::invalid_input(format!("size {size} is too large")))?;
        let digest = Arc::new(Mutex::new(Md5::new()));
        let hashing = Arc::clone(&digest);
        let data = data.map_ok(move |chunk| {
            hashing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .update(&chunk);
            Frame::data(chunk)
        });
        // The SDK wants a `Sync` body; the stream is only ever polled through `&mut`, which
        // `SyncStream` turns into `Sync` without locking.
        let body = SdkByteStream::from_body_1_x(StreamBody::new(SyncStream::new(data.fuse())));
        // The SDK can attach a checksum to a stream only as an aws-chunked trailer, which
        // some servers (Garage) refuse: this one request computes none.
        let no_trailer = aws_sdk_s3::config::Builder::default()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(length)
            .set_content_type(attachment.media_type.clone())
            .body(body)
            .customize()
            .config_override(no_trailer)
            // a stream cannot be signed without aws-chunked: `Signed` never streams
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| classify_upload(e, format!("uploading {key}"), self.encoding()))?;
        if self.checksum_mode == ChecksumMode::WhenSupported && etag_is_md5(&output) {
            let sent = hex(&digest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .finalize());
            let stored = output.e_tag().unwrap_or_default().trim_matches('"');
            if !stored.eq_ignore_ascii_case(&sent) {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "uploading {key}: the server stored other bytes than were sent (ETag {stored}, MD5 {sent}); \
                         for a server whose ETags are not MD5s set S3Config::checksum_mode(ChecksumMode::WhenRequired)"
                    ),
                )
                .with_retryable(true));
            }
        }
        Ok(())
    }

    /// One `PutObject` from memory: its checksum (with checksums on) travels in a header,
    /// and its SHA-256 is signed unless payloads are unsigned.
    async fn put_buffered(&self, key: &str, attachment: &Attachment, bytes: Bytes) -> Result<()> {
        with_signing!(
            self,
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .set_content_type(attachment.media_type.clone())
                .body(SdkByteStream::from(bytes))
        )
        .send()
        .await
        .map_err(|e| classify_upload(e, format!("uploading {key}"), self.encoding()))?;
        Ok(())
    }

    /// Upload in parts of `part_size`, at most `part_concurrency` at once. `first` is the
    /// first part, already read.
    async fn put_multipart(
        &self,
        key: &str,
        attachment: &Attachment,
        first: Bytes,
        reader: ChunkedReader,
    ) -> Result<()> {
        let with_checksums = self.checksum_mode == ChecksumMode::WhenSupported;
        // a process killed during an earlier upload of this object left its parts behind
        abort_unfinished_uploads(&self.client, &self.bucket, key).await;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(attachment.media_type.clone())
            .set_checksum_algorithm(with_checksums.then_some(ChecksumAlgorithm::Crc32))
            .send()
            .await
            .map_err(|e| classify(e, format!("starting the multipart upload of {key}")))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            Error::new(ErrorKind::Corrupt, format!("no upload id for {key}")).with_retryable(true)
        })?;
        // From here on, the upload is aborted on the server unless it completes: on error, and
        // also if this future is dropped (stop_sync, the stall watchdog).
        let mut abort = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            armed: true,
        };

        let result = self
            .upload_parts_and_complete(key, upload_id, first, reader)
            .await;
        abort.armed = false;
        match result {
            Ok(parts) => {
                debug!(key, parts, "multipart upload completed");
                Ok(())
            }
            Err(error) => {
                // awaited here rather than left to the drop guard, so the failure returns only
                // once nothing is left on the server
                abort_upload(&self.client, &self.bucket, key, upload_id).await;
                Err(error)
            }
        }
    }

    /// Upload every part and complete the upload; returns the number of parts. The next part
    /// is read while the earlier ones are in flight, so a part is ready as soon as a slot
    /// frees (the reader's buffer pool bounds how far it runs ahead).
    async fn upload_parts_and_complete(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        reader: ChunkedReader,
    ) -> Result<i32> {
        // a stream keeps a read in progress when the `select!` below picks a finished part
        let mut parts = Box::pin(futures_util::stream::try_unfold(
            reader,
            |mut reader| async {
                Ok::<_, Error>(reader.next_chunk().await?.map(|part| (part, reader)))
            },
        ));
        let mut ready = Some(first);
        let mut in_flight = FuturesUnordered::new();
        let mut completed = Vec::new();
        let mut next_number = 1;
        let mut exhausted = false;
        loop {
            if in_flight.len() < self.multipart.part_concurrency
                && let Some(bytes) = ready.take()
            {
                in_flight.push(self.upload_part(key, upload_id, next_number, bytes));
                next_number += 1;
                continue;
            }
            if ready.is_none() && !exhausted {
                tokio::select! {
                    part = parts.next() => match part.transpose()? {
                        Some(bytes) => ready = Some(bytes),
                        None => exhausted = true,
                    },
                    Some(part) = in_flight.next(), if !in_flight.is_empty() => {
                        completed.push(part?);
                    }
                }
                continue;
            }
            match in_flight.next().await {
                Some(part) => completed.push(part?),
                None => break,
            }
        }
        completed.sort_by_key(|part: &CompletedPart| part.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(e, format!("completing the multipart upload of {key}")))?;
        Ok(next_number - 1)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        bytes: Bytes,
    ) -> Result<CompletedPart> {
        let output = with_signing!(
            self,
            self.client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(SdkByteStream::from(bytes))
        )
        .send()
        .await
        .map_err(|e| {
            classify_upload(
                e,
                format!("uploading part {number} of {key}"),
                self.encoding(),
            )
        })?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(output.e_tag().map(str::to_owned))
            .set_checksum_crc32(output.checksum_crc32().map(str::to_owned))
            .build())
    }
}

/// Files up to this size are read into memory and sent in one `PutObject` whose checksum
/// travels in a header (`cargo xtask bench`: small uploads about 15 % faster than streamed).
/// Exactly this size is still sent from memory; one byte more is streamed.
const BUFFERED_PUT_LIMIT: u64 = 1024 * 1024;

/// Whether a `PutObject`'s `ETag` is the MD5 of the body: S3 and the compatible servers make
/// it so for a plain upload, except under SSE-KMS and SSE-C encryption.
fn etag_is_md5(output: &aws_sdk_s3::operation::put_object::PutObjectOutput) -> bool {
    let encrypted_with_own_key = output.sse_customer_algorithm().is_some()
        || matches!(
            output.server_side_encryption(),
            Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
        );
    let etag = output.e_tag().unwrap_or_default().trim_matches('"');
    !encrypted_with_own_key && etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Read a stream expected to hold `size` bytes (more or fewer are sent as they are: the queue
/// compares the bytes it read with the size it saved).
async fn read_all(mut data: ByteStream, size: u64) -> Result<Bytes> {
    let Some(first) = data.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(Error::from)?;
    let Some(second) = data.next().await else {
        // a stream of one chunk (a small local file is read whole) is sent without a copy
        return Ok(first);
    };
    let mut buffer = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    buffer.extend_from_slice(&first);
    buffer.extend_from_slice(&second.map_err(Error::from)?);
    while let Some(chunk) = data.next().await {
        buffer.extend_from_slice(&chunk.map_err(Error::from)?);
    }
    Ok(Bytes::from(buffer))
}

#[async_trait]
impl RemoteStorage for S3RemoteStorage {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        let key = self.key(attachment)?;
        match attachment.size {
            Some(size) if size <= BUFFERED_PUT_LIMIT => {
                let bytes = read_all(data, size).await?;
                self.put_buffered(&key, attachment, bytes).await
            }
            // `Signed` never streams (see `PayloadSigning`): it takes the path below, which
            // sends a body of up to one part from memory and a larger one in parts
            Some(size)
                if size < self.multipart.threshold
                    && self.payload_signing == PayloadSigning::Unsigned =>
            {
                self.put_streamed(&key, attachment, size, data).await
            }
            _ => {
                // Unknown or large size: read the first part; a stream that ends within it is
                // small after all and goes up in one request.
                let part_size = part_size_for(self.multipart.part_size, attachment.size);
                // one buffer per part in flight and one being read: the memory bound
                let buffers = self.multipart.part_concurrency + 1;
                let mut reader = ChunkedReader::with_max_buffers(data, part_size, buffers);
                let first = reader.next_chunk().await?.unwrap_or_default();
                if reader.is_done() {
                    self.put_buffered(&key, attachment, first).await
                } else {
                    self.put_multipart(&key, attachment, first, reader).await
                }
            }
        }
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        let key = self.key(attachment)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| classify(e, format!("downloading {key}")))?;
        let body = output.body;
        let stream = futures_util::stream::try_unfold(body, move |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                // the connection broke mid-body: worth another try
                Err(error) => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    error,
                )),
            }
        });
        Ok(Box::pin(stream))
    }

    fn supports_ranges(&self) -> bool {
        true
    }

    async fn download_range(
        &self,
        attachment: &Attachment,
        range: std::ops::Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        self.get_range(attachment, range, version).await
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        let key = self.key(attachment)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(_) => {
                // nor may an upload of the object that a killed process left unfinished stay
                abort_unfinished_uploads(&self.client, &self.bucket, &key).await;
                Ok(())
            }
            Err(error) => {
                let error = classify(error, format!("deleting {key}"));
                // S3 answers 204 for a missing key; some compatible servers say 404
                if error.kind() == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }
}

/// S3 allows at most 10,000 parts: a file too large for the configured part size gets larger
/// parts (rounded up to a MiB).
fn part_size_for(configured: u64, size: Option<u64>) -> usize {
    const MAX_PARTS: u64 = 10_000;
    const MIB: u64 = 1024 * 1024;
    let needed = size.map_or(0, |size| size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB);
    usize::try_from(configured.max(needed)).unwrap_or(usize::MAX)
}

fn validate_multipart(multipart: &MultipartSettings) -> Result<()> {
    if multipart.part_size < MIN_PART_SIZE {
        return Err(Error::invalid_input(format!(
            "part size {} is below the 5 MiB S3 requires",
            multipart.part_size
        )));
    }
    if multipart.threshold < multipart.part_size {
        return Err(Error::invalid_input(
            "the multipart threshold must be at least the part size",
        ));
    }
    if multipart.part_concurrency == 0 {
        return Err(Error::invalid_input("part concurrency must be at least 1"));
    }
    Ok(())
}

/// Abort every unfinished multipart upload of `key` (a process killed mid-upload cannot abort
/// its own). Object names are unique per attachment, so these can only be earlier tries of
/// the same attachment. Failures are logged: the bucket's lifecycle rule for incomplete
/// uploads is the last line of defence.
async fn abort_unfinished_uploads(client: &Client, bucket: &str, key: &str) {
    let listed = match client
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
    {
        Ok(listed) => listed,
        Err(error) => {
            debug!(key, error = %classify(error, "listing uploads".into()), "could not list unfinished uploads");
            return;
        }
    };
    for upload in listed.uploads() {
        if upload.key() == Some(key)
            && let Some(upload_id) = upload.upload_id()
        {
            abort_upload(client, bucket, key, upload_id).await;
        }
    }
}

/// Abort a multipart upload, so the server drops its parts; failures are logged (the
/// bucket's lifecycle rule for incomplete uploads is the last line of defence).
async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let request = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id);
    match request.send().await {
        Ok(_) => debug!(key, "multipart upload aborted"),
        Err(error) => warn!(
            key,
            error = %classify(error, "aborting".into()),
            "could not abort a multipart upload"
        ),
    }
}

/// Aborts a multipart upload on the server unless disarmed, so no upload is left behind.
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(key = %self.key, "no runtime to abort a multipart upload");
            return;
        };
        let (client, bucket, key, upload_id) = (
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        runtime.spawn(async move { abort_upload(&client, &bucket, &key, &upload_id).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_the_part_limit() {
        let five = 5 * 1024 * 1024;
        assert_eq!(part_size_for(five, Some(1 << 30)), 5 * 1024 * 1024);
        assert_eq!(part_size_for(five, None), 5 * 1024 * 1024);
        // 100 GiB needs parts of at least 10.24 MiB: 11 MiB
        assert_eq!(part_size_for(five, Some(100 << 30)), 11 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_body_read_into_memory_holds_every_chunk_in_order() {
        use attachments_core::byte_stream_from;
        for chunks in [
            vec![],
            vec![&b"whole"[..]],
            vec![&b"ab"[..], &b"c"[..], &b"de"[..]],
        ] {
            let expected = chunks.concat();
            let body = read_all(byte_stream_from(chunks), 5).await.unwrap();
            assert_eq!(body, expected);
        }
        let failing: ByteStream = Box::pin(futures_util::stream::iter([
            Ok(Bytes::from_static(b"ok")),
            Err(std::io::Error::other("broken")),
        ]));
        assert!(read_all(failing, 5).await.is_err());
    }

    #[tokio::test]
    async fn a_client_built_from_settings_leaves_stall_detection_to_the_queue() {
        let storage = S3RemoteStorage::from_config(
            S3Config::new("photos")
                .endpoint_url("http://127.0.0.1:9")
                .credentials(crate::S3Credentials::new("key", "secret")),
        )
        .await
        .unwrap();
        // the queue's `transfer_timeout` watchdog fails a transfer that moves no byte; the
        // SDK's check would only add timers to every request
        let stall = storage
            .client()
            .config()
            .stalled_stream_protection()
            .cloned();
        assert!(stall.is_some_and(|config| !config.is_enabled()));
    }
}
