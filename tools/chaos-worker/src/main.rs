//! The process `cargo xtask chaos` kills at random moments.
//!
//! `chaos-worker run ...` saves, deletes and references attachments while the queue syncs in
//! the background, and appends to a journal (fsynced) every save and delete that committed.
//! `chaos-worker verify ...` lets the queue drain and checks the remote, the local directory
//! and the table against the journal, printing
//! `attachments=<n> lost=<n> corrupt=<n> stuck=<n> leftovers=<n>`.
//!
//! Arguments: `--dir D` (database and local files), `--journal J`, `--seed S`, and the remote:
//! `--remote-dir R` for a directory, or `--s3-prefix P` for the S3 server named by
//! `ATTACHMENTS_TEST_S3_*`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::s3::{S3Config, S3RemoteStorage};
use attachments::sqlite::{SqliteStore, WatchOptions, watch_referenced_attachments_with};
use attachments::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, BoxError, LocalStorage,
    RemoteStorage, RetryPolicy, SaveFile, SqliteAttachmentQueue,
};
use attachments_testkit::patterned_stream;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

struct Args {
    command: String,
    dir: PathBuf,
    journal: PathBuf,
    seed: u64,
    remote_dir: Option<PathBuf>,
    s3_prefix: Option<String>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("usage: chaos-worker run|verify --dir D --journal J ...")?;
    let mut parsed = Args {
        command,
        dir: PathBuf::new(),
        journal: PathBuf::new(),
        seed: 1,
        remote_dir: None,
        s3_prefix: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => parsed.dir = value.into(),
            "--journal" => parsed.journal = value.into(),
            "--seed" => parsed.seed = value.parse()?,
            "--remote-dir" => parsed.remote_dir = Some(value.into()),
            "--s3-prefix" => parsed.s3_prefix = Some(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(parsed)
}

/// xorshift64*: a seeded, dependency-free source of "random" choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

async fn remote(args: &Args) -> Result<Arc<dyn RemoteStorage>, BoxError> {
    if let Some(dir) = &args.remote_dir {
        return Ok(Arc::new(FsRemoteStorage::new(dir)?));
    }
    let prefix = args
        .s3_prefix
        .clone()
        .ok_or("--remote-dir or --s3-prefix is required")?;
    let config = S3Config::from_env("ATTACHMENTS_TEST_S3")
        .ok_or("ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY must be set")?;
    let storage = S3RemoteStorage::from_config(config.key_prefix(prefix)).await?;
    storage.create_bucket_if_missing().await?;
    Ok(Arc::new(storage))
}

async fn open(args: &Args) -> Result<(SqlitePool, SqliteAttachmentQueue), BoxError> {
    std::fs::create_dir_all(&args.dir)?;
    let options = SqliteConnectOptions::new()
        .filename(args.dir.join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().connect_with(options).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY NOT NULL)")
        .execute(&pool)
        .await?;
    let watch_pool = pool.clone();
    let queue = SqliteAttachmentQueue::builder(
        SqliteStore::new(pool.clone()).await?,
        FsLocalStorage::new(args.dir.join("files"))?,
        remote(args).await?,
    )
    .sync_throttle(Duration::from_millis(10))
    .max_concurrency(4)
    .retry(RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..RetryPolicy::default()
    })
    .watch_attachments(move || {
        watch_referenced_attachments_with(
            watch_pool.clone(),
            "SELECT id, 'bin' AS file_extension FROM items",
            WatchOptions {
                poll_interval: Duration::from_millis(20),
            },
        )
    })
    .build()?;
    Ok((pool, queue))
}

fn journal(path: &Path, line: &str) -> Result<(), BoxError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")?;
    file.sync_data()?;
    Ok(())
}

/// Save, delete and sync until killed.
async fn run(args: &Args) -> Result<(), BoxError> {
    let (pool, queue) = open(args).await?;
    queue.start_sync().await?;
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    loop {
        if rng.below(10) < 7 {
            let len = 1 + rng.below(512 * 1024);
            let saved = queue
                .save_file_with_hook(
                    SaveFile::new(patterned_stream(rng.next(), len)).file_extension("bin"),
                    |connection, attachment| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO items (id) VALUES (?)")
                                .bind(attachment.id.as_str())
                                .execute(&mut *connection)
                                .await?;
                            Ok(())
                        })
                    },
                )
                .await?;
            let checksum = saved.checksum.as_deref().unwrap_or("");
            journal(
                &args.journal,
                &format!("saved {} {} {checksum}", saved.id, saved.filename),
            )?;
        } else {
            let victim: Option<String> =
                sqlx::query_scalar("SELECT id FROM items ORDER BY random() LIMIT 1")
                    .fetch_optional(&pool)
                    .await?;
            let Some(victim) = victim else { continue };
            let id = AttachmentId::new(victim)?;
            // the intent first: a kill between the commit and the next line leaves a delete
            // whose outcome is unknown to the journal, and either outcome is then acceptable
            journal(&args.journal, &format!("deleting {id}"))?;
            queue
                .delete_file_with_hook(&id, |connection, attachment| {
                    Box::pin(async move {
                        sqlx::query("DELETE FROM items WHERE id = ?")
                            .bind(attachment.id.as_str())
                            .execute(&mut *connection)
                            .await?;
                        Ok(())
                    })
                })
                .await?;
            journal(&args.journal, &format!("deleted {id}"))?;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
}

async fn sha256_of(
    remote: &dyn RemoteStorage,
    row: &Attachment,
) -> Result<Option<String>, BoxError> {
    let mut stream = match remote.download(row).await {
        Ok(stream) => stream,
        Err(error) if error.kind() == attachments::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Some(format!("sha256:{hex}")))
}

/// Let the queue drain, then check everything against the journal.
async fn verify(args: &Args) -> Result<bool, BoxError> {
    let (_pool, queue) = open(args).await?;
    queue.start_sync().await?;
    // drain: passes until nothing is queued (bounded: a stuck row must not hang the harness)
    for _ in 0..600 {
        if queue.status().await?.queued() == 0 {
            break;
        }
        queue.sync_now().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    queue.stop_sync().await;

    let text = std::fs::read_to_string(&args.journal).unwrap_or_default();
    let mut saved: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut deleting: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["saved", id, filename, checksum] => {
                saved.insert(
                    (*id).to_owned(),
                    ((*filename).to_owned(), (*checksum).to_owned()),
                );
            }
            ["deleting", id] => {
                deleting.insert((*id).to_owned());
            }
            ["deleted", id] => {
                deleted.insert((*id).to_owned());
            }
            _ => {} // a line torn by a kill: its operation is not known to have committed
        }
    }

    let remote = remote(args).await?;
    let rows = queue.store().list(None).await?;
    let by_id: BTreeMap<String, &Attachment> = rows.iter().map(|r| (r.id.to_string(), r)).collect();
    let (mut lost, mut corrupt, mut stuck, mut leftovers) = (0u64, 0u64, 0u64, 0u64);
    for (id, (filename, checksum)) in &saved {
        let probe = Attachment::new(
            AttachmentId::new(id.clone())?,
            filename.clone(),
            AttachmentState::Synced,
            0,
        );
        let on_remote = sha256_of(remote.as_ref(), &probe).await?;
        if deleted.contains(id) {
            if on_remote.is_some() || by_id.contains_key(id) {
                eprintln!("delete of {id} was lost");
                lost += 1;
            }
            continue;
        }
        if deleting.contains(id) && on_remote.is_none() && !by_id.contains_key(id) {
            continue; // killed after the delete committed, before it was journaled
        }
        match (on_remote, by_id.get(id)) {
            (Some(found), Some(row))
                if &found == checksum && row.state == AttachmentState::Synced => {}
            (Some(found), _) if &found != checksum => {
                eprintln!("{id}: remote holds {found}, {checksum} was saved");
                corrupt += 1;
            }
            (found, row) => {
                eprintln!(
                    "{id} lost: on remote {}, row {:?}",
                    found.is_some(),
                    row.map(|r| r.state)
                );
                lost += 1;
            }
        }
    }
    for row in &rows {
        if row.state.is_queued() || row.failed_state.is_some() {
            eprintln!("{} stuck in {} ({:?})", row.id, row.state, row.last_error);
            stuck += 1;
        }
    }
    let local = FsLocalStorage::new(args.dir.join("files"))?;
    let referenced: BTreeSet<&str> = rows.iter().filter_map(|r| r.local_uri.as_deref()).collect();
    for file in local.list().await? {
        if !referenced.contains(file.as_str()) {
            eprintln!("leftover local file {file}");
            leftovers += 1;
        }
    }
    let temp_dir = args.dir.join("files").join(attachments::fs::TEMP_DIR);
    if let Ok(entries) = std::fs::read_dir(&temp_dir) {
        let temp_files = entries.count() as u64;
        if temp_files > 0 {
            eprintln!("{temp_files} temp files left in {}", temp_dir.display());
        }
        leftovers += temp_files;
    }
    println!(
        "attachments={} lost={lost} corrupt={corrupt} stuck={stuck} leftovers={leftovers}",
        saved.len()
    );
    queue.close().await;
    Ok(lost + corrupt + stuck + leftovers == 0)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match parse_args() {
        Ok(args) => match args.command.as_str() {
            "run" => run(&args).await.map(|()| true),
            "verify" => verify(&args).await,
            other => Err(format!("unknown command {other}").into()),
        },
        Err(error) => Err(error),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos-worker: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
