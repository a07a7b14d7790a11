//! The log's Merkle tree (RFC 6962 / RFC 9162 hashing) held in memory: every hash the tree
//! stores, in the dense order of Crosby and Wallach that `tlog_tiles` uses, so a tree of `n`
//! leaves is about `2n` hashes (64 bytes per version; a decade of versions is a few MB).
//!
//! The Merkle arithmetic (which hashes a leaf completes, which a proof needs) is
//! `tlog_tiles`'s, Cloudflare's maintained port of Go's `golang.org/x/mod/sumdb/tlog` that
//! the Go checksum database runs on; this module only keeps the hashes. The tests check its
//! proofs with another implementation (`ct-merkle`).

use tlog_tiles::{Hash, HashReader};

/// A tree's hashes, grown one leaf at a time.
#[derive(Debug, Default, Clone)]
pub struct MerkleTree {
    /// Every stored hash, at its `tlog_tiles::stored_hash_index`.
    hashes: Vec<Hash>,
    size: u64,
}

/// A size or index outside the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log has {size} leaves: no proof for {asked}")]
pub struct OutsideTree {
    pub size: u64,
    pub asked: String,
}

impl MerkleTree {
    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `leaf` as leaf number `size()`.
    pub fn append(&mut self, leaf: &[u8]) {
        let stored = tlog_tiles::stored_hashes(self.size, leaf, self)
            .expect("a tree reads only hashes it holds");
        self.hashes.extend(stored);
        self.size += 1;
    }

    /// The root hash of the tree's first `size` leaves (RFC 6962 §2.1; SHA-256 of nothing for
    /// an empty tree).
    pub fn root(&self, size: u64) -> Result<[u8; 32], OutsideTree> {
        self.within(size, || format!("a tree of {size}"))?;
        Ok(tlog_tiles::tree_hash(size, self)
            .expect("a tree reads only hashes it holds")
            .0)
    }

    /// The hashes proving that leaf `index` is in the tree's first `size` leaves (RFC 9162
    /// §2.1.3), from the leaf up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, OutsideTree> {
        self.within(size, || format!("leaf {index} in a tree of {size}"))?;
        if index >= size {
            return Err(self.outside(format!("leaf {index} in a tree of {size}")));
        }
        let proof =
            tlog_tiles::prove_record(size, index, self).expect("a tree reads only hashes it holds");
        Ok(proof.into_iter().map(|h| h.0).collect())
    }

    /// The hashes proving that the tree's first `old` leaves are a prefix of its first `new`
    /// (RFC 9162 §2.1.4); empty when `old` is `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, OutsideTree> {
        let asked = || format!("trees of {old} and {new}");
        self.within(new, asked)?;
        if old == 0 || old > new {
            return Err(self.outside(asked()));
        }
        let proof =
            tlog_tiles::prove_tree(new, old, self).expect("a tree reads only hashes it holds");
        Ok(proof.into_iter().map(|h| h.0).collect())
    }

    fn within(&self, size: u64, asked: impl FnOnce() -> String) -> Result<(), OutsideTree> {
        if size > self.size {
            return Err(self.outside(asked()));
        }
        Ok(())
    }

    fn outside(&self, asked: String) -> OutsideTree {
        OutsideTree {
            size: self.size,
            asked,
        }
    }
}

impl HashReader for MerkleTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_tree_and_a_single_leaf_hash_as_rfc_6962_says() {
        use sha2::{Digest, Sha256};
        let mut tree = MerkleTree::default();
        assert_eq!(tree.root(0).unwrap(), <[u8; 32]>::from(Sha256::digest(b"")));
        tree.append(b"leaf");
        let leaf: [u8; 32] = Sha256::digest([&[0u8][..], b"leaf"].concat()).into();
        assert_eq!(tree.root(1).unwrap(), leaf);
        assert_eq!(tree.inclusion_proof(0, 1).unwrap(), Vec::<[u8; 32]>::new());
        assert!(tree.root(2).is_err());
        assert!(tree.inclusion_proof(1, 1).is_err());
        assert!(tree.consistency_proof(0, 1).is_err());
    }
}
