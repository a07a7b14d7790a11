//! What the next publication of a list would check and decide, without signing or storing
//! anything: the Lijsten page shows it, so that "wordt gepubliceerd" there means `publish`
//! publishes, and "wordt geweigerd" that it refuses (issue 22).
//!
//! It runs the same steps as a publication on the same inputs — the working state from the
//! state cache, the current published versions, `plan_publication` with and without the
//! mass-change confirmation, the rendered bytes' own check for every list of the plan — and
//! stops before signing.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::prepare::next_lijst;
use super::{PublishError, Publisher};
use crate::domain::{EntryDiff, ListEntries, ListKind, Snapshot, Violations, Volgnummer};
use crate::integrity::{PublicationCheck, plan_publication};
use crate::xml::{check_rendered, render_list};

/// The next version of one list, as a publication now would make it.
#[derive(Debug, Clone)]
pub struct Preview {
    pub list: ListKind,
    pub volgnummer: Volgnummer,
    pub entries: usize,
    /// Against the current published version; `None` before this node first published the
    /// list.
    pub changes: Option<EntryDiff>,
    pub verdict: Verdict,
}

/// What `publish` would decide.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Published, together with `together`: the lists whose unpublished changes its
    /// references need (they get their next version in the same transaction).
    Publishes { together: Vec<ListKind> },
    /// Published only with the mass-change confirmation (rule 7); `violations` says why.
    NeedsConfirmation {
        together: Vec<ListKind>,
        violations: Violations,
    },
    /// Refused, confirmed or not: nothing would be published.
    Refused(Violations),
}

impl Publisher {
    /// The next version of `list`, checked and decided exactly as `publish` would now.
    pub async fn preview(&self, list: ListKind) -> Result<Preview, PublishError> {
        let snapshot = self.state.snapshot().await?;
        let published = self.published_entries(&snapshot).await?;
        let threshold = self.settings.mass_change_threshold_percent;
        let now = self.clock.now();
        let preview = tokio::task::spawn_blocking(move || {
            preview(list, &snapshot, &published, threshold, now)
        })
        .await
        .expect("a preview does not panic");
        Ok(preview)
    }
}

fn preview(
    list: ListKind,
    snapshot: &Snapshot,
    published: &BTreeMap<ListKind, Arc<ListEntries>>,
    threshold: u8,
    now: DateTime<Utc>,
) -> Preview {
    let published_entries: BTreeMap<ListKind, &ListEntries> =
        published.iter().map(|(l, e)| (*l, e.as_ref())).collect();
    let plan = |confirm_mass_change| {
        plan_publication(
            list,
            &PublicationCheck {
                snapshot,
                published: &published_entries,
                mass_change_threshold_percent: threshold,
                confirm_mass_change,
            },
        )
    };
    let together =
        |plan: std::collections::BTreeSet<ListKind>| -> Result<Vec<ListKind>, Violations> {
            // The rendered bytes' own check, for every list the publication would store.
            for &l in &plan {
                check_rendered(&render_list(&next_lijst(snapshot.list(l), now)), l)?;
            }
            Ok(plan.into_iter().filter(|&l| l != list).collect())
        };
    let verdict = match plan(false) {
        Ok(planned) => match together(planned) {
            Ok(together) => Verdict::Publishes { together },
            Err(violations) => Verdict::Refused(violations),
        },
        Err(violations) => match plan(true).map(together) {
            Ok(Ok(together)) => Verdict::NeedsConfirmation {
                together,
                violations,
            },
            Ok(Err(rendering)) => Verdict::Refused(rendering),
            Err(_) => Verdict::Refused(violations),
        },
    };
    let listed = snapshot.list(list);
    let entries = &listed.state.entries;
    Preview {
        list,
        volgnummer: listed.standing.head.next_volgnummer(),
        entries: entries.len(),
        changes: published.get(&list).map(|current| current.diff(entries)),
        verdict,
    }
}
