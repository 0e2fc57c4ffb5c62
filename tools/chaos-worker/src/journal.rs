//! The author's journal: one line per step, fsynced before the step is taken as done, and
//! what the verifier concludes from it for each id.
//!
//! Lines: `saving <id> <seed> <len>` before a save and `saved <id> <filename> <checksum>` after
//! it returned; `save-refused <id>` when a reuse found the id still taken; `deleting <id>`,
//! `deleted <id>`, `delete-refused <id>` likewise; `clearing` before a logout (the app's
//! references removed, then `clear_queue`) and `cleared` after it. A kill between an intent
//! and its outcome leaves both results possible, and the verifier accepts either.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use attachments::BoxError;

use crate::content::{content_checksum, size_class};

/// An append-only file, each line made durable before `write` returns.
pub(crate) struct JournalWriter {
    file: std::fs::File,
}

impl JournalWriter {
    pub(crate) fn open(path: &Path) -> Result<JournalWriter, BoxError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JournalWriter { file })
    }

    pub(crate) fn write(&mut self, line: &str) -> Result<(), BoxError> {
        // one write call per line, so a kill tears at most the last line
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// Bytes saved under an id: known by the queue's checksum once `saved` is journaled, else by
/// the seed and length the save was given (recomputed only if the verifier needs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    Checksum(String),
    Unconfirmed { seed: u64, len: u64 },
}

impl Content {
    pub(crate) fn checksum(&self) -> String {
        match self {
            Content::Checksum(checksum) => checksum.clone(),
            Content::Unconfirmed { seed, len } => content_checksum(*seed, *len),
        }
    }
}

/// Where an id may end after the drain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No row and no remote object (deleted, or a save that never committed).
    Gone,
    /// A `Synced` row, its local file and the remote object all hold these bytes.
    Synced(Content),
    /// Forgotten by a logout's `clear_queue`: no row (or an archived one); the remote object
    /// may stay, since clearing the local queue must not delete the user's server data.
    Forgotten,
}

/// What the journal allows for one id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Expectation {
    pub(crate) allowed: Vec<Outcome>,
    /// `allowed` before the last intent, restored when the step was refused.
    prior: Vec<Outcome>,
    /// The bytes of every life of the id, the uncertain ones included: another device may
    /// hold any of them.
    pub(crate) lives: Vec<Content>,
    /// Whether the id was deleted for certain when the last logout began.
    gone_at_clear: bool,
}

impl Expectation {
    fn allow(&mut self, outcome: Outcome) {
        if !self.allowed.contains(&outcome) {
            self.allowed.push(outcome);
        }
    }
}

/// What a run did, for the summary.
#[derive(Debug, Default)]
pub(crate) struct Mix {
    pub(crate) saves: BTreeMap<&'static str, u64>,
    pub(crate) committed: u64,
    pub(crate) reused: u64,
    pub(crate) deletes: u64,
    pub(crate) clears: u64,
}

/// The journal read back: one expectation per id ever saved, in id order.
pub(crate) struct Model {
    pub(crate) ids: BTreeMap<String, Expectation>,
    pub(crate) mix: Mix,
}

impl Model {
    pub(crate) fn read(path: &Path) -> Result<Model, BoxError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error.into()),
        };
        let mut model = Model {
            ids: BTreeMap::new(),
            mix: Mix::default(),
        };
        // only complete lines: a kill may tear the last one, whose step is then unknown
        let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
        for line in complete.lines() {
            model.apply(line);
        }
        Ok(model)
    }

    fn apply(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["saving", id, seed, len] => {
                let (Ok(seed), Ok(len)) = (seed.parse(), len.parse()) else {
                    return;
                };
                *self.mix.saves.entry(size_class(len)).or_default() += 1;
                let entry = self.ids.entry((*id).to_owned()).or_default();
                if !entry.lives.is_empty() {
                    self.mix.reused += 1;
                }
                entry.prior = entry.allowed.clone();
                if entry.allowed.is_empty() {
                    entry.allowed.push(Outcome::Gone);
                }
                let content = Content::Unconfirmed { seed, len };
                entry.allow(Outcome::Synced(content.clone()));
                entry.lives.push(content);
            }
            ["saved", id, _filename, checksum] => {
                self.mix.committed += 1;
                let entry = self.ids.entry((*id).to_owned()).or_default();
                let content = Content::Checksum((*checksum).to_owned());
                entry.allowed = vec![Outcome::Synced(content.clone())];
                if let Some(last) = entry.lives.last_mut() {
                    *last = content;
                }
            }
            ["save-refused", id] => {
                if let Some(entry) = self.ids.get_mut(*id) {
                    entry.allowed = std::mem::take(&mut entry.prior);
                    entry.lives.pop();
                }
            }
            ["deleting", id] => {
                self.mix.deletes += 1;
                let entry = self.ids.entry((*id).to_owned()).or_default();
                entry.prior = entry.allowed.clone();
                entry.allow(Outcome::Gone);
            }
            ["deleted", id] => {
                self.ids.entry((*id).to_owned()).or_default().allowed = vec![Outcome::Gone];
            }
            ["delete-refused", id] => {
                if let Some(entry) = self.ids.get_mut(*id) {
                    entry.allowed = std::mem::take(&mut entry.prior);
                }
            }
            ["clearing"] => {
                self.mix.clears += 1;
                for entry in self.ids.values_mut() {
                    entry.gone_at_clear = entry.allowed == [Outcome::Gone];
                    entry.allow(Outcome::Forgotten);
                }
            }
            ["cleared"] => {
                for entry in self.ids.values_mut() {
                    // a completed delete stays complete: its remote object must be gone
                    entry.allowed = if entry.gone_at_clear {
                        vec![Outcome::Gone]
                    } else {
                        vec![Outcome::Forgotten]
                    };
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(lines: &[&str]) -> Model {
        let mut model = Model {
            ids: BTreeMap::new(),
            mix: Mix::default(),
        };
        for line in lines {
            model.apply(line);
        }
        model
    }

    #[test]
    fn an_unfinished_step_allows_both_results_and_a_refused_one_neither() {
        let m = model(&["saving a 1 10", "saved a a.bin sha256:x", "deleting a"]);
        let expected = Content::Checksum("sha256:x".into());
        assert_eq!(
            m.ids["a"].allowed,
            [Outcome::Synced(expected.clone()), Outcome::Gone]
        );
        let m = model(&[
            "saving a 1 10",
            "saved a a.bin sha256:x",
            "deleting a",
            "delete-refused a",
        ]);
        assert_eq!(m.ids["a"].allowed, [Outcome::Synced(expected)]);
        let m = model(&[
            "saving a 1 10",
            "saved a a.bin sha256:x",
            "deleting a",
            "deleted a",
            "saving a 2 5",
        ]);
        assert_eq!(m.ids["a"].allowed.len(), 2);
        assert_eq!(m.ids["a"].lives.len(), 2);
        assert_eq!(m.mix.reused, 1);
    }

    #[test]
    fn a_logout_forgets_everything_but_completed_deletes() {
        let m = model(&[
            "saving a 1 10",
            "saved a a.bin sha256:x",
            "saving b 2 10",
            "saved b b.bin sha256:y",
            "deleting b",
            "deleted b",
            "clearing",
            "cleared",
        ]);
        assert_eq!(m.ids["a"].allowed, [Outcome::Forgotten]);
        assert_eq!(m.ids["b"].allowed, [Outcome::Gone]);
    }
}
