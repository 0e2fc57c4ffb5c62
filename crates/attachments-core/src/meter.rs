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
    /// `None` when only bytes are counted (an upload needs no checksum of what it sends).
    hasher: Option<Hasher>,
    /// Bytes seen so far; a watch so a watchdog can wait for progress.
    progress: watch::Sender<u64>,
}

/// SHA-256 computed by a task of its own, fed the chunks in order: hashing a big file costs
/// about as much CPU as reading it, and this way it runs beside the transfer instead of in it.
#[derive(Debug)]
struct Hasher {
    /// Handed to the stream by `wrap`; the task ends when it is dropped.
    input: Mutex<Option<mpsc::Sender<Bytes>>>,
    /// The task's result, `sha256:<hex>`.
    digest: Mutex<Option<JoinHandle<String>>>,
}

/// Chunks queued for the hasher at most: a hasher that falls behind slows the stream down
/// rather than holding more of it in memory.
const HASH_QUEUE: usize = 4;

impl Meter {
    /// A meter that counts and hashes. Needs a Tokio runtime (the hasher is a task).
    pub(crate) fn new() -> Arc<Self> {
        let (input, mut chunks) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let digest = tokio::spawn(async move {
            let mut hasher = Sha256::new();
            while let Some(chunk) = chunks.recv().await {
                hasher.update(&chunk);
            }
            format!("sha256:{}", hex(&hasher.finalize()))
        });
        Arc::new(Meter {
            hasher: Some(Hasher {
                input: Mutex::new(Some(input)),
                digest: Mutex::new(Some(digest)),
            }),
            progress: watch::Sender::new(0),
        })
    }

    /// A meter that only counts.
    pub(crate) fn counting() -> Arc<Self> {
        Arc::new(Meter {
            hasher: None,
            progress: watch::Sender::new(0),
        })
    }

    /// Wrap `inner` so every chunk passing through is counted (and hashed). A meter wraps one
    /// stream.
    pub(crate) fn wrap(self: &Arc<Self>, inner: ByteStream) -> ByteStream {
        let hash_input = self.hasher.as_ref().and_then(|hasher| {
            hasher
                .input
                .lock()
                .expect("meter lock poisoned")
                .take()
                .map(PollSender::new)
        });
        Box::pin(MeteredStream {
            inner,
            hash_input,
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

    /// `sha256:<hex>` of everything the stream yielded, once it has ended (or been dropped);
    /// `None` for a meter that only counts.
    pub(crate) async fn checksum(&self) -> Option<String> {
        let hasher = self.hasher.as_ref()?;
        // never wrapped: nothing more will come
        drop(hasher.input.lock().expect("meter lock poisoned").take());
        let digest = hasher.digest.lock().expect("meter lock poisoned").take()?;
        digest.await.ok()
    }

    fn record(&self, chunk: &Bytes) {
        let len = chunk.len() as u64;
        self.progress.send_modify(|bytes| *bytes += len);
    }
}

struct MeteredStream {
    inner: ByteStream,
    /// Where chunks go to be hashed; `None` once the stream ended (or when only counting).
    hash_input: Option<PollSender<Bytes>>,
    meter: Arc<Meter>,
}

impl Stream for MeteredStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // room in the hasher's queue before a chunk is taken from the source (a reservation
        // held from an earlier poll answers at once)
        if let Some(input) = self.hash_input.as_mut() {
            match input.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                // the hasher is gone (the runtime is shutting down): stop feeding it
                Poll::Ready(Err(_)) => self.hash_input = None,
            }
        }
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.meter.record(chunk);
                if let Some(input) = self.hash_input.as_mut() {
                    // cannot fail: a slot was reserved above
                    let _ = input.send_item(chunk.clone());
                }
            }
            // the end: the hasher can finish
            Poll::Ready(None) => self.hash_input = None,
            _ => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
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
    async fn a_slow_hasher_holds_back_the_stream_and_loses_no_chunk() {
        // many more chunks than the hasher's queue holds, on a runtime with one thread: the
        // stream must wait for the hasher, and the digest must cover every chunk in order
        let chunks: Vec<Vec<u8>> = (0..200u8).map(|n| vec![n; 1000]).collect();
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
    async fn a_meter_never_wrapped_hashes_nothing() {
        let meter = Meter::new();
        assert_eq!(
            meter.checksum().await.as_deref(),
            Some("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }
}
