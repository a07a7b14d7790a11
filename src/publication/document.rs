//! The stored form of a published document: its own header, and a gzip body shared by every
//! version with the same entries. Serving and verifying always reassemble the exact bytes.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::storage::StoredVersion;

/// Where a rendered document's header (declaration, root, Tijdstempel, Volgnummer) ends.
pub fn header_len(document: &[u8]) -> usize {
    const END: &[u8] = b"</Volgnummer>";
    document
        .windows(END.len())
        .position(|w| w == END)
        .map(|i| i + END.len())
        .expect("a rendered list always has a Volgnummer")
}

/// Compression for stored bodies and served responses: the fast level, because a 10 000-
/// Zorgaanbieder ZAL is tens of megabytes of very repetitive XML and publication time counts.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 8), Compression::fast());
    encoder
        .write_all(bytes)
        .expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

#[derive(Debug, thiserror::Error)]
#[error("an archived body cannot be decompressed: {0}")]
pub struct CorruptArchive(#[from] std::io::Error);

/// The exact published bytes of a stored version.
pub fn assemble(stored: &StoredVersion) -> Result<Vec<u8>, CorruptArchive> {
    let mut document = Vec::with_capacity(stored.record.size_bytes.max(0) as usize);
    document.extend_from_slice(&stored.header);
    GzDecoder::new(stored.body_gzip.as_slice()).read_to_end(&mut document)?;
    Ok(document)
}
