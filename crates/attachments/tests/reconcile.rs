//! After the first reconcile the queue reads only the rows that can differ (the ids that came
//! or went, and the rows it wrote since). This checks, over random runs of saves, transfers,
//! deletes, download toggles and emissions, that what it leaves behind is what reading the
//! whole table would give: a full reconcile of the same emission, run right after, finds
//! nothing to change.

mod common;

use std::collections::HashSet;

use attachments::state_machine::{ReconcileContext, reconcile_watched};
use attachments::{AttachmentId, AttachmentStore, SaveFile, WatchedAttachmentItem};
use attachments_testkit::patterned_stream;
use common::{Device, item};

/// A small, seeded generator: the same seed gives the same run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        // SplitMix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % sides
    }
}

#[tokio::test]
async fn every_reconcile_leaves_what_a_full_reconcile_would() {
    for seed in 0..12 {
        run(seed).await;
    }
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let queue = device.builder().await.build();
    let mut dice = Dice(seed);
    // ids saved here, and ids only another device knows (their downloads fail: not found)
    let mut known: Vec<AttachmentId> = (0..4)
        .map(|n| AttachmentId::new(format!("foreign-{seed}-{n}")).unwrap())
        .collect();
    let mut deleted: HashSet<AttachmentId> = HashSet::new();
    let mut downloads = true;

    for step in 0..60 {
        match dice.roll(10) {
            0..=1 => {
                let saved = queue
                    .save_file(
                        SaveFile::new(patterned_stream(step, 100 + dice.roll(900)))
                            .file_extension("jpg"),
                    )
                    .await
                    .unwrap();
                known.push(saved.id);
            }
            2..=3 => {
                queue.sync_now().await.unwrap();
            }
            4 => {
                let id = &known[usize::try_from(dice.roll(known.len() as u64)).unwrap()];
                if queue.delete_file(id).await.is_ok() {
                    deleted.insert(id.clone());
                }
            }
            5 => {
                downloads = !downloads;
                queue.set_download_attachments(downloads);
            }
            _ => {
                let items: Vec<WatchedAttachmentItem> = known
                    .iter()
                    .filter(|_| dice.roll(3) > 0)
                    .map(item)
                    .collect();
                queue.set_referenced(items.clone()).await.unwrap();
                let rows = queue.store().list(None).await.unwrap();
                let context = ReconcileContext {
                    download_attachments: downloads,
                    local_files_present: HashSet::new(),
                    recently_deleted: deleted.clone(),
                    now_ms: 0,
                };
                let left = reconcile_watched(&rows, &items, &context).changes;
                assert!(
                    left.is_empty(),
                    "seed {seed}, step {step}: a full reconcile would still change {left:?}"
                );
            }
        }
    }
}
