//! The pure part of a publication: plan which lists go together, then render, re-check and
//! sign the next version of each. CPU work and no I/O; `Publisher::publish_attempts` reads
//! the snapshot before and stores the result after.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::SubsecRound;
use sha2::{Digest, Sha256};

use super::document::{gzip, header_len};
use super::{PublishError, PublishOptions, ReadyToServe, Settings};
use crate::domain::{
    Lijst, ListEntries, ListKind, ListSnapshot, Snapshot, Tijdstempel, VersionRecord,
};
use crate::integrity::{PublicationCheck, plan_publication};
use crate::signing::{SigningKey, VersionProperties, hex, sign_version};
use crate::storage::NewVersion;
use crate::xml::{check_rendered, render_list};

pub(super) struct Prepared {
    pub(super) version: NewVersion,
    pub(super) entries: Arc<ListEntries>,
    /// When an observer serves it.
    pub(super) ready: Option<ReadyToServe>,
}

/// What every version of one publication is made with.
pub(super) struct Publication<'a> {
    pub(super) key: &'a SigningKey,
    pub(super) settings: Settings,
    pub(super) options: &'a PublishOptions,
    pub(super) now: chrono::DateTime<chrono::Utc>,
    /// Also compress the whole document for serving (an observer serves it at once).
    pub(super) for_serving: bool,
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
                .unchanged_since_published()
                .then_some((*l, &listed.state.entries)),
        })
        .collect();
    let plan = plan_publication(
        list,
        &PublicationCheck {
            snapshot: &snapshot,
            published: &published,
            mass_change_threshold_percent: settings.mass_change_threshold_percent,
            confirm_mass_change: publication.options.confirm_mass_change,
        },
    )
    .map_err(|violations| PublishError::Refused { list, violations })?;
    plan.into_iter()
        .map(|l| prepare(l, snapshot.list(l), publication))
        .collect()
}

/// The next version of a list at `now`: its working state with the next Volgnummer.
pub(super) fn next_lijst(listed: &ListSnapshot, now: chrono::DateTime<chrono::Utc>) -> Lijst {
    Lijst {
        // Whole seconds, like the lists MedMij has always published.
        tijdstempel: Tijdstempel::new(now.trunc_subsecs(0)),
        volgnummer: listed.head.next_volgnummer(),
        entries: listed.state.entries.clone(),
    }
}

/// Renders, re-checks and signs the next version of `list`.
fn prepare(
    list: ListKind,
    listed: &ListSnapshot,
    publication: &Publication<'_>,
) -> Result<Prepared, PublishError> {
    let Publication {
        key,
        settings,
        options,
        now,
        for_serving,
    } = *publication;
    let lijst = next_lijst(listed, now);
    let tijdstempel = lijst.tijdstempel;
    let document = render_list(&lijst);
    let split = header_len(&document);
    let (header, body) = document.split_at(split);

    // A body byte for byte that of the current version (a heartbeat) was checked when that
    // version was published; its header holds only the new Volgnummer and Tijdstempel. The
    // check re-parses the whole document (a third of a CLI heartbeat of 10 000
    // Zorgaanbieders), so it is left out then (issue 25).
    let body_sha256 = hex(&Sha256::digest(body));
    let heartbeat = listed
        .current
        .as_ref()
        .is_some_and(|c| c.body_sha256 == body_sha256);
    // The facet check, the digest and the compressions are independent: run them side by
    // side.
    let (checked, served_gzip, (sha256, body_gzip)) = std::thread::scope(|scope| {
        let check = (!heartbeat).then(|| scope.spawn(|| check_rendered(&document, list)));
        let served_gzip = for_serving.then(|| scope.spawn(|| gzip(&document)));
        let digests = (Sha256::digest(&document), gzip(body));
        (
            check.map(|c| c.join().expect("the check does not panic")),
            served_gzip.map(|g| g.join().expect("compression does not panic")),
            digests,
        )
    });
    if let Some(checked) = checked {
        checked.map_err(|violations| PublishError::RenderCheck { list, violations })?;
    }

    let valid_from = tijdstempel.instant();
    let expires_at = valid_from + settings.max_validity;
    let previous_sha256 = listed.current.as_ref().map(|c| c.sha256.clone());
    let properties = VersionProperties {
        list,
        volgnummer: lijst.volgnummer,
        tijdstempel,
        valid_from: Tijdstempel::new(valid_from),
        expires_at: Tijdstempel::new(expires_at),
        grace_seconds: settings.grace_period.num_seconds().max(0) as u64,
        previous_sha256: previous_sha256.clone(),
    };
    let signature = sign_version(key, &sha256.into(), &properties)?;
    let record = VersionRecord {
        list,
        volgnummer: lijst.volgnummer,
        tijdstempel,
        valid_from,
        expires_at,
        grace_seconds: settings.grace_period.num_seconds(),
        superseded_at: None,
        grace_until: None,
        sha256: hex(&sha256),
        previous_sha256,
        heartbeat,
        size_bytes: document.len() as i64,
        body_sha256,
        purged_at: None,
    };
    // `header` and `body` borrow the document, which the served version takes.
    let header = header.to_vec();
    let body_size = body.len() as i64;
    let ready = served_gzip.map(|gzip| ReadyToServe {
        sha256: sha256.into(),
        gzip,
        signature: signature.clone(),
        document,
    });
    Ok(Prepared {
        ready,
        version: NewVersion {
            record,
            header,
            body_size,
            body_gzip,
            signature,
            published_by: options.published_by.clone(),
            based_on_revision: listed.revision,
        },
        entries: Arc::new(lijst.entries),
    })
}
