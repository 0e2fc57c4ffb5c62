//! Classify the SDK's errors at the boundary: kind and retryability, nothing else.

use attachments_core::{Error, ErrorKind};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Turn an SDK error into ours.
///
/// - `NoSuchKey`, 404: `NotFound` (permanent);
/// - `AccessDenied`, bad key id or signature, 401/403: `PermissionDenied` (permanent);
/// - `NoSuchBucket`: `Config` (permanent: retrying cannot create a bucket);
/// - `SlowDown`, 429, 5xx, timeouts, connection failures: `Unavailable`/`TimedOut` (retryable);
/// - anything else the server refused: `Other` (permanent).
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>, context: String) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_owned);
    let kind = kind_of(&error, code.as_deref(), status);
    let retryable = matches!(kind, ErrorKind::Unavailable | ErrorKind::TimedOut);
    let detail = match (&code, status) {
        (Some(code), Some(status)) => format!("{context}: {code} (http {status})"),
        (Some(code), None) => format!("{context}: {code}"),
        (None, Some(status)) => format!("{context}: http {status}"),
        (None, None) => context,
    };
    Error::new(kind, detail)
        .with_source(error)
        .with_retryable(retryable)
}

fn kind_of<E>(
    error: &SdkError<E, HttpResponse>,
    code: Option<&str>,
    status: Option<u16>,
) -> ErrorKind {
    match error {
        SdkError::TimeoutError(_) => return ErrorKind::TimedOut,
        SdkError::DispatchFailure(_) => return ErrorKind::Unavailable,
        SdkError::ConstructionFailure(_) => return ErrorKind::Config,
        _ => {}
    }
    match code {
        Some("NoSuchBucket") => return ErrorKind::Config,
        Some("NoSuchKey" | "NotFound") => return ErrorKind::NotFound,
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken",
        ) => return ErrorKind::PermissionDenied,
        Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout") => {
            return ErrorKind::Unavailable;
        }
        _ => {}
    }
    match status {
        Some(404) => ErrorKind::NotFound,
        Some(401 | 403) => ErrorKind::PermissionDenied,
        Some(429 | 500..=599) => ErrorKind::Unavailable,
        // a response that could not be read: the connection broke mid-way
        _ if matches!(error, SdkError::ResponseError(_)) => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: Option<&str>, status: u16) -> SdkError<GetObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

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
