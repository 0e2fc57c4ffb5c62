#![doc = include_str!("../README.md")]

mod data;
mod faulty;
mod memory;
pub mod suites;
#[cfg(feature = "supabase-server")]
pub mod supabase_server;

pub use data::{byte_at, failing_stream, patterned_bytes, patterned_stream, upload_row};
pub use faulty::{CallCounts, Fault, FaultyRemoteStorage, RandomFaults};
pub use memory::{MemoryLocalStorage, MemoryRemoteStorage};
pub use suites::local as local_storage;
pub use suites::{
    HOSTILE_PATHS, KeyRules, Staging, local_storage_suite, local_storage_suite_with,
    ranged_reads_suite, ranges, remote_storage_suite, remote_storage_suite_with_keys,
    staged_parts_suite, startup, store, store_suite,
};
