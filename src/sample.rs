//! Deterministic example lists: a consistent, cross-referenced network of any size, for the
//! development node, tests and benchmarks. Same size in, same lists out.

use chrono::{DateTime, Utc};

use crate::domain::{
    Backchanneluri, EntrySet, Frontchanneluri, Gegevensdienst, GegevensdienstFields,
    GegevensdienstId, GegevensdienstNaam, Hostname, Lijst, ListEntries, MedMijNode, OAuthclient,
    OAuthclientOrganisatienaam, Systeemrol, Systeemrolcode, Tijdstempel, Volgnummer, Weergavenaam,
    Zorgaanbieder, ZorgaanbiederFields, Zorgaanbiedernaam,
};

/// The Gegevensdiensten of the example GNL (as in the afsprakenstelsel's example list).
const GEGEVENSDIENSTEN: [(&str, &str); 7] = [
    ("1", "Basisgegevens Zorg"),
    ("2", "Medicatieoverzichten"),
    ("3", "Medicatiegegevens"),
    ("4", "Laboratoriumresultaten"),
    ("5", "Meetwaarden vitale functies"),
    ("6", "Documenten"),
    ("7", "Afspraken"),
];

/// The four lists of one consistent network.
pub struct SampleNetwork {
    pub zal: Lijst,
    pub ocl: Lijst,
    pub gnl: Lijst,
    pub whitelist: Lijst,
}

/// Sizes of a sample network.
#[derive(Debug, Clone, Copy)]
pub struct SampleSize {
    pub zorgaanbieders: usize,
    /// Each Zorgaanbieder has this many Gegevensdiensten (at most 7).
    pub gegevensdiensten: usize,
    /// Each Gegevensdienst has this many Systeemrollen.
    pub systeemrollen: usize,
    /// XIS nodes the Zorgaanbieders' endpoints are spread over.
    pub xis_nodes: usize,
    /// PGO nodes, each with one OAuthclient.
    pub pgo_nodes: usize,
}

impl SampleSize {
    /// SPEC §12's realistic shape: 3 Gegevensdiensten with 2 Systeemrollen each, 5 000
    /// hostnames on the Whitelist and in the OCL together at scale.
    pub fn realistic(zorgaanbieders: usize) -> Self {
        Self {
            zorgaanbieders,
            gegevensdiensten: 3,
            systeemrollen: 2,
            xis_nodes: zorgaanbieders.clamp(1, 2500),
            pgo_nodes: zorgaanbieders.clamp(1, 2500),
        }
    }
}

/// Spells `n` in letters a–z, so it can be part of a Zorgaanbiedernaam.
pub fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

fn xis_host(i: usize) -> String {
    format!("medmij.xis{i}.example.nl")
}

fn pgo_host(i: usize) -> String {
    format!("pgo{i}.example.com")
}

fn valid<T, E: std::fmt::Debug>(value: Result<T, E>) -> T {
    value.expect("sample values are valid by construction")
}

fn zorgaanbieder(i: usize, size: &SampleSize) -> Zorgaanbieder {
    let host = xis_host(i % size.xis_nodes);
    let diensten = (0..size.gegevensdiensten.min(GEGEVENSDIENSTEN.len()))
        .map(|g| {
            let id = GEGEVENSDIENSTEN[(i + g) % GEGEVENSDIENSTEN.len()].0;
            let systeemrollen = (0..size.systeemrollen)
                .map(|r| Systeemrol {
                    code: valid(Systeemrolcode::parse(format!("GD{id}-ROL{r}-FHIR"))),
                    resource_endpoint: valid(Backchanneluri::parse(format!(
                        "https://{host}:8443/za{i}/gd{id}/fhir{r}"
                    ))),
                })
                .collect();
            valid(Gegevensdienst::new(GegevensdienstFields {
                id: valid(GegevensdienstId::parse(id)),
                authorization_endpoint: valid(Frontchanneluri::parse(format!(
                    "https://{host}/za{i}/oauth/authorize"
                ))),
                token_endpoint: valid(Backchanneluri::parse(format!(
                    "https://{host}:8443/za{i}/oauth/token"
                ))),
                systeemrollen,
                interfaceversie: None,
            }))
        })
        .collect();
    valid(Zorgaanbieder::new(ZorgaanbiederFields {
        naam: valid(Zorgaanbiedernaam::parse(format!(
            "zorgaanbieder{}@medmij",
            letters(i)
        ))),
        aanbiedertype: Default::default(),
        gegevensdiensten: diensten,
    }))
}

/// A network of the given size; every list has Volgnummer 1 and Tijdstempel `at`.
pub fn network(size: SampleSize, at: DateTime<Utc>) -> SampleNetwork {
    let header = |entries| Lijst {
        tijdstempel: Tijdstempel::new(at),
        volgnummer: Volgnummer::FIRST,
        entries,
    };
    let zal = (0..size.zorgaanbieders)
        .map(|i| zorgaanbieder(i, &size))
        .collect();
    let ocl = (0..size.pgo_nodes)
        .map(|i| OAuthclient {
            hostname: valid(Hostname::parse(pgo_host(i))),
            organisatienaam: valid(OAuthclientOrganisatienaam::parse(format!(
                "Voorbeeld PGO {i}"
            ))),
            interfaceversie: None,
        })
        .collect();
    let gnl = GEGEVENSDIENSTEN
        .iter()
        .map(|(id, naam)| GegevensdienstNaam {
            id: valid(GegevensdienstId::parse(*id)),
            weergavenaam: valid(Weergavenaam::parse(*naam)),
        })
        .collect();
    let whitelist = (0..size.xis_nodes)
        .map(xis_host)
        .chain((0..size.pgo_nodes).map(pgo_host))
        .map(|host| MedMijNode {
            hostname: valid(Hostname::parse(host)),
        })
        .collect();
    SampleNetwork {
        zal: header(ListEntries::Zal(valid(EntrySet::new(zal)))),
        ocl: header(ListEntries::Ocl(valid(EntrySet::new(ocl)))),
        gnl: header(ListEntries::Gnl(valid(EntrySet::new(gnl)))),
        whitelist: header(ListEntries::Whitelist(valid(EntrySet::new(whitelist)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_distinct() {
        let all: std::collections::HashSet<String> = (0..10_000).map(letters).collect();
        assert_eq!(all.len(), 10_000);
        assert_eq!(letters(0), "a");
        assert_eq!(letters(26), "ba");
    }

    #[test]
    fn network_has_the_requested_shape() {
        let net = network(SampleSize::realistic(100), Utc::now());
        let ListEntries::Zal(zal) = &net.zal.entries else {
            panic!()
        };
        assert_eq!(zal.len(), 100);
        assert!(zal.as_slice().iter().all(|z| {
            z.gegevensdiensten().len() == 3
                && z.gegevensdiensten()
                    .iter()
                    .all(|g| g.systeemrollen().len() == 2)
        }));
        assert_eq!(net.whitelist.entries.len(), 200);
    }
}
