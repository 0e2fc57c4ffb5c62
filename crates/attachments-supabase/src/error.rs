//! Classify Supabase Storage answers at the boundary.
//!
//! Most errors, on every route, come from the server's JSON error handler: HTTP 400 (500 for
//! real 500s, 429 for throttling, a few others) with the real status and code in the body
//! (`{"statusCode":"404","error":"not_found","message":"Object not found","code":"NoSuchKey"}`),
//! so those are classified by the body. That includes a refused token on the TUS routes: the
//! JWT is checked before the TUS handler runs. Errors of the TUS handler itself use real HTTP
//! status codes with text bodies.

use attachments_core::{Error, ErrorKind};

/// What a refused request means for the caller.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The access token has expired (or is not valid yet: a clock off by a few minutes):
    /// refresh it and try once more.
    TokenExpired,
    /// A refusal without a body (an answer to `HEAD` has none), which may be an expired token:
    /// refresh it and try once more.
    Unexplained(u16),
    /// Anything else, classified.
    Failed(Error),
}

/// Which error dialect a route speaks, and what a `404` from it means.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    /// `/object` and `/bucket`.
    Object,
    /// `POST /upload/resumable`.
    TusCreate,
    /// `PATCH` of an upload created before.
    TusPatch,
    /// `HEAD` of an upload created before (answers carry no body).
    TusHead,
}

/// Classify an error answer: the JSON body when there is one, else the HTTP status.
pub(crate) fn refusal(http_status: u16, body: &str, context: &str, route: Route) -> Refusal {
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
    match field("statusCode") {
        Some(status) => {
            let code = field("code").unwrap_or_default();
            let error = field("error").unwrap_or_default();
            let message = field("message").unwrap_or_default();
            if is_token_time_refusal(&code, &message) {
                return Refusal::TokenExpired;
            }
            let kind = storage_error_kind(http_status, &status, &code, &error);
            Refusal::Failed(failed(kind, context, &status, &code, &message))
        }
        None if body.is_empty()
            && matches!(route, Route::TusHead)
            && matches!(http_status, 400 | 401 | 403) =>
        {
            Refusal::Unexplained(http_status)
        }
        None => {
            let message = body.chars().take(200).collect::<String>();
            if matches!(http_status, 401 | 403) && is_token_time_refusal("", &message) {
                return Refusal::TokenExpired;
            }
            let kind = status_kind(http_status, &message, route);
            Refusal::Failed(failed(
                kind,
                context,
                &http_status.to_string(),
                "",
                &message,
            ))
        }
    }
}

/// A JSON error of the server's error handler.
fn storage_error_kind(http_status: u16, status: &str, code: &str, error: &str) -> ErrorKind {
    match (code, status) {
        ("NoSuchBucket", _) => ErrorKind::Config,
        ("NoSuchKey", _) => ErrorKind::NotFound,
        // servers before error codes said only `"error":"not_found"`
        ("", "404") if error == "not_found" => ErrorKind::NotFound,
        // any other 404 (an unknown route behind a wrong URL) is not "the object is missing":
        // reading it as NotFound would make a delete report success and change nothing
        (_, "404") => ErrorKind::Config,
        ("AccessDenied" | "InvalidJWT" | "InvalidRequest" | "InvalidSignature", _)
        | (_, "401" | "403") => ErrorKind::PermissionDenied,
        ("InvalidKey" | "EntityTooLarge" | "InvalidMimeType", _) | (_, "413" | "415") => {
            ErrorKind::InvalidInput
        }
        ("Duplicate" | "KeyAlreadyExists" | "BucketAlreadyExists", _) | (_, "409") => {
            ErrorKind::AlreadyExists
        }
        // throttled (SlowDown), locked by another upload (ResourceLocked), database timeouts
        // (544), read-only or mismatched databases (503): all pass
        (_, "423" | "429") => ErrorKind::Unavailable,
        (_, s) if s.starts_with('5') => ErrorKind::Unavailable,
        _ if http_status == 429 || http_status >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

/// The TUS server's answer to a `PATCH` at an offset other than the upload's.
const OFFSET_CONFLICT: &str = "Upload-Offset conflict";

/// An answer without the JSON body: a TUS handler error, or a proxy's page.
fn status_kind(http_status: u16, body: &str, route: Route) -> ErrorKind {
    match (http_status, route) {
        (401 | 403, _) => ErrorKind::PermissionDenied,
        // an upload URL the server forgot: starting over can succeed
        (404 | 410, Route::TusPatch | Route::TusHead) => ErrorKind::Unavailable,
        (404, _) => ErrorKind::Config,
        // the offset moved under us: ask where the upload stands and go on from there. Any
        // other 409 (`The resource already exists`: the object exists and the request was
        // not an upsert) will not change by trying again
        (409, Route::TusPatch | Route::TusHead) if body.starts_with(OFFSET_CONFLICT) => {
            ErrorKind::Unavailable
        }
        (409, _) => ErrorKind::AlreadyExists,
        // 423: another request holds the upload's lock
        (408 | 423 | 429 | 500..=599, _) => ErrorKind::Unavailable,
        (400 | 413 | 415, _) => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    }
}

fn failed(kind: ErrorKind, context: &str, status: &str, code: &str, message: &str) -> Error {
    let code = if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    };
    let message: String = message.chars().take(200).collect();
    Error::new(kind, format!("{context}: {status}{code}: {message}"))
        .with_retryable(matches!(kind, ErrorKind::Unavailable | ErrorKind::TimedOut))
}

/// An expired token (or one not valid yet, a clock off): `jose` on current servers says
/// `"exp" claim timestamp check failed`, `jsonwebtoken` on older ones `jwt expired`.
fn is_token_time_refusal(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == "InvalidJWT" && message.contains("exp")
        || message.contains("claim timestamp check failed")
        || message.contains("jwt expired")
        || message.contains("jwt not active")
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
            Refusal::TokenExpired | Refusal::Unexplained(_) => None,
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
                body("400", "InvalidKey", "InvalidKey", "Invalid key: a#b"),
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
                kind_of(refusal(http, &body, "op", Route::Object)),
                Some((kind, retryable)),
                "{body}"
            );
        }
        let expired = body("403", "Unauthorized", "AccessDenied", "jwt expired");
        assert!(matches!(
            refusal(400, &expired, "op", Route::Object),
            Refusal::TokenExpired
        ));
        let invalid_jwt = body(
            "400",
            "Unauthorized",
            "InvalidJWT",
            "\"exp\" claim timestamp check failed",
        );
        assert!(matches!(
            refusal(400, &invalid_jwt, "op", Route::Object),
            Refusal::TokenExpired
        ));
        // what current servers (jose) say, on every route, TUS included
        let jose = body(
            "403",
            "Unauthorized",
            "AccessDenied",
            "\"exp\" claim timestamp check failed",
        );
        for route in [Route::Object, Route::TusCreate, Route::TusPatch] {
            assert!(matches!(
                refusal(400, &jose, "op", route),
                Refusal::TokenExpired
            ));
        }
    }

    #[test]
    fn temporary_storage_errors_are_retryable() {
        let body = |status: &str, code: &str| {
            serde_json::json!({"statusCode": status, "error": "e", "message": "m", "code": code})
                .to_string()
        };
        for (http, status, code) in [
            (429, "429", "SlowDown"),
            (400, "423", "ResourceLocked"),
            (544, "544", "DatabaseTimeout"),
            (400, "503", "DatabaseReadOnly"),
            (500, "500", "InternalError"),
        ] {
            assert_eq!(
                kind_of(refusal(http, &body(status, code), "op", Route::Object)),
                Some((ErrorKind::Unavailable, true)),
                "{code}"
            );
        }
    }

    #[test]
    fn a_404_that_is_not_a_missing_object_is_a_configuration_error() {
        let route_not_found = serde_json::json!({"statusCode": 404, "error": "Not Found", "message": "Route DELETE:/x not found"}).to_string();
        for body in [route_not_found.as_str(), "<html>404</html>", ""] {
            assert_eq!(
                kind_of(refusal(404, body, "op", Route::Object)),
                Some((ErrorKind::Config, false)),
                "{body}"
            );
        }
        let old_server = serde_json::json!({"statusCode": "404", "error": "not_found", "message": "Object not found"}).to_string();
        assert_eq!(
            kind_of(refusal(400, &old_server, "op", Route::Object)),
            Some((ErrorKind::NotFound, false))
        );
    }

    #[test]
    fn tus_errors_are_classified_by_their_status() {
        use Route::{TusCreate, TusHead, TusPatch};
        let cases = [
            (403, RLS, TusCreate, ErrorKind::PermissionDenied, false),
            (404, "Bucket not found", TusCreate, ErrorKind::Config, false),
            (404, FILE_NOT_FOUND, TusPatch, ErrorKind::Unavailable, true),
            (404, "", TusHead, ErrorKind::Unavailable, true),
            (409, OFFSET_MOVED, TusPatch, ErrorKind::Unavailable, true),
            // a PATCH without x-upsert over an existing object: trying again changes nothing
            (409, EXISTS, TusPatch, ErrorKind::AlreadyExists, false),
            (409, EXISTS, TusCreate, ErrorKind::AlreadyExists, false),
            (423, "locked", TusPatch, ErrorKind::Unavailable, true),
            (
                400,
                "Invalid key: a#b",
                TusCreate,
                ErrorKind::InvalidInput,
                false,
            ),
            (
                413,
                "Maximum size exceeded\n",
                TusCreate,
                ErrorKind::InvalidInput,
                false,
            ),
            (503, "unavailable", TusPatch, ErrorKind::Unavailable, true),
        ];
        for (status, body, route, kind, retryable) in cases {
            let refusal = refusal(status, body, "op", route);
            assert_eq!(kind_of(refusal), Some((kind, retryable)), "{status} {body}");
        }
        assert!(matches!(
            refusal(403, "jwt expired", "x", TusPatch),
            Refusal::TokenExpired
        ));
        // a HEAD answer has no body: the refusal may be an expired token
        assert!(matches!(
            refusal(400, "", "x", TusHead),
            Refusal::Unexplained(400)
        ));
    }

    const RLS: &str = "new row violates row-level security policy";
    // the TUS server's own messages end in a newline; the storage's errors it relays do not
    const FILE_NOT_FOUND: &str = "The file for this url was not found\n";
    const OFFSET_MOVED: &str = "Upload-Offset conflict\n";
    const EXISTS: &str = "The resource already exists";
}
