//! The data the queue keeps per attachment, and the validation that keeps it safe to use as a
//! file name or object key.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The longest accepted attachment id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest accepted relative path (filename or `local_uri`), in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// The longest accepted path component, in bytes (the common file-system limit).
pub const MAX_PATH_COMPONENT_LEN: usize = 255;
/// The longest accepted file extension, in bytes.
pub const MAX_EXTENSION_LEN: usize = 16;

/// A validated attachment id: 1 to 128 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
///
/// Ids end up in file names and object keys, so anything that could address another directory
/// is refused here, before it reaches any storage.
///
/// ```
/// use attachments_core::AttachmentId;
/// let id = AttachmentId::new("photo-1.jpg").unwrap();
/// assert_eq!(id.as_str(), "photo-1.jpg");
/// assert!(AttachmentId::new("../etc/passwd").is_err());
/// assert_eq!(AttachmentId::generate().as_str().len(), 36);
/// ```
// Shared text: ids are cloned into sets and events often, and a clone costs no allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachmentId(Arc<str>);

impl AttachmentId {
    /// Validate `id`; an `InvalidInput` error says what is wrong with it.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(Error::invalid_input(format!(
                "attachment id must be 1 to {MAX_ID_LEN} characters long, got {}",
                id.len()
            )));
        }
        if id == "." || id == ".." {
            return Err(Error::invalid_input(
                "attachment id must not be `.` or `..`",
            ));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(Error::invalid_input(format!(
                "attachment id may only hold A-Z, a-z, 0-9, `.`, `_` and `-`, found {bad:?}"
            )));
        }
        Ok(AttachmentId(Arc::from(id)))
    }

    /// A new random id (a UUID v4, hyphenated, lowercase).
    pub fn generate() -> Self {
        AttachmentId(Arc::from(uuid::Uuid::new_v4().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for AttachmentId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        AttachmentId::new(s)
    }
}

impl AsRef<str> for AttachmentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where an attachment is in its life. The numeric codes are those of the PowerSync SDKs'
/// attachment table (Dart, Kotlin, Swift).
///
/// ```
/// use attachments_core::AttachmentState;
/// assert_eq!(AttachmentState::Synced.code(), 3);
/// assert_eq!(AttachmentState::from_code(1).unwrap(), AttachmentState::QueuedUpload);
/// assert!(AttachmentState::from_code(7).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachmentState {
    /// Referenced by the app, not yet stored locally: to be downloaded.
    QueuedDownload = 0,
    /// Saved locally, to be uploaded.
    QueuedUpload = 1,
    /// Deleted by the app: to be removed remotely and locally.
    QueuedDelete = 2,
    /// Stored both locally and remotely.
    Synced = 3,
    /// No longer referenced (kept as a cache), or given up on after a permanent failure.
    Archived = 4,
}

impl AttachmentState {
    /// Every state, in code order.
    pub const ALL: [AttachmentState; 5] = [
        AttachmentState::QueuedDownload,
        AttachmentState::QueuedUpload,
        AttachmentState::QueuedDelete,
        AttachmentState::Synced,
        AttachmentState::Archived,
    ];

    /// The states that have a transfer to run.
    pub const QUEUED: [AttachmentState; 3] = [
        AttachmentState::QueuedDownload,
        AttachmentState::QueuedUpload,
        AttachmentState::QueuedDelete,
    ];

    /// The code stored in the `state` column.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The state for a code read from the table; an unknown code is `InvalidInput`.
    pub fn from_code(code: i64) -> Result<Self> {
        AttachmentState::ALL
            .into_iter()
            .find(|state| state.code() == code)
            .ok_or_else(|| Error::invalid_input(format!("unknown attachment state code {code}")))
    }

    /// Whether a transfer is pending in this state.
    pub fn is_queued(self) -> bool {
        AttachmentState::QUEUED.contains(&self)
    }
}

impl fmt::Display for AttachmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One row of the attachment table.
///
/// ```
/// use attachments_core::{Attachment, AttachmentId, AttachmentState};
/// let row = Attachment::new(AttachmentId::new("a1").unwrap(), "a1.jpg", AttachmentState::QueuedDownload, 1_700_000_000_000);
/// assert_eq!(row.filename, "a1.jpg");
/// assert!(!row.has_synced);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The id the app stores in its own tables.
    pub id: AttachmentId,
    /// The file name: the remote object key (below any prefix) and the local path.
    pub filename: String,
    /// Path of the local copy relative to the local storage root; `None` when not stored locally.
    pub local_uri: Option<String>,
    /// Milliseconds since the Unix epoch of the last write to this row.
    pub timestamp: i64,
    /// Size in bytes, once known.
    pub size: Option<u64>,
    /// Media (MIME) type, e.g. `image/jpeg`.
    pub media_type: Option<String>,
    /// The current state.
    pub state: AttachmentState,
    /// Whether the contents were ever uploaded or downloaded successfully.
    pub has_synced: bool,
    /// Free text the app attached (often JSON).
    pub meta_data: Option<String>,
    /// Failed transfer attempts since the last success.
    pub attempts: u32,
    /// Milliseconds since the epoch before which no transfer is retried.
    pub next_attempt_at: Option<i64>,
    /// The last transfer error, as text.
    pub last_error: Option<String>,
    /// `sha256:<hex>` of the contents, once known.
    pub checksum: Option<String>,
    /// Bumped by the store on every write; used for compare-and-set.
    pub version: i64,
    /// The state this row was in when a permanent failure archived it (`None` otherwise).
    /// An attachment archived by a failure stays archived until `retry`, which restores this.
    pub failed_state: Option<AttachmentState>,
}

impl Attachment {
    /// A fresh row with only the required fields set.
    pub fn new(
        id: AttachmentId,
        filename: impl Into<String>,
        state: AttachmentState,
        now_ms: i64,
    ) -> Self {
        Attachment {
            id,
            filename: filename.into(),
            local_uri: None,
            timestamp: now_ms,
            size: None,
            media_type: None,
            state,
            has_synced: false,
            meta_data: None,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            checksum: None,
            version: 0,
            failed_state: None,
        }
    }
}

/// One attachment the app references, as its watched query reports it.
///
/// ```
/// use attachments_core::{AttachmentId, WatchedAttachmentItem};
/// let item = WatchedAttachmentItem::new(AttachmentId::new("a1").unwrap()).with_file_extension("jpg");
/// assert_eq!(item.file_extension.as_deref(), Some("jpg"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedAttachmentItem {
    /// The referenced attachment.
    pub id: AttachmentId,
    /// The file name to use; default `{id}.{file_extension}` (or `{id}`).
    pub filename: Option<String>,
    /// The extension for the default file name, without the dot.
    pub file_extension: Option<String>,
    /// Media type to record.
    pub media_type: Option<String>,
    /// Metadata to record.
    pub meta_data: Option<String>,
}

impl WatchedAttachmentItem {
    /// An item with only an id.
    pub fn new(id: AttachmentId) -> Self {
        WatchedAttachmentItem {
            id,
            filename: None,
            file_extension: None,
            media_type: None,
            meta_data: None,
        }
    }

    /// Set the file extension.
    pub fn with_file_extension(mut self, extension: impl Into<String>) -> Self {
        self.file_extension = Some(extension.into());
        self
    }

    /// Set the file name.
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    /// The file name this item stands for, validated.
    pub fn resolved_filename(&self) -> Result<String> {
        match &self.filename {
            Some(name) => {
                validate_relative_path(name)?;
                Ok(name.clone())
            }
            None => default_filename(&self.id, self.file_extension.as_deref()),
        }
    }
}

/// One reading of the attachments the app references: what a watched query emits.
///
/// `read_at` is when the reading began (before the query ran). The queue uses it to order
/// readings against its own deletes: a reading that began before a delete committed still
/// holds the deleted id and must not bring it back, while one that began after may (the app
/// reused the id).
///
/// ```
/// use attachments_core::{AttachmentId, ReferencedAttachments, WatchedAttachmentItem};
/// let reading = ReferencedAttachments::read_now(vec![
///     WatchedAttachmentItem::new(AttachmentId::new("a1").unwrap()),
/// ]);
/// assert_eq!(reading.items.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedAttachments {
    /// Every referenced attachment, each once.
    pub items: Vec<WatchedAttachmentItem>,
    /// When the reading began.
    pub read_at: std::time::Instant,
}

impl ReferencedAttachments {
    /// A reading that began at `read_at`.
    pub fn new(items: Vec<WatchedAttachmentItem>, read_at: std::time::Instant) -> Self {
        ReferencedAttachments { items, read_at }
    }

    /// A reading taken now: for items the app knows to be current.
    pub fn read_now(items: Vec<WatchedAttachmentItem>) -> Self {
        ReferencedAttachments::new(items, std::time::Instant::now())
    }
}

/// Items the app knows to be current: a reading taken now.
impl From<Vec<WatchedAttachmentItem>> for ReferencedAttachments {
    fn from(items: Vec<WatchedAttachmentItem>) -> Self {
        ReferencedAttachments::read_now(items)
    }
}

/// `{id}.{extension}`, or `{id}` without an extension; the extension is validated.
pub fn default_filename(id: &AttachmentId, extension: Option<&str>) -> Result<String> {
    match extension.map(|e| e.trim_start_matches('.')) {
        None | Some("") => Ok(id.as_str().to_owned()),
        Some(extension) => {
            validate_extension(extension)?;
            Ok(format!("{id}.{extension}"))
        }
    }
}

/// An extension is 1 to 16 ASCII letters or digits.
pub fn validate_extension(extension: &str) -> Result<()> {
    if extension.is_empty()
        || extension.len() > MAX_EXTENSION_LEN
        || !extension.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Error::invalid_input(format!(
            "file extension must be 1 to {MAX_EXTENSION_LEN} ASCII letters or digits, got {:?}",
            truncate_for_message(extension)
        )));
    }
    Ok(())
}

/// Check that `path` is a relative path that stays inside whatever root it is joined to.
///
/// Accepted: `/`-separated components of any Unicode except NUL, `\` and control characters.
/// Refused with `InvalidInput`: empty paths or components, `.` and `..`, absolute paths, NUL,
/// backslashes (a separator on Windows), control characters, more than 1024 bytes in all or
/// 255 in a component.
///
/// ```
/// use attachments_core::validate_relative_path;
/// assert!(validate_relative_path("photos/2024/été.jpg").is_ok());
/// for hostile in ["../x", "/etc/passwd", "a\0b", "a\\b", "a//b", "a/./b", ""] {
///     assert!(validate_relative_path(hostile).is_err(), "{hostile:?}");
/// }
/// ```
pub fn validate_relative_path(path: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::invalid_input(format!(
            "path {:?} refused: {why}",
            truncate_for_message(path)
        )))
    };
    if path.is_empty() {
        return refuse("empty");
    }
    if path.len() > MAX_PATH_LEN {
        return refuse("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return refuse("absolute");
    }
    if path.contains('\0') {
        return refuse("contains NUL");
    }
    if path.contains('\\') {
        return refuse("contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    for component in path.split('/') {
        match component {
            "" => return refuse("empty path component"),
            "." | ".." => return refuse("`.` or `..` component"),
            c if c.len() > MAX_PATH_COMPONENT_LEN => {
                return refuse("path component longer than 255 bytes");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Keep error messages short when the input is huge.
fn truncate_for_message(text: &str) -> String {
    const KEEP: usize = 64;
    if text.len() <= KEEP {
        return text.to_owned();
    }
    let mut end = KEEP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn ids_are_validated() {
        let long = "a".repeat(MAX_ID_LEN);
        for good in ["a", "A-b_c.d", "0", long.as_str(), "..."] {
            assert!(AttachmentId::new(good).is_ok(), "{good:?}");
        }
        let too_long = "a".repeat(10_000);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a\0b",
            "a b",
            "a/b",
            "é",
            too_long.as_str(),
        ] {
            let err = AttachmentId::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().len() < 200, "message stays short");
        }
    }

    #[test]
    fn state_codes_match_the_powersync_table() {
        let codes: Vec<(AttachmentState, i64)> = AttachmentState::ALL
            .iter()
            .map(|s| (*s, s.code()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (AttachmentState::QueuedDownload, 0),
                (AttachmentState::QueuedUpload, 1),
                (AttachmentState::QueuedDelete, 2),
                (AttachmentState::Synced, 3),
                (AttachmentState::Archived, 4),
            ]
        );
        for code in [-1, 5, i64::MAX] {
            assert_eq!(
                AttachmentState::from_code(code).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn default_filenames() {
        let id = AttachmentId::new("abc").unwrap();
        assert_eq!(default_filename(&id, Some("jpg")).unwrap(), "abc.jpg");
        assert_eq!(default_filename(&id, Some(".png")).unwrap(), "abc.png");
        assert_eq!(default_filename(&id, None).unwrap(), "abc");
        assert!(default_filename(&id, Some("../x")).is_err());
        assert!(default_filename(&id, Some("a/b")).is_err());
    }

    #[test]
    fn watched_filenames_are_validated() {
        let id = AttachmentId::new("abc").unwrap();
        let item = WatchedAttachmentItem::new(id).with_filename("../../etc/passwd");
        assert_eq!(
            item.resolved_filename().unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
