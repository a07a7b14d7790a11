//! Which of the four lists: its name, root element, namespace and schema.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the four lists the node publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    Zal,
    Ocl,
    Gnl,
    Whitelist,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [
        ListKind::Zal,
        ListKind::Ocl,
        ListKind::Gnl,
        ListKind::Whitelist,
    ];
    /// The order in which several lists are published: lists that others refer to first.
    pub const PUBLICATION_ORDER: [ListKind; 4] = [
        ListKind::Whitelist,
        ListKind::Gnl,
        ListKind::Ocl,
        ListKind::Zal,
    ];

    /// The short name used in URLs, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Zal => "zal",
            ListKind::Ocl => "ocl",
            ListKind::Gnl => "gnl",
            ListKind::Whitelist => "whitelist",
        }
    }

    /// The root element of the list's official XML format.
    pub fn root_element(self) -> &'static str {
        match self {
            ListKind::Zal => "Zorgaanbiederslijst",
            ListKind::Ocl => "OAuthclientlist",
            ListKind::Gnl => "Gegevensdienstnamenlijst",
            ListKind::Whitelist => "Whitelist",
        }
    }

    /// The element that holds the list's entries, and the element of one entry.
    pub fn entry_elements(self) -> (&'static str, &'static str) {
        match self {
            ListKind::Zal => ("Zorgaanbieders", "Zorgaanbieder"),
            ListKind::Ocl => ("OAuthclients", "OAuthclient"),
            ListKind::Gnl => ("Gegevensdiensten", "Gegevensdienst"),
            ListKind::Whitelist => ("MedMijNodes", "MedMijNode"),
        }
    }

    /// The namespace of the official format the node publishes (ZAL/OCL/Whitelist release2,
    /// GNL release1).
    pub fn namespace(self) -> &'static str {
        match self {
            ListKind::Zal => "xmlns://afsprakenstelsel.medmij.nl/zorgaanbiederslijst/release2/",
            ListKind::Ocl => "xmlns://afsprakenstelsel.medmij.nl/oauthclientlist/release2/",
            ListKind::Gnl => {
                "xmlns://afsprakenstelsel.medmij.nl/gegevensdienstnamenlijst/release1/"
            }
            ListKind::Whitelist => "xmlns://afsprakenstelsel.medmij.nl/whitelist/release2/",
        }
    }

    /// The official XSD's file name (`schemas/` holds a copy under this name).
    pub fn schema_file(self) -> &'static str {
        match self {
            ListKind::Zal => "MedMij_Zorgaanbiederslijst_release2.xsd",
            ListKind::Ocl => "MedMij_OAuthclientlist_release2.xsd",
            ListKind::Gnl => "MedMij_Gegevensdienstnamenlijst_release1.xsd",
            ListKind::Whitelist => "MedMij_Whitelist_release2.xsd",
        }
    }
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown list \"{0}\": expected zal, ocl, gnl or whitelist")]
pub struct UnknownList(String);

impl FromStr for ListKind {
    type Err = UnknownList;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ListKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownList(s.to_owned()))
    }
}
