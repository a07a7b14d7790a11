//! The MedMij lists as types that cannot hold an invalid value. Nothing here knows of HTTP,
//! SQL or XML.

mod endpoint;
mod lists;
mod published;
mod text;
mod version;
mod violation;

pub use endpoint::{Backchanneluri, Frontchanneluri, Hostname};
pub use lists::{
    Aanbiedertype, AnyEntry, Entry, EntrySet, Gegevensdienst, GegevensdienstFields,
    GegevensdienstNaam, Lijst, ListEntries, ListKind, MedMijNode, OAuthclient, Systeemrol,
    UnknownList, Zorgaanbieder, ZorgaanbiederFields,
};
pub use published::{VersionRecord, VersionStatus};
pub use text::{
    Deelnemer, GegevensdienstId, Interfaceversie, OAuthclientOrganisatienaam, Systeemrolcode,
    Ticketreferentie, Weergavenaam, Zorgaanbiedernaam,
};
pub use version::{Tijdstempel, Volgnummer};
pub use violation::{InvalidValue, Rule, Violation, Violations};

#[cfg(test)]
pub(crate) mod arbitrary;
