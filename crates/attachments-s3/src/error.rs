//! Classify the SDK's errors at the boundary: kind and retryability, nothing else.

use attachments_core::{Error, ErrorKind};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::config::{ChecksumMode, PayloadSigning};

/// How an upload's body went out: a server that refuses it gets an error naming the setting
/// that sends it differently.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyEncoding {
    pub(crate) signing: PayloadSigning,
    pub(crate) checksums: ChecksumMode,
}

/// Turn an SDK error into ours.
///
/// - `NoSuchKey`, 404: `NotFound` (permanent);
/// - `AccessDenied`, bad key id or signature, 401/403: `PermissionDenied` (permanent);
/// - `ExpiredToken`, `InvalidToken`, `RequestTimeTooSkewed`: `PermissionDenied`, retryable
///   (the credential chain refreshes temporary credentials; a clock gets corrected);
/// - `NoSuchBucket`, a region or address the server refuses (`AuthorizationHeaderMalformed`,
///   `PermanentRedirect`, a 400 without a body, as a `HEAD` gets), 501: `Config` (permanent,
///   with a hint naming the setting);
/// - `BadDigest` and other checksum mismatches: `Corrupt`, retryable (the body was damaged on
///   the way);
/// - `SlowDown`, 429, 5xx, timeouts, connection failures: `Unavailable`/`TimedOut` (retryable);
/// - anything else the server refused: `Other` (permanent).
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>, context: String) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify_with(error, context, None)
}

/// [`classify`] for a request that carries an upload's body: a refusal of how the body was
/// encoded (a 501, or a 400 about the payload, its signature or checksum) is a `Config` error
/// naming the setting to change, never an `Other` that would archive the file for good.
pub(crate) fn classify_upload<E>(
    error: SdkError<E, HttpResponse>,
    context: String,
    encoding: BodyEncoding,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify_with(error, context, Some(encoding))
}

fn classify_with<E>(
    error: SdkError<E, HttpResponse>,
    context: String,
    encoding: Option<BodyEncoding>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_owned);
    let message = error.message().map(str::to_owned);
    let verdict = judge(
        &error,
        code.as_deref(),
        message.as_deref(),
        status,
        encoding,
    );
    let mut detail = match (&code, status) {
        (Some(code), Some(status)) => format!("{context}: {code} (http {status})"),
        (Some(code), None) => format!("{context}: {code}"),
        (None, Some(status)) => format!("{context}: http {status}"),
        (None, None) => context,
    };
    if let Some(hint) = verdict.hint {
        // the server's own words say which region or encoding it wanted
        if let Some(message) = &message {
            detail = format!("{detail}: {message}");
        }
        detail = format!("{detail}; {hint}");
    }
    Error::new(verdict.kind, detail)
        .with_source(error)
        .with_retryable(verdict.retryable)
}

struct Verdict {
    kind: ErrorKind,
    retryable: bool,
    hint: Option<String>,
}

impl Verdict {
    fn new(kind: ErrorKind) -> Self {
        let retryable = matches!(
            kind,
            ErrorKind::Unavailable | ErrorKind::TimedOut | ErrorKind::Corrupt
        );
        Verdict {
            kind,
            retryable,
            hint: None,
        }
    }

    fn config(hint: String) -> Self {
        Verdict {
            kind: ErrorKind::Config,
            retryable: false,
            hint: Some(hint),
        }
    }
}

const REGION_HINT: &str = "the server refused the request's region or address: set S3Config::region \
    (ATTACHMENTS_TEST_S3_REGION in tests) to the region the server expects (AWS: the bucket's, \
    R2: auto, Garage: its s3_region) and check endpoint_url and force_path_style";

/// Words in a refusal that is about the body's encoding rather than the caller's rights.
const ENCODING_WORDS: [&str; 7] = [
    "payload",
    "chunk",
    "trailer",
    "sha256",
    "encoding",
    "checksum",
    "signature",
];

fn encoding_hint(encoding: BodyEncoding) -> String {
    let mut changes = Vec::new();
    if encoding.signing == PayloadSigning::Unsigned {
        changes.push("S3Config::payload_signing(PayloadSigning::Signed) if it wants signed bodies");
    }
    if encoding.checksums == ChecksumMode::WhenSupported {
        changes.push(
            "S3Config::checksum_mode(ChecksumMode::WhenRequired) if it refuses checksum headers",
        );
    }
    if changes.is_empty() {
        "the server refused how the upload's body was encoded".to_owned()
    } else {
        format!(
            "the server refused how the upload's body was encoded: set {}",
            changes.join(", or ")
        )
    }
}

fn judge<E>(
    error: &SdkError<E, HttpResponse>,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    encoding: Option<BodyEncoding>,
) -> Verdict {
    match error {
        SdkError::TimeoutError(_) => return Verdict::new(ErrorKind::TimedOut),
        SdkError::DispatchFailure(_) => return Verdict::new(ErrorKind::Unavailable),
        SdkError::ConstructionFailure(_) => return Verdict::new(ErrorKind::Config),
        _ => {}
    }
    match code {
        Some("NoSuchBucket") => return Verdict::new(ErrorKind::Config),
        Some("NoSuchKey" | "NotFound") => return Verdict::new(ErrorKind::NotFound),
        // temporary credentials expire and the provider chain fetches new ones; a skewed
        // clock gets corrected (NTP): both pass with time, so they are worth another try
        Some(
            "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "RequestExpired"
            | "RequestTimeTooSkewed",
        ) => {
            return Verdict {
                kind: ErrorKind::PermissionDenied,
                retryable: true,
                hint: None,
            };
        }
        Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            return Verdict::new(ErrorKind::PermissionDenied);
        }
        Some(
            "AuthorizationHeaderMalformed"
            | "PermanentRedirect"
            | "IllegalLocationConstraintException"
            | "InvalidRegion",
        ) => return Verdict::config(REGION_HINT.to_owned()),
        Some("BadDigest" | "XAmzContentSHA256Mismatch" | "XAmzContentChecksumMismatch") => {
            return Verdict::new(ErrorKind::Corrupt);
        }
        Some(
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" | "Throttling",
        ) => {
            return Verdict::new(ErrorKind::Unavailable);
        }
        _ => {}
    }
    if let Some(encoding) = encoding {
        let about_encoding = message.is_some_and(|message| {
            let message = message.to_ascii_lowercase();
            ENCODING_WORDS.iter().any(|word| message.contains(word))
        });
        let refused = code == Some("NotImplemented")
            || status == Some(501)
            || (matches!(code, Some("InvalidRequest" | "InvalidArgument")) && about_encoding);
        if refused {
            return Verdict::config(encoding_hint(encoding));
        }
    }
    match status {
        Some(404) => Verdict::new(ErrorKind::NotFound),
        Some(401 | 403) => Verdict::new(ErrorKind::PermissionDenied),
        // a feature the server lacks does not appear by retrying
        Some(501) => Verdict::new(ErrorKind::Config),
        Some(429 | 500..=599) => Verdict::new(ErrorKind::Unavailable),
        // a bare 400 (a HEAD has no body to explain it): most often a region or address the
        // server does not serve
        Some(400) if code.is_none() => Verdict::config(REGION_HINT.to_owned()),
        // a response that could not be read: the connection broke mid-way
        _ if matches!(error, SdkError::ResponseError(_)) => Verdict::new(ErrorKind::Unavailable),
        _ => Verdict::new(ErrorKind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: Option<&str>, status: u16) -> SdkError<GetObjectError, HttpResponse> {
        service_error_saying(code, None, status)
    }

    fn service_error_saying(
        code: Option<&str>,
        message: Option<&str>,
        status: u16,
    ) -> SdkError<GetObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    const DEFAULTS: BodyEncoding = BodyEncoding {
        signing: PayloadSigning::Unsigned,
        checksums: ChecksumMode::WhenSupported,
    };

    #[test]
    fn service_errors_are_classified() {
        let cases = [
            (Some("NoSuchKey"), 404, ErrorKind::NotFound, false),
            (None, 404, ErrorKind::NotFound, false),
            (Some("NoSuchBucket"), 404, ErrorKind::Config, false),
            (
                Some("AccessDenied"),
                403,
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                Some("SignatureDoesNotMatch"),
                403,
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                Some("InvalidAccessKeyId"),
                403,
                ErrorKind::PermissionDenied,
                false,
            ),
            (None, 401, ErrorKind::PermissionDenied, false),
            (Some("SlowDown"), 503, ErrorKind::Unavailable, true),
            (None, 429, ErrorKind::Unavailable, true),
            (Some("InternalError"), 500, ErrorKind::Unavailable, true),
            (None, 502, ErrorKind::Unavailable, true),
            (Some("InvalidArgument"), 400, ErrorKind::Other, false),
        ];
        for (code, status, kind, retryable) in cases {
            let error = classify(service_error(code, status), "op".into());
            assert_eq!(
                (error.kind(), error.is_retryable()),
                (kind, retryable),
                "{code:?} {status}"
            );
        }
    }

    #[test]
    fn expired_sts_credentials_are_retryable() {
        for code in ["ExpiredToken", "InvalidToken"] {
            let error = classify(service_error(Some(code), 400), "op".into());
            assert_eq!(
                (error.kind(), error.is_retryable()),
                (ErrorKind::PermissionDenied, true),
                "{code}"
            );
        }
    }

    #[test]
    fn a_skewed_clock_is_retryable() {
        let error = classify(
            service_error(Some("RequestTimeTooSkewed"), 403),
            "op".into(),
        );
        assert_eq!(
            (error.kind(), error.is_retryable()),
            (ErrorKind::PermissionDenied, true)
        );
    }

    #[test]
    fn a_region_the_server_refuses_is_a_config_error_naming_the_region() {
        let malformed = service_error_saying(
            Some("AuthorizationHeaderMalformed"),
            Some("unexpected scope: 20260101/us-east-1/s3/aws4_request"),
            400,
        );
        // a HEAD answers 400 with no body, so no code either
        for error in [malformed, service_error(None, 400)] {
            let error = classify(error, "checking bucket b".into());
            assert_eq!(
                (error.kind(), error.is_retryable()),
                (ErrorKind::Config, false)
            );
            assert!(error.to_string().contains("S3Config::region"), "{error}");
        }
    }

    #[test]
    fn a_damaged_body_is_retryable() {
        for code in ["BadDigest", "XAmzContentSHA256Mismatch"] {
            let error = classify(service_error(Some(code), 400), "op".into());
            assert_eq!(
                (error.kind(), error.is_retryable()),
                (ErrorKind::Corrupt, true),
                "{code}"
            );
        }
    }

    #[test]
    fn a_refused_body_encoding_is_a_config_error_naming_the_setting() {
        // Garage's answer to an aws-chunked body with a signed trailer
        let garage = service_error_saying(
            Some("InvalidRequest"),
            Some("Bad request: Invalid payload signature"),
            400,
        );
        let not_implemented = service_error_saying(
            Some("NotImplemented"),
            Some("A header you provided implies functionality that is not implemented"),
            501,
        );
        for error in [garage, not_implemented] {
            let error = classify_upload(error, "uploading a.bin".into(), DEFAULTS);
            assert_eq!(
                (error.kind(), error.is_retryable()),
                (ErrorKind::Config, false)
            );
            let text = error.to_string();
            assert!(
                text.contains("payload_signing(PayloadSigning::Signed)")
                    && text.contains("checksum_mode(ChecksumMode::WhenRequired)"),
                "{text}"
            );
        }
        // the same code about something else stays what it was
        let other = service_error_saying(
            Some("InvalidRequest"),
            Some("Bucket is in a state that refuses this"),
            400,
        );
        let error = classify_upload(other, "uploading a.bin".into(), DEFAULTS);
        assert_eq!(error.kind(), ErrorKind::Other);
    }

    #[test]
    fn timeouts_are_retryable() {
        let error: SdkError<GetObjectError, HttpResponse> =
            SdkError::timeout_error("took too long");
        let error = classify(error, "op".into());
        assert_eq!(
            (error.kind(), error.is_retryable()),
            (ErrorKind::TimedOut, true)
        );
    }
}
