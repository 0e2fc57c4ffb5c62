#![doc = include_str!("../README.md")]

mod local;
mod remote;

pub use local::{FsLocalStorage, TEMP_DIR};
pub use remote::FsRemoteStorage;
