//! HS256 JWTs, as Supabase issues them: enough to sign test tokens and check them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Caller {
    /// The `role` claim (`service_role`, `authenticated`, `anon`).
    pub(super) role: String,
    /// The `sub` claim: the user's id, which becomes the owner of what they upload.
    pub(super) sub: Option<String>,
}

pub(super) enum Verdict {
    Valid(Caller),
    Expired,
    Invalid(String),
}

/// What the real server (which verifies with `jose`) says about an expired token.
pub(super) const EXPIRED_MESSAGE: &str = "\"exp\" claim timestamp check failed";

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn sign(secret: &str, signing_input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// An HS256 JWT for `role`, expiring at `exp` (seconds since the epoch).
///
/// ```
/// let token = attachments_testkit::supabase_server::make_jwt("secret", "service_role", 4_000_000_000);
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn make_jwt(secret: &str, role: &str, exp: i64) -> String {
    signed(
        secret,
        &serde_json::json!({ "role": role, "exp": exp, "iss": "supabase" }),
    )
}

/// An HS256 JWT of the signed-in user `user_id` (role `authenticated`, `sub` = the id),
/// expiring at `exp`.
///
/// ```
/// let token = attachments_testkit::supabase_server::make_user_jwt("secret", "user-1", 4_000_000_000);
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn make_user_jwt(secret: &str, user_id: &str, exp: i64) -> String {
    signed(
        secret,
        &serde_json::json!({ "role": "authenticated", "sub": user_id, "exp": exp, "iss": "supabase" }),
    )
}

fn signed(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(sign(secret, &signing_input));
    format!("{signing_input}.{signature}")
}

pub(super) fn verify(secret: &str, token: &str) -> Verdict {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Verdict::Invalid("Invalid Compact JWS".to_owned());
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return Verdict::Invalid("Invalid Compact JWS".to_owned());
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    if mac.verify_slice(&signature).is_err() {
        return Verdict::Invalid("signature verification failed".to_owned());
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return Verdict::Invalid("Invalid Compact JWS".to_owned());
    };
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    // jose checks `exp` only when the token has one
    match claims.get("exp").and_then(serde_json::Value::as_i64) {
        Some(exp) if exp <= now() => Verdict::Expired,
        _ => Verdict::Valid(Caller {
            role: text("role").unwrap_or_else(|| "anon".to_owned()),
            sub: text("sub"),
        }),
    }
}
