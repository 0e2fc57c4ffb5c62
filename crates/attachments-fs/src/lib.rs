#![doc = include_str!("../README.md")]

mod dirsync;
mod hidden;
mod local;
mod parts;
mod promote;
mod remote;
mod writer;

pub use hidden::TEMP_DIR;
pub use local::FsLocalStorage;
pub use remote::FsRemoteStorage;
