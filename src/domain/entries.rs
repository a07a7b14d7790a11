//! The entries of the four lists: a Zorgaanbieder with its Gegevensdiensten and
//! Systeemrollen, an OAuthclient, a Gegevensdienst name, a MedMijNode.
//!
//! Composite values are built through constructors that enforce the XSD's structure and
//! uniqueness rules (a Zorgaanbieder has one or more Gegevensdiensten, each with one or more
//! Systeemrollen; ids and codes unique within their parent), so a value of these types is
//! always a valid entry.

use std::collections::HashSet;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::endpoint::{Backchanneluri, Frontchanneluri, Hostname};
use super::list_kind::ListKind;
use super::text::{
    GegevensdienstId, Interfaceversie, OAuthclientOrganisatienaam, Systeemrolcode, Weergavenaam,
    Zorgaanbiedernaam,
};
use super::violation::{Rule, Violation, Violations};

/// Aanbiedertype of a Zorgaanbieder: not in the release2 ZAL, kept for newer formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Aanbiedertype {
    /// Zorgaanbieder.
    #[default]
    #[serde(rename = "ZA")]
    Za,
    /// Beheerder Aanbieder Zorgaanbieder-Bestand.
    #[serde(rename = "BAZB")]
    Bazb,
    /// Aanbieder PersoonsgegevensDienst.
    #[serde(rename = "APD")]
    Apd,
}

/// An entry of one of the lists, identified within its list by a key.
pub trait Entry: Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned {
    const LIST: ListKind;
    /// The element that holds one entry in the list's XML.
    const ELEMENT: &'static str;
    /// The element of the entry that is its key (unique within the list).
    const KEY_ELEMENT: &'static str;
    fn key(&self) -> &str;
}

/// `Systeemrol`: a system role code with its resource endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Systeemrol {
    pub code: Systeemrolcode,
    pub resource_endpoint: Backchanneluri,
}

/// `Gegevensdienst` of a Zorgaanbieder in the ZAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GegevensdienstFields")]
pub struct Gegevensdienst {
    id: GegevensdienstId,
    authorization_endpoint: Frontchanneluri,
    token_endpoint: Backchanneluri,
    systeemrollen: Vec<Systeemrol>,
    interfaceversie: Option<Interfaceversie>,
}

/// The parts of a Gegevensdienst before its structure is checked.
#[derive(Debug, Clone, Deserialize)]
pub struct GegevensdienstFields {
    pub id: GegevensdienstId,
    pub authorization_endpoint: Frontchanneluri,
    pub token_endpoint: Backchanneluri,
    pub systeemrollen: Vec<Systeemrol>,
    #[serde(default)]
    pub interfaceversie: Option<Interfaceversie>,
}

/// Refuses an empty sequence or a repeated key; paths are `{element}[n]` (1-based, as XPath).
fn check_children<'a>(
    element: &str,
    key_element: &str,
    keys: impl ExactSizeIterator<Item = &'a str>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if keys.len() == 0 {
        violations.push(Violation::new(
            element,
            Rule::Structure,
            format!("at least one {element} is required"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, key) in keys.enumerate() {
        if !seen.insert(key) {
            violations.push(Violation::new(
                format!("{element}[{}]/{key_element}", i + 1),
                Rule::Unique,
                format!("{key_element} \"{key}\" occurs more than once"),
            ));
        }
    }
    violations
}

impl Gegevensdienst {
    pub fn new(fields: GegevensdienstFields) -> Result<Self, Violations> {
        let violations = check_children(
            "Systeemrol",
            "Systeemrolcode",
            fields.systeemrollen.iter().map(|s| s.code.as_str()),
        );
        match Violations::from_vec(
            violations
                .into_iter()
                .map(|v| v.within("Systeemrollen"))
                .collect(),
        ) {
            Some(violations) => Err(violations),
            None => Ok(Self {
                id: fields.id,
                authorization_endpoint: fields.authorization_endpoint,
                token_endpoint: fields.token_endpoint,
                systeemrollen: fields.systeemrollen,
                interfaceversie: fields.interfaceversie,
            }),
        }
    }

    pub fn id(&self) -> &GegevensdienstId {
        &self.id
    }
    pub fn authorization_endpoint(&self) -> &Frontchanneluri {
        &self.authorization_endpoint
    }
    pub fn token_endpoint(&self) -> &Backchanneluri {
        &self.token_endpoint
    }
    /// Never empty; codes are unique.
    pub fn systeemrollen(&self) -> &[Systeemrol] {
        &self.systeemrollen
    }
    pub fn interfaceversie(&self) -> Option<&Interfaceversie> {
        self.interfaceversie.as_ref()
    }
}

impl TryFrom<GegevensdienstFields> for Gegevensdienst {
    type Error = Violations;
    fn try_from(fields: GegevensdienstFields) -> Result<Self, Self::Error> {
        Self::new(fields)
    }
}

/// `Zorgaanbieder` in the ZAL, with all its Gegevensdiensten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ZorgaanbiederFields")]
pub struct Zorgaanbieder {
    naam: Zorgaanbiedernaam,
    aanbiedertype: Aanbiedertype,
    gegevensdiensten: Vec<Gegevensdienst>,
}

/// The parts of a Zorgaanbieder before its structure is checked.
#[derive(Debug, Clone, Deserialize)]
pub struct ZorgaanbiederFields {
    pub naam: Zorgaanbiedernaam,
    #[serde(default)]
    pub aanbiedertype: Aanbiedertype,
    pub gegevensdiensten: Vec<Gegevensdienst>,
}

impl Zorgaanbieder {
    pub fn new(fields: ZorgaanbiederFields) -> Result<Self, Violations> {
        let violations = check_children(
            "Gegevensdienst",
            "GegevensdienstId",
            fields.gegevensdiensten.iter().map(|g| g.id.as_str()),
        );
        match Violations::from_vec(
            violations
                .into_iter()
                .map(|v| v.within("Gegevensdiensten"))
                .collect(),
        ) {
            Some(violations) => Err(violations),
            None => Ok(Self {
                naam: fields.naam,
                aanbiedertype: fields.aanbiedertype,
                gegevensdiensten: fields.gegevensdiensten,
            }),
        }
    }

    pub fn naam(&self) -> &Zorgaanbiedernaam {
        &self.naam
    }
    pub fn aanbiedertype(&self) -> Aanbiedertype {
        self.aanbiedertype
    }
    /// Never empty; ids are unique.
    pub fn gegevensdiensten(&self) -> &[Gegevensdienst] {
        &self.gegevensdiensten
    }
}

impl TryFrom<ZorgaanbiederFields> for Zorgaanbieder {
    type Error = Violations;
    fn try_from(fields: ZorgaanbiederFields) -> Result<Self, Self::Error> {
        Self::new(fields)
    }
}

impl Entry for Zorgaanbieder {
    const LIST: ListKind = ListKind::Zal;
    const ELEMENT: &'static str = "Zorgaanbieder";
    const KEY_ELEMENT: &'static str = "Zorgaanbiedernaam";
    fn key(&self) -> &str {
        self.naam.as_str()
    }
}

/// `OAuthclient` in the OCL. The interface version is not in release2 XML (seed 001 release
/// clean-up also covers the OCL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthclient {
    pub hostname: Hostname,
    pub organisatienaam: OAuthclientOrganisatienaam,
    #[serde(default)]
    pub interfaceversie: Option<Interfaceversie>,
}

impl Entry for OAuthclient {
    const LIST: ListKind = ListKind::Ocl;
    const ELEMENT: &'static str = "OAuthclient";
    const KEY_ELEMENT: &'static str = "Hostname";
    fn key(&self) -> &str {
        self.hostname.as_str()
    }
}

/// `Gegevensdienst` in the GNL: an id with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GegevensdienstNaam {
    pub id: GegevensdienstId,
    pub weergavenaam: Weergavenaam,
}

impl Entry for GegevensdienstNaam {
    const LIST: ListKind = ListKind::Gnl;
    const ELEMENT: &'static str = "Gegevensdienst";
    const KEY_ELEMENT: &'static str = "GegevensdienstId";
    fn key(&self) -> &str {
        self.id.as_str()
    }
}

/// `MedMijNode` in the Whitelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedMijNode {
    pub hostname: Hostname,
}

impl Entry for MedMijNode {
    const LIST: ListKind = ListKind::Whitelist;
    const ELEMENT: &'static str = "MedMijNode";
    const KEY_ELEMENT: &'static str = "Hostname";
    fn key(&self) -> &str {
        self.hostname.as_str()
    }
}
