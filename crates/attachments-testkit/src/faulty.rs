//! A remote that fails on purpose: fail the next N calls, add latency, hang, or fail one
//! attachment forever.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use attachments_core::{Attachment, ByteStream, Error, RangeBody, RemoteStorage, Result};
use tokio::sync::watch;

/// What a [`FaultyRemoteStorage`] does to a call instead of passing it on.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Fail with this error.
    Fail(Error),
    /// Never answer (until the caller gives up).
    Hang,
}

/// Calls that reached the wrapper, by operation (including failed ones).
#[derive(Debug, Default)]
pub struct CallCounts {
    /// `upload` calls.
    pub uploads: AtomicU64,
    /// `download` calls.
    pub downloads: AtomicU64,
    /// `delete` calls.
    pub deletes: AtomicU64,
}

impl CallCounts {
    /// All calls.
    pub fn total(&self) -> u64 {
        self.uploads.load(Ordering::SeqCst)
            + self.downloads.load(Ordering::SeqCst)
            + self.deletes.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct Faults {
    next: VecDeque<Fault>,
    by_filename: HashMap<String, Fault>,
    latency: Duration,
    random: Option<RandomFaults>,
}

/// Faults drawn at random (from a seed, so a run repeats) for every call that has no other
/// fault planned.
#[derive(Debug, Clone)]
pub struct RandomFaults {
    /// Seed of the draw.
    pub seed: u64,
    /// Share of calls that fail with `error`, in `[0, 1]`.
    pub fail_ratio: f64,
    /// Share of calls that hang, in `[0, 1]`.
    pub hang_ratio: f64,
    /// The error of failing calls.
    pub error: Error,
}

impl RandomFaults {
    /// The next draw in `[0, 1)` (xorshift64*, advancing the seed).
    fn draw(&mut self) -> f64 {
        let mut x = self.seed | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Wraps a [`RemoteStorage`] and injects faults. Clones share faults and counters.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{Attachment, AttachmentId, AttachmentState, Error, ErrorKind, RemoteStorage};
/// use attachments_testkit::{FaultyRemoteStorage, MemoryRemoteStorage};
/// let remote = FaultyRemoteStorage::new(MemoryRemoteStorage::default());
/// remote.fail_next(1, Error::new(ErrorKind::Unavailable, "injected"));
/// let row = Attachment::new(AttachmentId::new("a").unwrap(), "a", AttachmentState::QueuedDelete, 0);
/// assert!(remote.delete(&row).await.is_err());
/// assert!(remote.delete(&row).await.is_ok());
/// assert_eq!(remote.calls().total(), 2);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FaultyRemoteStorage<R> {
    inner: R,
    faults: Arc<Mutex<Faults>>,
    calls: Arc<CallCounts>,
    /// Calls started so far; a watch so tests can wait for a call to be in flight.
    started: Arc<watch::Sender<u64>>,
    /// While true, calls wait before reaching the inner remote.
    paused: Arc<watch::Sender<bool>>,
}

impl<R: RemoteStorage> FaultyRemoteStorage<R> {
    /// Wrap `inner`; no faults until told.
    pub fn new(inner: R) -> Self {
        FaultyRemoteStorage {
            inner,
            faults: Arc::default(),
            calls: Arc::default(),
            started: Arc::new(watch::Sender::new(0)),
            paused: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The wrapped remote.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Fail the next `n` calls with `error`.
    pub fn fail_next(&self, n: usize, error: Error) {
        let mut faults = self.faults.lock().expect("lock");
        faults
            .next
            .extend(std::iter::repeat_n(Fault::Fail(error), n));
    }

    /// Make the next `n` calls hang.
    pub fn hang_next(&self, n: usize) {
        let mut faults = self.faults.lock().expect("lock");
        faults.next.extend(std::iter::repeat_n(Fault::Hang, n));
    }

    /// Apply `fault` to every call for `filename` until [`heal`](Self::heal).
    pub fn fault_filename(&self, filename: impl Into<String>, fault: Fault) {
        let mut faults = self.faults.lock().expect("lock");
        faults.by_filename.insert(filename.into(), fault);
    }

    /// Fail or hang a share of calls at random, from now on.
    pub fn set_random_faults(&self, faults: RandomFaults) {
        self.faults.lock().expect("lock").random = Some(faults);
    }

    /// Wait this long before every call.
    pub fn set_latency(&self, latency: Duration) {
        self.faults.lock().expect("lock").latency = latency;
    }

    /// Remove every fault and the latency.
    pub fn heal(&self) {
        *self.faults.lock().expect("lock") = Faults::default();
    }

    /// Hold every call from now on (after it is counted) until [`resume`](Self::resume): a
    /// way to keep a transfer in flight for exactly as long as a test needs.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Let held and later calls through.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Wait until at least `n` calls have started in all.
    pub async fn wait_for_calls(&self, n: u64) {
        let mut started = self.started.subscribe();
        // the sender lives in `self`, so this cannot fail while we wait
        let _ = started.wait_for(|count| *count >= n).await;
    }

    /// Calls seen so far.
    pub fn calls(&self) -> &CallCounts {
        &self.calls
    }

    async fn before_call(&self, attachment: &Attachment, counter: &AtomicU64) -> Result<()> {
        counter.fetch_add(1, Ordering::SeqCst);
        self.started.send_modify(|count| *count += 1);
        let mut paused = self.paused.subscribe();
        let _ = paused.wait_for(|paused| !paused).await;
        let (fault, latency) = {
            let mut faults = self.faults.lock().expect("lock");
            let planned = match faults.by_filename.get(&attachment.filename) {
                Some(fault) => Some(fault.clone()),
                None => faults.next.pop_front(),
            };
            let fault = planned.or_else(|| {
                let random = faults.random.as_mut()?;
                let draw = random.draw();
                if draw < random.fail_ratio {
                    Some(Fault::Fail(random.error.clone()))
                } else if draw < random.fail_ratio + random.hang_ratio {
                    Some(Fault::Hang)
                } else {
                    None
                }
            });
            (fault, faults.latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            None => Ok(()),
            Some(Fault::Fail(error)) => Err(error),
            Some(Fault::Hang) => std::future::pending().await,
        }
    }
}

#[async_trait]
impl<R: RemoteStorage> RemoteStorage for FaultyRemoteStorage<R> {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        self.before_call(attachment, &self.calls.uploads).await?;
        self.inner.upload(attachment, data).await
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        self.before_call(attachment, &self.calls.downloads).await?;
        self.inner.download(attachment).await
    }

    fn supports_ranges(&self) -> bool {
        self.inner.supports_ranges()
    }

    /// Each range is a download call, with the same faults.
    async fn download_range(
        &self,
        attachment: &Attachment,
        range: std::ops::Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        self.before_call(attachment, &self.calls.downloads).await?;
        self.inner.download_range(attachment, range, version).await
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        self.before_call(attachment, &self.calls.deletes).await?;
        self.inner.delete(attachment).await
    }
}
