//! A string that must never reach a log: API keys, secret access keys, tokens.

use std::fmt;

/// A secret string: its `Debug` and `Display` never show it.
///
/// ```
/// let key = attachments_core::Secret::new("wJalrXUtnFEMI");
/// assert_eq!(format!("{key:?}"), "Secret(***)");
/// assert_eq!(key.to_string(), "***");
/// assert_eq!(key.expose(), "wJalrXUtnFEMI");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that must send it (a request header, an SDK).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
