//! A pass-through byte stream that counts, hashes and reports progress, so size, checksum and
//! byte progress come for free while contents flow from one storage to another.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

use crate::storage::ByteStream;

/// What a [`MeteredStream`] has seen; shared with whoever awaits the transfer.
#[derive(Debug)]
pub(crate) struct Meter {
    /// Whether streams wrapped by this meter are hashed (an upload needs no checksum of what
    /// it sends).
    hashing: bool,
    /// Where the digest is, once the stream has been read.
    digest: Mutex<DigestSlot>,
    /// Bytes seen so far; a watch so a watchdog can wait for progress.
    progress: watch::Sender<u64>,
}

#[derive(Debug)]
enum DigestSlot {
    /// The stream has not ended yet (or was never wrapped).
    Pending,
    /// Computed in the stream itself.
    Ready(String),
    /// Being computed by a task of its own.
    Task(JoinHandle<String>),
}

/// Up to this many bytes are hashed inside the stream; past it, hashing moves to a task of its
/// own, fed the chunks in order, so that it runs beside the transfer instead of in it. Small
/// files never pay for the task, big ones do not wait for the hash.
const INLINE_HASH_LIMIT: u64 = 1024 * 1024;

/// Chunks queued for a hashing task at most: a hasher that falls behind slows the stream down
/// rather than holding more of it in memory.
const HASH_QUEUE: usize = 4;

impl Meter {
    /// A meter that counts and hashes. Needs a Tokio runtime for streams above 1 MiB.
    pub(crate) fn new() -> Arc<Self> {
        Self::with_hashing(true)
    }

    /// A meter that only counts.
    pub(crate) fn counting() -> Arc<Self> {
        Self::with_hashing(false)
    }

    fn with_hashing(hashing: bool) -> Arc<Self> {
        Arc::new(Meter {
            hashing,
            digest: Mutex::new(DigestSlot::Pending),
            progress: watch::Sender::new(0),
        })
    }

    /// Wrap `inner` so every chunk passing through is counted (and hashed). A meter wraps one
    /// stream.
    pub(crate) fn wrap(self: &Arc<Self>, inner: ByteStream) -> ByteStream {
        Box::pin(MeteredStream {
            inner,
            hash: if self.hashing {
                Hashing::Inline(Sha256::new())
            } else {
                Hashing::Off
            },
            meter: Arc::clone(self),
        })
    }

    /// Wrap `inner` so its chunks are counted but never hashed: one of several streams of one
    /// transfer (the ranges of a download in parts, hashed from the file they land in).
    pub(crate) fn wrap_counting(self: &Arc<Self>, inner: ByteStream) -> ByteStream {
        Box::pin(MeteredStream {
            inner,
            hash: Hashing::Off,
            meter: Arc::clone(self),
        })
    }

    /// Bytes seen so far.
    pub(crate) fn bytes(&self) -> u64 {
        *self.progress.borrow()
    }

    /// A receiver that changes whenever bytes flow.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// `sha256:<hex>` of everything the stream yielded, once it has ended or been dropped;
    /// `None` for a meter that only counts.
    pub(crate) async fn checksum(&self) -> Option<String> {
        let slot = std::mem::replace(
            &mut *self.digest.lock().expect("meter lock poisoned"),
            DigestSlot::Pending,
        );
        match slot {
            DigestSlot::Ready(digest) => Some(digest),
            DigestSlot::Task(task) => task.await.ok(),
            DigestSlot::Pending => None,
        }
    }

    fn record(&self, chunk: &Bytes) {
        let len = chunk.len() as u64;
        self.progress.send_modify(|bytes| *bytes += len);
    }

    fn set_digest(&self, slot: DigestSlot) {
        *self.digest.lock().expect("meter lock poisoned") = slot;
    }
}

/// Where a stream's hash is being computed.
enum Hashing {
    Off,
    /// In the stream, while it is small.
    Inline(Sha256),
    /// In a task, fed through this sender.
    Offloaded(PollSender<Bytes>),
    /// Finished: the digest is in the meter.
    Done,
}

struct MeteredStream {
    inner: ByteStream,
    hash: Hashing,
    meter: Arc<Meter>,
}

impl MeteredStream {
    /// Hash `chunk`, moving the hashing to a task once the stream outgrows the inline limit.
    fn hash_chunk(&mut self, chunk: &Bytes) {
        match &mut self.hash {
            Hashing::Inline(hasher) if self.meter.bytes() <= INLINE_HASH_LIMIT => {
                hasher.update(chunk);
            }
            Hashing::Inline(_) => {
                let Hashing::Inline(mut hasher) = std::mem::replace(&mut self.hash, Hashing::Done)
                else {
                    unreachable!("matched Inline above");
                };
                let (input, mut chunks) = mpsc::channel::<Bytes>(HASH_QUEUE);
                // an empty queue takes the first chunk at once
                let _ = input.try_send(chunk.clone());
                self.meter
                    .set_digest(DigestSlot::Task(tokio::spawn(async move {
                        while let Some(chunk) = chunks.recv().await {
                            hasher.update(&chunk);
                        }
                        sha256_text(hasher)
                    })));
                self.hash = Hashing::Offloaded(PollSender::new(input));
            }
            Hashing::Offloaded(input) => {
                // cannot fail: a slot was reserved before the chunk was taken
                let _ = input.send_item(chunk.clone());
            }
            Hashing::Off | Hashing::Done => {}
        }
    }

    /// The stream ended (or is dropped): an inline hash is complete, a task gets no more.
    fn finish_hash(&mut self) {
        if let Hashing::Inline(hasher) = std::mem::replace(&mut self.hash, Hashing::Done) {
            self.meter
                .set_digest(DigestSlot::Ready(sha256_text(hasher)));
        }
    }
}

impl Stream for MeteredStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // room in the hashing task's queue before a chunk is taken from the source (a
        // reservation held from an earlier poll answers at once)
        if let Hashing::Offloaded(input) = &mut self.hash {
            match input.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                // the task is gone (the runtime is shutting down): no digest will come
                Poll::Ready(Err(_)) => self.hash = Hashing::Done,
            }
        }
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.meter.record(chunk);
                self.hash_chunk(chunk);
            }
            Poll::Ready(None) => self.finish_hash(),
            _ => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        self.finish_hash();
    }
}

pub(crate) fn sha256_text(hasher: Sha256) -> String {
    format!("sha256:{}", hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{byte_stream_from, collect_bytes};

    #[tokio::test]
    async fn counts_and_hashes_what_passes() {
        let meter = Meter::new();
        let stream = meter.wrap(byte_stream_from(vec![&b"ab"[..], &b"c"[..]]));
        assert_eq!(collect_bytes(stream).await.unwrap(), b"abc");
        assert_eq!(meter.bytes(), 3);
        // sha256("abc"), the FIPS 180-2 test vector
        assert_eq!(
            meter.checksum().await.as_deref(),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[tokio::test]
    async fn a_counting_meter_counts_without_a_checksum() {
        let meter = Meter::counting();
        let stream = meter.wrap(byte_stream_from(vec![&b"ab"[..], &b"c"[..]]));
        assert_eq!(collect_bytes(stream).await.unwrap(), b"abc");
        assert_eq!(meter.bytes(), 3);
        assert_eq!(meter.checksum().await, None);
    }

    #[tokio::test]
    async fn a_big_stream_is_hashed_in_a_task_that_holds_it_back_and_loses_no_chunk() {
        // past the inline limit, and many more chunks than the task's queue holds, on a
        // runtime with one thread: the stream must wait for the hasher, and the digest must
        // cover every chunk in order
        let chunks: Vec<Vec<u8>> = (0..200u8).map(|n| vec![n; 16 * 1024]).collect();
        let expected = {
            let mut hasher = Sha256::new();
            for chunk in &chunks {
                hasher.update(chunk);
            }
            format!("sha256:{}", hex(&hasher.finalize()))
        };
        let meter = Meter::new();
        let stream = meter.wrap(byte_stream_from(chunks.clone()));
        assert_eq!(collect_bytes(stream).await.unwrap(), chunks.concat());
        assert_eq!(meter.checksum().await, Some(expected));
    }

    #[tokio::test]
    async fn an_empty_stream_has_the_digest_of_nothing() {
        let meter = Meter::new();
        let stream = meter.wrap(byte_stream_from(Vec::<Vec<u8>>::new()));
        assert!(collect_bytes(stream).await.unwrap().is_empty());
        assert_eq!(
            meter.checksum().await.as_deref(),
            Some("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }
}
