//! What a consumer checks with the transparency log (issue 26): a checkpoint signed by the
//! log's key, a version's leaf included in it, and each new checkpoint consistent with the
//! last one it kept. A checkpoint that is not consistent with one the consumer saw before is a
//! split view: the log (or someone with its key) showed two different histories.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::Hash;

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenCheckpoint {
    pub origin: String,
    pub size: u64,
    /// Base64, as in the checkpoint.
    pub root: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogCheckError {
    #[error("the log key is not a signed-note verifier key (<name>+<id>+<key>)")]
    Key,
    #[error("the checkpoint is not signed by the log key, or not a checkpoint: {0}")]
    Checkpoint(String),
    #[error("the version is not in the log as the checkpoint shows it: {0}")]
    NotIncluded(String),
    /// Fewer witnesses than required cosigned the checkpoint.
    #[error(
        "the checkpoint is cosigned by {found} of the witnesses given, {required} are required"
    )]
    TooFewWitnesses { found: usize, required: usize },
    /// Two checkpoints of one log that no history explains: the log split its view.
    #[error(
        "split view: the checkpoint of {new} leaves is not consistent with the one of {old} seen before"
    )]
    SplitView { old: u64, new: u64 },
}

/// Parses `note` as a checkpoint signed by the key `verifier_key` names.
pub fn verified_checkpoint(
    note: &[u8],
    verifier_key: &str,
) -> Result<SeenCheckpoint, LogCheckError> {
    let verifier = StandardVerifier::new(verifier_key.trim()).map_err(|_| LogCheckError::Key)?;
    let note = Note::from_bytes(note).map_err(|e| LogCheckError::Checkpoint(e.to_string()))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| LogCheckError::Checkpoint(e.to_string()))?;
    checkpoint_text(&note)
}

/// How many of `witnesses` cosigned `note` (each counted once; a cosignature that does not
/// verify counts for nothing).
pub fn cosigned_by(note: &[u8], witnesses: &[super::WitnessKey]) -> usize {
    let Ok(note) = Note::from_bytes(note) else {
        return 0;
    };
    witnesses
        .iter()
        .filter(|witness| {
            let one = VerifierList::new(vec![Box::new((*witness).clone())]);
            note.verify(&one).is_ok()
        })
        .count()
}

/// Parses `note` as a checkpoint without checking a signature: for a checkpoint something
/// else vouches for (an archive bundle's signed MANIFEST) when no log key is at hand.
pub fn unverified_checkpoint(note: &[u8]) -> Result<SeenCheckpoint, LogCheckError> {
    let note = Note::from_bytes(note).map_err(|e| LogCheckError::Checkpoint(e.to_string()))?;
    checkpoint_text(&note)
}

fn checkpoint_text(note: &Note) -> Result<SeenCheckpoint, LogCheckError> {
    let text = std::str::from_utf8(note.text())
        .map_err(|_| LogCheckError::Checkpoint("not UTF-8".into()))?;
    let mut lines = text.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(LogCheckError::Checkpoint("fewer than three lines".into()));
    };
    let size = size
        .parse()
        .map_err(|_| LogCheckError::Checkpoint("the size is not a number".into()))?;
    root_hash(root).map_err(LogCheckError::Checkpoint)?;
    Ok(SeenCheckpoint {
        origin: origin.to_owned(),
        size,
        root: root.to_owned(),
    })
}

/// That `leaf` is leaf `index` of `checkpoint`'s tree, by `proof` (from the leaf up).
pub fn check_inclusion(
    checkpoint: &SeenCheckpoint,
    leaf: &[u8],
    index: u64,
    proof: &[[u8; 32]],
) -> Result<(), LogCheckError> {
    let root = root_hash(&checkpoint.root).map_err(LogCheckError::NotIncluded)?;
    let proof: Vec<Hash> = proof.iter().copied().map(Hash).collect();
    tlog_tiles::check_record(
        &proof,
        checkpoint.size,
        root,
        index,
        tlog_tiles::record_hash(leaf),
    )
    .map_err(|e| LogCheckError::NotIncluded(e.to_string()))
}

/// That `new` and `old` are checkpoints of one history: the smaller tree a prefix of the
/// larger by `proof` (`/log/proof/consistency?from=<smaller>&tree_size=<larger>`); equal
/// sizes need equal roots and no proof. Different origins are different logs: an error, but
/// not a split view.
pub fn check_consistency(
    old: &SeenCheckpoint,
    new: &SeenCheckpoint,
    proof: &[[u8; 32]],
) -> Result<(), LogCheckError> {
    if old.origin != new.origin {
        return Err(LogCheckError::Checkpoint(format!(
            "the checkpoint is of {}, not of {}",
            new.origin, old.origin
        )));
    }
    let split = || LogCheckError::SplitView {
        old: old.size,
        new: new.size,
    };
    let (smaller, larger) = if old.size <= new.size {
        (old, new)
    } else {
        (new, old)
    };
    if smaller.size == larger.size {
        return if smaller.root == larger.root {
            Ok(())
        } else {
            Err(split())
        };
    }
    let proof: Vec<Hash> = proof.iter().copied().map(Hash).collect();
    let (small_root, large_root) = (
        root_hash(&smaller.root).map_err(LogCheckError::Checkpoint)?,
        root_hash(&larger.root).map_err(LogCheckError::Checkpoint)?,
    );
    tlog_tiles::check_tree(&proof, larger.size, large_root, smaller.size, small_root)
        .map_err(|_| split())
}

fn root_hash(base64: &str) -> Result<Hash, String> {
    let bytes = BASE64
        .decode(base64)
        .map_err(|_| "the root hash is not base64".to_owned())?;
    <[u8; 32]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| "the root hash is not 32 bytes".to_owned())
}

/// A proof as `/log/proof/...` answers it: its `hashes`, base64.
pub fn proof_hashes(answer: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    #[derive(Deserialize)]
    struct Proof {
        hashes: Vec<String>,
    }
    let proof: Proof = serde_json::from_slice(answer).map_err(|e| e.to_string())?;
    proof
        .hashes
        .iter()
        .map(|h| root_hash(h).map(|h| h.0))
        .collect()
}
