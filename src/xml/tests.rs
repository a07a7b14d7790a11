use proptest::prelude::*;

use super::*;
use crate::domain::{ListEntries, ListKind, Rule, Violations};

const ZAL: &str = include_str!(
    "../../../shared/conformance/examples/afsprakenset-1.1/MedMij_Zorgaanbiederslijst_example.xml"
);

fn refusal(xml: &str, kind: ListKind) -> Violations {
    parse_list(xml.as_bytes(), kind).expect_err("the document must be refused")
}

/// Asserts that the first refusal has this path and rule.
fn assert_refused(xml: &str, kind: ListKind, path: &str, rule: Rule) {
    let violations = refusal(xml, kind);
    let first = &violations.as_slice()[0];
    assert_eq!(
        (first.path.as_str(), first.rule),
        (path, rule),
        "{violations}"
    );
}

const ZA: &str = "/Zorgaanbiederslijst/Zorgaanbieders/Zorgaanbieder[1]";

#[test]
fn the_official_zal_example_parses() {
    let list = parse_list(ZAL.as_bytes(), ListKind::Zal).unwrap();
    assert_eq!(list.volgnummer.get(), 6);
    assert_eq!(list.tijdstempel.to_xml(), "2018-04-16T12:56:33Z");
    let ListEntries::Zal(zal) = &list.entries else {
        panic!()
    };
    let umc = zal.get("umcharderwijk@medmij").unwrap();
    assert_eq!(umc.gegevensdiensten().len(), 2);
    assert_eq!(
        umc.gegevensdiensten()[1].token_endpoint().as_str(),
        "https://78834.umcharderwijk.nl:8099/oauth/token"
    );
    assert_eq!(
        umc.gegevensdiensten()[1].systeemrollen()[1].code.as_str(),
        "MM-1.0.0-PDB-FHIR"
    );
}

#[test]
fn rendering_follows_the_document_rules() {
    let list = parse_list(ZAL.as_bytes(), ListKind::Zal).unwrap();
    let bytes = render_list(&list);
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Zorgaanbiederslijst xmlns=\"xmlns://afsprakenstelsel.medmij.nl/zorgaanbiederslijst/release2/\">"));
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("<Tijdstempel>2018-04-16T12:56:33Z</Tijdstempel>"));
    assert!(text.contains("<Volgnummer>6</Volgnummer>"));
    // Entries are in key order, whatever the source order was.
    assert!(
        text.find("radiologencentraalflevoland@medmij").unwrap()
            < text.find("umcharderwijk@medmij").unwrap()
    );
    assert_eq!(
        render_list(&parse_list(&bytes, ListKind::Zal).unwrap()),
        bytes,
        "rendering is a fixed point"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn parse_of_render_is_identity(list in crate::domain::arbitrary::lijst()) {
        let bytes = render_list(&list);
        prop_assert_eq!(parse_list(&bytes, list.kind()).unwrap(), list);
    }
}

#[test]
fn a_doctype_is_refused() {
    let xml = ZAL.replacen(
        "<Zorgaanbiederslijst",
        "<!DOCTYPE x [<!ENTITY e \"boom\">]>\n<Zorgaanbiederslijst",
        1,
    );
    assert_refused(&xml, ListKind::Zal, "/", Rule::Document);
    assert!(refusal(&xml, ListKind::Zal).to_string().contains("DOCTYPE"));
}

#[test]
fn unknown_entities_are_refused_and_predefined_ones_resolved() {
    let xml = ZAL.replacen("umcharderwijk@medmij", "umc&e;@medmij", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        &format!("{ZA}/Zorgaanbiedernaam"),
        Rule::Document,
    );
    let xml = ZAL.replacen("LAB-1.0.0-LRB-FHIR", "LAB&amp;&#x41;", 1);
    let list = parse_list(xml.as_bytes(), ListKind::Zal).unwrap();
    let ListEntries::Zal(zal) = &list.entries else {
        panic!()
    };
    assert_eq!(
        zal.get("umcharderwijk@medmij").unwrap().gegevensdiensten()[0].systeemrollen()[0]
            .code
            .as_str(),
        "LAB&A"
    );
}

#[test]
fn wrong_namespace_or_root_is_refused() {
    let xml = ZAL.replace(
        "zorgaanbiederslijst/release2/",
        "zorgaanbiederslijst/release3/",
    );
    assert_refused(&xml, ListKind::Zal, "/Zorgaanbiederslijst", Rule::Document);
    assert_refused(
        ZAL,
        ListKind::Whitelist,
        "/Zorgaanbiederslijst",
        Rule::Document,
    );
    let xml = ZAL
        .replacen("<Volgnummer>", "<x:Volgnummer xmlns:x=\"urn:other\">", 1)
        .replacen("</Volgnummer>", "</x:Volgnummer>", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Volgnummer",
        Rule::Document,
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let cut = &ZAL[..ZAL.len() / 2];
    let violations = refusal(cut, ListKind::Zal);
    assert_eq!(violations.as_slice()[0].rule, Rule::Document);
    assert!(violations.to_string().contains("truncated"), "{violations}");
    assert_refused("", ListKind::Zal, "/", Rule::Document);
}

#[test]
fn malformed_xml_is_refused_with_its_place() {
    let xml = ZAL.replacen("</Zorgaanbiedernaam>", "</Zorgaanbiedernam>", 1);
    let violations = refusal(&xml, ListKind::Zal);
    assert_eq!(violations.as_slice()[0].rule, Rule::Document);
    assert!(
        violations.as_slice()[0]
            .path
            .ends_with("/Zorgaanbiedernaam"),
        "{violations}"
    );
}

#[test]
fn each_xsd_facet_is_enforced_with_its_path() {
    let cases: &[(&str, &str, &str, Rule)] = &[
        (
            "umcharderwijk@medmij",
            "umc@medmij.nl",
            "/Zorgaanbiedernaam",
            Rule::Pattern,
        ),
        (
            "umcharderwijk@medmij",
            "ab@medmij",
            "/Zorgaanbiedernaam",
            Rule::Length,
        ),
        (
            "umcharderwijk@medmij",
            "UMCharderwijk@medmij",
            "/Zorgaanbiedernaam",
            Rule::Pattern,
        ),
        (
            "<GegevensdienstId>4<",
            "<GegevensdienstId>1234567890123456789012345678901<",
            "/Gegevensdiensten/Gegevensdienst[1]/GegevensdienstId",
            Rule::Length,
        ),
        (
            "https://medmij.za982.xisbridge.net/oauth/authorize",
            "https://medmij.za982.xisbridge.net:443/oauth/authorize",
            "/Gegevensdiensten/Gegevensdienst[1]/AuthorizationEndpoint/AuthorizationEndpointuri",
            Rule::Pattern,
        ),
        (
            "https://medmij.xisbridge.net/oauth/token",
            "https://medmij.xisbridge.net/oauth/token/",
            "/Gegevensdiensten/Gegevensdienst[1]/TokenEndpoint/TokenEndpointuri",
            Rule::Pattern,
        ),
        (
            "https://medmij.za982.xisbridge.net/fhir",
            "https://medmij.za982.xisbridge.net/fhir?x=1",
            "/Gegevensdiensten/Gegevensdienst[1]/Systeemrollen/Systeemrol[1]/ResourceEndpoint/ResourceEndpointuri",
            Rule::Pattern,
        ),
        (
            "<Systeemrolcode>LAB-1.0.0-LRB-FHIR",
            "<Systeemrolcode> LAB-1.0.0-LRB-FHIR",
            "/Gegevensdiensten/Gegevensdienst[1]/Systeemrollen/Systeemrol[1]/Systeemrolcode",
            Rule::Whitespace,
        ),
    ];
    for (from, to, path, rule) in cases {
        let xml = ZAL.replacen(from, to, 1);
        assert_refused(&xml, ListKind::Zal, &format!("{ZA}{path}"), *rule);
    }
    let xml = ZAL.replacen("<Volgnummer>6<", "<Volgnummer>0<", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Volgnummer",
        Rule::Range,
    );
    let xml = ZAL.replacen("2018-04-16T12:56:33Z", "2018-04-16T12:56:33", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Tijdstempel",
        Rule::Pattern,
    );
}

#[test]
fn duplicates_are_refused_at_every_level() {
    let xml = ZAL.replacen(
        "radiologencentraalflevoland@medmij",
        "umcharderwijk@medmij",
        1,
    );
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Zorgaanbieders/Zorgaanbieder[2]/Zorgaanbiedernaam",
        Rule::Unique,
    );
    let xml = ZAL.replacen("<GegevensdienstId>6<", "<GegevensdienstId>4<", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        &format!("{ZA}/Gegevensdiensten/Gegevensdienst[2]/GegevensdienstId"),
        Rule::Unique,
    );
    let xml = ZAL.replacen("MM-1.0.0-PDB-FHIR", "MM-1.0.0-PLB-FHIR", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        &format!(
            "{ZA}/Gegevensdiensten/Gegevensdienst[2]/Systeemrollen/Systeemrol[2]/Systeemrolcode"
        ),
        Rule::Unique,
    );
}

#[test]
fn structure_is_enforced() {
    // A Gegevensdienst without Systeemrol.
    let start = ZAL.find("<Systeemrol>").unwrap();
    let end = ZAL.find("</Systeemrol>").unwrap() + "</Systeemrol>".len();
    let xml = format!("{}{}", &ZAL[..start], &ZAL[end..]);
    assert_refused(
        &xml,
        ListKind::Zal,
        &format!("{ZA}/Gegevensdiensten/Gegevensdienst[1]/Systeemrollen/Systeemrol"),
        Rule::Structure,
    );
    // A missing element, an unexpected one, text in a container.
    let xml = ZAL.replacen("<Volgnummer>6</Volgnummer>", "", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Zorgaanbieders",
        Rule::Structure,
    );
    let xml = ZAL.replacen("<Zorgaanbieders>", "<Zorgaanbieders><Extra/>", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Zorgaanbieders/Extra",
        Rule::Structure,
    );
    let xml = ZAL.replacen("<Zorgaanbieders>", "<Zorgaanbieders>text", 1);
    assert_refused(
        &xml,
        ListKind::Zal,
        "/Zorgaanbiederslijst/Zorgaanbieders",
        Rule::Structure,
    );
}

#[test]
fn all_refusals_of_a_document_are_reported() {
    let xml = ZAL
        .replacen("umcharderwijk@medmij", "UMC@medmij", 1)
        .replacen("https://rcf-rso.nl/rcf/fhir-stu3", "http://rcf-rso.nl", 1);
    assert_eq!(refusal(&xml, ListKind::Zal).as_slice().len(), 2);
}

#[path = "../../tests/integration/support/verifiers.rs"]
mod verifiers;

proptest! {
    // Each case runs xmllint once: enough cases to meet escaping, non-ASCII names, ports and
    // fractional seconds in every kind of list, few enough to stay within seconds.
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_rendered_list_validates_against_the_official_xsd(list in crate::domain::arbitrary::lijst()) {
        let bytes = render_list(&list);
        if let Err(complaint) = verifiers::xmllint_validate(&bytes, list.kind().schema_file()) {
            prop_assert!(false, "{}\n{}", complaint, String::from_utf8_lossy(&bytes));
        }
    }
}

#[test]
fn an_entry_renders_as_it_stands_in_its_list() {
    let network = crate::sample::network(
        crate::sample::SampleSize::realistic(3),
        chrono::DateTime::UNIX_EPOCH,
    );
    for lijst in [&network.zal, &network.ocl, &network.gnl, &network.whitelist] {
        let document = String::from_utf8(render_list(lijst)).unwrap();
        for (key, json) in lijst.entries.to_json_rows() {
            let entry = crate::domain::AnyEntry::from_json(lijst.kind(), &json).unwrap();
            let alone = render_entry(&entry);
            // In the list it stands two levels deep (root, entries element).
            let indented: Vec<String> = alone.lines().map(|l| format!("        {l}")).collect();
            assert!(
                document.contains(&format!("\n{}\n", indented.join("\n"))),
                "{key}:\n{alone}"
            );
            assert!(alone.contains(&format!(">{key}<")), "{alone}");
        }
    }
}

proptest! {
    /// A renewal puts a new header before the current version's body (issue 25): the header
    /// must be exactly what a rendering of the whole list begins with, up to where the stored
    /// form splits it from the body.
    #[test]
    fn a_header_is_how_a_rendered_version_begins(list in crate::domain::arbitrary::lijst()) {
        let bytes = render_list(&list);
        let header = render_header(list.kind(), list.tijdstempel, list.volgnummer);
        prop_assert_eq!(header.len(), crate::publication::header_len(&bytes));
        prop_assert!(bytes.starts_with(&header));
    }
}
