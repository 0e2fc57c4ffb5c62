//! An `AttachmentStore` in memory, so the queue test needs no database: a third-party remote's
//! crate should not depend on the workspace's SQLite store. It is also the smallest store that
//! keeps the contract, which `store_suite` checks in `tests/queue.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use attachments_core::{
    Attachment, AttachmentId, AttachmentState, AttachmentStore, ChangeDecider, Error, ErrorKind,
    Result, RowChange, StateCounts, UpdateHook, async_trait,
};

#[derive(Default)]
struct Table {
    rows: HashMap<AttachmentId, Attachment>,
    /// The last version the table gave any row: every write takes the next one, so a version
    /// never repeats for an id across its lives (a late transfer of an earlier life can never
    /// pass the compare-and-set of a later one).
    last_version: i64,
}

impl Table {
    fn next_version(&mut self) -> i64 {
        self.last_version += 1;
        self.last_version
    }

    /// Apply one change; report whether it applied.
    fn apply(&mut self, change: RowChange) -> bool {
        match change {
            RowChange::Insert(mut row) => {
                let taken = self.rows.contains_key(&row.id)
                    || self
                        .rows
                        .values()
                        .any(|other| other.filename == row.filename);
                if taken {
                    return false;
                }
                row.version = self.next_version();
                self.rows.insert(row.id.clone(), row);
                true
            }
            RowChange::Update {
                expected_version,
                mut row,
            } => {
                let current = self.rows.get(&row.id).map(|stored| stored.version);
                let name_taken = self
                    .rows
                    .values()
                    .any(|other| other.id != row.id && other.filename == row.filename);
                if current != Some(expected_version) || name_taken {
                    return false;
                }
                row.version = self.next_version();
                self.rows.insert(row.id.clone(), row);
                true
            }
            RowChange::Delete {
                id,
                expected_version,
            } => {
                let current = self.rows.get(&id).map(|row| row.version);
                current == Some(expected_version) && self.rows.remove(&id).is_some()
            }
        }
    }
}

/// The attachment table, in memory; hooks get a `()` connection, since there is no database.
#[derive(Default)]
pub(crate) struct MemoryStore {
    table: Mutex<Table>,
}

impl MemoryStore {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // a panic while holding the lock leaves the table consistent: every change is one
        // insert, replace or remove
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl AttachmentStore for MemoryStore {
    type Connection = ();

    async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>> {
        Ok(self.table().rows.get(id).cloned())
    }

    async fn get_many(&self, ids: &[AttachmentId]) -> Result<Vec<Attachment>> {
        // each row once, however often its id is asked for (the trait's default repeats it)
        let unique: std::collections::HashSet<&AttachmentId> = ids.iter().collect();
        let table = self.table();
        Ok(unique
            .into_iter()
            .filter_map(|id| table.rows.get(id).cloned())
            .collect())
    }

    async fn list(&self, states: Option<&[AttachmentState]>) -> Result<Vec<Attachment>> {
        let mut rows: Vec<Attachment> = self
            .table()
            .rows
            .values()
            .filter(|row| states.is_none_or(|states| states.contains(&row.state)))
            .cloned()
            .collect();
        rows.sort_by_key(|row| row.timestamp);
        Ok(rows)
    }

    async fn apply(&self, changes: Vec<RowChange>) -> Result<Vec<bool>> {
        let mut table = self.table();
        Ok(changes
            .into_iter()
            .map(|change| table.apply(change))
            .collect())
    }

    async fn apply_with_hook(
        &self,
        id: &AttachmentId,
        decide: ChangeDecider,
        hook: Option<UpdateHook<()>>,
    ) -> Result<RowChange> {
        // With no database there is no transaction to roll back, so the hook (which gets
        // nothing to write to) runs first: when it fails, the table has not been touched.
        if let Some(hook) = hook {
            hook(&mut ())
                .await
                .map_err(|e| Error::new(ErrorKind::Hook, "update hook").with_source(e))?;
        }
        let mut table = self.table();
        let change = decide(table.rows.get(id).cloned())?;
        if let RowChange::Insert(row) = &change
            && let Some(holder) = table
                .rows
                .values()
                .find(|other| other.filename == row.filename)
        {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "filename {:?} is already used by attachment {}",
                    row.filename, holder.id
                ),
            ));
        }
        if !table.apply(change.clone()) {
            return Err(Error::new(
                ErrorKind::Database,
                format!("the change decided for {id} no longer applies"),
            ));
        }
        // the change as written: with the version the table gave the row
        let written = |table: &Table| table.rows.get(id).cloned().expect("just written");
        Ok(match change {
            RowChange::Insert(_) => RowChange::Insert(written(&table)),
            RowChange::Update {
                expected_version, ..
            } => RowChange::Update {
                expected_version,
                row: written(&table),
            },
            delete @ RowChange::Delete { .. } => delete,
        })
    }

    async fn count_by_state(&self) -> Result<StateCounts> {
        let mut counts = StateCounts::default();
        for row in self.table().rows.values() {
            counts.add(row.state, 1);
        }
        Ok(counts)
    }

    async fn clear(&self) -> Result<u64> {
        let mut table = self.table();
        let removed = table.rows.len() as u64;
        table.rows.clear();
        Ok(removed)
    }
}
