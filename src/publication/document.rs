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

/// The gzip of `header ‖ body`, made from `body_gzip` (one gzip member of `body`, as `gzip`
/// makes it) without compressing the body again: the header deflated and ended with a sync
/// flush (byte-aligned, not final), then the body's own deflate blocks, then the CRC-32 of the
/// whole (combined from the two) and its length. A standard gzip member that every decoder
/// reads (RFC 1951 §3.2.3 allows any sequence of blocks). `None` when `body_gzip` is not a
/// single well-formed member for a body of `body_len` bytes.
///
/// Issue 25: compressing a 42 MB ZAL a second time for serving was the largest single step
/// between an approval and its version being served; the body's gzip is made anyway for
/// storage, and a replica serving a stored version makes the same bytes from the stored body.
pub fn gzip_joined(header: &[u8], body_gzip: &[u8], body_len: usize) -> Option<Vec<u8>> {
    let (deflated_body, body_crc) = gzip_member_parts(body_gzip, body_len)?;
    let mut deflate = flate2::Compress::new(Compression::fast(), false);
    let mut deflated_header = Vec::with_capacity(header.len() + 64);
    deflate
        .compress_vec(header, &mut deflated_header, flate2::FlushCompress::Sync)
        .ok()?;
    if deflate.total_in() != header.len() as u64 {
        return None;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    crc.combine(&crc32fast::Hasher::new_with_initial_len(
        body_crc,
        body_len as u64,
    ));
    let total_len = header.len() + body_len;

    let mut joined =
        Vec::with_capacity(GZIP_HEADER.len() + deflated_header.len() + deflated_body.len() + 8);
    joined.extend_from_slice(&GZIP_HEADER);
    joined.extend_from_slice(&deflated_header);
    joined.extend_from_slice(deflated_body);
    joined.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
    joined.extend_from_slice(&(total_len as u32).to_le_bytes());
    Some(joined)
}

/// The member header `gzip` writes: deflate, no flags, no time, fast compression, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

/// The deflate stream and CRC-32 of a single gzip member of `len` bytes (RFC 1952 §2.3).
fn gzip_member_parts(member: &[u8], len: usize) -> Option<(&[u8], u32)> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let [0x1f, 0x8b, 8, flags, _, _, _, _, _, _, rest @ ..] = member else {
        return None;
    };
    if flags & 0xe0 != 0 {
        return None;
    }
    let mut rest = rest;
    if flags & FEXTRA != 0 {
        let [a, b, tail @ ..] = rest else { return None };
        rest = tail.get(usize::from(u16::from_le_bytes([*a, *b]))..)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = rest.iter().position(|&b| b == 0)?;
            rest = &rest[end + 1..];
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..)?;
    }
    let (deflated, trailer) = rest.split_at_checked(rest.len().checked_sub(8)?)?;
    let crc = u32::from_le_bytes(trailer[..4].try_into().ok()?);
    let size = u32::from_le_bytes(trailer[4..].try_into().ok()?);
    (size == len as u32).then_some((deflated, crc))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    #[test]
    fn a_joined_gzip_decompresses_to_header_and_body() {
        let header = b"<?xml version=\"1.0\"?><Lijst><Volgnummer>7</Volgnummer>".repeat(3);
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("<E>{}</E>", i % 977).into_bytes())
            .collect();
        let joined = gzip_joined(&header, &gzip(&body), body.len()).expect("joins");
        let mut whole = header.clone();
        whole.extend_from_slice(&body);
        assert_eq!(gunzip(&joined), whole);
        assert_eq!(
            gzip_joined(b"", &gzip(b""), 0).map(|g| gunzip(&g)),
            Some(Vec::new())
        );
    }

    #[test]
    fn a_member_that_is_not_the_bodys_is_not_joined() {
        let body = b"<E>1</E>".repeat(100);
        let member = gzip(&body);
        assert!(
            gzip_joined(b"h", &member, body.len() + 1).is_none(),
            "wrong length"
        );
        assert!(
            gzip_joined(b"h", &member[..9], body.len()).is_none(),
            "cut short"
        );
        let mut named = member.clone();
        named[3] = 0x20;
        assert!(
            gzip_joined(b"h", &named, body.len()).is_none(),
            "reserved flag"
        );
        // A member with a file name (as `gzip` writes one) is read past its name.
        let mut with_name = member[..10].to_vec();
        with_name[3] = 8;
        with_name.extend_from_slice(b"lijst.xml\0");
        with_name.extend_from_slice(&member[10..]);
        let joined = gzip_joined(b"h", &with_name, body.len()).expect("joins");
        assert_eq!(gunzip(&joined), [b"h".as_slice(), &body].concat());
    }
}
