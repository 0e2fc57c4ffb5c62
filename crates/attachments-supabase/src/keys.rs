//! Which object names and bucket names Supabase Storage accepts, checked before any request.
//!
//! The server refuses a key outside its alphabet (`InvalidKey`, `src/storage/limits.ts`); we
//! refuse it first, so a bad name costs no round trip and the error says which character is
//! the problem. Keys are never rewritten into the alphabet: another SDK reading the same
//! table must find the object under the attachment's `filename`.

use attachments_core::{Error, Result, validate_relative_path};

/// The characters Supabase Storage accepts in object names besides ASCII letters and digits
/// (bucket names accept the same without `/`).
pub const KEY_PUNCTUATION: &str = "_/!.*'() &$=@;:+,?-";

/// The longest key, in bytes (the S3 limit the server inherits).
const MAX_KEY_BYTES: usize = 1024;

/// Whether Supabase Storage accepts `c` in an object name: ASCII letters and digits and
/// [`KEY_PUNCTUATION`]. No `%`, `#`, `~`, `[`, `]`, no accented letters, no emoji.
///
/// ```
/// use attachments_supabase::is_key_char;
/// assert!("user-1/photo (2).jpg".chars().all(is_key_char));
/// assert!(!is_key_char('é') && !is_key_char('#') && !is_key_char('~'));
/// ```
pub fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || KEY_PUNCTUATION.contains(c)
}

fn first_refused(text: &str) -> Option<char> {
    text.chars().find(|c| !is_key_char(*c))
}

/// The object key of `filename` under `prefix` (checked at construction), or `InvalidInput`.
pub(crate) fn object_key(prefix: &str, filename: &str) -> Result<String> {
    validate_relative_path(filename)?;
    if let Some(c) = first_refused(filename) {
        return Err(Error::invalid_input(format!(
            "filename {filename:?} refused: Supabase Storage does not accept {c:?} in object names (allowed: ASCII letters, digits and {KEY_PUNCTUATION:?})"
        )));
    }
    let key = format!("{prefix}{filename}");
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid_input(format!(
            "filename {:?}: the key is {} bytes, above Supabase's {MAX_KEY_BYTES}",
            key.chars().take(64).collect::<String>(),
            key.len()
        )));
    }
    Ok(key)
}

/// Check a key prefix: empty, or a relative path in the alphabet (a trailing `/` is usual).
pub(crate) fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    if let Some(c) = first_refused(prefix) {
        return Err(Error::invalid_input(format!(
            "key prefix {prefix:?} refused: Supabase Storage does not accept {c:?} in object names (allowed: ASCII letters, digits and {KEY_PUNCTUATION:?})"
        )));
    }
    validate_relative_path(prefix.strip_suffix('/').unwrap_or(prefix))
        .map_err(|e| Error::invalid_input(format!("key prefix {prefix:?} refused: {e}")))
}

/// Check a bucket name (1 to 100 characters of the alphabet, no `/`).
pub(crate) fn check_bucket(bucket: &str) -> Result<()> {
    let refused = first_refused(bucket).or_else(|| bucket.chars().find(|c| *c == '/'));
    if bucket.is_empty() || bucket.len() > 100 || refused.is_some() {
        return Err(Error::invalid_input(format!(
            "bucket name {bucket:?} refused: 1 to 100 ASCII letters, digits or {:?}",
            KEY_PUNCTUATION.replace('/', "")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use attachments_core::ErrorKind;

    #[test]
    fn keys_outside_the_alphabet_are_refused() {
        for bad in ["été.jpg", "100%.bin", "a#b", "a~b", "a[1]", "😀.png"] {
            let err = object_key("", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(
            object_key("user-1/", "photo (1) & co's!.jpg").unwrap(),
            "user-1/photo (1) & co's!.jpg"
        );
        assert!(object_key("", &"x/".repeat(600)).is_err());
    }

    #[test]
    fn prefixes_and_buckets_are_checked() {
        for good in ["", "user-1/", "a/b/", "photos-"] {
            check_prefix(good).unwrap();
        }
        for bad in ["/", "/a/", "a//", "../", "é/", "a#/", "a/../"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        check_bucket("attachments").unwrap();
        for bad in ["", "a/b", "été", &"b".repeat(101)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }
}
