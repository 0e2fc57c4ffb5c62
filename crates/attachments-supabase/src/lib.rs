#![doc = include_str!("../README.md")]

mod config;
mod error;
mod remote;

pub use config::{
    AccessTokenProvider, DEFAULT_CHUNK_SIZE, Secret, StaticAccessToken, SupabaseConfig,
};
pub use remote::SupabaseRemoteStorage;
