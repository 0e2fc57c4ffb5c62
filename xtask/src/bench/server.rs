//! The S3 server every contender of the bench talks to: the one `ATTACHMENTS_TEST_S3_*` names
//! (as `cargo xtask test` honours them), else a SeaweedFS the bench starts on loopback. The
//! queue, s5cmd, rclone and the PowerSync JS peer get the same server and credentials.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use crate::seaweedfs::SeaweedFs;

const PREFIX: &str = "ATTACHMENTS_TEST_S3";

/// The server and its credentials; a SeaweedFS the bench started stops when this is dropped.
pub(crate) struct S3Server {
    started: Option<SeaweedFs>,
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl S3Server {
    /// The server of `ATTACHMENTS_TEST_S3_*` when `_ENDPOINT` is set, else a fresh SeaweedFS.
    ///
    /// # Errors
    /// When the variables are incomplete, or SeaweedFS cannot be installed or started.
    pub(crate) fn from_env_or_start(target: &Path) -> Result<S3Server, String> {
        let read = |name: &str| {
            std::env::var(format!("{PREFIX}_{name}"))
                .ok()
                .filter(|value| !value.is_empty())
        };
        if let Some(endpoint) = read("ENDPOINT") {
            let required = |name: &str| {
                read(name).ok_or_else(|| {
                    format!("{PREFIX}_ENDPOINT is set, so {PREFIX}_{name} must be too")
                })
            };
            let server = S3Server {
                started: None,
                endpoint,
                bucket: required("BUCKET")?,
                access_key: required("ACCESS_KEY")?,
                secret_key: required("SECRET_KEY")?,
                region: read("REGION").unwrap_or_else(|| "us-east-1".to_owned()),
            };
            println!(
                "bench: against the S3 server of {PREFIX}_ENDPOINT, {} (bucket {}); no SeaweedFS started",
                server.endpoint, server.bucket
            );
            return Ok(server);
        }
        let seaweed = SeaweedFs::start(target)?;
        let value = |name: &str| {
            seaweed
                .environment()
                .into_iter()
                .find(|(key, _)| *key == format!("{PREFIX}_{name}"))
                .map(|(_, value)| value)
                .unwrap_or_default()
        };
        Ok(S3Server {
            endpoint: value("ENDPOINT"),
            bucket: value("BUCKET"),
            access_key: value("ACCESS_KEY"),
            secret_key: value("SECRET_KEY"),
            region: "us-east-1".to_owned(),
            started: Some(seaweed),
        })
    }

    /// `ATTACHMENTS_TEST_S3_*` for the queue and the JS peer, with `endpoint` (the server's, or
    /// the latency proxy's in front of it).
    pub(crate) fn queue_env(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = vec![
            (format!("{PREFIX}_ENDPOINT"), endpoint.to_owned()),
            (format!("{PREFIX}_BUCKET"), self.bucket.clone()),
            (format!("{PREFIX}_ACCESS_KEY"), self.access_key.clone()),
            (format!("{PREFIX}_SECRET_KEY"), self.secret_key.clone()),
            (format!("{PREFIX}_REGION"), self.region.clone()),
        ];
        // the other settings of `S3Config::from_env` (checksums, payload signing) are inherited
        env.retain(|(_, value)| !value.is_empty());
        env
    }

    /// The same credentials for s5cmd (the AWS variables) and rclone (a remote named `sw`).
    pub(crate) fn tool_env(&self) -> Vec<(String, String)> {
        let provider = if self.started.is_some() {
            "SeaweedFS"
        } else {
            "Other"
        };
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", self.region.as_str()),
            // no config file: the remote is all in these variables (and rclone says so once)
            ("RCLONE_CONFIG", "/dev/null"),
            ("RCLONE_CONFIG_SW_TYPE", "s3"),
            ("RCLONE_CONFIG_SW_PROVIDER", provider),
            ("RCLONE_CONFIG_SW_ENDPOINT", self.endpoint.as_str()),
            ("RCLONE_CONFIG_SW_REGION", self.region.as_str()),
            ("RCLONE_CONFIG_SW_ACCESS_KEY_ID", self.access_key.as_str()),
            (
                "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY",
                self.secret_key.as_str(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// The address a TCP proxy can forward to: plain HTTP only (a proxy in front of HTTPS would
    /// break the certificate's name), `None` otherwise.
    pub(crate) fn plain_http_address(&self) -> Option<SocketAddr> {
        let host_port = self.endpoint.strip_prefix("http://")?.trim_end_matches('/');
        host_port.to_socket_addrs().ok()?.next()
    }

    /// Print the server's log after a failure (only for a SeaweedFS the bench started).
    pub(crate) fn dump_log(&self) {
        if let Some(seaweed) = &self.started {
            seaweed.dump_log();
        }
    }
}
