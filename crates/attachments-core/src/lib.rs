#![doc = include_str!("../README.md")]

mod chunks;
mod error;
mod meter;
mod model;
mod policy;
mod queue;
mod secret;
mod state_machine;
mod storage;
mod store;

pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use chunks::ChunkedReader;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use model::{
    Attachment, AttachmentId, AttachmentState, MAX_EXTENSION_LEN, MAX_ID_LEN,
    MAX_PATH_COMPONENT_LEN, MAX_PATH_LEN, ReferencedAttachments, WatchedAttachmentItem,
    default_filename, validate_extension, validate_relative_path,
};
pub use policy::{
    AttachmentErrorHandler, DefaultErrorHandler, ErrorAction, Operation, RetryPolicy,
};
pub use queue::{
    AttachmentEvent, AttachmentQueue, AttachmentQueueBuilder, PassSummary, QueueConfig, SaveFile,
    WatchSource,
};
pub use secret::Secret;
pub use storage::{
    ByteStream, ExclusiveLock, LocalStorage, RangeBody, RemoteStorage, StagedParts,
    byte_stream_from, collect_bytes, object_changed,
};
pub use store::{
    AttachmentStore, ChangeDecider, RowChange, StateCounts, UpdateHook, already_exists,
};
