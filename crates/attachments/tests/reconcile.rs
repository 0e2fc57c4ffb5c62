//! After the first reconcile the queue reads only the rows that can differ (the ids that came
//! or went, and the rows it wrote since). This checks, over random runs of saves, transfers,
//! deletes, download toggles and emissions, that what it leaves behind is what reading the
//! whole table would give: every row ends where the rules of a full reconcile put it.

mod common;

use std::collections::{HashMap, HashSet};

use attachments::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, SaveFile, WatchedAttachmentItem,
};
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
    let queue = device.builder().await.build().unwrap();
    let mut dice = Dice(seed);
    // ids saved here, and ids only another device knows (their downloads fail: not found)
    let mut known: Vec<AttachmentId> = (0..4)
        .map(|n| AttachmentId::new(format!("foreign-{seed}-{n}")).unwrap())
        .collect();
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
                // an id not (or no longer) in the table is refused; either way is fine here
                let _ = queue.delete_file(id).await;
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
                check_reconciled(
                    &rows,
                    &items,
                    downloads,
                    &format!("seed {seed}, step {step}"),
                );
            }
        }
    }
}

/// The rules of a full reconcile, read from the table: a referenced id has a row (when
/// downloads are on; the reading was taken after every delete, so deleted ids may come back)
/// and is not left archived unless a failure archived it; an unreferenced row is neither
/// `Synced` nor `QueuedDownload`.
fn check_reconciled(
    rows: &[Attachment],
    items: &[WatchedAttachmentItem],
    downloads: bool,
    at: &str,
) {
    let by_id: HashMap<&AttachmentId, &Attachment> =
        rows.iter().map(|row| (&row.id, row)).collect();
    let referenced: HashSet<&AttachmentId> = items.iter().map(|item| &item.id).collect();
    for id in &referenced {
        match by_id.get(id) {
            None => assert!(
                !downloads,
                "{at}: referenced {id} has no row although downloads are on"
            ),
            Some(row) => assert!(
                row.state != AttachmentState::Archived || row.failed_state.is_some(),
                "{at}: referenced {id} is still archived"
            ),
        }
    }
    for row in rows.iter().filter(|row| !referenced.contains(&row.id)) {
        assert!(
            !matches!(
                row.state,
                AttachmentState::Synced | AttachmentState::QueuedDownload
            ),
            "{at}: unreferenced {} is still {}",
            row.id,
            row.state
        );
    }
}

/// A full reconcile of a table larger than one of its pages: ids that went are archived
/// wherever they fall (first row, both sides of a page boundary, last row), ids that came are
/// tracked wherever they sort (before every row, between two pages, after every row), and the
/// rows still referenced are left as they were.
#[tokio::test]
async fn a_full_reconcile_over_many_pages_judges_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(&dir.path().join("a"), &dir.path().join("remote")).await;
    let builder = device.builder().await; // creates the table
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2499)
         INSERT INTO attachments_queue (id, filename, local_uri, timestamp, state, has_synced)
         SELECT printf('r-%05d', i), printf('r-%05d.bin', i), printf('r-%05d.bin', i), 1, 3, 1
         FROM n",
    )
    .execute(&device.pool)
    .await
    .unwrap();
    let root = device.local_dir();
    std::fs::create_dir_all(&root).unwrap();
    for n in 0..2500 {
        std::fs::write(root.join(format!("r-{n:05}.bin")), b"kept").unwrap();
    }
    let went = [0, 999, 1000, 2499];
    let came = ["a-first", "r-00999-new", "z-last"];
    let mut items: Vec<WatchedAttachmentItem> = (0..2500)
        .filter(|n| !went.contains(n))
        .map(|n| item(&AttachmentId::new(format!("r-{n:05}")).unwrap()))
        .collect();
    items.extend(came.iter().map(|id| item(&AttachmentId::new(*id).unwrap())));
    let queue = builder.build().unwrap();
    queue.set_referenced(items).await.unwrap();
    queue.sync_now().await.unwrap();
    let store = attachments::sqlite::SqliteStore::new(device.pool.clone())
        .await
        .unwrap();
    let rows: HashMap<String, AttachmentState> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.id.to_string(), row.state))
        .collect();
    for n in went {
        assert_eq!(
            rows[&format!("r-{n:05}")],
            AttachmentState::Archived,
            "r-{n:05}"
        );
    }
    for id in came {
        assert!(rows.contains_key(id), "{id} is tracked");
    }
    let synced = rows
        .values()
        .filter(|state| **state == AttachmentState::Synced)
        .count();
    assert_eq!(synced, 2500 - went.len(), "the rows still referenced stay");
    queue.close().await;
}
