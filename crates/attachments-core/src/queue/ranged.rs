//! A large download in byte ranges, several at once, each written at its offset into the
//! staged file, for remotes that support ranges (`RemoteStorage::supports_ranges`) and local
//! storages that write at offsets (`LocalStorage::create_staged_parts`).
//!
//! The checksum is of the file as it landed: a task of its own reads the parts back in order
//! as they complete and hashes them, beside the transfer. The ranges run at most a window of
//! parts ahead of the hash, so what it reads back is still in the page cache and the hash ends
//! soon after the last range.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::engine::Engine;
use super::transfer::stream_checksum;
use crate::error::{Error, ErrorKind, Result};
use crate::meter::{Meter, sha256_text};
use crate::model::Attachment;
use crate::storage::{ByteStream, RangeBody, StagedParts, object_changed};
use crate::store::AttachmentStore;

/// How many parts may have landed but not been hashed yet, per range in flight.
const HASH_WINDOW_PER_RANGE: usize = 2;

/// What a download wrote to the staging area: its size and checksum.
pub(super) struct Landed {
    pub(super) size: u64,
    pub(super) checksum: String,
}

/// The byte ranges of an object of `size` bytes, in parts of `part_size`.
fn part_ranges(size: u64, part_size: u64) -> Vec<Range<u64>> {
    (0..size.div_ceil(part_size))
        .map(|index| {
            let start = index * part_size;
            start..(start + part_size).min(size)
        })
        .collect()
}

impl<S: AttachmentStore> Engine<S> {
    /// Download `row` in byte ranges into the staging area. `None` when the remote or the
    /// local storage cannot, or the row says the file fits in one range: the caller then
    /// downloads in one stream.
    pub(super) async fn download_in_parts(
        &self,
        row: &Attachment,
        meter: &Arc<Meter>,
    ) -> Result<Option<Landed>> {
        let part_size = self.config.download_part_size;
        if !self.remote.supports_ranges() || row.size.is_some_and(|size| size <= part_size) {
            return Ok(None);
        }
        let first = self.remote.download_range(row, 0..part_size, None).await?;
        let size = first.object_size;
        if let Some(limit) = self.config.max_download_bytes
            && size > limit
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the remote object is larger than max_download_bytes ({limit})"),
            ));
        }
        if size <= part_size {
            // the whole object came with the first range
            let written = self
                .local
                .write_staged(&row.filename, meter.wrap(exact_length(first.data, size)))
                .await?;
            let checksum = stream_checksum(meter).await?;
            if written != size {
                if let Err(cleanup) = self.local.discard_staged(&row.filename).await {
                    tracing::warn!(%cleanup, "could not remove a download cut short");
                }
                return Err(short_range(&row.filename, &(0..size), written));
            }
            return Ok(Some(Landed {
                size: written,
                checksum,
            }));
        }
        let Some(parts) = self.local.create_staged_parts(&row.filename, size).await? else {
            return Ok(None);
        };
        let parts: Arc<dyn StagedParts> = Arc::from(parts);
        let checksum = self
            .fetch_parts(row, &parts, first, part_ranges(size, part_size), meter)
            .await?;
        parts.finish().await?;
        debug!(size, "downloaded in parts");
        Ok(Some(Landed { size, checksum }))
    }

    /// Fetch every range into `parts` (the first one already answered), at most
    /// `download_part_concurrency` at once, and return the checksum of what landed.
    async fn fetch_parts(
        &self,
        row: &Attachment,
        parts: &Arc<dyn StagedParts>,
        first: RangeBody,
        ranges: Vec<Range<u64>>,
        meter: &Arc<Meter>,
    ) -> Result<String> {
        let concurrency = self.config.download_part_concurrency;
        let window = concurrency * HASH_WINDOW_PER_RANGE;
        let (size, version) = (first.object_size, first.version.clone());
        let (landed_tx, landed_rx) = mpsc::unbounded_channel();
        let (hashed_tx, mut hashed_rx) = watch::channel(0usize);
        let hasher = AbortOnDrop(tokio::spawn(hash_in_order(
            Arc::clone(parts),
            ranges.clone(),
            landed_rx,
            hashed_tx,
        )));

        let fetch = |index: usize, answered: Option<RangeBody>| {
            let range = ranges[index].clone();
            let version = version.clone();
            async move {
                let body = match answered {
                    Some(body) => body,
                    None => {
                        self.remote
                            .download_range(row, range.clone(), version.as_deref())
                            .await?
                    }
                };
                if body.object_size != size || body.version != version {
                    return Err(object_changed(&row.filename));
                }
                let want = range.end - range.start;
                let data = meter.wrap_counting(exact_length(body.data, want));
                let written = parts.write_at(range.start, data).await?;
                if written != want {
                    return Err(short_range(&row.filename, &range, written));
                }
                Ok(index)
            }
        };
        let fetched: Result<()> = async {
            let mut in_flight = FuturesUnordered::new();
            in_flight.push(fetch(0, Some(first)));
            let mut next = 1;
            loop {
                while next < ranges.len()
                    && in_flight.len() < concurrency
                    && next < *hashed_rx.borrow() + window
                {
                    in_flight.push(fetch(next, None));
                    next += 1;
                }
                if in_flight.is_empty() && next == ranges.len() {
                    break;
                }
                tokio::select! {
                    Some(landed) = in_flight.next(), if !in_flight.is_empty() => {
                        // the hasher stopped early: its result says why
                        if landed_tx.send(landed?).is_err() {
                            break;
                        }
                    }
                    changed = hashed_rx.changed() => if changed.is_err() {
                        break;
                    },
                }
            }
            Ok(())
        }
        .await;
        drop(landed_tx);
        if let Err(error) = fetched {
            // the hasher holds the file open: it is gone when this returns
            hasher.stop().await;
            return Err(error);
        }
        hasher.join().await
    }
}

/// Hash the parts in order as they land (their indices come through `landed`), reading each
/// back from the file; report how many are hashed through `hashed`.
async fn hash_in_order(
    parts: Arc<dyn StagedParts>,
    ranges: Vec<Range<u64>>,
    mut landed: mpsc::UnboundedReceiver<usize>,
    hashed: watch::Sender<usize>,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut ready = BTreeSet::new();
    for (index, range) in ranges.iter().enumerate() {
        while !ready.remove(&index) {
            match landed.recv().await {
                Some(part) => {
                    ready.insert(part);
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        "the download stopped before its parts had landed",
                    ));
                }
            }
        }
        let want = range.end - range.start;
        let mut read = 0u64;
        let mut data = parts.read_at(range.start, want).await?;
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            read += chunk.len() as u64;
            hasher.update(&chunk);
        }
        if read != want {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "read back {read} bytes of a part of {want} bytes at offset {}",
                    range.start
                ),
            ));
        }
        hashed.send_replace(index + 1);
    }
    Ok(sha256_text(hasher))
}

/// Fail a range's stream if it carries more than `want` bytes: a server that sends more than
/// asked would otherwise overwrite the next part.
fn exact_length(data: ByteStream, want: u64) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(data.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > want {
            let error = Error::new(
                ErrorKind::Corrupt,
                format!("the remote sent more than the {want} bytes of the range asked for"),
            )
            .with_retryable(true);
            return Err(error.into_io());
        }
        Ok(chunk)
    }))
}

fn short_range(name: &str, range: &Range<u64>, written: u64) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "bytes {}..{} of {name:?} came {written} bytes long",
            range.start, range.end
        ),
    )
    .with_retryable(true)
}

/// A task stopped when its handle is dropped (the download failed or was cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<Result<String>>);

impl AbortOnDrop {
    /// Stop the task and wait until it is gone.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }

    async fn join(mut self) -> Result<String> {
        (&mut self.0)
            .await
            .map_err(|e| Error::new(ErrorKind::Other, "the hashing task failed").with_source(e))?
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_object_once_with_a_short_last_part() {
        assert_eq!(part_ranges(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(part_ranges(8, 4), vec![0..4, 4..8]);
        assert!(part_ranges(0, 4).is_empty());
    }
}
