//! Saves without a hook that wait for the write connection at the same time are inserted
//! together, in one statement: one round trip to SQLite's worker thread and one commit for
//! all of them, instead of one each.
//!
//! A save puts its row in [`PendingInserts`] and waits for the writer; whoever gets the writer
//! takes every row waiting and inserts them. Each save returns once the statement that holds
//! its row has committed (or with the refusal of its own row), as a save inserted alone would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use attachments_core::{Attachment, Error, ErrorKind, Result, RowChange};
use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;

use crate::error::db_error;
use crate::store::{SqliteStore, bind_fields, sql};
use attachments_sql::FIELDS;
use sqlx::Row;

/// Rows inserted per statement at most (SQLite binds at most 32,766 parameters; a row has 15).
const GROUP_LIMIT: usize = 500;

/// Rows of saves waiting for the writer, each with where its answer goes.
#[derive(Debug, Default)]
pub(crate) struct PendingInserts {
    waiting: Mutex<Vec<Pending>>,
    /// Numbers the saves, so one can tell its own row from another's.
    tickets: AtomicU64,
}

#[derive(Debug)]
struct Pending {
    ticket: u64,
    row: Attachment,
    answer: oneshot::Sender<Result<Attachment>>,
}

impl PendingInserts {
    fn push(&self, row: Attachment) -> (u64, oneshot::Receiver<Result<Attachment>>) {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (answer, receiver) = oneshot::channel();
        self.lock().push(Pending {
            ticket,
            row,
            answer,
        });
        (ticket, receiver)
    }

    fn take(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SqliteStore {
    /// Insert `rows` (distinct ids) in one statement; the version each new row got, `None` for
    /// a row whose id or filename is taken (also by an earlier row of `rows`), which is
    /// skipped.
    pub(crate) async fn insert_rows(
        &self,
        connection: &mut SqliteConnection,
        rows: &[&Attachment],
    ) -> Result<Vec<Option<i64>>> {
        let one = format!(
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {} + ?)",
            self.sql.next_version
        );
        let values = vec![one.as_str(); rows.len()].join(", ");
        let statement = format!(
            r#"INSERT INTO "{}" (id, {FIELDS}, version) VALUES {values}
               ON CONFLICT DO NOTHING RETURNING id, version"#,
            self.table
        );
        let mut query = sqlx::query(sql(&statement));
        for (place, row) in (1_i64..).zip(rows) {
            query = bind_fields(query.bind(row.id.as_str()), row)?.bind(place);
        }
        let what = "inserting attachments";
        let inserted: std::collections::HashMap<String, i64> = query
            .fetch_all(&mut *connection)
            .await
            .map_err(|e| db_error(e, what))?
            .iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| db_error(e, what))?;
        Ok(rows
            .iter()
            .map(|row| inserted.get(row.id.as_str()).copied())
            .collect())
    }

    /// Insert `row` (no hook), with the rows of other saves waiting at the same time.
    pub(crate) async fn insert_grouped(&self, row: Attachment) -> Result<Attachment> {
        let (ticket, answer) = self.pending_inserts.push(row);
        let mut writer = std::sync::Arc::clone(&self.writer).lock_owned().await;
        let group = self.pending_inserts.take();
        match &group[..] {
            // another save took this row along, and answers it
            [] => drop(writer),
            // only this save's row: inserted as before, in this future
            [own] if own.ticket == ticket => self.insert_group(&mut writer, group).await,
            // Other saves' rows: in a task of its own, so they are answered even if this
            // caller stops waiting (an abandoned statement would leave them not knowing
            // whether their rows were written).
            _ => {
                let store = self.clone();
                let inserting =
                    tokio::spawn(async move { store.insert_group(&mut writer, group).await });
                if let Err(error) = inserting.await
                    && error.is_panic()
                {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
        answer.await.map_err(|_| {
            Error::new(
                ErrorKind::Database,
                "the insert of this attachment was abandoned (the runtime is shutting down)",
            )
        })?
    }

    /// Insert every row of `group` and answer each save.
    async fn insert_group(&self, writer: &mut SqliteConnection, group: Vec<Pending>) {
        let distinct: std::collections::HashSet<&str> = group
            .iter()
            .map(|pending| pending.row.id.as_str())
            .collect();
        if distinct.len() != group.len() {
            // an id twice: one at a time, so the second sees the first (and is refused)
            for pending in group {
                let answer = self.insert_one(writer, pending.row).await;
                let _ = pending.answer.send(answer);
            }
            return;
        }
        let mut group = group;
        while !group.is_empty() {
            let rest = group.split_off(group.len().min(GROUP_LIMIT));
            self.insert_many(writer, group).await;
            group = rest;
        }
    }

    /// Insert one row: one `INSERT .. ON CONFLICT DO NOTHING`, atomic on its own (only a
    /// refusal costs a second statement, to say which conflict it was).
    async fn insert_one(
        &self,
        writer: &mut SqliteConnection,
        row: Attachment,
    ) -> Result<Attachment> {
        let mut written = row.clone();
        let change = RowChange::Insert(row);
        match Self::apply_one(writer, &self.sql, &change).await? {
            Some(version) => {
                written.version = version;
                Ok(written)
            }
            None => Err(Self::refusal(writer, &self.sql, &change).await),
        }
    }

    /// Insert rows with distinct ids in one statement and answer each.
    async fn insert_many(&self, writer: &mut SqliteConnection, group: Vec<Pending>) {
        if group.len() == 1 {
            let pending = group.into_iter().next().expect("one row");
            let answer = self.insert_one(writer, pending.row).await;
            let _ = pending.answer.send(answer);
            return;
        }
        let rows: Vec<&Attachment> = group.iter().map(|pending| &pending.row).collect();
        let versions = match self.insert_rows(writer, &rows).await {
            Ok(versions) => versions,
            Err(error) => {
                // the statement is atomic: none of its rows was written
                for pending in group {
                    let _ = pending.answer.send(Err(error.clone()));
                }
                return;
            }
        };
        for (pending, version) in group.into_iter().zip(versions) {
            let answer = match version {
                Some(version) => {
                    let mut written = pending.row;
                    written.version = version;
                    Ok(written)
                }
                None => {
                    let change = RowChange::Insert(pending.row);
                    Err(Self::refusal(writer, &self.sql, &change).await)
                }
            };
            let _ = pending.answer.send(answer);
        }
    }
}
