//! Whether start-up and memory stay flat in the table size (issue 13, item 1):
//!
//! - `startup-files --rows N`: a table of N `Synced` rows whose files are all present but one
//!   (filled by a child process, as in `idle-backlog`); prints the first pass's `first_pass_ms=`
//!   and `first_pass_cpu_ms=` (start-up verification included), `startup_peak_rss_mib=`,
//!   `rss_after_mib=`, and checks that the row whose file is gone was repaired. With
//!   `--work DIR`, the table and files `startup-files-fill --rows N --work DIR` left there;
//!   with `--referenced all`, the app references every row, so the first pass reconciles too.
//! - `upload-rss --files N`: N files of 10 KiB saved and uploaded (local directory, directory
//!   remote); prints `rss_after_100_mib=` (after the first 100 are `Synced`), `rss_after_mib=`
//!   (after all N) and their difference, `growth_mib=`.

use std::path::Path;
use std::time::Instant;

use attachments::fs::{FsLocalStorage, FsRemoteStorage};
use attachments::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, BoxError, RowChange, SaveFile,
    SqliteAttachmentQueue, WatchedAttachmentItem,
};
use attachments_testkit::patterned_stream;
use futures_util::{StreamExt, TryStreamExt};

use crate::{Args, drain, queue, rss_mib, store, tempfile_dir};

/// Rows (and files) written per `apply` by the filling process.
const FILL_BATCH: usize = 5_000;

/// The id whose file the filling process leaves out.
const MISSING: &str = "synced-00000007";

/// CPU time (user and system, every thread) this process has used, in milliseconds.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name, which is in parentheses and may hold spaces
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name
    let total = ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0);
    total * 10.0 // clock ticks of 10 ms (USER_HZ 100 on Linux)
}

/// Fill `--work` with `--rows` synced rows and their files, but for one file (run as a process
/// of its own by `startup-files`).
pub(crate) async fn startup_files_fill(args: &Args) -> Result<String, BoxError> {
    let rows = args.number("rows")?;
    let work = Path::new(args.get("work")?);
    let store = store(work).await?;
    let files = work.join("files");
    std::fs::create_dir_all(&files)?;
    let mut written = 0;
    while written < rows {
        let batch: Vec<RowChange> = (written..rows.min(written + FILL_BATCH))
            .map(|n| {
                let id = AttachmentId::new(format!("synced-{n:08}"))?;
                let filename = format!("synced-{n:08}.bin");
                if id.as_str() != MISSING {
                    std::fs::write(files.join(&filename), b"x")?;
                }
                let mut row = Attachment::new(id, filename.clone(), AttachmentState::Synced, 0);
                row.local_uri = Some(filename);
                row.has_synced = true;
                row.size = Some(1);
                Ok(RowChange::Insert(row))
            })
            .collect::<Result<_, BoxError>>()?;
        written += batch.len();
        store.apply(batch).await?;
    }
    store.pool().close().await;
    Ok(format!("rows={rows}"))
}

pub(crate) async fn startup_files(args: &Args) -> Result<String, BoxError> {
    let rows = args.number("rows")?;
    // `--work DIR`: a directory filled before (by `startup-files-fill`), kept afterwards, so
    // a profiler can watch this process alone
    let given = args.get("work").ok().map(std::path::PathBuf::from);
    let work = match &given {
        Some(dir) => dir.clone(),
        None => tempfile_dir()?,
    };
    if given.is_none() {
        let filled = std::process::Command::new(std::env::current_exe()?)
            .args(["startup-files-fill", "--rows", &rows.to_string()])
            .args(["--work".as_ref(), work.as_os_str()])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !filled.success() {
            return Err(format!("filling the table failed: {filled}").into());
        }
    }
    // from here on this process is an app that starts with its table and files in place
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let queue = queue(
        store(&work).await?,
        FsLocalStorage::new(work.join("files"))?,
        FsRemoteStorage::new(work.join("remote"))?,
        8,
    );
    if args.get("referenced").is_ok_and(|flag| flag == "all") {
        // an app whose watched query names every attachment: the first pass also reconciles
        let items = (0..rows)
            .map(|n| {
                Ok(
                    WatchedAttachmentItem::new(AttachmentId::new(format!("synced-{n:08}"))?)
                        .with_file_extension("bin"),
                )
            })
            .collect::<Result<Vec<_>, BoxError>>()?;
        queue.set_referenced(items).await?;
    }
    queue.sync_now().await?;
    let first_pass_ms = started.elapsed().as_secs_f64() * 1000.0;
    let first_pass_cpu_ms = cpu_ms() - cpu_before;
    let startup_peak_rss_mib = rss_mib("VmHWM");
    let rss_after_mib = rss_mib("VmRSS");
    let repaired = queue.get(&AttachmentId::new(MISSING)?).await?;
    queue.close().await;
    if given.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    // its remote object is gone too, so it is queued for a download or archived as failed
    if repaired.is_none_or(|row| row.state == AttachmentState::Synced) {
        return Err("the row whose file is gone was not repaired".into());
    }
    Ok(format!(
        "rows={rows} first_pass_ms={first_pass_ms:.1} first_pass_cpu_ms={first_pass_cpu_ms:.0} startup_peak_rss_mib={startup_peak_rss_mib:.1} rss_after_mib={rss_after_mib:.1}"
    ))
}

/// Save `count` files of 10 KiB, numbered from `first`, and wait until all are uploaded.
async fn save_and_upload(
    queue: &SqliteAttachmentQueue,
    first: usize,
    count: usize,
) -> Result<(), BoxError> {
    futures_util::stream::iter(first..first + count)
        .map(|n| async move {
            let file = SaveFile::new(patterned_stream(n as u64, 10 * 1024)).file_extension("bin");
            queue.save_file(file).await.map(|_| ())
        })
        .buffer_unordered(crate::SAVES_AT_ONCE)
        .try_collect::<()>()
        .await?;
    drain(queue).await
}

pub(crate) async fn upload_rss(args: &Args) -> Result<String, BoxError> {
    let files = args.number("files")?.max(100);
    let work = tempfile_dir()?;
    let queue = queue(
        store(&work).await?,
        FsLocalStorage::new(work.join("files"))?,
        FsRemoteStorage::new(work.join("remote"))?,
        8,
    );
    queue.start_sync().await?;
    save_and_upload(&queue, 0, 100).await?;
    let rss_after_100_mib = rss_mib("VmRSS");
    let started = Instant::now();
    let cpu_before = cpu_ms();
    save_and_upload(&queue, 100, files - 100).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_ms_per_file = (cpu_ms() - cpu_before) / (files - 100).max(1) as f64;
    let rss_after_mib = rss_mib("VmRSS");
    let synced = queue.status().await?.synced;
    queue.close().await;
    let _ = std::fs::remove_dir_all(&work);
    if synced != files as u64 {
        return Err(format!("{synced} of {files} uploaded").into());
    }
    Ok(format!(
        "files={files} seconds={seconds:.2} cpu_ms_per_file={cpu_ms_per_file:.2} rss_after_100_mib={rss_after_100_mib:.1} rss_after_mib={rss_after_mib:.1} growth_mib={:.1}",
        rss_after_mib - rss_after_100_mib
    ))
}
