//! The pure part of a publication: plan which lists go together, then render, re-check and
//! sign the next version of each. CPU work and no I/O; `Publisher::publish_attempts` reads
//! the snapshot before and stores the result after.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::SubsecRound;
use sha2::{Digest, Sha256};

use super::document::{gzip, gzip_joined, header_len};
use super::{PublishError, PublishOptions, ReadyToServe, Settings};
use crate::domain::{
    Lijst, ListEntries, ListKind, ListSnapshot, ListStanding, Snapshot, Tijdstempel, VersionRecord,
};
use crate::integrity::{PublicationCheck, plan_publication};
use crate::signing::{SigningKey, VersionProperties, hex, sign_version};
use crate::storage::NewVersion;
use crate::xml::{CheckedEntries, Rendered, check_rendered_entries, render_version};

pub(super) struct Prepared {
    pub(super) version: NewVersion,
    /// The entries of the version, for the contents cache, where known.
    pub(super) entries: Option<Arc<ListEntries>>,
    /// When an observer serves it.
    pub(super) ready: Option<ReadyToServe>,
    /// What the check saw of this version, for the next check of the list (when served).
    pub(super) checked: Option<CheckedEntries>,
}

/// What every version of one publication is made with.
pub(super) struct Publication<'a> {
    pub(super) key: &'a SigningKey,
    pub(super) settings: Settings,
    pub(super) options: &'a PublishOptions,
    pub(super) now: chrono::DateTime<chrono::Utc>,
    /// Also compress the whole document for serving (an observer serves it at once).
    pub(super) for_serving: bool,
    /// The entries each list's last publication checked (`check_rendered_entries`).
    pub(super) earlier: &'a BTreeMap<ListKind, Arc<CheckedEntries>>,
}

/// Plans which lists a publication of `list` takes along, then renders, re-checks and signs
/// the next version of each (CPU work, no I/O).
pub(super) fn prepare_plan(
    list: ListKind,
    snapshot: Arc<Snapshot>,
    published: &BTreeMap<ListKind, Arc<ListEntries>>,
    publication: &Publication<'_>,
) -> Result<Vec<Prepared>, PublishError> {
    let settings = publication.settings;
    // A list without parsed published entries but with a current version is unchanged
    // since it (`Publisher::published_entries`): its working state is what is published.
    let published: BTreeMap<ListKind, &ListEntries> = snapshot
        .lists
        .iter()
        .filter_map(|(l, listed)| match published.get(l) {
            Some(entries) => Some((*l, entries.as_ref())),
            None => listed
                .standing
                .unchanged_since_published()
                .then_some((*l, &listed.state.entries)),
        })
        .collect();
    // The list asked for is in every plan that is not refused: it is rendered while the plan
    // is made (a tenth of an approval at 10 000 Zorgaanbieders each).
    let (plan, next) = std::thread::scope(|scope| {
        let rendering = scope.spawn(|| render_next(snapshot.list(list), publication.now));
        let plan = plan_publication(
            list,
            &PublicationCheck {
                snapshot: &snapshot,
                published: &published,
                mass_change_threshold_percent: settings.mass_change_threshold_percent,
                confirm_mass_change: publication.options.confirm_mass_change,
            },
        );
        // Planning is quicker than rendering: the entries that the contents cache keeps of the
        // published version are copied meanwhile (~25 ms at 10 000 Zorgaanbieders).
        let copy = Arc::new(snapshot.list(list).state.entries.clone());
        let rendered = rendering.join().expect("rendering does not panic");
        (plan, (rendered, copy))
    });
    let plan = plan.map_err(|violations| PublishError::Refused { list, violations })?;
    let mut next = Some(next);
    plan.into_iter()
        .map(|l| {
            let listed = snapshot.list(l);
            let (rendered, entries) = match next.take_if(|_| l == list) {
                Some(next) => next,
                None => (
                    render_next(listed, publication.now),
                    Arc::new(listed.state.entries.clone()),
                ),
            };
            prepare(l, listed, rendered, entries, publication)
        })
        .collect()
}

/// The Tijdstempel of a version published at `now`: whole seconds, like the lists MedMij has
/// always published.
pub(super) fn tijdstempel_at(now: chrono::DateTime<chrono::Utc>) -> Tijdstempel {
    Tijdstempel::new(now.trunc_subsecs(0))
}

/// The next version of a list at `now`: its working state with the next Volgnummer.
pub(super) fn next_lijst(listed: &ListSnapshot, now: chrono::DateTime<chrono::Utc>) -> Lijst {
    Lijst {
        tijdstempel: tijdstempel_at(now),
        volgnummer: listed.standing.head.next_volgnummer(),
        entries: listed.state.entries.clone(),
    }
}

/// The bytes of the next version of a list at `now` (`next_lijst`, without copying entries).
fn render_next(listed: &ListSnapshot, now: chrono::DateTime<chrono::Utc>) -> Rendered {
    let expected_size = listed
        .standing
        .current
        .as_ref()
        .map_or(0, |c| c.size_bytes.max(0) as usize);
    render_version(
        tijdstempel_at(now),
        listed.standing.head.next_volgnummer(),
        &listed.state.entries,
        expected_size,
    )
}

/// Re-checks and signs the next version of `list`, rendered by `render_next`; `entries` are
/// a copy of its working state's.
fn prepare(
    list: ListKind,
    listed: &ListSnapshot,
    Rendered {
        document,
        entries: ranges,
    }: Rendered,
    entries: Arc<ListEntries>,
    publication: &Publication<'_>,
) -> Result<Prepared, PublishError> {
    let Publication {
        for_serving,
        earlier,
        ..
    } = *publication;
    // Shared, not copied, by the served version and the memo of checked entries.
    let document = Bytes::from(document);
    let split = header_len(&document);
    let (header, body) = document.split_at(split);

    // The check reads only entries it has not seen in this list's last checked version
    // (`check_rendered_entries`). Without such a memo (the CLI), a body byte for byte that of
    // the current version (a heartbeat) is not checked again: it was checked when that version
    // was published, and its header holds only the new Volgnummer and Tijdstempel (issue 25:
    // the check was a third of a CLI heartbeat of 10 000 Zorgaanbieders).
    //
    // Two passes side by side, about equally long at 10 000 Zorgaanbieders (~55 ms): the
    // body's digest and the document's; and the body's gzip and the check with a memo.
    // Without a memo the whole check runs after the body's digest, where the heartbeat is
    // known. The served gzip is the header joined to the body's gzip.
    let earlier = earlier.get(&list).map(Arc::as_ref);
    let check = || check_rendered_entries(document.clone(), list, &ranges, earlier);
    let heartbeat_of = |body_sha256: &str| {
        listed
            .standing
            .current
            .as_ref()
            .is_some_and(|c| c.body_sha256 == body_sha256)
    };
    let ((body_sha256, heartbeat, checked_whole, sha256), (body_gzip, checked_with_memo)) =
        std::thread::scope(|scope| {
            let digesting = scope.spawn(|| {
                let body_sha256 = hex(&Sha256::digest(body));
                let heartbeat = heartbeat_of(&body_sha256);
                let checked = (earlier.is_none() && !heartbeat).then(check);
                (body_sha256, heartbeat, checked, Sha256::digest(&document))
            });
            let compressed = (gzip(body), earlier.is_some().then(check));
            (digesting.join().expect("digests do not panic"), compressed)
        });
    let checked = checked_whole
        .or(checked_with_memo)
        .transpose()
        .map_err(|violations| PublishError::RenderCheck { list, violations })?;
    let served_gzip = for_serving.then(|| {
        gzip_joined(header, &body_gzip, body.len()).expect("the body's own gzip is one member")
    });

    let version = sign_next(
        list,
        &listed.standing,
        Made {
            sha256: sha256.into(),
            body_sha256,
            size_bytes: document.len() as i64,
            heartbeat,
            // `header` borrows the document, which the served version takes.
            header: header.to_vec(),
            body_size: body.len() as i64,
            body_gzip,
        },
        publication,
    )?;
    let ready = served_gzip.map(|gzip| ReadyToServe {
        sha256: sha256.into(),
        gzip,
        signature: version.signature.clone(),
        document,
    });
    Ok(Prepared {
        ready,
        version,
        entries: Some(entries),
        checked: checked.filter(|_| for_serving).map(|c| c.checked),
    })
}

/// The bytes of a new version, as its record and the store describe them.
pub(super) struct Made {
    pub(super) sha256: [u8; 32],
    pub(super) body_sha256: String,
    pub(super) size_bytes: i64,
    /// The body is the current version's.
    pub(super) heartbeat: bool,
    pub(super) header: Vec<u8>,
    pub(super) body_size: i64,
    pub(super) body_gzip: Vec<u8>,
}

/// The next version of a list that stands at `standing`, with the bytes `made`: its record,
/// numbered and timed, and its signature.
pub(super) fn sign_next(
    list: ListKind,
    standing: &ListStanding,
    made: Made,
    publication: &Publication<'_>,
) -> Result<NewVersion, PublishError> {
    let Publication {
        key,
        settings,
        options,
        now,
        ..
    } = *publication;
    let tijdstempel = tijdstempel_at(now);
    let volgnummer = standing.head.next_volgnummer();
    let valid_from = tijdstempel.instant();
    let expires_at = valid_from + settings.max_validity;
    let previous_sha256 = standing.current.as_ref().map(|c| c.sha256.clone());
    let properties = VersionProperties {
        list,
        volgnummer,
        tijdstempel,
        valid_from: Tijdstempel::new(valid_from),
        expires_at: Tijdstempel::new(expires_at),
        grace_seconds: settings.grace_period.num_seconds().max(0) as u64,
        previous_sha256: previous_sha256.clone(),
    };
    let signature = sign_version(key, &made.sha256, &properties)?;
    let record = VersionRecord {
        list,
        volgnummer,
        tijdstempel,
        valid_from,
        expires_at,
        grace_seconds: settings.grace_period.num_seconds(),
        superseded_at: None,
        grace_until: None,
        sha256: hex(&made.sha256),
        previous_sha256,
        heartbeat: made.heartbeat,
        size_bytes: made.size_bytes,
        body_sha256: made.body_sha256,
        purged_at: None,
    };
    Ok(NewVersion {
        record,
        header: made.header,
        body_size: made.body_size,
        body_gzip: made.body_gzip,
        signature,
        published_by: options.published_by.clone(),
        based_on_revision: standing.revision,
    })
}
