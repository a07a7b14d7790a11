//! The C2SP `tlog-tiles` layout (issue 26): the tree's hashes and the log's leaves in tiles of
//! 256, addressed as `tile/<L>/<N>[.p/<W>]` (hashes at tree level 8·L) and
//! `tile/entries/<N>[.p/<W>]` (leaves, each a big-endian u16 length and its bytes). `N` is
//! written in groups of three digits, all but the last prefixed with `x` (`x001/x234/067`);
//! `.p/<W>` names a partial tile of `W` (1–255) entries. A tile's bytes never change: a full
//! tile is final, and a partial one of width `W` always holds the same `W` entries.

use tlog_tiles::{HashReader, Tile};

/// Entries per tile (the spec's fixed tile height 8).
pub const TILE_WIDTH: u64 = 256;
const TILE_HEIGHT: u8 = 8;

/// A tile a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRequest {
    /// `None` for an entry bundle.
    pub level: Option<u8>,
    pub index: u64,
    /// 1–256; 256 is a full tile.
    pub width: u64,
}

impl TileRequest {
    /// Parses the part of a tile path after `tile/`; `None` for anything the spec does not
    /// name exactly (no leading zeros missing, no empty groups, no width 0 or 256 in `.p/`).
    pub fn parse(path: &str) -> Option<Self> {
        let (level, rest) = path.split_once('/')?;
        let level = match level {
            "entries" => None,
            digits => Some(decimal(digits, 2).filter(|l| *l < 64)? as u8),
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => (index, decimal(width, 3).filter(|w| (1..256).contains(w))?),
            None => (rest, TILE_WIDTH),
        };
        let groups: Vec<&str> = index.split('/').collect();
        let (last, leading) = groups.split_last()?;
        let mut n: u64 = 0;
        for group in leading {
            let digits = group.strip_prefix('x')?;
            n = n.checked_mul(1000)?.checked_add(three_digits(digits)?)?;
        }
        n = n.checked_mul(1000)?.checked_add(three_digits(last)?)?;
        // The shortest form only: "x000/001" is not a name of tile 1.
        if leading.first().is_some_and(|g| *g == "x000") {
            return None;
        }
        Some(Self {
            level,
            index: n,
            width,
        })
    }

    /// The leaves this tile's entries end at: it exists in a tree of that many leaves or more.
    pub(super) fn needs_leaves(&self) -> Option<u64> {
        let entries_end = self
            .index
            .checked_mul(TILE_WIDTH)?
            .checked_add(self.width)?;
        let level = u32::from(self.level.unwrap_or(0)) * u32::from(TILE_HEIGHT);
        entries_end.checked_mul(1u64.checked_shl(level)?)
    }

    /// The hash tile's bytes from `hashes` (a tree that holds it: `needs_leaves`).
    pub(super) fn hash_tile(&self, level: u8, hashes: &impl HashReader) -> Vec<u8> {
        let width = u32::try_from(self.width).expect("a tile is at most 256 wide");
        Tile::new(TILE_HEIGHT, level, self.index, width, false)
            .read_data(hashes)
            .expect("the tree holds every hash of a tile within it")
    }
}

fn decimal(digits: &str, max_len: usize) -> Option<u64> {
    let canonical = !digits.is_empty()
        && digits.len() <= max_len
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

fn three_digits(digits: &str) -> Option<u64> {
    (digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// An entry bundle of `leaves`: each as a big-endian u16 length and its bytes.
pub(super) fn entry_bundle<'a>(leaves: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut bundle = Vec::new();
    for leaf in leaves {
        let length = u16::try_from(leaf.len()).expect("a leaf is a few hundred bytes");
        bundle.extend_from_slice(&length.to_be_bytes());
        bundle.extend_from_slice(leaf);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(level: Option<u8>, index: u64, width: u64) -> Option<TileRequest> {
        Some(TileRequest {
            level,
            index,
            width,
        })
    }

    #[test]
    fn tile_paths_parse_as_the_spec_writes_them() {
        assert_eq!(TileRequest::parse("0/000"), tile(Some(0), 0, 256));
        assert_eq!(TileRequest::parse("1/067.p/5"), tile(Some(1), 67, 5));
        assert_eq!(
            TileRequest::parse("entries/x001/x234/067"),
            tile(None, 1_234_067, 256)
        );
        assert_eq!(
            TileRequest::parse("2/x001/000.p/255"),
            tile(Some(2), 1000, 255)
        );
        for wrong in [
            "0/0",
            "0/0000",
            "00/000",
            "64/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/05",
            "0/x000/001",
            "0/001/x002",
            "0/x1/002",
            "0/",
            "entries",
            "0/000/",
            "a/000",
            "0/-01",
            "0/x001/x",
        ] {
            assert_eq!(TileRequest::parse(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn an_entry_bundle_is_length_prefixed() {
        let bundle = entry_bundle([&b"ab"[..], &b""[..], &b"c"[..]].into_iter());
        assert_eq!(bundle, b"\0\x02ab\0\0\0\x01c");
    }
}
