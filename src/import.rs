//! Import of an existing list in its official format (SPEC §5: numbering continues from the
//! imported Volgnummer) and rendering of the current working state.
//!
//! An import checks what one list can check on its own (every XSD facet, uniqueness,
//! structure); the cross-list references are checked when a list is published, because the
//! lists of a network can only be imported one at a time.

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{AuditOutcome, AuditRecord};
use crate::domain::{Lijst, ListKind, Tijdstempel, Violations};
use crate::storage::{ImportOutcome, ListStore, StorageError};
use crate::xml::{parse_list, render_list};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the {list} document is refused: {violations}")]
    Refused {
        list: ListKind,
        violations: Violations,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Parses `document` as `list` and, only when it is entirely valid, replaces that list's
/// working state with it. `actor` is recorded in the audit log.
pub async fn import_document(
    storage: &dyn ListStore,
    list: ListKind,
    document: &[u8],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportOutcome, ImportError> {
    let lijst = parse_list(document, list)
        .map_err(|violations| ImportError::Refused { list, violations })?;
    let audit = AuditRecord {
        at: now,
        actor_subject: actor.to_owned(),
        actor_fingerprint: None,
        role: None,
        action: "import".into(),
        object: Some(format!("{list} Volgnummer {}", lijst.volgnummer)),
        on_behalf_of: None,
        outcome: AuditOutcome::Allowed,
        reason: None,
    };
    Ok(storage.import_list(&lijst, now, &audit).await?)
}

/// The working state of `list` as the next publication would render it: the next Volgnummer
/// and `now` (to the second) as Tijdstempel. Not signed and not stored.
pub async fn render_working_state(
    storage: &dyn ListStore,
    list: ListKind,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, StorageError> {
    let state = storage.working_state(list).await?;
    let head = storage.list_head(list).await?;
    Ok(render_list(&Lijst {
        tijdstempel: Tijdstempel::new(now.trunc_subsecs(0)),
        volgnummer: head.next_volgnummer(),
        entries: state.entries,
    }))
}
