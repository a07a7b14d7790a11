//! The checks of what a format-2 bundle carries for a restore (issue 23): its mutations,
//! audit records and working state are present, parse line by line, and fit the period —
//! mutations changed in it, audit records within it, every list's head once, entries in
//! order, restore records that state a gap. The restore records found are the only gaps the
//! chain check accepts.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::Manifest;
use super::checker::Checker;
use crate::archive::bundle::{AUDIT, MUTATIONS, STATE};
use crate::archive::lines::JsonLines;
use crate::domain::ListKind;
use crate::storage::{AuditRow, HeadRow, MutationRow, RestoreRecord, RetiredRow};

/// A line of `state.jsonl.gz` (`StateLine`) as the verifier reads it: an entry's body is
/// passed over, not unescaped — it is text the database checks when a restore writes it, and
/// unescaping ten thousand Zorgaanbieders in each of a year of bundles was a tenth of a
/// restore's time.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StateLineShape {
    Head(HeadRow),
    Entry(EntryShape),
    Retired(RetiredRow),
    Restore(RestoreRecord),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryShape {
    list: ListKind,
    entry_key: String,
    #[serde(rename = "version")]
    _version: i64,
    #[serde(rename = "body")]
    _body: Option<IgnoredAny>,
    #[serde(rename = "updated_at")]
    _updated_at: DateTime<Utc>,
}

impl Checker<'_> {
    /// Each line of `path` whose digest held, until the first that fails.
    fn each_line<T: DeserializeOwned>(
        &mut self,
        path: &str,
        mut check: impl FnMut(&T) -> Result<(), String>,
    ) {
        let Some(file) = self.open_sound(path) else {
            return;
        };
        for line in JsonLines::<_, T>::new(file, path) {
            if let Err(e) = line.and_then(|row| check(&row)) {
                self.content(e);
                return;
            }
        }
    }

    /// Checks the restore files of a format-2 bundle; returns the restore records of its
    /// working state.
    pub(super) fn check_recovery(&mut self, manifest: &Manifest) -> Vec<RestoreRecord> {
        if manifest.format < 2 {
            return Vec::new();
        }
        for path in [MUTATIONS, AUDIT, STATE] {
            if !manifest.files.iter().any(|f| f.path == path) {
                self.content(format!("{path} is missing from a format-2 bundle"));
            }
        }
        let from = manifest.covers_from;
        let to = manifest.covers_up_to;

        let mut last_id = 0;
        self.each_line(MUTATIONS, |m: &MutationRow| {
            let in_order = m.id > std::mem::replace(&mut last_id, m.id);
            match (in_order, from.is_none_or(|from| m.last_change() >= from)) {
                (false, _) => Err(format!("{MUTATIONS}: mutation {} is out of order", m.id)),
                (_, false) => Err(format!(
                    "{MUTATIONS}: mutation {} did not change in the period",
                    m.id
                )),
                _ => Ok(()),
            }
        });

        let mut last_id = 0;
        self.each_line(AUDIT, |a: &AuditRow| {
            let in_order = a.id > std::mem::replace(&mut last_id, a.id);
            let in_period = from.is_none_or(|from| a.at >= from) && a.at < to;
            match (in_order, in_period) {
                (false, _) => Err(format!("{AUDIT}: audit record {} is out of order", a.id)),
                (_, false) => Err(format!(
                    "{AUDIT}: audit record {} lies outside the period",
                    a.id
                )),
                _ => Ok(()),
            }
        });

        let mut heads = Vec::new();
        let mut last_entry: Option<(ListKind, String)> = None;
        let mut restores = Vec::new();
        self.each_line(STATE, |line: &StateLineShape| match line {
            StateLineShape::Head(h) => {
                heads.push(h.list);
                Ok(())
            }
            StateLineShape::Entry(e) => {
                let key = (e.list, e.entry_key.clone());
                match last_entry
                    .replace(key.clone())
                    .is_none_or(|last| last < key)
                {
                    true => Ok(()),
                    false => Err(format!("{STATE}: {} entries are out of order", e.list)),
                }
            }
            StateLineShape::Retired(r) => match r.gegevensdienst_id.is_empty() {
                true => Err(format!("{STATE}: a retired Gegevensdienst id is empty")),
                false => Ok(()),
            },
            StateLineShape::Restore(r) => match r.after_volgnummer.checked_add(1) {
                Some(n) if r.after_volgnummer >= 0 && r.next_volgnummer > n => {
                    restores.push(r.clone());
                    Ok(())
                }
                _ => Err(format!(
                    "{STATE}: a {} restore record states no gap",
                    r.list
                )),
            },
        });
        heads.sort();
        let mut every_list = ListKind::ALL.to_vec();
        every_list.sort();
        if self.sound_contains(STATE) && heads != every_list {
            self.content(format!("{STATE}: it does not hold each list's head once"));
        }
        restores
    }

    /// A file whose digest held, opened (one that failed was reported already).
    pub(super) fn open_sound(&mut self, path: &str) -> Option<impl Read + use<>> {
        if !self.sound_contains(path) {
            return None;
        }
        match self.bundle().open(path) {
            Ok(file) => Some(std::io::BufReader::new(file)),
            Err(e) => {
                self.content(e.to_string());
                None
            }
        }
    }
}
