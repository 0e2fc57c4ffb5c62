//! `SaveFile`: what `save_file` is given.

use std::fmt;

use crate::model::AttachmentId;
use crate::storage::ByteStream;

/// A file to save: its contents and what to record about it.
///
/// ```
/// use attachments_core::{byte_stream_from, SaveFile};
/// let file = SaveFile::new(byte_stream_from(vec![b"\xFF\xD8".to_vec()]))
///     .media_type("image/jpeg")
///     .file_extension("jpg")
///     .meta_data(r#"{"todo": 1}"#);
/// # drop(file);
/// ```
pub struct SaveFile {
    pub(super) data: ByteStream,
    pub(super) id: Option<AttachmentId>,
    pub(super) media_type: Option<String>,
    pub(super) file_extension: Option<String>,
    pub(super) meta_data: Option<String>,
}

impl SaveFile {
    /// The contents to save, as a stream.
    pub fn new(data: ByteStream) -> Self {
        SaveFile {
            data,
            id: None,
            media_type: None,
            file_extension: None,
            meta_data: None,
        }
    }

    /// Use this id instead of a generated one; it must not exist yet.
    pub fn id(mut self, id: AttachmentId) -> Self {
        self.id = Some(id);
        self
    }

    /// The media type to record, e.g. `image/jpeg`.
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// The extension of the file name (`{id}.{extension}`), without the dot.
    pub fn file_extension(mut self, extension: impl Into<String>) -> Self {
        self.file_extension = Some(extension.into());
        self
    }

    /// Free text to store with the attachment.
    pub fn meta_data(mut self, meta_data: impl Into<String>) -> Self {
        self.meta_data = Some(meta_data.into());
        self
    }
}

impl fmt::Debug for SaveFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaveFile")
            .field("id", &self.id)
            .field("media_type", &self.media_type)
            .field("file_extension", &self.file_extension)
            .finish_non_exhaustive()
    }
}
