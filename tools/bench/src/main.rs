//! The queue side of `cargo xtask bench`. Each subcommand runs one scenario in a fresh process
//! (so its peak memory is its own) and prints one line:
//! `result seconds=<f> peak_rss_mib=<f> count=<n>`.
//!
//! - `upload --source DIR --work DIR --prefix P --concurrency C`: save every file of `DIR`
//!   through `save_file` and upload it to the S3 server named by `ATTACHMENTS_TEST_S3_*`; time
//!   from the first save to all `Synced` (`seconds=`), and to the last save's return
//!   (`saved_seconds=`); `rss_after_mib=` is the resident memory once all are synced. Writes
//!   the ids to `WORK/manifest.txt`. (`cargo xtask bench` times the whole process besides.)
//! - `download --manifest FILE --work DIR --prefix P --concurrency C`: a second device
//!   references every id of the manifest and downloads it; time to all `Synced`.
//! - `bookkeeping --count N`: N attachments saved and uploaded with in-memory storages.
//! - `reconcile --count N`: one emission of N new ids, then one with a single id changed;
//!   prints `first_ms=` and `change_ms=`.
//! - `idle-backlog --rows N --passes P`: N queued rows all waiting out a backoff, then P idle
//!   passes (`sync_now`); prints `idle_pass_ms=` (median), `samples_ms=`, `first_pass_ms=`
//!   (start-up included), `startup_peak_rss_mib=` (the process through its first pass; the rows
//!   are inserted by another process), `startup_rss_mib=` (resident after it) and
//!   `peak_rss_mib=` (the idle passes alone).
//! - `startup-files --rows N` and `upload-rss --files N`: start-up and memory flat in the
//!   table size (see `flat.rs`).

mod flat;

use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::s3::{S3Config, S3RemoteStorage};
use attachments::sqlite::SqliteStore;
use attachments::{
    Attachment, AttachmentEvent, AttachmentId, AttachmentState, AttachmentStore, BoxError,
    ByteStream, Bytes, LocalStorage, RemoteStorage, RowChange, SaveFile, SqliteAttachmentQueue,
    WatchedAttachmentItem,
};
use attachments_testkit::{MemoryLocalStorage, MemoryRemoteStorage, patterned_stream};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// How many `save_file` calls the upload scenario keeps in flight.
const SAVES_AT_ONCE: usize = 16;
/// Source files up to this size are read whole before `save_file`, as an app would.
const READ_WHOLE_UP_TO: u64 = 1 << 20;

struct Args {
    command: String,
    values: std::collections::HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Args, BoxError> {
        let mut raw = std::env::args().skip(1);
        let command = raw
            .next()
            .ok_or("usage: attachments-bench <scenario> --flag value ...")?;
        let mut values = std::collections::HashMap::new();
        while let Some(flag) = raw.next() {
            let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
            values.insert(flag.trim_start_matches('-').to_owned(), value);
        }
        Ok(Args { command, values })
    }

    fn get(&self, name: &str) -> Result<&str, BoxError> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn number(&self, name: &str) -> Result<usize, BoxError> {
        Ok(self.get(name)?.parse()?)
    }
}

/// Peak resident memory of this process, from `/proc/self/status` (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    rss_mib("VmHWM")
}

async fn s3_remote(prefix: &str) -> Result<S3RemoteStorage, BoxError> {
    let config = S3Config::from_env("ATTACHMENTS_TEST_S3")
        .ok_or("ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY must be set")?;
    let storage = S3RemoteStorage::from_config(config.key_prefix(prefix)).await?;
    storage.create_bucket_if_missing().await?;
    Ok(storage)
}

async fn store(work: &Path) -> Result<SqliteStore, BoxError> {
    std::fs::create_dir_all(work)?;
    // what an app would choose: WAL, synchronous=NORMAL (durable across process crashes), and
    // no ping before each checkout (a SQLite connection has no network to lose)
    let options = SqliteConnectOptions::new()
        .filename(work.join("app.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    Ok(SqliteStore::new(pool).await?)
}

fn queue(
    store: SqliteStore,
    local: impl LocalStorage,
    remote: impl RemoteStorage,
    concurrency: usize,
) -> SqliteAttachmentQueue {
    SqliteAttachmentQueue::builder(store, local, remote)
        .max_concurrency(concurrency)
        .sync_throttle(Duration::ZERO)
        .build()
        .expect("a valid configuration, and no other queue on this database")
}

/// Wait until nothing is queued, as an app would: let the background worker run its passes,
/// and look at the counts after each one.
async fn drain(queue: &SqliteAttachmentQueue) -> Result<(), BoxError> {
    let mut events = queue.subscribe();
    queue.trigger_sync();
    loop {
        if queue.status().await?.queued() == 0 {
            return Ok(());
        }
        loop {
            match events.recv().await {
                Ok(AttachmentEvent::PassCompleted(_)) => break,
                Ok(_) => {}
                // fell behind: a pass may have ended meanwhile, look at the counts again
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                Err(closed) => return Err(closed.into()),
            }
        }
    }
}

async fn upload(args: &Args) -> Result<String, BoxError> {
    let source = PathBuf::from(args.get("source")?);
    let work = PathBuf::from(args.get("work")?);
    let remote = s3_remote(args.get("prefix")?).await?;
    let queue = queue(
        store(&work).await?,
        FsLocalStorage::new(work.join("files"))?,
        remote,
        args.number("concurrency")?,
    );
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&source)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let started = Instant::now();
    queue.start_sync().await?;
    // as an app importing a folder would: several saves at once, so that the durable local
    // copies (each synced to disk) overlap
    let ids: Vec<String> = futures_util::stream::iter(&paths)
        .map(|path| {
            let queue = queue.clone();
            async move {
                // as an app would: a small file read whole, a large one streamed
                let stream: ByteStream =
                    if tokio::fs::metadata(path).await?.len() <= READ_WHOLE_UP_TO {
                        let bytes = Bytes::from(tokio::fs::read(path).await?);
                        Box::pin(futures_util::stream::iter([Ok(bytes)]))
                    } else {
                        Box::pin(tokio_util::io::ReaderStream::with_capacity(
                            tokio::fs::File::open(path).await?,
                            256 * 1024,
                        ))
                    };
                let saved = queue
                    .save_file(SaveFile::new(stream).file_extension("bin"))
                    .await?;
                Ok::<_, BoxError>(saved.id.to_string())
            }
        })
        .buffer_unordered(SAVES_AT_ONCE)
        .try_collect()
        .await?;
    let saved_seconds = started.elapsed().as_secs_f64();
    drain(&queue).await?;
    let seconds = started.elapsed().as_secs_f64();
    // what the process still holds with every file synced and the queue running, so that
    // memory kept per attachment shows between runs of different sizes (`scaling`)
    let rss_after_mib = rss_mib("VmRSS");
    queue.close().await;
    std::fs::write(work.join("manifest.txt"), ids.join("\n"))?;
    Ok(format!(
        "seconds={seconds:.3} saved_seconds={saved_seconds:.3} rss_after_mib={rss_after_mib:.1} count={}",
        paths.len()
    ))
}

async fn download(args: &Args) -> Result<String, BoxError> {
    let manifest = std::fs::read_to_string(args.get("manifest")?)?;
    let work = PathBuf::from(args.get("work")?);
    let remote = s3_remote(args.get("prefix")?).await?;
    let queue = queue(
        store(&work).await?,
        FsLocalStorage::new(work.join("files"))?,
        remote,
        args.number("concurrency")?,
    );
    let items = manifest
        .lines()
        .map(|id| Ok(WatchedAttachmentItem::new(AttachmentId::new(id)?).with_file_extension("bin")))
        .collect::<Result<Vec<_>, attachments::Error>>()?;
    let count = items.len();
    let started = Instant::now();
    queue.set_referenced(items).await?;
    queue.start_sync().await?;
    drain(&queue).await?;
    let seconds = started.elapsed().as_secs_f64();
    queue.close().await;
    Ok(format!("seconds={seconds:.3} count={count}"))
}

async fn bookkeeping(args: &Args) -> Result<String, BoxError> {
    let count = args.number("count")?;
    let work = tempfile_dir()?;
    let queue = queue(
        store(&work).await?,
        MemoryLocalStorage::default(),
        MemoryRemoteStorage::default(),
        8,
    );
    let started = Instant::now();
    queue.start_sync().await?;
    for n in 0..count {
        queue
            .save_file(SaveFile::new(patterned_stream(n as u64, 16)).file_extension("bin"))
            .await?;
    }
    drain(&queue).await?;
    let seconds = started.elapsed().as_secs_f64();
    queue.close().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(format!(
        "seconds={seconds:.3} count={count} attachments_per_s={:.0}",
        count as f64 / seconds
    ))
}

async fn reconcile(args: &Args) -> Result<String, BoxError> {
    let count = args.number("count")?;
    let work = tempfile_dir()?;
    let queue = queue(
        store(&work).await?,
        MemoryLocalStorage::default(),
        MemoryRemoteStorage::default(),
        8,
    );
    let mut items: Vec<WatchedAttachmentItem> = (0..count)
        .map(|n| {
            WatchedAttachmentItem::new(AttachmentId::new(format!("id-{n:08}")).expect("valid"))
        })
        .collect();
    let started = Instant::now();
    queue.set_referenced(items.clone()).await?;
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    items[count / 2] = WatchedAttachmentItem::new(AttachmentId::new("id-changed")?);
    let started = Instant::now();
    queue.set_referenced(items).await?;
    let change_ms = started.elapsed().as_secs_f64() * 1000.0;
    queue.close().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(format!(
        "first_ms={first_ms:.1} change_ms={change_ms:.1} count={count}"
    ))
}

/// Rows inserted per `apply` call: big enough to be quick, small enough that building them
/// adds little to the process's memory.
const BACKLOG_BATCH: usize = 5_000;

/// Fill the table of `--work` with `--rows` backed-off rows (run as a process of its own by
/// `idle-backlog`, so that building the rows does not count in the queue's memory).
async fn idle_backlog_fill(args: &Args) -> Result<String, BoxError> {
    let rows = args.number("rows")?;
    let store = store(Path::new(args.get("work")?)).await?;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    // a device that learned of many attachments before their authors uploaded them, and has
    // deletes waiting for the network: every row backed off for four more minutes (within the
    // longest backoff, 5 minutes: start-up makes a retry time beyond it due at once)
    let mut inserted = 0;
    while inserted < rows {
        let batch: Vec<RowChange> = (inserted..rows.min(inserted + BACKLOG_BATCH))
            .map(|n| {
                let id = AttachmentId::new(format!("backlog-{n:08}"))?;
                let state = if n % 3 == 2 {
                    AttachmentState::QueuedDelete
                } else {
                    AttachmentState::QueuedDownload
                };
                let mut row = Attachment::new(id, format!("backlog-{n:08}.bin"), state, now_ms);
                row.has_synced = state == AttachmentState::QueuedDelete;
                row.attempts = 3;
                row.next_attempt_at = Some(now_ms + 240_000 + i64::try_from(n % 1000)?);
                row.last_error = Some("not found: the object is not uploaded yet".to_owned());
                Ok(RowChange::Insert(row))
            })
            .collect::<Result<_, BoxError>>()?;
        inserted += batch.len();
        store.apply(batch).await?;
    }
    store.pool().close().await;
    Ok(format!("rows={rows}"))
}

/// VmRSS or VmHWM of this process, in MiB.
fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn idle_backlog(args: &Args) -> Result<String, BoxError> {
    let rows = args.number("rows")?;
    let passes = args.number("passes")?.max(1);
    let work = tempfile_dir()?;
    let filled = std::process::Command::new(std::env::current_exe()?)
        .args(["idle-backlog-fill", "--rows", &rows.to_string()])
        .args(["--work".as_ref(), work.as_os_str()])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !filled.success() {
        return Err(format!("filling the table failed: {filled}").into());
    }
    // from here on this process is an app that starts with the backlog already in its table
    let store = store(&work).await?;
    let queue = queue(
        store,
        FsLocalStorage::new(work.join("files"))?,
        FsRemoteStorage::new(work.join("remote"))?,
        8,
    );
    let before = queue.status().await?;
    // the first pass also verifies the local files at start-up: reported on its own
    let started = Instant::now();
    queue.sync_now().await?;
    let first_pass_ms = started.elapsed().as_secs_f64() * 1000.0;
    // the peak through start-up, then one of the idle passes alone (the kernel resets VmHWM)
    let startup_peak_rss_mib = rss_mib("VmHWM");
    let startup_rss_mib = rss_mib("VmRSS");
    let rss_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut samples = Vec::with_capacity(passes);
    let mut busy_passes = 0;
    for _ in 0..passes {
        let started = Instant::now();
        let summary = queue.sync_now().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if summary.uploaded + summary.downloaded + summary.deleted + summary.retrying > 0 {
            busy_passes += 1;
        }
    }
    let after = queue.status().await?;
    queue.close().await;
    let _ = std::fs::remove_dir_all(&work);
    if before != after || busy_passes > 0 {
        return Err(format!(
            "the passes were not idle: {busy_passes} transferred, counts {before:?} -> {after:?}"
        )
        .into());
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let samples_ms: Vec<String> = samples.iter().map(|s| format!("{s:.2}")).collect();
    Ok(format!(
        "rows={rows} idle_pass_ms={median:.3} first_pass_ms={first_pass_ms:.1} samples_ms={} startup_peak_rss_mib={startup_peak_rss_mib:.1} startup_rss_mib={startup_rss_mib:.1} rss_reset={}",
        samples_ms.join("/"),
        u8::from(rss_reset)
    ))
}

fn tempfile_dir() -> Result<PathBuf, BoxError> {
    let dir = std::env::temp_dir().join(format!("attachments-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Args::parse() {
        Ok(args) => match args.command.as_str() {
            "upload" => upload(&args).await,
            "download" => download(&args).await,
            "bookkeeping" => bookkeeping(&args).await,
            "reconcile" => reconcile(&args).await,
            "idle-backlog" => idle_backlog(&args).await,
            "idle-backlog-fill" => idle_backlog_fill(&args).await,
            "startup-files" => flat::startup_files(&args).await,
            "startup-files-fill" => flat::startup_files_fill(&args).await,
            "upload-rss" => flat::upload_rss(&args).await,
            other => Err(format!("unknown scenario {other}").into()),
        },
        Err(error) => Err(error),
    };
    match result {
        Ok(line) => {
            println!("result {line} peak_rss_mib={:.1}", peak_rss_mib());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("attachments-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
