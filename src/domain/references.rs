//! Rule 4 of SPEC §4 as data: what an entry refers to in another list. A ZAL Gegevensdienst
//! refers to its GegevensdienstId in the GNL and to the hosts of its token and resource
//! endpoints on the Whitelist; an OAuthclient refers to its hostname on the Whitelist. The
//! whole-list check, the one-change check and "who still refers to X" are loops over this.

use super::{Entry, ListEntries, ListKind, OAuthclient, Zorgaanbieder};

/// Which field of an entry holds a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferringField {
    GegevensdienstId,
    TokenEndpoint,
    ResourceEndpoint { systeemrol: usize },
    Hostname,
}

/// One reference from an entry to an entry of another list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The list referred to (the GNL or the Whitelist) and the key there.
    pub list: ListKind,
    pub key: &'a str,
    /// The Gegevensdienst that holds the reference (ZAL): its position and id.
    pub gegevensdienst: Option<(usize, &'a str)>,
    pub field: ReferringField,
}

impl Reference<'_> {
    /// What is wrong when the referred entry does not exist.
    pub fn missing(&self) -> String {
        match self.list {
            ListKind::Gnl => format!(
                "GegevensdienstId {} is not in the Gegevensdienstnamenlijst",
                self.key
            ),
            _ => format!("host {} is not on the Whitelist", self.key),
        }
    }

    /// Where the reference is in a submitted entry: `$.entry.gegevensdiensten[0].id`.
    pub fn json_path(&self) -> String {
        let within = match self.gegevensdienst {
            Some((i, _)) => format!("$.entry.gegevensdiensten[{i}]"),
            None => "$.entry".into(),
        };
        let field = match self.field {
            ReferringField::GegevensdienstId => "id".into(),
            ReferringField::TokenEndpoint => "token_endpoint".into(),
            ReferringField::ResourceEndpoint { systeemrol } => {
                format!("systeemrollen[{systeemrol}].resource_endpoint")
            }
            ReferringField::Hostname => "hostname".into(),
        };
        format!("{within}.{field}")
    }

    /// Where the reference is in a list: `Zorgaanbieder[naam]/Gegevensdienst[id]/TokenEndpointuri`.
    pub fn list_path(&self, referrer: &Referrer<'_>) -> String {
        let element = match self.field {
            ReferringField::GegevensdienstId => "GegevensdienstId",
            ReferringField::TokenEndpoint => "TokenEndpointuri",
            ReferringField::ResourceEndpoint { .. } => "ResourceEndpointuri",
            ReferringField::Hostname => "Hostname",
        };
        match self.gegevensdienst {
            Some((_, id)) => format!("{referrer}/Gegevensdienst[{id}]/{element}"),
            None => format!("{referrer}/{element}"),
        }
    }
}

/// An entry that refers to others, named as refusals name it: `Zorgaanbieder[naam]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referrer<'a> {
    pub element: &'static str,
    pub key: &'a str,
}

impl std::fmt::Display for Referrer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.element, self.key)
    }
}

impl Zorgaanbieder {
    pub fn references(&self) -> Vec<Reference<'_>> {
        let mut references = Vec::new();
        for (i, gd) in self.gegevensdiensten().iter().enumerate() {
            let within = Some((i, gd.id().as_str()));
            let reference = |list, key, field| Reference {
                list,
                key,
                gegevensdienst: within,
                field,
            };
            references.push(reference(
                ListKind::Gnl,
                gd.id().as_str(),
                ReferringField::GegevensdienstId,
            ));
            references.push(reference(
                ListKind::Whitelist,
                gd.token_endpoint().host(),
                ReferringField::TokenEndpoint,
            ));
            for (systeemrol, rol) in gd.systeemrollen().iter().enumerate() {
                references.push(reference(
                    ListKind::Whitelist,
                    rol.resource_endpoint.host(),
                    ReferringField::ResourceEndpoint { systeemrol },
                ));
            }
        }
        references
    }
}

impl OAuthclient {
    pub fn references(&self) -> Vec<Reference<'_>> {
        vec![Reference {
            list: ListKind::Whitelist,
            key: self.hostname.as_str(),
            gegevensdienst: None,
            field: ReferringField::Hostname,
        }]
    }
}

impl ListEntries {
    /// Every reference of every entry, with the entry that holds it (ZAL and OCL; the GNL
    /// and the Whitelist refer to nothing).
    pub fn references(&self) -> Vec<(Referrer<'_>, Reference<'_>)> {
        fn all<'a, E: Entry>(
            entries: &'a [E],
            references: impl Fn(&'a E) -> Vec<Reference<'a>>,
        ) -> Vec<(Referrer<'a>, Reference<'a>)> {
            entries
                .iter()
                .flat_map(|e| {
                    let referrer = Referrer {
                        element: E::ELEMENT,
                        key: e.key(),
                    };
                    references(e).into_iter().map(move |r| (referrer, r))
                })
                .collect()
        }
        match self {
            ListEntries::Zal(zal) => all(zal.as_slice(), Zorgaanbieder::references),
            ListEntries::Ocl(ocl) => all(ocl.as_slice(), OAuthclient::references),
            ListEntries::Gnl(_) | ListEntries::Whitelist(_) => Vec::new(),
        }
    }
}

impl super::AnyEntry {
    /// What this entry refers to in other lists.
    pub fn references(&self) -> Vec<Reference<'_>> {
        match self {
            super::AnyEntry::Zorgaanbieder(za) => za.references(),
            super::AnyEntry::OAuthclient(client) => client.references(),
            super::AnyEntry::GegevensdienstNaam(_) | super::AnyEntry::MedMijNode(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zorgaanbieder() -> Zorgaanbieder {
        serde_json::from_value(serde_json::json!({
            "naam": "umcvoorbeeld@medmij",
            "gegevensdiensten": [
                { "id": "1", "authorization_endpoint": "https://auth.example.nl/a",
                  "token_endpoint": "https://token.example.nl/t",
                  "systeemrollen": [
                      { "code": "A", "resource_endpoint": "https://fhir.example.nl/a" },
                      { "code": "B", "resource_endpoint": "https://fhir2.example.nl:8443/b" }] },
                { "id": "4", "authorization_endpoint": "https://auth.example.nl/a",
                  "token_endpoint": "https://token.example.nl/t",
                  "systeemrollen": [{ "code": "A", "resource_endpoint": "https://fhir.example.nl/a" }] }
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_zorgaanbieder_refers_to_its_ids_and_endpoint_hosts() {
        let za = zorgaanbieder();
        let found: Vec<(ListKind, &str, String)> = za
            .references()
            .iter()
            .map(|r| (r.list, r.key, r.json_path()))
            .collect();
        let gd = |i: usize, field: &str| format!("$.entry.gegevensdiensten[{i}].{field}");
        assert_eq!(
            found,
            [
                (ListKind::Gnl, "1", gd(0, "id")),
                (
                    ListKind::Whitelist,
                    "token.example.nl",
                    gd(0, "token_endpoint")
                ),
                (
                    ListKind::Whitelist,
                    "fhir.example.nl",
                    gd(0, "systeemrollen[0].resource_endpoint")
                ),
                (
                    ListKind::Whitelist,
                    "fhir2.example.nl",
                    gd(0, "systeemrollen[1].resource_endpoint")
                ),
                (ListKind::Gnl, "4", gd(1, "id")),
                (
                    ListKind::Whitelist,
                    "token.example.nl",
                    gd(1, "token_endpoint")
                ),
                (
                    ListKind::Whitelist,
                    "fhir.example.nl",
                    gd(1, "systeemrollen[0].resource_endpoint")
                ),
            ]
        );
        let referrer = Referrer {
            element: "Zorgaanbieder",
            key: za.key(),
        };
        assert_eq!(
            za.references()[3].list_path(&referrer),
            "Zorgaanbieder[umcvoorbeeld@medmij]/Gegevensdienst[1]/ResourceEndpointuri"
        );
        assert_eq!(
            za.references()[0].missing(),
            "GegevensdienstId 1 is not in the Gegevensdienstnamenlijst"
        );
    }
}
