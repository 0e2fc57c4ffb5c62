#![doc = include_str!("../README.md")]

mod config;
mod error;
mod keys;
mod remote;
mod transport;
mod tus;

pub use config::{
    AccessTokenProvider, DEFAULT_CHUNK_SIZE, Secret, StaticAccessToken, SupabaseConfig,
};
pub use keys::{KEY_PUNCTUATION, is_key_char};
pub use remote::SupabaseRemoteStorage;
