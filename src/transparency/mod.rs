//! The transparency log of every published version (issue 26): an append-only RFC 6962 /
//! RFC 9162 Merkle tree whose leaves (`domain::LogLeaf`) the storage appends in the
//! transaction that stores each version. With it a PGO/XIS node can check that it was shown
//! the same list as every other node, not only that the list is signed.
//!
//! Concurrency: the leaves are the truth and live in the database, appended under the
//! working-state lock every publication takes, so the log has one order across replicas. Each
//! node keeps the tree's hashes in memory (`MerkleTree`) and catches up with the leaves it has
//! not seen (one catch-up at a time; readers take a read lock for the microseconds a root or
//! proof takes).

mod checkpoint;
mod tiles;
mod tree;
mod verify;
mod witness_key;
mod witnesses;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::web::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

pub use checkpoint::{CheckpointKeyError, CheckpointSigner, generate_note_key};
pub use tiles::{TILE_WIDTH, TileRequest};
pub use tree::{MerkleTree, OutsideTree};
pub use verify::{
    LogCheckError, SeenCheckpoint, check_consistency, check_inclusion, cosigned_by, proof_hashes,
    unverified_checkpoint, verified_checkpoint,
};
pub use witness_key::{WitnessKey, WitnessKeyError};
pub use witnesses::{Witness, WitnessConfigError, WitnessError, Witnesses};

use crate::domain::{ListKind, LogLeaf, Volgnummer};
use crate::storage::{LogStore, StorageError};

/// Leaves read per query while catching up.
const CATCH_UP_PAGE: u64 = 1000;

/// The log as this node knows it.
pub struct TransparencyLog {
    known: RwLock<Known>,
    catching_up: tokio::sync::Mutex<()>,
    /// `None`: no key configured, no checkpoints. Replaced on SIGHUP.
    signer: RwLock<Option<Arc<CheckpointSigner>>>,
    /// Asked to cosign each new checkpoint.
    witnesses: Witnesses,
    /// Why this node signs no checkpoint: its tree disagrees with the largest one checked
    /// before (`LogStore::log_head`). Never cleared while the node runs.
    inconsistent: RwLock<Option<String>>,
}

/// Why there is no checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoCheckpoint {
    #[error("this node has no transparency log key (transparency.key_file)")]
    NoKey,
    #[error("the transparency log is not consistent with the tree checked before: {0}")]
    Inconsistent(String),
    /// The log's key is in a token that does not sign now.
    #[error("the transparency log key does not sign: {0}")]
    Signing(String),
}

/// Why there is no checkpoint of a given size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointOf {
    #[error(transparent)]
    Refused(#[from] NoCheckpoint),
    #[error("the transparency log is smaller than that")]
    Outside(#[from] OutsideTree),
}

#[derive(Default)]
struct Known {
    tree: MerkleTree,
    leaves: Vec<LogLeaf>,
    /// Each version's leaf number.
    leaf_of: HashMap<(ListKind, Volgnummer), u64>,
    /// The checkpoint of the tree as it is, once signed: by the log's key alone (what
    /// witnesses are sent), and with the witnesses' cosignatures so far (what is served).
    signed: Option<Bytes>,
    served: Option<Bytes>,
    cosignatures: Vec<signed_note::Signature>,
}

impl Known {
    /// The tree changed, or the key: the checkpoint is signed again when asked for.
    fn forget_checkpoint(&mut self) {
        self.signed = None;
        self.served = None;
        self.cosignatures.clear();
    }
}

impl Default for TransparencyLog {
    fn default() -> Self {
        Self::new(None, Witnesses::none())
    }
}

impl TransparencyLog {
    /// A log whose checkpoints `signer` signs and `witnesses` cosign.
    pub fn new(signer: Option<CheckpointSigner>, witnesses: Witnesses) -> Self {
        Self {
            known: RwLock::default(),
            catching_up: tokio::sync::Mutex::default(),
            signer: RwLock::new(signer.map(Arc::new)),
            witnesses,
            inconsistent: RwLock::default(),
        }
    }

    pub fn witnesses(&self) -> &[Witness] {
        self.witnesses.all()
    }

    /// Why this node signs no checkpoint, if it refuses (`check_against_head`).
    pub fn signing_refused(&self) -> Option<String> {
        self.inconsistent.read().expect("log lock").clone()
    }

    /// Signs checkpoints with `signer` from now on (a key rollover: SIGHUP).
    pub fn replace_signer(&self, signer: CheckpointSigner) {
        *self.signer.write().expect("signer lock") = Some(Arc::new(signer));
        self.known.write().expect("log lock").forget_checkpoint();
    }

    /// The signed checkpoint of the tree as this node knows it; none without a key, or while
    /// the tree disagrees with the one checked before. One signature per tree size: later
    /// calls return the same bytes.
    pub fn checkpoint(&self) -> Result<Bytes, NoCheckpoint> {
        self.signed_checkpoint().map(|(_, _, served)| served)
    }

    /// The checkpoint of the tree as it is: its size, signed by the log's key alone, and as
    /// served (with the cosignatures so far). Signed outside the lock (a key in a token may
    /// take a while); a tree that grew meanwhile is signed again.
    fn signed_checkpoint(&self) -> Result<(u64, Bytes, Bytes), NoCheckpoint> {
        loop {
            let signer = self.signer()?;
            let (size, root) = {
                let known = self.known.read().expect("log lock");
                let size = known.tree.size();
                if let (Some(signed), Some(served)) = (&known.signed, &known.served) {
                    return Ok((size, signed.clone(), served.clone()));
                }
                (
                    size,
                    known.tree.root(size).expect("the tree holds its own size"),
                )
            };
            let signed = signer
                .sign(size, root)
                .map_err(|e| NoCheckpoint::Signing(e.to_string()))?;
            let signed = Bytes::from(signed);
            let mut known = self.known.write().expect("log lock");
            // A tree that grew, or a key replaced (SIGHUP), meanwhile: sign again.
            let same_key = self
                .signer
                .read()
                .expect("signer lock")
                .as_ref()
                .is_some_and(|now| Arc::ptr_eq(now, &signer));
            if known.tree.size() != size || !same_key {
                continue;
            }
            let signed = known.signed.get_or_insert(signed).clone();
            let served = known.served.get_or_insert_with(|| signed.clone()).clone();
            return Ok((size, signed, served));
        }
    }

    /// Adds a witness's cosignature to the checkpoint of `size` leaves, if that is still the
    /// checkpoint served (the witness's key checked it).
    fn add_cosignature(&self, size: u64, cosignature: signed_note::Signature) {
        let mut known = self.known.write().expect("log lock");
        let Some(signed) = known.signed.clone() else {
            return;
        };
        if known.tree.size() != size {
            return;
        }
        known
            .cosignatures
            .retain(|c| (c.name(), c.id()) != (cosignature.name(), cosignature.id()));
        known.cosignatures.push(cosignature);
        // A signed note's signature lines follow its text and blank line: the cosignatures
        // are more lines after the log's own.
        let mut served = signed.to_vec();
        for c in &known.cosignatures {
            served.extend_from_slice(&c.to_bytes());
        }
        known.served = Some(Bytes::from(served));
    }

    /// Whether the checkpoint served holds `witness`'s cosignature.
    fn cosigned_by(&self, witness: &Witness) -> bool {
        let known = self.known.read().expect("log lock");
        let key = witness.key();
        known
            .cosignatures
            .iter()
            .any(|c| c.name() == key.name() && c.id() == signed_note::Verifier::key_id(key))
    }

    /// Asks every witness that has not cosigned the checkpoint served to cosign it, side by
    /// side; a witness that fails is logged (when its trouble changes) and asked again the
    /// next time.
    pub async fn cosign(&self) {
        if self.witnesses.all().is_empty() {
            return;
        }
        let Ok((size, checkpoint, _)) = self.signed_checkpoint() else {
            return;
        };
        let asks = self
            .witnesses
            .all()
            .iter()
            .filter(|w| !self.cosigned_by(w))
            .map(|witness| {
                let checkpoint = checkpoint.clone();
                async move {
                    let proof = |old| self.consistency_proof(old, size).ok();
                    let outcome = self
                        .witnesses
                        .cosign(witness, &checkpoint, size, proof)
                        .await;
                    match outcome {
                        Ok(cosignature) => {
                            witness.record(None);
                            self.add_cosignature(size, cosignature);
                        }
                        Err(error) => witness.record(Some(error)),
                    }
                }
            });
        futures_util::future::join_all(asks).await;
    }

    /// The signer, unless this node signs no checkpoint.
    fn signer(&self) -> Result<Arc<CheckpointSigner>, NoCheckpoint> {
        if let Some(reason) = self.signing_refused() {
            return Err(NoCheckpoint::Inconsistent(reason));
        }
        self.signer
            .read()
            .expect("signer lock")
            .clone()
            .ok_or(NoCheckpoint::NoKey)
    }

    /// The signed checkpoint of the first `size` leaves (an archive bundle's, at the end of
    /// its period): consistent with every checkpoint of the tree, which holds them.
    pub fn checkpoint_of(&self, size: u64) -> Result<Vec<u8>, CheckpointOf> {
        let signer = self.signer()?;
        let root = self.root(size)?;
        signer
            .sign(size, root)
            .map_err(|e| CheckpointOf::Refused(NoCheckpoint::Signing(e.to_string())))
    }

    /// The first `size` leaves.
    pub fn leaves(&self, size: u64) -> Result<Vec<LogLeaf>, OutsideTree> {
        let known = self.known.read().expect("log lock");
        usize::try_from(size)
            .ok()
            .and_then(|end| known.leaves.get(..end))
            .map(<[_]>::to_vec)
            .ok_or_else(|| OutsideTree {
                size: known.tree.size(),
                asked: format!("the first {size} leaves"),
            })
    }

    /// Checks the tree against the largest one checked before (by any node) and records this
    /// one when it is larger; `true` when the head is ahead of the leaves read and
    /// `looked_again` is not set yet. A disagreement stops checkpoints on this node for good:
    /// a checkpoint of this tree would contradict one already signed.
    async fn check_against_head(
        &self,
        storage: &dyn LogStore,
        looked_again: bool,
    ) -> Result<bool, StorageError> {
        let (head_size, head_root) = storage.log_head().await?;
        let size = self.size();
        let problem = match self.root(head_size) {
            Err(_) if !looked_again => return Ok(true),
            Err(_) => Some(format!(
                "{head_size} leaves were checked before, the database holds {size}"
            )),
            Ok(root) if BASE64.encode(root) != head_root => Some(format!(
                "its first {head_size} leaves no longer hash to the root checked before"
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            tracing::error!(%problem, "the transparency log changed behind the node's back: no checkpoints are signed");
            *self.inconsistent.write().expect("log lock") = Some(problem);
            return Ok(false);
        }
        if size > head_size {
            let root = self.root(size).expect("the tree holds its own size");
            storage.raise_log_head(size, &BASE64.encode(root)).await?;
        }
        Ok(false)
    }

    /// A tile's bytes, if the tree as this node knows it holds the tile.
    pub fn tile(&self, tile: &TileRequest) -> Option<Vec<u8>> {
        let known = self.known.read().expect("log lock");
        if tile.needs_leaves()? > known.tree.size() {
            return None;
        }
        Some(match tile.level {
            Some(level) => tile.hash_tile(level, &known.tree),
            None => {
                let first = usize::try_from(tile.index * TILE_WIDTH).ok()?;
                let end = first + usize::try_from(tile.width).ok()?;
                tiles::entry_bundle(known.leaves.get(first..end)?.iter().map(LogLeaf::as_bytes))
            }
        })
    }

    /// Reads the leaves appended since the last catch-up into the tree; returns how many.
    pub async fn catch_up(&self, storage: &dyn LogStore) -> Result<u64, StorageError> {
        let _one_at_a_time = self.catching_up.lock().await;
        let mut added = 0;
        let mut looked_again = false;
        loop {
            let from = self.size();
            let entries = storage.log_entries(from, CATCH_UP_PAGE).await?;
            let Some(last) = entries.last() else {
                // A head larger than the leaves just read may be another node's newer
                // leaves, committed since: read once more before calling it a loss.
                if self.check_against_head(storage, looked_again).await? {
                    looked_again = true;
                    continue;
                }
                return Ok(added);
            };
            if entries.first().map(|e| e.index) != Some(from)
                || last.index + 1 != from + entries.len() as u64
            {
                return Err(StorageError::Corrupt(format!(
                    "the transparency log's leaves from {from} are not numbered one after another"
                )));
            }
            let mut known = self.known.write().expect("log lock");
            for entry in entries {
                known.tree.append(entry.leaf.as_bytes());
                known
                    .leaf_of
                    .insert((entry.list, entry.volgnummer), entry.index);
                known.leaves.push(entry.leaf);
                added += 1;
            }
            known.forget_checkpoint();
        }
    }

    /// The number of leaves this node has caught up with.
    pub fn size(&self) -> u64 {
        self.known.read().expect("log lock").tree.size()
    }

    /// The leaf number of a version, once this node has caught up with it.
    pub fn leaf_index(&self, list: ListKind, volgnummer: Volgnummer) -> Option<u64> {
        let known = self.known.read().expect("log lock");
        known.leaf_of.get(&(list, volgnummer)).copied()
    }

    /// The root hash of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<[u8; 32], OutsideTree> {
        self.known.read().expect("log lock").tree.root(size)
    }

    /// See `MerkleTree::inclusion_proof`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, OutsideTree> {
        let known = self.known.read().expect("log lock");
        known.tree.inclusion_proof(index, size)
    }

    /// See `MerkleTree::consistency_proof`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, OutsideTree> {
        let known = self.known.read().expect("log lock");
        known.tree.consistency_proof(old, new)
    }
}
