#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use attachments_core::{
    Attachment, AttachmentErrorHandler, AttachmentEvent, AttachmentId, AttachmentQueue,
    AttachmentQueueBuilder, AttachmentState, AttachmentStore, BoxError, ByteStream, Bytes,
    ChangeDecider, ChunkedReader, DefaultErrorHandler, Error, ErrorAction, ErrorKind,
    ExclusiveLock, LocalStorage, Operation, PassSummary, QueueConfig, RangeBody,
    ReferencedAttachments, RemoteStorage, Result, RetryPolicy, RowChange, SaveFile, Secret,
    StagedParts, StateCounts, UpdateHook, WatchSource, WatchedAttachmentItem, already_exists,
    async_trait, byte_stream_from, collect_bytes, default_filename, object_changed,
    validate_extension, validate_relative_path,
};

/// The SQLite store (sqlx) and watched queries.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite {
    #[doc(inline)]
    pub use attachments_sqlite::{
        DEFAULT_TABLE_NAME, SqliteStore, WatchOptions, sqlx, watch_referenced_attachments,
        watch_referenced_attachments_with,
    };
}

/// File-system storages: the local default and a directory as the remote.
#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
pub mod fs {
    #[doc(inline)]
    pub use attachments_fs::{FsLocalStorage, FsRemoteStorage, TEMP_DIR};
}

/// Amazon S3 and S3-compatible stores (aws-sdk-s3).
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub mod s3 {
    #[doc(inline)]
    pub use attachments_s3::{
        ChecksumMode, MIN_PART_SIZE, MultipartSettings, PayloadSigning, S3Config, S3Credentials,
        S3RemoteStorage, Secret, aws_sdk_s3,
    };
}

/// Supabase Storage (reqwest), with TUS resumable uploads.
#[cfg(feature = "supabase")]
#[cfg_attr(docsrs, doc(cfg(feature = "supabase")))]
pub mod supabase {
    #[doc(inline)]
    pub use attachments_supabase::{
        AccessTokenProvider, DEFAULT_CHUNK_SIZE, Secret, StaticAccessToken, SupabaseConfig,
        SupabaseRemoteStorage,
    };
}

/// The store on a PowerSync app's database: PowerSync's own connections, update hooks in its
/// write transaction, references from its table-update notifications.
#[cfg(feature = "powersync")]
#[cfg_attr(docsrs, doc(cfg(feature = "powersync")))]
pub mod powersync {
    #[doc(inline)]
    pub use attachments_powersync::{
        DEFAULT_TABLE_NAME, OfflineHttpClient, PowerSyncStore, is_connected, open_offline,
        powersync, rusqlite, sync_when_connected, watch_referenced_attachments,
    };
}

/// A queue on a PowerSync app's database.
#[cfg(feature = "powersync")]
pub type PowerSyncAttachmentQueue = AttachmentQueue<attachments_powersync::PowerSyncStore>;

/// A queue on the embedded defaults: SQLite for state, a directory for local files.
#[cfg(feature = "sqlite")]
pub type SqliteAttachmentQueue = AttachmentQueue<attachments_sqlite::SqliteStore>;

/// The workspace README's usage example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct WorkspaceReadme;
