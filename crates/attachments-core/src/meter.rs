//! A pass-through byte stream that counts, hashes and reports progress, so size, checksum and
//! byte progress come for free while contents flow from one storage to another.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::storage::ByteStream;

/// What a [`MeteredStream`] has seen; shared with whoever awaits the transfer.
#[derive(Debug)]
pub(crate) struct Meter {
    /// `None` when only bytes are counted (an upload needs no checksum of what it sends).
    hasher: Option<Mutex<Sha256>>,
    /// Bytes seen so far; a watch so a watchdog can wait for progress.
    progress: watch::Sender<u64>,
}

impl Meter {
    /// A meter that counts and hashes.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Meter {
            hasher: Some(Mutex::new(Sha256::new())),
            progress: watch::Sender::new(0),
        })
    }

    /// A meter that only counts: hashing a gigabyte costs about half a second of CPU.
    pub(crate) fn counting() -> Arc<Self> {
        Arc::new(Meter {
            hasher: None,
            progress: watch::Sender::new(0),
        })
    }

    /// Wrap `inner` so every chunk passing through is counted (and hashed).
    pub(crate) fn wrap(self: &Arc<Self>, inner: ByteStream) -> ByteStream {
        Box::pin(MeteredStream {
            inner,
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

    /// `sha256:<hex>` of everything seen; `None` for a meter that only counts.
    pub(crate) fn checksum(&self) -> Option<String> {
        let hasher = self
            .hasher
            .as_ref()?
            .lock()
            .expect("meter lock poisoned")
            .clone();
        Some(format!("sha256:{}", hex(&hasher.finalize())))
    }

    fn record(&self, chunk: &Bytes) {
        if let Some(hasher) = &self.hasher {
            hasher.lock().expect("meter lock poisoned").update(chunk);
        }
        let len = chunk.len() as u64;
        self.progress.send_modify(|bytes| *bytes += len);
    }
}

struct MeteredStream {
    inner: ByteStream,
    meter: Arc<Meter>,
}

impl Stream for MeteredStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.meter.record(chunk);
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
            meter.checksum().as_deref(),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[tokio::test]
    async fn a_counting_meter_counts_without_a_checksum() {
        let meter = Meter::counting();
        let stream = meter.wrap(byte_stream_from(vec![&b"ab"[..], &b"c"[..]]));
        assert_eq!(collect_bytes(stream).await.unwrap(), b"abc");
        assert_eq!(meter.bytes(), 3);
        assert_eq!(meter.checksum(), None);
    }
}
