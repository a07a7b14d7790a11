//! The checks of a format-3 bundle's transparency log (issue 26): its leaves hash to its
//! checkpoint (signed by the log key, when the auditor gives one); every leaf published in
//! the period names a version the bundle holds, exactly as the bundle records it, and every
//! version of the bundle is in the log — so no version was published that the bundle hides;
//! the log extends the one of the last bundle seen (no other history), and no leaf added
//! since then belongs to an earlier period (a version no bundle holds).
//!
//! The leaves are streamed: memory holds the tree's hashes (64 bytes a leaf) and the set of
//! versions named, never the leaves.

use std::collections::{BTreeMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::checker::Checker;
use super::{BundleState, Manifest};
use crate::archive::bundle::{ArchivedVersion, LOG_CHECKPOINT, LOG_LEAVES};
use crate::archive::lines::JsonLines;
use crate::domain::{LeafContent, ListKind, LogLeaf, Volgnummer};
use crate::transparency::{MerkleTree, unverified_checkpoint, verified_checkpoint};

/// The most leaves a bundle's log may hold: nineteen years of a version a minute (the tree
/// and the names seen then take about a gigabyte).
const MAX_LEAVES: u64 = 10_000_000;

/// What the verifier remembers of the last bundle's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedUpTo {
    pub size: u64,
    /// The root hash of its first `size` leaves, base64 as in a checkpoint.
    pub root: String,
}

impl Checker<'_> {
    /// Checks the log of a format-3 bundle against its versions and the last bundle seen;
    /// returns how far the log is known now (the last bundle's, for an older format).
    pub(super) fn check_log(
        &mut self,
        manifest: &Manifest,
        by_list: &BTreeMap<ListKind, Vec<ArchivedVersion>>,
        follows: Option<&BundleState>,
        log_key: Option<&str>,
    ) -> Option<LoggedUpTo> {
        let before = follows.and_then(|s| s.log.clone());
        if manifest.format < 3 {
            return before;
        }
        if !manifest.files.iter().any(|f| f.path == LOG_LEAVES) {
            self.content(format!("{LOG_LEAVES} is missing from a format-3 bundle"));
            return before;
        }
        let Some(file) = self.open_sound(LOG_LEAVES) else {
            return before;
        };
        let period = |content: &LeafContent| {
            manifest
                .covers_from
                .is_none_or(|from| content.valid_from >= from)
                && content.valid_from < manifest.covers_up_to
        };
        // A leaf the last bundle seen did not hold, of a version published before this
        // period, is in neither bundle (only a known last bundle tells).
        let new_since = |index: u64| before.as_ref().is_some_and(|b| index >= b.size);
        let earlier = |content: &LeafContent| {
            manifest
                .covers_from
                .is_some_and(|from| content.valid_from < from)
        };
        let versions: BTreeMap<(ListKind, i64), &ArchivedVersion> = by_list
            .values()
            .flatten()
            .map(|v| ((v.list, v.volgnummer), v))
            .collect();
        let mut in_log = HashSet::new();
        let mut tree = MerkleTree::default();
        for line in JsonLines::<_, String>::new(file, LOG_LEAVES) {
            let index = tree.size();
            let problem = match line {
                Err(e) => Some(e),
                Ok(_) if index == MAX_LEAVES => Some(format!("more than {MAX_LEAVES} leaves")),
                Ok(text) => {
                    let leaf = LogLeaf::from_stored(text.into_bytes());
                    tree.append(leaf.as_bytes());
                    match leaf.content() {
                        Err(e) => Some(format!("leaf {index}: {e}")),
                        Ok(content) => {
                            let name = (content.list, content.volgnummer);
                            let (list, n) = name;
                            match (in_log.insert(name), period(&content)) {
                                (false, _) => {
                                    Some(format!("leaf {index} names {list} version {n} again"))
                                }
                                (true, true) => leaf_problem(index, &content, &versions),
                                (true, false) if new_since(index) && earlier(&content) => {
                                    Some(format!(
                                        "leaf {index}: {list} version {n} was published before the period, \
                                     after the last bundle seen: no bundle holds it"
                                    ))
                                }
                                (true, false) => None,
                            }
                        }
                    }
                }
            };
            if let Some(problem) = problem {
                self.content(format!("{LOG_LEAVES}: {problem}"));
                return before;
            }
        }
        for version in versions.values() {
            let logged = Volgnummer::new(version.volgnummer)
                .is_ok_and(|n| in_log.contains(&(version.list, n)));
            if !logged {
                self.content(format!(
                    "{} version {} is not in the transparency log",
                    version.list, version.volgnummer
                ));
            }
        }
        let size = tree.size();
        let root = BASE64.encode(tree.root(size).expect("the tree holds its own size"));
        self.check_checkpoint(manifest, size, &root, log_key);
        if let Some(before) = &before {
            let extends = tree
                .root(before.size)
                .is_ok_and(|r| BASE64.encode(r) == before.root);
            if !extends {
                self.content(format!(
                    "the transparency log is not the one of the last bundle seen (its first {} leaves differ): another history",
                    before.size
                ));
            }
        }
        Some(LoggedUpTo { size, root })
    }

    /// The checkpoint states the log's size and root (and is signed by `log_key`, if given).
    fn check_checkpoint(
        &mut self,
        manifest: &Manifest,
        size: u64,
        root: &str,
        log_key: Option<&str>,
    ) {
        let listed = manifest.files.iter().any(|f| f.path == LOG_CHECKPOINT);
        if !listed {
            if log_key.is_some() {
                self.content(format!(
                    "{LOG_CHECKPOINT} is missing: the log's leaves are signed by nobody"
                ));
            }
            return;
        }
        let Some(note) = self.read_sound(LOG_CHECKPOINT) else {
            return;
        };
        let checkpoint = match log_key {
            Some(key) => verified_checkpoint(&note, key),
            None => unverified_checkpoint(&note),
        };
        match checkpoint {
            Err(e) => self.content(format!("{LOG_CHECKPOINT}: {e}")),
            Ok(c) if c.size != size || c.root != root => self.content(format!(
                "{LOG_CHECKPOINT} signs a tree of {} leaves other than the {size} the bundle holds",
                c.size
            )),
            Ok(_) => {}
        }
    }
}

/// A leaf of the period names a version the bundle holds, with the very leaf its record
/// makes.
fn leaf_problem(
    index: u64,
    content: &LeafContent,
    versions: &BTreeMap<(ListKind, i64), &ArchivedVersion>,
) -> Option<String> {
    let (list, n) = (content.list, content.volgnummer);
    let Some(version) = versions.get(&(list, n.get())) else {
        return Some(format!(
            "leaf {index}: {list} version {n} was published in the period, and the bundle hides it"
        ));
    };
    let recorded = LeafContent {
        list,
        volgnummer: n,
        sha256: version.sha256.clone(),
        valid_from: version.valid_from,
        expires_at: version.expires_at,
        previous_sha256: version.previous_sha256.clone(),
    };
    (recorded != *content).then(|| {
        format!("leaf {index}: {list} version {n} differs from the version the bundle holds")
    })
}
