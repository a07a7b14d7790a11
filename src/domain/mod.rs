//! The MedMij lists as types that cannot hold an invalid value, the mutations that change
//! them with their life cycle and decision rules, the working state and the audit record.
//! Nothing here knows of HTTP, SQL or XML.

// Request text is never sliced or indexed where it could panic (issue 11).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

mod audit;
mod diff;
mod endpoint;
mod entries;
mod list_kind;
mod lists;
mod log_leaf;
mod mutation;
mod published;
mod references;
mod role;
mod sla;
mod text;
mod version;
mod violation;
mod working;

pub use audit::{AuditOutcome, AuditRecord};
pub use diff::{ChangedEntry, EntryDiff, KeyedEntry};
pub use endpoint::{Backchanneluri, Frontchanneluri, Hostname};
pub use entries::{
    Aanbiedertype, Entry, Gegevensdienst, GegevensdienstFields, GegevensdienstNaam, MedMijNode,
    OAuthclient, Systeemrol, Zorgaanbieder, ZorgaanbiederFields,
};
pub use list_kind::{ListKind, UnknownList};
pub use lists::{AnyEntry, EntrySet, Lijst, ListEntries};
pub use log_leaf::{LOG_LEAF_FORMAT, LeafContent, LogEntry, LogLeaf, NotALeaf};
pub use mutation::{
    CheckError, Decision, DecisionError, EntryChange, MutationDecision, MutationRecord,
    MutationStatus, NewMutation, Operation,
};
pub use published::{IndexedVersion, VersionRecord, VersionStatus, served_at};
pub use references::{Reference, Referrer, ReferringField};
pub use role::Role;
pub use sla::{
    MutationSla, Notification, NotificationChannel, SlaCompletion, SlaDeadline, SlaOutcome,
    round_werkdagen,
};
pub use text::{
    Deelnemer, GegevensdienstId, Interfaceversie, OAuthclientOrganisatienaam, Reden,
    Systeemrolcode, Ticketreferentie, Weergavenaam, Zorgaanbiedernaam, is_deceptive,
};
pub use version::{Tijdstempel, Volgnummer};
pub use violation::{InvalidValue, Rule, Violation, Violations};
pub use working::{ListHead, ListSnapshot, ListStanding, Snapshot, WorkingState};

#[cfg(test)]
pub(crate) mod arbitrary;
