//! The check of a rendered document that reads only the entries it has not seen before.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;

use super::{Checker, Part, check_rendered};
use crate::domain::{ListKind, Violations};

/// The entries of a rendered document that passed `check_rendered_entries`, kept so that
/// the next check of the same list reads only the entries that changed (issue 25: the check
/// of a 10 000-Zorgaanbieder ZAL took 160 ms of an approval's 280 ms; an approval changes one).
pub struct CheckedEntries {
    kind: ListKind,
    document: Bytes,
    /// Each entry's range in `document` by the CRC-32 of its bytes: a CRC only finds a
    /// candidate, which is then compared byte for byte.
    by_crc: HashMap<u32, Range<usize>>,
}

impl CheckedEntries {
    /// The bytes of an entry checked before that equal `entry`, if any.
    fn contains(&self, entry: &[u8]) -> bool {
        self.by_crc
            .get(&crc32fast::hash(entry))
            .and_then(|range| self.document.get(range.clone()))
            .is_some_and(|earlier| earlier == entry)
    }
}

/// What `check_rendered_entries` found.
pub struct CheckedDocument {
    pub checked: CheckedEntries,
    /// Entries read anew (the others equal entries checked before).
    pub entries_read: usize,
}

/// Checks a rendered `kind` document as `check_rendered` does, given where its entries are
/// (`render_version`), reading only the entries that are not byte for byte entries of
/// `earlier`. Equivalent to `check_rendered`, because the check of an entry depends only on its
/// own bytes: the document without its entries (header, the element around them and the end)
/// is checked whole, with the place the entries were cut from required to be directly inside
/// that element and between two events; each entry is checked alone as exactly one entry
/// element; and an entry equal to one of `earlier` passed that same check. Ranges that are not
/// in order and adjacent are not trusted: the whole document is read then.
pub fn check_rendered_entries(
    document: Bytes,
    kind: ListKind,
    entries: &[Range<usize>],
    earlier: Option<&CheckedEntries>,
) -> Result<CheckedDocument, Violations> {
    let earlier = earlier.filter(|e| e.kind == kind);
    let adjacent = entries
        .windows(2)
        .all(|w| w.first().map(|r| r.end) == w.get(1).map(|r| r.start));
    let whole = |document: Bytes| {
        check_rendered(&document, kind)?;
        Ok(CheckedDocument {
            checked: CheckedEntries {
                kind,
                document,
                by_crc: HashMap::new(),
            },
            entries_read: 0,
        })
    };
    let (Some(first), Some(last), true) = (entries.first(), entries.last(), adjacent) else {
        return whole(document);
    };
    let (Some(head), Some(tail)) = (document.get(..first.start), document.get(last.end..)) else {
        return whole(document);
    };
    let mut skeleton = Checker::new(
        kind,
        Part::Document {
            cut: Some(head.len()),
        },
    );
    let without_entries = [head, tail].concat();
    skeleton.read(&without_entries)?;
    skeleton.finish()?;

    let mut violations = Vec::new();
    let mut by_crc = HashMap::with_capacity(entries.len());
    let mut entries_read = 0;
    for range in entries {
        let entry = document.get(range.clone()).unwrap_or_default();
        let crc = crc32fast::hash(entry);
        let seen = earlier.is_some_and(|e| e.contains(entry));
        if !seen {
            entries_read += 1;
            let mut checker = Checker::new(kind, Part::Entry);
            if let Err(v) = checker.read(entry).and_then(|()| checker.finish()) {
                violations.extend(v.into_vec());
            }
        }
        by_crc.entry(crc).or_insert_with(|| range.clone());
    }
    match Violations::from_vec(violations) {
        Some(v) => Err(v),
        None => Ok(CheckedDocument {
            checked: CheckedEntries {
                kind,
                document,
                by_crc,
            },
            entries_read,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Rule;
    use crate::sample::{SampleSize, network};
    use crate::xml::{Rendered, render_version};

    fn rendered(list: &crate::domain::Lijst) -> (Bytes, Vec<Range<usize>>) {
        let Rendered { document, entries } =
            render_version(list.tijdstempel, list.volgnummer, &list.entries, 0);
        (Bytes::from(document), entries)
    }

    /// The same bytes with `from` replaced by `to` once, and the entry ranges moved with it.
    fn edited(
        (document, entries): &(Bytes, Vec<Range<usize>>),
        from: &str,
        to: &str,
    ) -> (Bytes, Vec<Range<usize>>) {
        let text = std::str::from_utf8(document).unwrap();
        let at = text.find(from).expect("the text to edit");
        let grow = to.len() as isize - from.len() as isize;
        let shift = |i: usize| {
            if i > at {
                (i as isize + grow) as usize
            } else {
                i
            }
        };
        let ranges = entries
            .iter()
            .map(|r| shift(r.start)..shift(r.end))
            .collect();
        (Bytes::from(text.replacen(from, to, 1)), ranges)
    }

    #[test]
    fn only_entries_not_checked_before_are_read_again() {
        let net = network(SampleSize::realistic(50), chrono::Utc::now());
        for list in [&net.zal, &net.ocl, &net.gnl, &net.whitelist] {
            let kind = list.kind();
            let (document, entries) = rendered(list);
            let first = check_rendered_entries(document.clone(), kind, &entries, None).unwrap();
            assert_eq!(
                first.entries_read,
                entries.len(),
                "{kind}: nothing seen before"
            );
            let again = check_rendered_entries(document, kind, &entries, Some(&first.checked));
            assert_eq!(
                again.unwrap().entries_read,
                0,
                "{kind}: every entry seen before"
            );
        }

        let zal = rendered(&net.zal);
        let first = check_rendered_entries(zal.0.clone(), ListKind::Zal, &zal.1, None).unwrap();
        let renamed = edited(
            &zal,
            "zorgaanbiedera@medmij<",
            "zorgaanbiederanders@medmij<",
        );
        let checked =
            check_rendered_entries(renamed.0, ListKind::Zal, &renamed.1, Some(&first.checked));
        assert_eq!(checked.unwrap().entries_read, 1, "one entry changed");

        // A changed entry that breaks its facet is found although every other one is skipped.
        let broken = edited(&zal, "zorgaanbiedera@medmij<", "zorgaanbiedera@MEDMIJ<");
        let refused =
            check_rendered_entries(broken.0, ListKind::Zal, &broken.1, Some(&first.checked));
        let violations = refused.err().expect("the upper case is refused");
        assert_eq!(violations.as_slice()[0].rule, Rule::Pattern);
        assert!(
            violations.as_slice()[0]
                .path
                .starts_with("Zorgaanbiederslijst/Zorgaanbieders/")
        );

        // A memo of another list is not used.
        let whitelist = rendered(&net.whitelist);
        let other = check_rendered_entries(whitelist.0, ListKind::Whitelist, &whitelist.1, None);
        let checked = check_rendered_entries(
            zal.0.clone(),
            ListKind::Zal,
            &zal.1,
            Some(&other.unwrap().checked),
        );
        assert_eq!(checked.unwrap().entries_read, zal.1.len());
    }

    #[test]
    fn entry_ranges_that_do_not_fit_the_document_are_refused_or_not_trusted() {
        let net = network(SampleSize::realistic(5), chrono::Utc::now());
        let (document, entries) = rendered(&net.zal);
        let check = |ranges: Vec<Range<usize>>| {
            check_rendered_entries(document.clone(), ListKind::Zal, &ranges, None)
        };
        let shifted = entries.iter().map(|r| r.start + 3..r.end + 3).collect();
        assert!(check(shifted).is_err(), "entries cut inside their elements");
        let in_header = vec![0..entries[0].start, entries[0].start..entries[4].end];
        assert!(check(in_header).is_err(), "the header is not an entry");
        let two_in_one = vec![
            entries[0].start..entries[1].end,
            entries[1].end..entries[4].end,
        ];
        assert!(check(two_in_one).is_err(), "an entry is one element");
        // Ranges with a gap are not trusted: the whole document is read, as `check_rendered`.
        let gap = vec![entries[0].clone(), entries[2].clone()];
        let whole = check(gap).expect("the document itself is valid");
        assert_eq!(whole.entries_read, 0);
        assert!(
            whole.checked.by_crc.is_empty(),
            "nothing is remembered from an unchecked split"
        );
        // A broken document with a gap in its ranges is still refused.
        let broken = edited(&(document.clone(), entries.clone()), "@medmij<", "@MEDMIJ<");
        let gap = vec![broken.1[0].clone(), broken.1[2].clone()];
        assert!(check_rendered_entries(broken.0, ListKind::Zal, &gap, None).is_err());
    }
}
