//! Plain HTTP to the loopback Supabase server, and the error bodies the real server sends:
//! what the `server_answers_*` tests share.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub use attachments_core::{Error, ErrorKind, RemoteStorage};
pub use attachments_supabase::{Secret, StaticAccessToken, SupabaseConfig, SupabaseRemoteStorage};
pub use attachments_testkit::supabase_server::{
    SupabaseServerOptions, SupabaseStorageServer, make_jwt,
};
pub use attachments_testkit::{patterned_bytes, patterned_stream, upload_row};
pub use base64::Engine;
pub use base64::engine::general_purpose::STANDARD;
pub use reqwest::Method;

pub const BUCKET: &str = "attachments";
pub const API_KEY: &str = "project-anon-key";
pub const MIB: u64 = 1 << 20;

pub fn remote(
    server: &SupabaseStorageServer,
    bucket: &str,
    token: String,
) -> SupabaseRemoteStorage {
    SupabaseRemoteStorage::new(
        SupabaseConfig::new(server.base_url(), bucket, API_KEY)
            .resumable(MIB, MIB)
            .access_token_provider(StaticAccessToken(Secret::new(token))),
    )
    .unwrap()
}

pub fn kind(err: &Error) -> (ErrorKind, bool) {
    (err.kind(), err.is_retryable())
}

/// An answer as it came over the wire.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Plain HTTP requests to the loopback server, with exactly the headers given.
pub struct Wire<'a> {
    pub server: &'a SupabaseStorageServer,
    pub http: reqwest::Client,
}

impl<'a> Wire<'a> {
    pub fn new(server: &'a SupabaseStorageServer) -> Self {
        Wire {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{path}", self.server.base_url())
        };
        let mut request = self.http.request(method, url).header("apikey", API_KEY);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Answer {
            status,
            body,
            headers,
        }
    }

    /// `POST /upload/resumable` of `len` bytes for `key`.
    pub async fn tus_create(
        &self,
        token: Option<&str>,
        key: &str,
        len: u64,
        upsert: bool,
    ) -> Answer {
        let metadata = format!(
            "bucketName {},objectName {},contentType {}",
            STANDARD.encode(BUCKET),
            STANDARD.encode(key),
            STANDARD.encode("video/mp4")
        );
        let len = len.to_string();
        let mut headers = vec![
            ("tus-resumable", "1.0.0"),
            ("upload-length", len.as_str()),
            ("upload-metadata", metadata.as_str()),
        ];
        if upsert {
            headers.push(("x-upsert", "true"));
        }
        self.send(
            Method::POST,
            "upload/resumable",
            token,
            &headers,
            Vec::new(),
        )
        .await
    }

    /// The `Location` of a new upload.
    pub async fn tus_location(&self, token: &str, key: &str, len: u64) -> String {
        let created = self.tus_create(Some(token), key, len, true).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.header("location").unwrap().to_owned()
    }

    pub async fn tus_patch(
        &self,
        token: &str,
        location: &str,
        offset: u64,
        body: Vec<u8>,
        upsert: bool,
    ) -> Answer {
        let offset = offset.to_string();
        let mut headers = vec![
            ("tus-resumable", "1.0.0"),
            ("upload-offset", offset.as_str()),
            ("content-type", "application/offset+octet-stream"),
        ];
        if upsert {
            headers.push(("x-upsert", "true"));
        }
        self.send(Method::PATCH, location, Some(token), &headers, body)
            .await
    }

    pub async fn tus_head(&self, token: &str, location: &str) -> Answer {
        let headers = [("tus-resumable", "1.0.0"), ("x-upsert", "true")];
        self.send(Method::HEAD, location, Some(token), &headers, Vec::new())
            .await
    }
}

/// A JSON error of an `/object` or `/bucket` route: keys in the order of the routes' response
/// schema.
pub fn rest_error(status: &str, error: &str, message: &str, code: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"statusCode":{},"error":{},"message":{},"code":{}}}"#,
        q(status),
        q(error),
        q(message),
        q(code)
    )
}

/// A JSON error of a TUS route, which has no response schema: keys in the order the error
/// renders them.
pub fn tus_json_error(status: &str, code: &str, error: &str, message: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"statusCode":{},"code":{},"error":{},"message":{}}}"#,
        q(status),
        q(code),
        q(error),
        q(message)
    )
}

pub async fn start() -> SupabaseStorageServer {
    SupabaseStorageServer::start(SupabaseServerOptions::default()).await
}

pub const EXPIRED: &str = "\"exp\" claim timestamp check failed";
