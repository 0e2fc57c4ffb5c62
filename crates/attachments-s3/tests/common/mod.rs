//! Test servers for the S3 adapter: s3s-fs in process (hermetic, on every `cargo test`), and an
//! external S3-compatible server (SeaweedFS from `cargo xtask test`) named by environment
//! variables.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use attachments_s3::{MultipartSettings, S3Config, S3Credentials, S3RemoteStorage};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub const ACCESS_KEY: &str = "attachments-test-key";
pub const SECRET_KEY: &str = "attachments-test-secret";

/// An s3s-fs server on a loopback port, storing under a directory; stops when dropped.
pub struct InProcessS3 {
    pub endpoint: String,
    tasks: JoinSet<()>,
}

impl InProcessS3 {
    pub async fn start(root: &Path) -> InProcessS3 {
        std::fs::create_dir_all(root).unwrap();
        let mut builder = S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).unwrap());
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // connections live in their own set, dropped (closed) with the accept loop
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                connections.spawn(async move {
                    let _ = ConnectionBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        InProcessS3 { endpoint, tasks }
    }

    /// Stop answering: the listener and every open connection close.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }

    pub fn config(&self, bucket: &str) -> S3Config {
        S3Config::new(bucket)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials(S3Credentials::new(ACCESS_KEY, SECRET_KEY))
    }

    /// A storage on a fresh bucket of this server.
    pub async fn storage(&self, bucket: &str) -> S3RemoteStorage {
        storage_for(self.config(bucket)).await
    }
}

pub async fn storage_for(config: S3Config) -> S3RemoteStorage {
    let storage = S3RemoteStorage::from_config(config).await.unwrap();
    storage.create_bucket_if_missing().await.unwrap();
    storage
}

/// Small parts so multipart paths run on small files: 5 MiB parts from 5 MiB on.
pub fn small_parts() -> MultipartSettings {
    MultipartSettings {
        threshold: 5 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        part_concurrency: 3,
    }
}

/// The external server from `ATTACHMENTS_TEST_S3_*`, if configured. Without it, say so; under
/// `CI=true` that is a failure, never a silent pass.
pub fn external_config() -> Option<S3Config> {
    if let Some(config) = S3Config::from_env("ATTACHMENTS_TEST_S3") {
        return Some(config);
    }
    let message = "ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY are not all set: \
                   the tests against an external S3 server did not run (cargo xtask test sets them)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("{message}");
    None
}
