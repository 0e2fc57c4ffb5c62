#![doc = include_str!("../README.md")]

mod error;
mod lease;
mod migrations;
mod offline;
mod store;
mod watch;

pub use offline::{OfflineHttpClient, open_offline};
pub use store::{DEFAULT_TABLE_NAME, PowerSyncStore};
pub use watch::{is_connected, sync_when_connected, watch_referenced_attachments};

/// The PowerSync version this crate is built with.
pub use powersync;
/// The rusqlite version PowerSync uses; update hooks receive its `Connection`.
pub use rusqlite;
