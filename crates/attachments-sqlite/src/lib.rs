#![doc = include_str!("../README.md")]

mod error;
mod inserts;
mod lock;
mod migrations;
mod rows;
mod store;
mod watch;

pub use store::{DEFAULT_TABLE_NAME, SqliteStore};
pub use watch::{WatchOptions, watch_referenced_attachments, watch_referenced_attachments_with};

/// The sqlx version this crate is built with; update hooks receive its `SqliteConnection`.
pub use sqlx;
