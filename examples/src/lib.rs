//! Runnable examples live in this package's `examples` targets; see `quickstart.rs`.
