//! Sending a request: credentials, one token refresh, redirects refused, error bodies capped.

use attachments_core::{Error, ErrorKind, Result};
use reqwest::{Method, RequestBuilder, Response, Url};
use tracing::debug;

use crate::config::Secret;
use crate::error::{Refusal, Route, refusal};
use crate::remote::SupabaseRemoteStorage;

/// The most of an error body read. A proxy's error page or a misbehaving server can send
/// megabytes; a classification needs the first few hundred bytes, and the connection is
/// dropped rather than drained.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

impl SupabaseRemoteStorage {
    pub(crate) fn request(&self, method: Method, url: Url, token: &Secret) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("apikey", self.api_key.expose())
            .header("authorization", format!("Bearer {}", token.expose()))
    }

    /// Send a request built by `build` with the current token; if the server refuses the token
    /// as expired, once more with a fresh one. Non-success answers become classified errors.
    ///
    /// An expired token that is still refused after the refresh is `PermissionDenied` but
    /// retryable: the session may be refreshed by the app later (the device was offline, the
    /// clock was off), and archiving the user's file for good would lose it.
    pub(crate) async fn send(
        &self,
        context: &str,
        route: Route,
        build: impl Fn(&Secret) -> RequestBuilder,
    ) -> Result<Response> {
        let mut token = self.tokens.access_token(None).await?;
        let mut refreshed = false;
        loop {
            let response = build(&token)
                .send()
                .await
                .map_err(|e| crate::error::transport_error(e, context))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status.is_redirection() {
                // never followed: the `apikey` header would go wherever the answer points
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{context}: the server answered {} (a redirect), which is not followed so that keys and tokens only go to the configured URL; configure the storage URL the redirect leads to",
                        status.as_u16()
                    ),
                ));
            }
            let body = self.read_error_body(response, &token).await;
            match refusal(status.as_u16(), &body, context, route) {
                Refusal::TokenExpired | Refusal::Unexplained(_) if !refreshed => {
                    debug!(
                        context,
                        "access token refused as expired; asking for a fresh one"
                    );
                    token = self.tokens.access_token(Some(&token)).await?;
                    refreshed = true;
                }
                Refusal::TokenExpired => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "{context}: the access token was refused as expired, also after a refresh"
                        ),
                    )
                    .with_retryable(true));
                }
                Refusal::Unexplained(status) => {
                    // a bodiless refusal of HEAD: the next attempt creates a new upload, whose
                    // answer will say what is wrong
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("{context}: {status} without a reason, also after a token refresh"),
                    )
                    .with_retryable(true));
                }
                Refusal::Failed(error) => return Err(error),
            }
        }
    }

    /// At most [`MAX_ERROR_BODY`] bytes of an error answer, as text, with our secrets masked
    /// (a server that echoes the request must not put a key into an error message).
    async fn read_error_body(&self, mut response: Response, token: &Secret) -> String {
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ERROR_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // a body cut short says what it says so far
                Ok(None) | Err(_) => break,
            }
        }
        // dropping `response` here closes the connection if the body was longer
        let mut text = String::from_utf8_lossy(&body).into_owned();
        for secret in [token.expose(), self.api_key.expose()] {
            if !secret.is_empty() {
                text = text.replace(secret, "***");
            }
        }
        text
    }

    /// Where a TUS `Location` points, if it is on the configured origin. Keys and tokens are
    /// sent only there: a `Location` on another scheme, host or port is refused, not followed
    /// without credentials (the upload routes need the token, so that could never succeed).
    pub(crate) fn upload_url(&self, location: &str, context: &str) -> Result<Url> {
        let url = self.base_url.join(location).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                format!("{context}: the server's Location is not a URL ({e})"),
            )
            .with_retryable(true)
        })?;
        if url.origin() != self.base_url.origin() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{context}: the server put the upload on {}, not on the configured {}; keys and tokens are only sent to the configured origin (configure the storage's public URL)",
                    url.origin().ascii_serialization(),
                    self.base_url.origin().ascii_serialization()
                ),
            ));
        }
        Ok(url)
    }
}
