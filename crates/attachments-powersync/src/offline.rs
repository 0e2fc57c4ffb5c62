//! Opening a PowerSync database without a PowerSync service: for tests, examples, and apps
//! that start offline and connect later through their own HTTP client.

use std::path::Path;

use async_trait::async_trait;
use attachments_core::Result;
use powersync::env::PowerSyncEnvironment;
use powersync::error::PowerSyncError;
use powersync::http::{HttpClient, Request, Response};
use powersync::schema::SchemaOrCustom;
use powersync::{ConnectionPool, PowerSyncDatabase};

use crate::error::powersync_error;

/// An HTTP client that fails every request: PowerSync works offline (every read and write is
/// local), and a sync attempt reports a download error instead of reaching a network.
///
/// ```
/// let _client = attachments_powersync::OfflineHttpClient;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineHttpClient;

#[async_trait]
impl HttpClient for OfflineHttpClient {
    async fn send(&self, _request: Request) -> std::result::Result<Response, PowerSyncError> {
        // PowerSync 0.0.5 lets an app build its error only from a rusqlite or serde_json error.
        let offline = std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "offline: this database has no PowerSync service",
        );
        Err(rusqlite::Error::ToSqlConversionFailure(Box::new(offline)).into())
    }
}

/// Open (or create) the PowerSync database at `path` with `schema`, with no PowerSync service
/// ([`OfflineHttpClient`]) and tokio's timer. Registers PowerSync's core extension first,
/// which every connection opened afterwards in the process needs.
///
/// # Errors
/// `Database` when the extension cannot be registered or the file cannot be opened.
///
/// ```
/// use powersync::schema::Schema;
/// let dir = tempfile::tempdir().unwrap();
/// let db = attachments_powersync::open_offline(dir.path().join("app.db"), Schema::default());
/// assert!(db.is_ok());
/// ```
pub fn open_offline(
    path: impl AsRef<Path>,
    schema: impl Into<SchemaOrCustom>,
) -> Result<PowerSyncDatabase> {
    let path = path.as_ref();
    PowerSyncEnvironment::powersync_auto_extension()
        .map_err(|e| powersync_error(e, "registering the PowerSync core extension"))?;
    let pool = ConnectionPool::open(path)
        .map_err(|e| powersync_error(e, format!("opening {}", path.display())))?;
    let env =
        PowerSyncEnvironment::custom(OfflineHttpClient, pool, PowerSyncEnvironment::tokio_timer());
    Ok(PowerSyncDatabase::new(env, schema))
}
