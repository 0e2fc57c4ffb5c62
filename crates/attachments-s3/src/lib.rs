#![doc = include_str!("../README.md")]

mod config;
mod error;
mod remote;

pub use config::{
    ChecksumMode, MIN_PART_SIZE, MultipartSettings, PayloadSigning, S3Config, S3Credentials, Secret,
};
pub use remote::S3RemoteStorage;

/// The aws-sdk-s3 version this crate is built with, for apps that bring their own client.
pub use aws_sdk_s3;
