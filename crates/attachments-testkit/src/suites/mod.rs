//! Conformance suites: one public async function per trait, checking exactly what the trait's
//! documentation promises. An adapter crate calls them from its own `tests/conformance.rs`.
//! They panic (with a message naming the broken promise) on the first violation. Each suite is
//! also one public function per promise, in [`local`], [`remote`], [`ranges`] and [`store`].

pub mod local;
pub mod ranges;
pub mod remote;
pub mod startup;
pub mod store;

pub use local::{Staging, local_storage_suite, local_storage_suite_with};
pub use ranges::{ranged_reads_suite, staged_parts_suite};
pub use remote::{KeyRules, remote_storage_suite, remote_storage_suite_with_keys};
pub use store::store_suite;

/// Paths no storage may accept, each with why.
pub const HOSTILE_PATHS: [&str; 9] = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\0b",
    "a\\b",
    "",
    "a//b",
    "./a",
    "dir/..",
];

/// A prefix unique to one suite run, so runs against a shared server do not collide.
pub(crate) fn unique_prefix(suite: &str) -> String {
    format!("{suite}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}
