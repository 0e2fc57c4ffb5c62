#![doc = include_str!("../README.md")]

mod lock;
mod migrations;
mod statements;

pub use lock::{lock, lock_file_path};
pub use migrations::{MIGRATIONS, Migration};
pub use statements::{
    COLUMNS, FIELDS, QUEUED_TERM, Statements, json_page, validate_table_name, version_table,
};
