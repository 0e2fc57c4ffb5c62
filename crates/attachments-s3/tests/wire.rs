//! What the S3 adapter puts on the wire, seen by the in-process s3s-fs server: which upload
//! path each size takes, the headers each path sends for both `PayloadSigning` values, and
//! what the adapter reports when a server refuses a body's encoding, a region, or receives a
//! damaged body.

mod common;

use attachments_core::{ErrorKind, RemoteStorage, collect_bytes};
use attachments_s3::{ChecksumMode, PayloadSigning, S3Config, S3RemoteStorage};
use attachments_testkit::{patterned_bytes, patterned_stream, upload_row};
use common::{InProcessS3, SeenRequest, Strictness, storage_for};

const MIB: u64 = 1024 * 1024;
/// The default multipart threshold.
const THRESHOLD: u64 = 16 * MIB;

/// How an upload went out.
#[derive(Debug, PartialEq, Eq)]
enum Path {
    /// One `PutObject` from memory (its CRC32 in a header).
    Buffered,
    /// One `PutObject` streamed (no checksum header: the SDK could only add it as a trailer).
    Streamed,
    /// `UploadPart` requests.
    Multipart(usize),
}

/// Upload `len` bytes (`size` as the row records it), check they read back, and return the
/// requests that carried the body.
async fn upload(
    server: &InProcessS3,
    storage: &S3RemoteStorage,
    name: &str,
    size: Option<u64>,
    len: u64,
) -> Vec<SeenRequest> {
    server.take_requests();
    let row = upload_row(name, size);
    storage
        .upload(&row, patterned_stream(len, len))
        .await
        .unwrap_or_else(|e| panic!("uploading {len} bytes: {e}"));
    let sent: Vec<SeenRequest> = server
        .take_requests()
        .into_iter()
        .filter(|request| request.uploads(name))
        .collect();
    let back = collect_bytes(storage.download(&row).await.unwrap())
        .await
        .unwrap();
    assert!(
        back == patterned_bytes(len, len),
        "{len} bytes read back as sent"
    );
    sent
}

fn path_of(requests: &[SeenRequest]) -> Path {
    let parts = requests.iter().filter(|r| r.is_part()).count();
    if parts > 0 {
        return Path::Multipart(parts);
    }
    assert_eq!(requests.len(), 1, "one PutObject: {requests:#?}");
    if requests[0].header("x-amz-checksum-crc32").is_some() {
        Path::Buffered
    } else {
        Path::Streamed
    }
}

/// No request is aws-chunked: some servers (Garage) refuse it.
fn assert_plain_body(request: &SeenRequest) {
    assert_eq!(request.header("content-encoding"), None, "{request:#?}");
    assert_eq!(request.header("x-amz-trailer"), None, "{request:#?}");
    assert_eq!(
        request.header("x-amz-decoded-content-length"),
        None,
        "{request:#?}"
    );
    let length: usize = request.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, request.body_len, "the body is the file's bytes");
}

async fn server(strictness: Strictness) -> (tempfile::TempDir, InProcessS3) {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcessS3::start_strict(dir.path(), strictness).await;
    (dir, server)
}

#[tokio::test]
async fn uploads_take_the_path_their_size_calls_for() {
    let (_dir, server) = server(Strictness::default()).await;
    let storage = server.storage("paths").await;
    let cases = [
        (Some(0), 0, Path::Buffered),
        (Some(MIB), MIB, Path::Buffered),
        (Some(MIB + 1), MIB + 1, Path::Streamed),
        (Some(THRESHOLD - 1), THRESHOLD - 1, Path::Streamed),
        (Some(THRESHOLD), THRESHOLD, Path::Multipart(4)),
        // an unknown size that ends within the first part goes up from memory
        (None, 3 * MIB, Path::Buffered),
        (None, THRESHOLD, Path::Multipart(4)),
    ];
    for (n, (size, len, expected)) in cases.into_iter().enumerate() {
        let sent = upload(&server, &storage, &format!("path-{n}.bin"), size, len).await;
        assert_eq!(path_of(&sent), expected, "size {size:?}, {len} bytes");
    }
}

#[tokio::test]
async fn unsigned_payloads_go_out_as_unsigned_payload_on_every_path() {
    let (_dir, server) = server(Strictness::default()).await;
    let storage = server.storage("unsigned").await;
    for (n, len) in [MIB, MIB + 1, THRESHOLD].into_iter().enumerate() {
        for request in upload(&server, &storage, &format!("u-{n}.bin"), Some(len), len).await {
            assert_plain_body(&request);
            assert_eq!(
                request.header("x-amz-content-sha256"),
                Some("UNSIGNED-PAYLOAD"),
                "{len} bytes: {request:#?}"
            );
        }
    }
}

#[tokio::test]
async fn signed_payloads_are_signed_on_every_path() {
    let (_dir, server) = server(Strictness::default()).await;
    let config = server
        .config("signed")
        .payload_signing(PayloadSigning::Signed);
    let storage = storage_for(config).await;
    let cases = [
        (MIB, Path::Buffered),
        // never streamed: up to a part from memory, above it in parts
        (MIB + 1, Path::Buffered),
        (6 * MIB, Path::Multipart(2)),
        (THRESHOLD, Path::Multipart(4)),
    ];
    for (n, (len, expected)) in cases.into_iter().enumerate() {
        let sent = upload(&server, &storage, &format!("s-{n}.bin"), Some(len), len).await;
        assert_eq!(path_of(&sent), expected, "{len} bytes");
        for request in sent {
            assert_plain_body(&request);
            let hash = request.header("x-amz-content-sha256").unwrap();
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{len} bytes: the body's SHA-256 is signed, not {hash}"
            );
        }
    }
}

#[tokio::test]
async fn checksums_when_required_send_no_checksum_on_any_path() {
    let (_dir, server) = server(Strictness::default()).await;
    let config = server
        .config("required")
        .checksum_mode(ChecksumMode::WhenRequired);
    let storage = storage_for(config).await;
    for (n, len) in [MIB, MIB + 1, THRESHOLD].into_iter().enumerate() {
        for request in upload(&server, &storage, &format!("r-{n}.bin"), Some(len), len).await {
            assert_plain_body(&request);
            let checksums: Vec<_> = request
                .headers
                .keys()
                .filter(|name| name.as_str().starts_with("x-amz-checksum-"))
                .collect();
            assert!(checksums.is_empty(), "{len} bytes: {checksums:?}");
        }
    }
}

#[tokio::test]
async fn every_path_works_on_a_server_that_refuses_aws_chunked() {
    let (_dir, server) = server(Strictness {
        refuse_aws_chunked: true,
        ..Strictness::default()
    })
    .await;
    for signing in [PayloadSigning::Unsigned, PayloadSigning::Signed] {
        let bucket = format!("chunked-{signing:?}").to_lowercase();
        let storage = storage_for(server.config(&bucket).payload_signing(signing)).await;
        for (n, len) in [MIB, MIB + 1, 6 * MIB, THRESHOLD].into_iter().enumerate() {
            upload(&server, &storage, &format!("c-{n}.bin"), Some(len), len).await;
        }
    }
}

#[tokio::test]
async fn a_refused_unsigned_payload_is_a_config_error_naming_payload_signing() {
    let (_dir, server) = server(Strictness {
        refuse_unsigned_payload: true,
        ..Strictness::default()
    })
    .await;
    let unsigned = server.storage("strict").await;
    for (n, len) in [MIB, 3 * MIB, THRESHOLD].into_iter().enumerate() {
        let row = upload_row(&format!("refused-{n}.bin"), Some(len));
        let err = unsigned
            .upload(&row, patterned_stream(1, len))
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (ErrorKind::Config, false),
            "{len} bytes: {err}"
        );
        assert!(
            err.to_string()
                .contains("payload_signing(PayloadSigning::Signed)"),
            "the error names the setting: {err}"
        );
    }
    // and the setting it names makes every path work
    let signed = storage_for(
        server
            .config("strict")
            .payload_signing(PayloadSigning::Signed),
    )
    .await;
    for (n, len) in [MIB, 3 * MIB, THRESHOLD].into_iter().enumerate() {
        upload(&server, &signed, &format!("signed-{n}.bin"), Some(len), len).await;
    }
}

#[tokio::test]
async fn a_region_the_server_refuses_is_a_config_error_naming_the_region() {
    let (_dir, server) = server(Strictness {
        region: Some("garage"),
        ..Strictness::default()
    })
    .await;
    let wrong = S3RemoteStorage::from_config(server.config("regional"))
        .await
        .unwrap();
    // HEAD: a bare 400
    let err = wrong.create_bucket_if_missing().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Config, false),
        "{err}"
    );
    assert!(err.to_string().contains("S3Config::region"), "{err}");
    // GET: AuthorizationHeaderMalformed
    let err = wrong
        .download(&upload_row("a.bin", Some(1)))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Config, false),
        "{err}"
    );
    assert!(
        err.to_string().contains("S3Config::region") && err.to_string().contains("garage"),
        "the hint and the server's words: {err}"
    );

    let right: S3Config = server.config("regional").region("garage");
    let storage = storage_for(right).await;
    upload(&server, &storage, "a.bin", Some(1000), 1000).await;
}

#[tokio::test]
async fn a_body_damaged_on_the_way_is_a_retryable_corrupt_error() {
    let (_dir, server) = server(Strictness {
        damage_bodies: true,
        ..Strictness::default()
    })
    .await;
    let storage = server.storage("damaged").await;
    // streamed: the server's ETag is not the MD5 of what was sent
    let row = upload_row("streamed.bin", Some(3 * MIB));
    let err = storage
        .upload(&row, patterned_stream(1, 3 * MIB))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Corrupt, true),
        "{err}"
    );
}
