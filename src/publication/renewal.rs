//! Renewal: the next version of a list unchanged since its current version (a heartbeat, or a
//! publication nothing changed for) is the stored body of the current version under a new
//! header. Nothing is loaded, planned, rendered or compressed but the header (issue 25: a CLI
//! heartbeat of a 10 000-Zorgaanbieder ZAL spent most of its time reading, re-validating and
//! rendering a working state that was byte for byte the stored body).
//!
//! Why no plan and no check: the body was checked when the current version was published, and
//! every later publication of another list was checked against these entries, so the
//! published lists stay exactly as consistent as they are. The store refuses the renewal if
//! the working state changed meanwhile (`based_on_revision`), and then the publication starts
//! again on the full path. The stored body is decompressed and its SHA-256 compared with the
//! version's record before anything is signed: a body damaged in the database is never
//! signed again, the publication fails loudly instead.

use std::io::Read;

use bytes::Bytes;
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::document::{gzip, gzip_joined};
use super::prepare::{Made, Prepared, Publication, sign_next, tijdstempel_at};
use super::{PublishError, ReadyToServe};
use crate::domain::{ListEntries, ListStanding};
use crate::signing::hex;
use crate::storage::{StorageError, StoredVersion};
use crate::xml::render_header;

/// The renewal of `current`, the stored current version of a list standing at `standing`
/// (unchanged since it was published); `entries` are its entries where the contents cache
/// holds them. CPU work, no I/O.
pub(super) fn prepare_renewal(
    standing: &ListStanding,
    current: StoredVersion,
    entries: Option<std::sync::Arc<ListEntries>>,
    publication: &Publication<'_>,
) -> Result<Prepared, PublishError> {
    let list = current.record.list;
    let header = render_header(
        list,
        tijdstempel_at(publication.now),
        standing.head.next_volgnummer(),
    );
    let mut document = Vec::with_capacity(header.len() + current.record.size_bytes.max(0) as usize);
    document.extend_from_slice(&header);
    GzDecoder::new(current.body_gzip.as_slice())
        .read_to_end(&mut document)
        .map_err(super::CorruptArchive::from)?;
    let document = Bytes::from(document);
    let body = &document[header.len()..];
    let (body_sha256, sha256) = std::thread::scope(|scope| {
        let body_digest = scope.spawn(|| hex(&Sha256::digest(body)));
        let sha256: [u8; 32] = Sha256::digest(&document).into();
        (body_digest.join().expect("digests do not panic"), sha256)
    });
    if body_sha256 != current.record.body_sha256 {
        return Err(StorageError::Corrupt(format!(
            "the stored body of {list} version {} does not match its SHA-256",
            current.record.volgnummer
        ))
        .into());
    }
    let served_gzip = publication.for_serving.then(|| {
        // A body stored as more than one gzip member (by another tool) is compressed again.
        gzip_joined(&header, &current.body_gzip, body.len()).unwrap_or_else(|| gzip(&document))
    });
    let version = sign_next(
        list,
        standing,
        Made {
            sha256,
            body_sha256,
            size_bytes: document.len() as i64,
            heartbeat: true,
            header,
            body_size: body.len() as i64,
            body_gzip: current.body_gzip,
        },
        publication,
    )?;
    let ready = served_gzip.map(|gzip| ReadyToServe {
        sha256,
        gzip,
        signature: version.signature.clone(),
        document,
    });
    Ok(Prepared {
        version,
        entries,
        ready,
        // The memo of the list's last check still holds these entries.
        checked: None,
    })
}
