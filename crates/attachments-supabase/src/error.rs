//! Classify Supabase Storage answers at the boundary.
//!
//! `/object` routes answer errors with HTTP 400 (500 for real 500s) and the real status and
//! code in a JSON body (`{"statusCode":"404","error":"not_found","message":"Object not
//! found","code":"NoSuchKey"}`), so those are classified by the body. TUS routes use real HTTP
//! status codes with text bodies.

use attachments_core::{Error, ErrorKind};

/// What a refused request means for the caller.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The access token has expired: refresh it and try once more.
    TokenExpired,
    /// Anything else, classified.
    Failed(Error),
}

/// An error answer of an `/object` route.
pub(crate) fn object_refusal(http_status: u16, body: &str, context: &str) -> Refusal {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    let status = field("statusCode").unwrap_or_else(|| http_status.to_string());
    let code = field("code").unwrap_or_default();
    let message = field("message").unwrap_or_else(|| body.chars().take(200).collect());
    if is_token_expired(&code, &message) {
        return Refusal::TokenExpired;
    }
    let kind = match (code.as_str(), status.as_str()) {
        ("NoSuchBucket", _) => ErrorKind::Config,
        ("NoSuchKey", _) | (_, "404") => ErrorKind::NotFound,
        ("AccessDenied" | "InvalidJWT" | "InvalidRequest", _) | (_, "401" | "403") => {
            ErrorKind::PermissionDenied
        }
        ("InvalidKey" | "EntityTooLarge", _) | (_, "413") => ErrorKind::InvalidInput,
        ("Duplicate" | "KeyAlreadyExists" | "BucketAlreadyExists", _) | (_, "409") => {
            ErrorKind::AlreadyExists
        }
        (_, "429") => ErrorKind::Unavailable,
        (_, s) if s.starts_with('5') => ErrorKind::Unavailable,
        _ if http_status == 429 || http_status >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    };
    Refusal::Failed(failed(kind, context, &status, &code, &message))
}

/// An error answer of a TUS route (a real status code, a text body). `existing_upload`: the
/// request addressed an upload created earlier (`PATCH`, `HEAD`), not the bucket (`POST`).
pub(crate) fn tus_refusal(
    http_status: u16,
    body: &str,
    context: &str,
    existing_upload: bool,
) -> Refusal {
    let message: String = body.chars().take(200).collect();
    if (http_status == 401 || http_status == 403) && is_token_expired("", &message) {
        return Refusal::TokenExpired;
    }
    let kind = match http_status {
        401 | 403 => ErrorKind::PermissionDenied,
        // an upload URL the server forgot: starting over can succeed
        404 if existing_upload => ErrorKind::Unavailable,
        404 => ErrorKind::Config,
        409 | 423 | 429 | 500..=599 => ErrorKind::Unavailable,
        413 => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    };
    Refusal::Failed(failed(
        kind,
        context,
        &http_status.to_string(),
        "",
        &message,
    ))
}

fn failed(kind: ErrorKind, context: &str, status: &str, code: &str, message: &str) -> Error {
    let code = if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    };
    Error::new(kind, format!("{context}: {status}{code}: {message}"))
        .with_retryable(matches!(kind, ErrorKind::Unavailable | ErrorKind::TimedOut))
}

fn is_token_expired(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == "InvalidJWT" && message.contains("exp")
        || message.contains("jwt expired")
        || message.contains("token is expired")
}

/// A transport failure: timeouts and connection failures are retryable.
pub(crate) fn transport_error(error: reqwest::Error, context: &str) -> Error {
    let kind = if error.is_timeout() {
        ErrorKind::TimedOut
    } else if error.is_builder() {
        ErrorKind::Config
    } else {
        // connect, request, body and decode failures: the network, worth another try
        ErrorKind::Unavailable
    };
    Error::new(kind, format!("{context}: {}", without_url(&error)))
        .with_retryable(kind != ErrorKind::Config)
}

/// reqwest's messages include the URL; ours carry the context instead, and no query string
/// (where a signed URL's token would be) ever reaches a log.
fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = None;
    while let Some(inner) = source {
        last = Some(inner.to_string());
        source = inner.source();
    }
    last.unwrap_or_else(|| "request failed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(refusal: Refusal) -> Option<(ErrorKind, bool)> {
        match refusal {
            Refusal::TokenExpired => None,
            Refusal::Failed(error) => Some((error.kind(), error.is_retryable())),
        }
    }

    #[test]
    fn object_errors_are_classified_by_their_body() {
        let body = |status: &str, error: &str, code: &str, message: &str| {
            serde_json::json!({"statusCode": status, "error": error, "message": message, "code": code})
                .to_string()
        };
        let cases = [
            (
                400,
                body("404", "not_found", "NoSuchKey", "Object not found"),
                ErrorKind::NotFound,
                false,
            ),
            (
                400,
                body(
                    "404",
                    "Bucket not found",
                    "NoSuchBucket",
                    "Bucket not found",
                ),
                ErrorKind::Config,
                false,
            ),
            (
                400,
                body(
                    "409",
                    "Duplicate",
                    "KeyAlreadyExists",
                    "The resource already exists",
                ),
                ErrorKind::AlreadyExists,
                false,
            ),
            (
                400,
                body(
                    "409",
                    "Duplicate",
                    "Duplicate",
                    "The resource already exists",
                ),
                ErrorKind::AlreadyExists,
                false,
            ),
            (
                400,
                body(
                    "403",
                    "Unauthorized",
                    "AccessDenied",
                    "new row violates row-level security policy",
                ),
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                400,
                body("403", "Unauthorized", "AccessDenied", "invalid signature"),
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                400,
                body(
                    "400",
                    "Error",
                    "InvalidRequest",
                    "headers must have required property 'authorization'",
                ),
                ErrorKind::PermissionDenied,
                false,
            ),
            (
                400,
                body("400", "Invalid key", "InvalidKey", "Invalid key: a//b"),
                ErrorKind::InvalidInput,
                false,
            ),
            (
                400,
                body(
                    "413",
                    "Payload too large",
                    "EntityTooLarge",
                    "The object exceeded the maximum allowed size",
                ),
                ErrorKind::InvalidInput,
                false,
            ),
            (
                500,
                body("500", "Internal", "InternalError", "boom"),
                ErrorKind::Unavailable,
                true,
            ),
            (
                429,
                "Too Many Requests".to_owned(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                502,
                "<html>bad gateway</html>".to_owned(),
                ErrorKind::Unavailable,
                true,
            ),
        ];
        for (http, body, kind, retryable) in cases {
            assert_eq!(
                kind_of(object_refusal(http, &body, "op")),
                Some((kind, retryable)),
                "{body}"
            );
        }
        let expired = body("403", "Unauthorized", "AccessDenied", "jwt expired");
        assert!(matches!(
            object_refusal(400, &expired, "op"),
            Refusal::TokenExpired
        ));
        let invalid_jwt = body(
            "400",
            "Unauthorized",
            "InvalidJWT",
            "\"exp\" claim timestamp check failed",
        );
        assert!(matches!(
            object_refusal(400, &invalid_jwt, "op"),
            Refusal::TokenExpired
        ));
    }

    #[test]
    fn tus_errors_are_classified_by_their_status() {
        let cases = [
            (
                403,
                "invalid signature",
                false,
                ErrorKind::PermissionDenied,
                false,
            ),
            (404, "Bucket not found", false, ErrorKind::Config, false),
            (404, "Upload not found", true, ErrorKind::Unavailable, true),
            (
                409,
                "Upload-Offset does not match",
                true,
                ErrorKind::Unavailable,
                true,
            ),
            (
                413,
                "Maximum size exceeded",
                false,
                ErrorKind::InvalidInput,
                false,
            ),
            (503, "unavailable", true, ErrorKind::Unavailable, true),
        ];
        for (status, body, existing, kind, retryable) in cases {
            let refusal = tus_refusal(status, body, "op", existing);
            assert_eq!(kind_of(refusal), Some((kind, retryable)), "{status} {body}");
        }
        assert!(matches!(
            tus_refusal(403, "jwt expired", "x", true),
            Refusal::TokenExpired
        ));
    }
}
