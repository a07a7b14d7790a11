//! Rows read back into domain values: the column lists and their mappers, shared by every
//! concern.

use super::{Query, RequiredColumns, Row, corrupt, query};
use crate::domain::{
    ListKind, MutationRecord, MutationSla, Operation, SlaCompletion, SlaDeadline, Tijdstempel,
    VersionRecord, Volgnummer,
};
use crate::storage::{MutationRow, StorageError};

pub(super) fn list_of(row: &impl Row, column: usize) -> Result<ListKind, StorageError> {
    row.required_text(column)?.parse().map_err(corrupt)
}

/// The columns `version_from_row` reads, in order.
pub(super) const VERSION_COLUMNS: &str = "versions.list, versions.volgnummer, versions.tijdstempel, \
     versions.valid_from, versions.expires_at, versions.grace_seconds, versions.superseded_at, \
     versions.grace_until, versions.sha256, versions.previous_sha256, versions.heartbeat, \
     versions.size_bytes, versions.body_sha256, versions.purged_at";

pub(super) fn version_from_row(row: &impl Row) -> Result<VersionRecord, StorageError> {
    let list = list_of(row, 0)?;
    Ok(VersionRecord {
        list,
        volgnummer: Volgnummer::new(row.required_int(1)?)
            .map_err(|e| StorageError::Corrupt(format!("{list} version: {e}")))?,
        tijdstempel: Tijdstempel::new(row.required_instant(2)?),
        valid_from: row.required_instant(3)?,
        expires_at: row.required_instant(4)?,
        grace_seconds: row.required_int(5)?,
        superseded_at: row.instant(6)?,
        grace_until: row.instant(7)?,
        sha256: row.required_text(8)?,
        previous_sha256: row.text(9)?,
        heartbeat: row.boolean(10)?,
        size_bytes: row.required_int(11)?,
        body_sha256: row.required_text(12)?,
        purged_at: row.instant(13)?,
    })
}

/// The columns `mutation_from_row` reads, in order.
pub(super) const MUTATION_COLUMNS: &str = "id, list, entry_key, operation, body, base_version, on_behalf_of, \
     reference, urgent, agreed_deadline, effective_from, status, submitted_by, submitted_by_subject, \
     submitted_at, decided_by, decided_by_subject, decided_at, rejection_reason, withdrawn_at, \
     applied_at, published_volgnummer, published_at, sla_deadline, sla_calendar, sla_outcome, \
     sla_completed_at, sla_werkdagen, sla_excluded_reason";

pub(super) fn mutation_row(row: &impl Row) -> Result<MutationRow, StorageError> {
    Ok(MutationRow {
        id: row.required_int(0)?,
        list: list_of(row, 1)?,
        entry_key: row.required_text(2)?,
        operation: match row.required_text(3)?.as_str() {
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            other => return Err(corrupt(format!("unknown mutation operation \"{other}\""))),
        },
        body: row.json(4)?,
        base_version: row.required_int(5)?,
        on_behalf_of: row.required_text(6)?,
        reference: row.required_text(7)?,
        urgent: row.boolean(8)?,
        agreed_deadline: row.instant(9)?,
        effective_from: row.instant(10)?,
        status: row.required_text(11)?.parse().map_err(corrupt)?,
        submitted_by: row.required_text(12)?,
        submitted_by_subject: row.required_text(13)?,
        submitted_at: row.required_instant(14)?,
        decided_by: row.text(15)?,
        decided_by_subject: row.text(16)?,
        decided_at: row.instant(17)?,
        rejection_reason: row.text(18)?,
        withdrawn_at: row.instant(19)?,
        applied_at: row.instant(20)?,
        published_volgnummer: row.int(21)?,
        published_at: row.instant(22)?,
        sla_deadline: row.instant(23)?,
        sla_calendar: row.text(24)?,
        sla_outcome: row
            .text(25)?
            .map(|o| o.parse())
            .transpose()
            .map_err(corrupt)?,
        sla_completed_at: row.instant(26)?,
        sla_werkdagen: row.float(27)?,
        sla_excluded_reason: row.text(28)?,
    })
}

/// A mutation with its stored body (the exact JSON to write into the working state).
pub(super) fn mutation_from_row(
    row: &impl Row,
) -> Result<(MutationRecord, Option<String>), StorageError> {
    let m = mutation_row(row)?;
    let entry = m
        .body
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt(format!("mutation body: {e}")))?;
    let deadline = m
        .sla_deadline
        .zip(m.sla_calendar)
        .map(|(deadline, calendar)| SlaDeadline { deadline, calendar });
    let completion = m
        .sla_outcome
        .zip(m.sla_completed_at)
        .map(|(outcome, completed_at)| SlaCompletion {
            outcome,
            completed_at,
            werkdagen: m.sla_werkdagen,
            excluded_reason: m.sla_excluded_reason,
        });
    let record = MutationRecord {
        id: m.id,
        list: m.list,
        entry_key: m.entry_key,
        operation: m.operation,
        entry,
        base_version: m.base_version,
        on_behalf_of: m.on_behalf_of,
        reference: m.reference,
        urgent: m.urgent,
        agreed_deadline: m.agreed_deadline,
        effective_from: m.effective_from,
        status: m.status,
        submitted_by: m.submitted_by,
        submitted_by_subject: m.submitted_by_subject,
        submitted_at: m.submitted_at,
        decided_by: m.decided_by,
        decided_by_subject: m.decided_by_subject,
        decided_at: m.decided_at,
        rejection_reason: m.rejection_reason,
        withdrawn_at: m.withdrawn_at,
        applied_at: m.applied_at,
        published_volgnummer: m.published_volgnummer,
        published_at: m.published_at,
        sla: MutationSla {
            deadline,
            completion,
        },
    };
    Ok((record, m.body))
}

pub(super) fn volgnummer(
    list: ListKind,
    value: Option<i64>,
) -> Result<Option<Volgnummer>, StorageError> {
    match value.unwrap_or(0) {
        0 => Ok(None),
        n => Volgnummer::new(n)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("{list} head: {e}"))),
    }
}

/// The newest version of `list`, in `VERSION_COLUMNS`.
pub(super) fn current_version_query<'a>(list: ListKind) -> Query<'a> {
    query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE list = $1 ORDER BY volgnummer DESC LIMIT 1"
    ))
    .text(list.as_str())
}
