//! The mutation workflow as a service (SPEC §4): submit, validate, withdraw, reject,
//! approve-then-publish, scheduled and delayed publication, and the release clean-up. It
//! takes an `Actor` (an identity with its roles) and knows nothing of HTTP.
//!
//! I/O happens at the edges (the state cache, storage, the publisher); the rules are the pure
//! functions of `checks.rs` and `retire.rs` and the domain's `MutationDecision::check`. Every
//! change commits together with its audit record. What staff read (the work queue among it)
//! is in `queue.rs`, the background job that publishes scheduled and delayed changes in
//! `schedule.rs`.
//!
//! Concurrency: a submission is checked against the working state and stored in one
//! transaction that refuses a stale base version or a second open mutation for the entry
//! (a unique index), so concurrent submissions for one entry give one success. An approval's
//! re-check and decision happen in one transaction that holds off every other writer of the
//! working state (`Recheck`; on PostgreSQL across replicas), so one approval cannot remove
//! what another's change refers to in between: of two conflicting approvals, on one node or
//! two, one succeeds and the other is refused.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{CheckError, RetirePlan, Stage, Submission, change_of, check_change};
use crate::clock::Clock;
use crate::config::PublicationConfig;
use crate::domain::{
    AuditOutcome, AuditRecord, Decision, DecisionError, Deelnemer, EntryChange, Interfaceversie,
    ListKind, MutationDecision, MutationRecord, MutationStatus, NewMutation, Reden, Role, Rule,
    Snapshot, Ticketreferentie, Violation, Violations,
};
use crate::publication::{PublishError, PublishOptions, Publisher};
use crate::sla::SlaPolicy;
use crate::storage::{Recheck, StateCache, Storage, StorageError};

/// Who acts: a staff certificate with its roles, and the action as the audit log names it
/// (e.g. `POST /mutations/{id}/approve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// The certificate's subject (`CN=…`).
    pub subject: String,
    pub roles: Vec<Role>,
    pub action: String,
}

impl Actor {
    /// The audit record of an allowed action, stored with its change.
    pub fn audit_record(
        &self,
        at: DateTime<Utc>,
        object: Option<String>,
        on_behalf_of: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            at,
            actor_subject: self.subject.clone(),
            actor_fingerprint: Some(self.fingerprint.clone()),
            role: Some(Role::label(&self.roles)),
            action: self.action.clone(),
            object,
            on_behalf_of,
            outcome: AuditOutcome::Allowed,
            reason: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// An integrity rule (422) or a stale base version (409).
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The decision does not fit the mutation (state machine, four eyes).
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error("there is no mutation {0}")]
    UnknownMutation(i64),
    #[error("{list} has never had an entry \"{key}\"")]
    UnknownEntry { list: ListKind, key: String },
    /// A requested publication did not happen: refused by the rules (with violations) or
    /// failed (without).
    #[error("{message}")]
    NotPublished {
        message: String,
        violations: Vec<Violation>,
    },
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for WorkflowError {
    fn from(e: StorageError) -> Self {
        match e {
            // Found by the deciding transaction: the same refusal as found before it.
            StorageError::Decision(e) => WorkflowError::Decision(e),
            StorageError::Check(e) => WorkflowError::Check(e),
            StorageError::UnknownMutation(id) => WorkflowError::UnknownMutation(id),
            e => WorkflowError::Storage(e),
        }
    }
}

/// Timing rules of the workflow, from the configuration.
#[derive(Debug, Clone)]
pub struct WorkflowSettings {
    /// Approved changes wait this long before the node publishes them (0: right after
    /// approval).
    pub auto_publish_delay: Duration,
    /// Gives each accepted mutation its SLA deadline.
    pub sla: Arc<SlaPolicy>,
}

impl WorkflowSettings {
    pub fn new(c: &PublicationConfig, sla: Arc<SlaPolicy>) -> Self {
        Self {
            auto_publish_delay: Duration::seconds(
                i64::try_from(c.auto_publish_delay_seconds).unwrap_or(i64::MAX / 1000),
            ),
            sla,
        }
    }
}

/// What happened to the publication that follows an approval or a request.
#[derive(Debug, Clone, Serialize)]
pub struct PublicationOutcome {
    pub published: bool,
    pub volgnummer: Option<i64>,
    pub message: Option<String>,
    pub violations: Vec<Violation>,
}

/// An approved mutation and, when it was published at once, that publication.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    #[serde(flatten)]
    pub mutation: MutationRecord,
    /// `None` when the change is not published now (scheduled, or a publication delay).
    pub publication: Option<PublicationOutcome>,
}

/// The release clean-up as asked for.
#[derive(Debug, Clone)]
pub struct RetireRequest {
    pub interfaceversie: Interfaceversie,
    pub reference: Ticketreferentie,
    pub on_behalf_of: Deelnemer,
    /// Only say what would change.
    pub dry_run: bool,
}

#[derive(Debug, Clone)]
pub enum RetireOutcome {
    Planned(Vec<EntryChange>),
    Submitted(Vec<MutationRecord>),
}

pub struct MutationWorkflow {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) publisher: Arc<Publisher>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: WorkflowSettings,
}

impl MutationWorkflow {
    pub fn new(
        storage: Arc<dyn Storage>,
        publisher: Arc<Publisher>,
        clock: Arc<dyn Clock>,
        settings: WorkflowSettings,
    ) -> Self {
        Self {
            storage,
            publisher,
            clock,
            settings,
        }
    }

    /// The working state the checks read: the publisher's, so an approval's change reaches
    /// the publication that follows it.
    pub(super) fn state(&self) -> &StateCache {
        self.publisher.state()
    }

    /// What an approval would find now: the stored change checked against the current
    /// working state with the approval's rules; nothing is stored.
    pub async fn check_now(&self, record: &MutationRecord) -> Result<(), WorkflowError> {
        let change = change_of(record).map_err(CheckError::Invalid)?;
        let current = self.state().current().await?;
        check_change(&change, &current, Stage::Approval)?;
        Ok(())
    }

    /// Checks a submission against the current working state (rules 2, 4–6, 8); nothing is
    /// stored.
    pub async fn validate(&self, submission: &Submission) -> Result<(), WorkflowError> {
        let current = self.state().current().await?;
        check_change(&submission.change, &current, Stage::Submission)?;
        Ok(())
    }

    /// Checks and stores a submission by `actor`.
    pub async fn submit(
        &self,
        actor: &Actor,
        submission: Submission,
    ) -> Result<MutationRecord, WorkflowError> {
        self.validate(&submission).await?;
        self.store_submission(actor, submission).await
    }

    async fn store_submission(
        &self,
        actor: &Actor,
        submission: Submission,
    ) -> Result<MutationRecord, WorkflowError> {
        let at = self.clock.now();
        let on_behalf_of = String::from(submission.on_behalf_of);
        let audit = actor.audit_record(at, None, Some(on_behalf_of.clone()));
        let mutation = NewMutation {
            change: submission.change,
            on_behalf_of,
            reference: submission.reference.into(),
            urgent: submission.urgent,
            agreed_deadline: submission.agreed_deadline,
            effective_from: submission.effective_from,
            submitted_by: actor.fingerprint.clone(),
            submitted_by_subject: actor.subject.clone(),
            submitted_at: at,
            sla: self.settings.sla.deadline(
                at,
                submission.effective_from,
                submission.urgent,
                submission.agreed_deadline,
            ),
        };
        Ok(self.storage.submit_mutation(&mutation, &audit).await?)
    }

    fn decision(&self, actor: &Actor, id: i64, decision: Decision) -> MutationDecision {
        MutationDecision {
            id,
            decision,
            by: actor.fingerprint.clone(),
            by_subject: actor.subject.clone(),
            at: self.clock.now(),
        }
    }

    /// Stores a decision with its audit record.
    async fn decide(
        &self,
        actor: &Actor,
        record: &MutationRecord,
        decision: MutationDecision,
        recheck: Option<&Recheck<'_>>,
    ) -> Result<MutationRecord, WorkflowError> {
        let audit = actor.audit_record(
            decision.at,
            Some(format!("mutations/{}", record.id)),
            Some(record.on_behalf_of.clone()),
        );
        Ok(self
            .storage
            .decide_mutation(&decision, &audit, recheck)
            .await?)
    }

    /// Withdraws a mutation: only its submitter, while nobody has decided.
    pub async fn withdraw(
        &self,
        actor: &Actor,
        record: &MutationRecord,
    ) -> Result<MutationRecord, WorkflowError> {
        let decision = self.decision(actor, record.id, Decision::Withdraw);
        self.decide(actor, record, decision, None).await
    }

    /// Rejects a mutation with a reason: never its submitter.
    pub async fn reject(
        &self,
        actor: &Actor,
        record: &MutationRecord,
        reason: Reden,
    ) -> Result<MutationRecord, WorkflowError> {
        let reason = reason.into();
        let decision = self.decision(actor, record.id, Decision::Reject { reason });
        self.decide(actor, record, decision, None).await
    }

    /// Approves a mutation (never its submitter) after checking it again against the working
    /// state as it is now, then publishes its list unless the change is scheduled or the
    /// configuration delays publication.
    pub async fn approve(
        &self,
        actor: &Actor,
        record: &MutationRecord,
    ) -> Result<Approval, WorkflowError> {
        let decision = self.decision(actor, record.id, Decision::Approve);
        // The decision's own rule first, so the submitter hears why; the deciding transaction
        // checks it again, then the rules against the working state it sees.
        decision.check(record)?;
        let rules = |record: &MutationRecord, state: &Snapshot| match record.status {
            MutationStatus::Submitted => {
                let change = change_of(record).map_err(CheckError::Invalid)?;
                check_change(&change, state, Stage::Approval)
            }
            // Scheduled: checked when it was approved; applied (or rejected) when due.
            _ => Ok(()),
        };
        let before = self.state().current().await?;
        let recheck = Recheck {
            // Most likely still current when the transaction looks.
            cached: Some(before.clone()),
            rules: &rules,
        };
        // Checks that see the stored change before the cache has it wait for it.
        let turn = self.state().change_turn().await;
        let approved = self.decide(actor, record, decision, Some(&recheck)).await?;
        drop(recheck);
        match change_of(&approved) {
            // The publication below then reads no list again.
            Ok(change) if approved.applied_at.is_some() => turn.applied(before, &change).await,
            // Released before publishing: the publication takes the same turn.
            _ => drop(turn),
        }
        let publish_now =
            approved.applied_at.is_some() && self.settings.auto_publish_delay <= Duration::zero();
        if !publish_now {
            return Ok(Approval {
                mutation: approved,
                publication: None,
            });
        }
        let publication = self
            .publish_one(approved.list, actor.subject.clone(), false)
            .await;
        let mutation = match publication.published {
            true => self.mutation(approved.id).await?,
            false => approved,
        };
        Ok(Approval {
            mutation,
            publication: Some(publication),
        })
    }

    /// Publishes `list`; a refusal or failure is reported, not raised.
    async fn publish_one(
        &self,
        list: ListKind,
        published_by: String,
        confirm_mass_change: bool,
    ) -> PublicationOutcome {
        let options = PublishOptions {
            confirm_mass_change,
            published_by,
        };
        let not_published = |message: String, violations| PublicationOutcome {
            published: false,
            volgnummer: None,
            message: Some(message),
            violations,
        };
        match self.publisher.publish(list, &options).await {
            Ok(version) => PublicationOutcome {
                published: true,
                volgnummer: Some(version.volgnummer.get()),
                message: None,
                violations: Vec::new(),
            },
            Err(PublishError::Refused { violations, .. }) => not_published(
                format!("the {list} list was not published: it breaks the integrity rules"),
                violations.into_vec(),
            ),
            Err(e) => not_published(
                format!("the {list} list was not published ({e}); the node tries again"),
                Vec::new(),
            ),
        }
    }

    /// Publishes the requested lists in dependency order (`ListKind::PUBLICATION_ORDER`);
    /// stops at the first that is not published. Returns each list's new Volgnummer.
    pub async fn publish(
        &self,
        actor: &Actor,
        lists: &[ListKind],
        confirm_mass_change: bool,
    ) -> Result<Vec<(ListKind, i64)>, WorkflowError> {
        let mut published: Vec<(ListKind, i64)> = Vec::new();
        for list in ListKind::PUBLICATION_ORDER
            .into_iter()
            .filter(|l| lists.contains(l))
        {
            let outcome = self
                .publish_one(list, actor.subject.clone(), confirm_mass_change)
                .await;
            match outcome.volgnummer {
                Some(volgnummer) => published.push((list, volgnummer)),
                None => {
                    let before = match published.is_empty() {
                        true => String::new(),
                        false => format!(
                            "; published before: {}",
                            published
                                .iter()
                                .map(|(l, _)| l.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    return Err(WorkflowError::NotPublished {
                        message: format!("{}{before}", outcome.message.unwrap_or_default()),
                        violations: outcome.violations,
                    });
                }
            }
        }
        Ok(published)
    }

    /// The release clean-up of seed 001: one submitted mutation per affected entry, each
    /// checked like any other and approved one by one by another beheer identity. Nothing is
    /// submitted when any of them would be refused.
    pub async fn retire_interface_version(
        &self,
        actor: &Actor,
        request: RetireRequest,
    ) -> Result<RetireOutcome, WorkflowError> {
        let current = self.state().current().await?;
        let RetirePlan { changes } =
            super::retire_interface_version(&request.interfaceversie, &current);
        let refusals: Vec<Violation> = changes
            .iter()
            .filter_map(|change| {
                check_change(change, &current, Stage::Submission)
                    .err()
                    .map(|e| {
                        Violation::new(
                            format!("{}/{}", change.list(), change.key()),
                            Rule::Reference,
                            e.to_string(),
                        )
                    })
            })
            .collect();
        if let Some(violations) = Violations::from_vec(refusals) {
            return Err(CheckError::Invalid(violations).into());
        }
        if request.dry_run {
            return Ok(RetireOutcome::Planned(changes));
        }
        let mut submitted = Vec::new();
        for change in changes {
            let submission = Submission {
                change,
                on_behalf_of: request.on_behalf_of.clone(),
                reference: request.reference.clone(),
                urgent: false,
                agreed_deadline: None,
                effective_from: None,
            };
            submitted.push(self.store_submission(actor, submission).await?);
        }
        Ok(RetireOutcome::Submitted(submitted))
    }
}
