//! The S3 adapter against an external S3-compatible server (SeaweedFS, started by
//! `cargo xtask test`; or any server named by `ATTACHMENTS_TEST_S3_*`). Without the variables
//! these tests say so on stderr, and fail under `CI=true`.

mod common;

use attachments_core::{AttachmentId, ByteStream, ErrorKind, RemoteStorage};
use attachments_s3::{PayloadSigning, S3Credentials, S3RemoteStorage};
use attachments_testkit::{byte_at, patterned_stream, remote_storage_suite, upload_row};
use common::{external_config, storage_for};
use futures_util::StreamExt;

/// Compare a stream with test file `seed` chunk by chunk, in constant memory.
async fn assert_matches(mut stream: ByteStream, seed: u64, len: u64) {
    let mut offset = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (i, byte) in chunk.iter().enumerate() {
            assert_eq!(
                *byte,
                byte_at(seed, offset + i as u64),
                "byte {}",
                offset + i as u64
            );
        }
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, len, "length");
}

#[tokio::test]
async fn external_server_keeps_the_contract() {
    let Some(config) = external_config() else {
        return;
    };
    remote_storage_suite(&storage_for(config).await).await;
}

/// Upload `len` bytes (with `size` recorded) and read them back.
async fn round_trip(storage: &S3RemoteStorage, len: u64) {
    let row = upload_row(
        &format!("paths/{}-{len}.bin", AttachmentId::generate()),
        Some(len),
    );
    storage
        .upload(&row, patterned_stream(len, len))
        .await
        .unwrap_or_else(|e| panic!("uploading {len} bytes: {e}"));
    assert_matches(storage.download(&row).await.unwrap(), len, len).await;
    storage.delete(&row).await.unwrap();
}

/// Both sides of each path's size boundary: from memory up to 1 MiB, streamed below the
/// multipart threshold (16 MiB), in parts from it on.
const PATH_BOUNDARIES: [u64; 6] = [0, MIB, MIB + 1, 5 * MIB + 1, 16 * MIB - 1, 16 * MIB];
const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn every_upload_path_round_trips() {
    let Some(config) = external_config() else {
        return;
    };
    let storage = storage_for(config).await;
    for len in PATH_BOUNDARIES {
        round_trip(&storage, len).await;
    }
}

#[tokio::test]
async fn every_upload_path_round_trips_with_signed_payloads() {
    let Some(config) = external_config() else {
        return;
    };
    let storage = storage_for(config.payload_signing(PayloadSigning::Signed)).await;
    for len in PATH_BOUNDARIES {
        round_trip(&storage, len).await;
    }
}

#[tokio::test]
async fn a_200_mib_multipart_round_trip() {
    let Some(config) = external_config() else {
        return;
    };
    let storage = storage_for(config).await;
    let len = 200 << 20;
    let row = upload_row(&format!("big/{}.bin", AttachmentId::generate()), Some(len));
    storage
        .upload(&row, patterned_stream(200, len))
        .await
        .unwrap();
    assert_matches(storage.download(&row).await.unwrap(), 200, len).await;
    storage.delete(&row).await.unwrap();
}

#[tokio::test]
async fn external_errors_are_classified() {
    let Some(config) = external_config() else {
        return;
    };
    let row = upload_row("errors/a.bin", Some(3));

    let mut missing_bucket = config.clone();
    missing_bucket.bucket = format!("no-such-bucket-{}", std::process::id());
    let storage = S3RemoteStorage::from_config(missing_bucket).await.unwrap();
    // (a download: some servers create a missing bucket on the first upload into it)
    let err = storage.download(&row).await.err().unwrap();
    // Servers differ: S3, SeaweedFS, moto and Garage say NoSuchBucket (a configuration
    // error), s3s-fs says NoSuchKey. Both are permanent; a retry cannot create the bucket.
    assert!(
        matches!(err.kind(), ErrorKind::Config | ErrorKind::NotFound) && !err.is_retryable(),
        "{err}"
    );
    println!(
        "a download from a missing bucket: {} ({err})",
        err.kind().as_str()
    );

    let mut wrong_secret = config.clone();
    let access = wrong_secret
        .credentials
        .as_ref()
        .unwrap()
        .access_key_id
        .clone();
    wrong_secret.credentials = Some(S3Credentials::new(access, "not-the-secret"));
    let storage = S3RemoteStorage::from_config(wrong_secret).await.unwrap();
    let err = storage
        .upload(&row, patterned_stream(1, 3))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::PermissionDenied, false),
        "{err}"
    );

    let storage = storage_for(config).await;
    let err = storage
        .download(&upload_row("errors/missing.bin", Some(0)))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::NotFound, false),
        "{err}"
    );
}
