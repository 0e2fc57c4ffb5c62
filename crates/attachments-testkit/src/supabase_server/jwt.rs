//! HS256 JWTs, as Supabase issues them: enough to sign test tokens and check them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub(super) enum Verdict {
    Valid,
    Expired,
    Invalid(String),
}

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
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "role": role, "exp": exp, "iss": "supabase" });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(sign(secret, &signing_input));
    format!("{signing_input}.{signature}")
}

pub(super) fn verify(secret: &str, token: &str) -> Verdict {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Verdict::Invalid("jwt malformed".to_owned());
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return Verdict::Invalid("jwt malformed".to_owned());
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{payload}").as_bytes());
    if mac.verify_slice(&signature).is_err() {
        return Verdict::Invalid("invalid signature".to_owned());
    }
    let claims: Option<serde_json::Value> = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match claims.and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64)) {
        Some(exp) if exp > now() => Verdict::Valid,
        Some(_) => Verdict::Expired,
        None => Verdict::Invalid("jwt has no exp claim".to_owned()),
    }
}
