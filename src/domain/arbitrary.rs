//! proptest strategies that generate valid lists, including the awkward corners the XSD
//! allows: characters that need escaping, non-ASCII display names, ports, fractional seconds.

use chrono::DateTime;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn hostname() -> impl Strategy<Value = Hostname> {
    ("[a-z0-9][a-z0-9-]{0,8}", "[a-z0-9][a-z0-9-]{0,6}[a-z0-9]")
        .prop_map(|(a, b)| Hostname::parse(format!("{a}.{b}")).unwrap())
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9._~%&<>-]{1,8}){0,3}"
}

fn front() -> impl Strategy<Value = Frontchanneluri> {
    (hostname(), path())
        .prop_map(|(h, p)| Frontchanneluri::parse(format!("https://{h}{p}")).unwrap())
}

fn back() -> impl Strategy<Value = Backchanneluri> {
    (hostname(), proptest::option::of(1u32..=65535), path()).prop_map(|(h, port, p)| {
        let port = port.map(|n| format!(":{n}")).unwrap_or_default();
        Backchanneluri::parse(format!("https://{h}{port}{p}")).unwrap()
    })
}

/// Identifiers: any printable characters without whitespace, including `&`, `<` and non-ASCII.
fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9&<>'\"é.-]{1,30}"
}

fn display_name() -> impl Strategy<Value = String> {
    "[a-zA-Zé&<>][a-zA-Z é&<>-]{1,48}[a-zA-Zé]"
}

fn gegevensdienst() -> impl Strategy<Value = Gegevensdienst> {
    (ident(), front(), back(), vec((ident(), back()), 1..4)).prop_filter_map(
        "Systeemrolcodes must be unique",
        |(id, authz, token, rollen)| {
            Gegevensdienst::new(GegevensdienstFields {
                id: GegevensdienstId::parse(id).unwrap(),
                authorization_endpoint: authz,
                token_endpoint: token,
                systeemrollen: rollen
                    .into_iter()
                    .map(|(code, endpoint)| Systeemrol {
                        code: Systeemrolcode::parse(code).unwrap(),
                        resource_endpoint: endpoint,
                    })
                    .collect(),
                interfaceversie: None,
            })
            .ok()
        },
    )
}

fn zorgaanbieder() -> impl Strategy<Value = Zorgaanbieder> {
    ("[a-z]{3,50}", vec(gegevensdienst(), 1..4)).prop_filter_map(
        "GegevensdienstIds must be unique",
        |(naam, diensten)| {
            Zorgaanbieder::new(ZorgaanbiederFields {
                naam: Zorgaanbiedernaam::parse(format!("{naam}@medmij")).unwrap(),
                aanbiedertype: Aanbiedertype::Za,
                gegevensdiensten: diensten,
            })
            .ok()
        },
    )
}

fn entries() -> impl Strategy<Value = ListEntries> {
    fn set<E: Entry>(entries: Vec<E>) -> Option<EntrySet<E>> {
        EntrySet::new(entries).ok()
    }
    prop_oneof![
        vec(zorgaanbieder(), 0..5).prop_filter_map("unique", |v| set(v).map(ListEntries::Zal)),
        vec((hostname(), display_name()), 0..8).prop_filter_map("unique", |v| {
            set(v
                .into_iter()
                .map(|(hostname, naam)| OAuthclient {
                    hostname,
                    organisatienaam: OAuthclientOrganisatienaam::parse(naam).unwrap(),
                    interfaceversie: None,
                })
                .collect())
            .map(ListEntries::Ocl)
        }),
        vec((ident(), display_name()), 0..8).prop_filter_map("unique", |v| {
            set(v
                .into_iter()
                .map(|(id, naam)| GegevensdienstNaam {
                    id: GegevensdienstId::parse(id).unwrap(),
                    weergavenaam: Weergavenaam::parse(naam).unwrap(),
                })
                .collect())
            .map(ListEntries::Gnl)
        }),
        vec(hostname(), 0..8).prop_filter_map("unique", |v| {
            set(v
                .into_iter()
                .map(|hostname| MedMijNode { hostname })
                .collect())
            .map(ListEntries::Whitelist)
        }),
    ]
}

/// Any valid list of any kind.
pub fn lijst() -> impl Strategy<Value = Lijst> {
    (0i64..4_102_444_800_000_000, 1i64..i64::MAX, entries()).prop_map(
        |(micros, volgnummer, entries)| Lijst {
            tijdstempel: Tijdstempel::new(DateTime::from_timestamp_micros(micros).unwrap()),
            volgnummer: Volgnummer::new(volgnummer).unwrap(),
            entries,
        },
    )
}
