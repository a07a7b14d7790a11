//! PostgreSQL: the backend for several stateless replicas. Writers that touch a list's
//! numbering lock its `list_heads` row, so replicas are serialised in the database; entry
//! changes lock the entry row.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::{
    AuditOutcome, AuditQuery, AuditRecord, Decision, EntryChange, ImportOutcome, ListHead,
    ListSnapshot, MutationDecision, MutationQuery, MutationRecord, MutationStatus, NewMutation,
    NewVersion, Snapshot, StorageError, StoredVersion, WorkingState, by_list, conflict,
    mutation_kinds, removed_by_import, version_record, volgnummer_from_db, working_state_from_rows,
};
use crate::domain::{Lijst, ListKind, Tijdstempel, VersionRecord, Volgnummer};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

async fn insert_audit(
    tx: &mut Transaction<'static, Postgres>,
    record: &AuditRecord,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_subject, actor_fingerprint, role, action, object, \
         on_behalf_of, outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.at)
    .bind(&record.actor_subject)
    .bind(&record.actor_fingerprint)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.object)
    .bind(&record.on_behalf_of)
    .bind(record.outcome.as_str())
    .bind(&record.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The columns `version_from_row` reads, in order.
macro_rules! version_columns {
    () => {
        "versions.list, versions.volgnummer, versions.tijdstempel, versions.valid_from, \
         versions.expires_at, versions.grace_seconds, versions.superseded_at, versions.grace_until, \
         versions.sha256, versions.previous_sha256, versions.heartbeat, versions.size_bytes, \
         versions.body_sha256"
    };
}

fn version_from_row(row: &sqlx::postgres::PgRow) -> Result<VersionRecord, StorageError> {
    version_record(
        row.get(0),
        row.get(1),
        Tijdstempel::new(row.get(2)),
        [row.get(3), row.get(4)],
        row.get(5),
        [row.get(6), row.get(7)],
        row.get(8),
        row.get(9),
        row.get(10),
        row.get(11),
        row.get(12),
    )
}

/// Writes one entry change if the entry is still at `base_version` (row lock on the entry);
/// returns the new version.
async fn write_change(
    tx: &mut Transaction<'static, Postgres>,
    list: ListKind,
    key: &str,
    body: Option<&str>,
    base_version: i64,
    at: DateTime<Utc>,
) -> Result<i64, StorageError> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM entries WHERE list = $1 AND entry_key = $2 FOR UPDATE",
    )
    .bind(list.as_str())
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    if current.unwrap_or(0) != base_version {
        return Err(conflict(list, key, base_version, current));
    }
    // A concurrent first insert of the same key makes this affect no row: a conflict too.
    let written = sqlx::query(
        "INSERT INTO entries (list, entry_key, version, body, updated_at) \
         VALUES ($1, $2, $3, $4::jsonb, $5) \
         ON CONFLICT (list, entry_key) DO UPDATE SET version = EXCLUDED.version, \
         body = EXCLUDED.body, updated_at = EXCLUDED.updated_at \
         WHERE entries.version = $6",
    )
    .bind(list.as_str())
    .bind(key)
    .bind(base_version + 1)
    .bind(body)
    .bind(at)
    .bind(base_version)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if written == 0 {
        return Err(conflict(list, key, base_version, Some(base_version + 1)));
    }
    let removed = match body {
        None => vec![key.to_owned()],
        Some(_) => Vec::new(),
    };
    state_changed(tx, list, &removed, at).await?;
    Ok(base_version + 1)
}

/// The columns `mutation_from_row` reads, in order.
const MUTATION_COLUMNS: &str = "id, list, entry_key, operation, body::text, base_version, \
     on_behalf_of, reference, urgent, agreed_deadline, effective_from, status, submitted_by, \
     submitted_by_subject, submitted_at, decided_by, decided_by_subject, decided_at, \
     rejection_reason, withdrawn_at, applied_at, published_volgnummer, published_at";

fn mutation_from_row(row: &sqlx::postgres::PgRow) -> Result<MutationRecord, StorageError> {
    let (list, operation, status, entry) =
        mutation_kinds(row.get(1), row.get(3), row.get(11), row.get(4))?;
    Ok(MutationRecord {
        id: row.get(0),
        list,
        entry_key: row.get(2),
        operation,
        entry,
        base_version: row.get(5),
        on_behalf_of: row.get(6),
        reference: row.get(7),
        urgent: row.get(8),
        agreed_deadline: row.get(9),
        effective_from: row.get(10),
        status,
        submitted_by: row.get(12),
        submitted_by_subject: row.get(13),
        submitted_at: row.get(14),
        decided_by: row.get(15),
        decided_by_subject: row.get(16),
        decided_at: row.get(17),
        rejection_reason: row.get(18),
        withdrawn_at: row.get(19),
        applied_at: row.get(20),
        published_volgnummer: row.get(21),
        published_at: row.get(22),
    })
}

/// A mutation, locked, with its stored body (the exact JSON to write into the working state).
async fn read_mutation(
    tx: &mut Transaction<'static, Postgres>,
    id: i64,
) -> Result<(MutationRecord, Option<String>), StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StorageError::UnknownMutation(id))?;
    Ok((mutation_from_row(&row)?, row.get(4)))
}

/// Applies an approved mutation's change and records when.
async fn apply_mutation(
    tx: &mut Transaction<'static, Postgres>,
    record: &MutationRecord,
    body: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    write_change(
        tx,
        record.list,
        &record.entry_key,
        body,
        record.base_version,
        at,
    )
    .await?;
    sqlx::query("UPDATE mutations SET applied_at = $1 WHERE id = $2")
        .bind(at)
        .bind(record.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const OPEN_MUTATION: &str = "SELECT id FROM mutations WHERE list = $1 AND entry_key = $2 \
     AND (status = 'submitted' OR (status = 'approved' AND applied_at IS NULL))";

/// Records that a list's working state changed (taking the list head's row lock, which
/// serialises the change with publications); a GNL removal retires the id for good.
async fn state_changed(
    tx: &mut Transaction<'static, Postgres>,
    list: ListKind,
    removed: &[String],
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE list_heads SET revision = revision + 1 WHERE list = $1")
        .bind(list.as_str())
        .execute(&mut **tx)
        .await?;
    if list == ListKind::Gnl && !removed.is_empty() {
        sqlx::query(
            "INSERT INTO retired_gegevensdienst_ids (gegevensdienst_id, retired_at) \
             SELECT id, $2 FROM UNNEST($1::text[]) AS t (id) ON CONFLICT DO NOTHING",
        )
        .bind(removed)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn read_head(
    executor: impl sqlx::PgExecutor<'_>,
    list: ListKind,
) -> Result<ListHead, StorageError> {
    let row = sqlx::query(
        "SELECT last_volgnummer, imported_volgnummer, imported_at FROM list_heads WHERE list = $1",
    )
    .bind(list.as_str())
    .fetch_one(executor)
    .await?;
    Ok(ListHead {
        list,
        last_volgnummer: volgnummer_from_db(list, row.get(0))?,
        imported_volgnummer: volgnummer_from_db(list, row.get::<Option<i64>, _>(1).unwrap_or(0))?,
        imported_at: row.get(2),
    })
}

#[async_trait]
impl super::Storage for PostgresStorage {
    async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn working_state(&self, list: ListKind) -> Result<WorkingState, StorageError> {
        let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
            "SELECT entry_key, body::text, version FROM entries WHERE list = $1",
        )
        .bind(list.as_str())
        .fetch_all(&self.pool)
        .await?;
        working_state_from_rows(list, rows)
    }

    async fn apply_change(
        &self,
        change: &EntryChange,
        at: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let mut tx = self.pool.begin().await?;
        let body = change.body();
        let version = write_change(
            &mut tx,
            change.list(),
            change.key(),
            body.as_deref(),
            change.base_version(),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn import_list(
        &self,
        list: &Lijst,
        at: DateTime<Utc>,
        audit: &AuditRecord,
    ) -> Result<ImportOutcome, StorageError> {
        let kind = list.kind();
        let rows = list.entries.to_json_rows();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 FROM list_heads WHERE list = $1 FOR UPDATE")
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await?;
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT entry_key FROM entries WHERE list = $1 AND body IS NOT NULL",
        )
        .bind(kind.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let removed = removed_by_import(live, &rows);
        sqlx::query(
            "UPDATE entries SET body = NULL, version = version + 1, updated_at = $1 \
             WHERE list = $2 AND entry_key = ANY($3)",
        )
        .bind(at)
        .bind(kind.as_str())
        .bind(&removed)
        .execute(&mut *tx)
        .await?;
        let (keys, bodies): (Vec<String>, Vec<String>) = rows.iter().cloned().unzip();
        let changed = sqlx::query(
            "INSERT INTO entries (list, entry_key, version, body, updated_at) \
             SELECT $1, k, 1, b::jsonb, $4 FROM UNNEST($2::text[], $3::text[]) AS t (k, b) \
             ON CONFLICT (list, entry_key) DO UPDATE SET version = entries.version + 1, \
             body = EXCLUDED.body, updated_at = EXCLUDED.updated_at \
             WHERE entries.body IS DISTINCT FROM EXCLUDED.body",
        )
        .bind(kind.as_str())
        .bind(&keys)
        .bind(&bodies)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
        if changed > 0 || !removed.is_empty() {
            state_changed(&mut tx, kind, &removed, at).await?;
        }
        sqlx::query(
            "UPDATE list_heads SET last_volgnummer = GREATEST(last_volgnummer, $1), \
             imported_volgnummer = $1, imported_at = $2 WHERE list = $3",
        )
        .bind(list.volgnummer.get())
        .bind(at)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        let head = read_head(&mut *tx, kind).await?;
        tx.commit().await?;
        Ok(ImportOutcome {
            entries: rows.len(),
            removed: removed.len(),
            changed,
            head,
        })
    }

    async fn list_head(&self, list: ListKind) -> Result<ListHead, StorageError> {
        read_head(&self.pool, list).await
    }

    async fn revisions(&self) -> Result<std::collections::BTreeMap<ListKind, i64>, StorageError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT list, revision FROM list_heads")
            .fetch_all(&self.pool)
            .await?;
        Ok(by_list(rows)?.into_iter().collect())
    }

    async fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let mut lists = std::collections::BTreeMap::new();
        for list in ListKind::ALL {
            let rows = sqlx::query_as::<_, (String, Option<String>, i64)>(
                "SELECT entry_key, body::text, version FROM entries WHERE list = $1",
            )
            .bind(list.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let state = working_state_from_rows(list, rows)?;
            let head = read_head(&mut *tx, list).await?;
            let revision: i64 =
                sqlx::query_scalar("SELECT revision FROM list_heads WHERE list = $1")
                    .bind(list.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            let current = sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM versions WHERE list = $1 ORDER BY volgnummer DESC LIMIT 1"
            ))
            .bind(list.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| version_from_row(&row))
            .transpose()?;
            lists.insert(
                list,
                ListSnapshot {
                    state,
                    head,
                    revision,
                    current,
                },
            );
        }
        let retired_gegevensdienst_ids = sqlx::query_scalar::<_, String>(
            "SELECT gegevensdienst_id FROM retired_gegevensdienst_ids",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        tx.commit().await?;
        Ok(Snapshot {
            lists,
            retired_gegevensdienst_ids,
        })
    }

    async fn store_version(&self, version: &NewVersion) -> Result<(), StorageError> {
        let record = &version.record;
        let list = record.list;
        let mut tx = self.pool.begin().await?;
        // The row lock on the list head serialises publications across replicas.
        let (last, revision): (i64, i64) = sqlx::query_as(
            "SELECT last_volgnummer, revision FROM list_heads WHERE list = $1 FOR UPDATE",
        )
        .bind(list.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if last + 1 != record.volgnummer.get() || revision != version.based_on_revision {
            return Err(StorageError::Stale { list });
        }
        sqlx::query(
            "INSERT INTO version_bodies (sha256, size_bytes, compression, compressed) \
             VALUES ($1, $2, 'gzip', $3) ON CONFLICT DO NOTHING",
        )
        .bind(&record.body_sha256)
        .bind(version.body_size)
        .bind(&version.body_gzip)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE versions SET superseded_at = $1, \
             grace_until = $1 + grace_seconds * INTERVAL '1 second' \
             WHERE list = $2 AND superseded_at IS NULL",
        )
        .bind(record.tijdstempel.instant())
        .bind(list.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO versions (list, volgnummer, tijdstempel, valid_from, expires_at, grace_seconds, \
             header, body_sha256, sha256, size_bytes, previous_sha256, signature, heartbeat, published_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(list.as_str())
        .bind(record.volgnummer.get())
        .bind(record.tijdstempel.instant())
        .bind(record.valid_from)
        .bind(record.expires_at)
        .bind(record.grace_seconds)
        .bind(&version.header)
        .bind(&record.body_sha256)
        .bind(&record.sha256)
        .bind(record.size_bytes)
        .bind(&record.previous_sha256)
        .bind(&version.signature)
        .bind(record.heartbeat)
        .bind(&version.published_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE list_heads SET last_volgnummer = $1 WHERE list = $2")
            .bind(record.volgnummer.get())
            .bind(list.as_str())
            .execute(&mut *tx)
            .await?;
        // The revision check above proves every applied mutation is in this version.
        sqlx::query(
            "UPDATE mutations SET status = 'published', published_volgnummer = $1, published_at = $2 \
             WHERE list = $3 AND status = 'approved' AND applied_at IS NOT NULL",
        )
        .bind(record.volgnummer.get())
        .bind(record.tijdstempel.instant())
        .bind(list.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn current_version(&self, list: ListKind) -> Result<Option<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = $1 ORDER BY volgnummer DESC LIMIT 1"
        ))
        .bind(list.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| version_from_row(&row))
        .transpose()
    }

    async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = $1 ORDER BY volgnummer"
        ))
        .bind(list.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn version(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<Option<StoredVersion>, StorageError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            ", header, compressed, signature FROM versions JOIN version_bodies \
             ON version_bodies.sha256 = versions.body_sha256 WHERE list = $1 AND volgnummer = $2"
        ))
        .bind(list.as_str())
        .bind(volgnummer.get())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredVersion {
                record: version_from_row(&row)?,
                header: row.get(13),
                body_gzip: row.get(14),
                signature: row.get(15),
            })
        })
        .transpose()
    }

    async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: DateTime<Utc>,
    ) -> Result<Vec<VersionRecord>, StorageError> {
        sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE list = $1 AND valid_from <= $2 AND expires_at > $2 \
             AND (grace_until IS NULL OR grace_until > $2) ORDER BY volgnummer"
        ))
        .bind(list.as_str())
        .bind(at)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn submit_mutation(
        &self,
        m: &NewMutation,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let (list, key) = (m.change.list(), m.change.key());
        let open = |id| StorageError::OpenMutation {
            list,
            key: key.to_owned(),
            id,
        };
        let mut tx = self.pool.begin().await?;
        if let Some(id) = sqlx::query_scalar(OPEN_MUTATION)
            .bind(list.as_str())
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
        {
            return Err(open(id));
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM entries WHERE list = $1 AND entry_key = $2")
                .bind(list.as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if current.unwrap_or(0) != m.change.base_version() {
            return Err(conflict(list, key, m.change.base_version(), current));
        }
        let inserted = sqlx::query_scalar(
            "INSERT INTO mutations (list, entry_key, operation, body, base_version, on_behalf_of, reference, \
             urgent, agreed_deadline, effective_from, status, submitted_by, submitted_by_subject, submitted_at) \
             VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, 'submitted', $11, $12, $13) RETURNING id",
        )
        .bind(list.as_str())
        .bind(key)
        .bind(m.change.operation().as_str())
        .bind(m.change.body())
        .bind(m.change.base_version())
        .bind(&m.on_behalf_of)
        .bind(&m.reference)
        .bind(m.urgent)
        .bind(m.agreed_deadline)
        .bind(m.effective_from)
        .bind(&m.submitted_by)
        .bind(&m.submitted_by_subject)
        .bind(m.submitted_at)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(id) => id,
            // A concurrent submission for the same entry committed first (the partial unique
            // index saw it; this transaction's snapshot did not).
            Err(sqlx::Error::Database(e))
                if e.constraint() == Some("mutations_one_open_per_entry") =>
            {
                drop(tx);
                let id = sqlx::query_scalar(OPEN_MUTATION)
                    .bind(list.as_str())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                return Err(open(id.unwrap_or(0)));
            }
            Err(e) => return Err(e.into()),
        };
        insert_audit(&mut tx, &audit.about(format!("mutations/{id}"))).await?;
        let (record, _) = read_mutation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn decide_mutation(
        &self,
        d: &MutationDecision,
        audit: &AuditRecord,
    ) -> Result<MutationRecord, StorageError> {
        let mut tx = self.pool.begin().await?;
        let (record, body) = read_mutation(&mut tx, d.id).await?;
        d.check(&record)?;
        // The same five parameters for every decision ($1 by, $2 by_subject, $3 at, $4 id,
        // $5 reason); PostgreSQL must see each one used, hence the `IS NULL` guards.
        let (sql, reason) = match &d.decision {
            Decision::Approve => (
                "UPDATE mutations SET status = 'approved', decided_by = $1, decided_by_subject = $2, \
                 decided_at = $3 WHERE id = $4 AND $5::text IS NULL",
                None,
            ),
            Decision::Reject { reason } => (
                "UPDATE mutations SET status = 'rejected', decided_by = $1, decided_by_subject = $2, \
                 decided_at = $3, rejection_reason = $5 WHERE id = $4",
                Some(reason.as_str()),
            ),
            Decision::Withdraw => (
                "UPDATE mutations SET status = 'withdrawn', withdrawn_at = $3 \
                 WHERE id = $4 AND $1::text IS NOT NULL AND $2::text IS NOT NULL AND $5::text IS NULL",
                None,
            ),
        };
        sqlx::query(sql)
            .bind(&d.by)
            .bind(&d.by_subject)
            .bind(d.at)
            .bind(d.id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        if d.applies_now(&record) {
            apply_mutation(&mut tx, &record, body.as_deref(), d.at).await?;
        }
        insert_audit(&mut tx, audit).await?;
        let (record, _) = read_mutation(&mut tx, d.id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn apply_due_mutations(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<MutationRecord>, StorageError> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM mutations WHERE status = 'approved' AND applied_at IS NULL \
             AND effective_from <= $1 ORDER BY effective_from, id",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        let mut done = Vec::new();
        for id in due {
            let mut tx = self.pool.begin().await?;
            let (record, body) = read_mutation(&mut tx, id).await?;
            // Another replica may have applied it meanwhile.
            if record.applied_at.is_some() || record.status != MutationStatus::Approved {
                continue;
            }
            match apply_mutation(&mut tx, &record, body.as_deref(), at).await {
                Ok(()) => {}
                Err(e @ StorageError::Conflict { .. }) => {
                    tx.rollback().await?;
                    tx = self.pool.begin().await?;
                    read_mutation(&mut tx, id).await?;
                    sqlx::query("UPDATE mutations SET status = 'rejected', rejection_reason = $1 WHERE id = $2")
                        .bind(format!("no longer fits when it became effective: {e}"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Err(e) => return Err(e),
            }
            done.push(read_mutation(&mut tx, id).await?.0);
            tx.commit().await?;
        }
        Ok(done)
    }

    async fn unpublished_changes(&self) -> Result<Vec<(ListKind, DateTime<Utc>)>, StorageError> {
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT list, MIN(applied_at) FROM mutations \
             WHERE status = 'approved' AND applied_at IS NOT NULL GROUP BY list ORDER BY list",
        )
        .fetch_all(&self.pool)
        .await?;
        by_list(rows)
    }

    async fn mutations(&self, q: &MutationQuery) -> Result<Vec<MutationRecord>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MUTATION_COLUMNS} FROM mutations WHERE ($1::text IS NULL OR status = $1) \
             AND ($2::text IS NULL OR list = $2) \
             AND ($3::text IS NULL OR submitted_by = $3 OR submitted_by_subject = $3) \
             AND ($4::timestamptz IS NULL OR submitted_at < $4) \
             AND ($5::timestamptz IS NULL OR submitted_at >= $5) \
             ORDER BY submitted_at DESC, id DESC LIMIT $6"
        )))
        .bind(q.status.map(MutationStatus::as_str))
        .bind(q.list.map(ListKind::as_str))
        .bind(&q.submitter)
        .bind(q.submitted_before)
        .bind(q.submitted_after)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mutation_from_row).collect()
    }

    async fn mutation(&self, id: i64) -> Result<Option<MutationRecord>, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MUTATION_COLUMNS} FROM mutations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| mutation_from_row(&r)).transpose()
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT at, actor_subject, actor_fingerprint, role, action, object, on_behalf_of, \
             outcome, reason FROM audit_log WHERE ($1::timestamptz IS NULL OR at >= $1) \
             AND ($2::timestamptz IS NULL OR at < $2) \
             AND ($3::text IS NULL OR actor_subject = $3 OR actor_fingerprint = $3) \
             AND ($4::text IS NULL OR starts_with(action, $4)) \
             AND ($5::text IS NULL OR object = $5) AND ($6::text IS NULL OR outcome = $6) \
             ORDER BY at DESC, id DESC LIMIT $7",
        )
        .bind(query.since)
        .bind(query.until)
        .bind(&query.actor)
        .bind(&query.action)
        .bind(&query.object)
        .bind(query.outcome.map(AuditOutcome::as_str))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.get(0),
                    actor_subject: row.get(1),
                    actor_fingerprint: row.get(2),
                    role: row.get(3),
                    action: row.get(4),
                    object: row.get(5),
                    on_behalf_of: row.get(6),
                    outcome: AuditOutcome::parse(row.get(7))?,
                    reason: row.get(8),
                })
            })
            .collect()
    }
}
