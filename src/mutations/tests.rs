use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::domain::{Entry, Lijst, ListEntries, Violation};
use crate::domain::{ListHead, ListSnapshot, ListStanding, Snapshot, WorkingState};
use crate::sample::{SampleSize, network};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A working state of the sample network (3 Zorgaanbieders on 3 XIS nodes, 3 PGOs), every
/// entry at version 1, GNL id 99 retired.
fn state() -> Snapshot {
    let n = network(SampleSize::realistic(3), at());
    let list = |lijst: Lijst| {
        let versions = lijst
            .entries
            .keys()
            .into_iter()
            .map(|k| (k.to_owned(), 1))
            .collect();
        let kind = lijst.kind();
        (
            kind,
            ListSnapshot {
                state: std::sync::Arc::new(WorkingState {
                    entries: lijst.entries,
                    versions,
                }),
                standing: ListStanding {
                    head: ListHead {
                        list: kind,
                        last_volgnummer: None,
                        imported_volgnummer: None,
                        imported_at: None,
                    },
                    revision: 1,
                    published_revision: None,
                    current: None,
                },
            },
        )
    };
    Snapshot {
        lists: BTreeMap::from([list(n.zal), list(n.ocl), list(n.gnl), list(n.whitelist)]),
        retired_gegevensdienst_ids: BTreeSet::from(["99".to_owned()]),
    }
}

fn zal_upsert(base: i64, naam: &str, gd_id: &str, host: &str) -> Value {
    json!({
        "list": "zal", "operation": "upsert", "base_version": base,
        "on_behalf_of": "Ziekenhuis Voorbeeld", "reference": "MEDMIJ-1",
        "entry": {
            "naam": naam,
            "gegevensdiensten": [{
                "id": gd_id,
                "authorization_endpoint": format!("https://{host}/oauth/authorize"),
                "token_endpoint": format!("https://{host}/oauth/token"),
                "systeemrollen": [{ "code": "MM-1.0-PLB-FHIR", "resource_endpoint": format!("https://{host}/fhir") }]
            }]
        }
    })
}

fn violations(result: Result<Submission, Violations>) -> Vec<(String, Rule)> {
    result
        .unwrap_err()
        .into_vec()
        .into_iter()
        .map(|Violation { path, rule, .. }| (path, rule))
        .collect()
}

fn invalid(result: Result<(), CheckError>) -> Vec<(String, Rule, String)> {
    match result {
        Err(CheckError::Invalid(v)) => v
            .into_vec()
            .into_iter()
            .map(|v| (v.path, v.rule, v.message))
            .collect(),
        other => panic!("expected an integrity refusal, got {other:?}"),
    }
}

#[test]
fn a_valid_submission_parses_and_normalises_hostnames() {
    let parsed = parse_submission(&json!({
        "list": "whitelist", "operation": "delete", "key": "MedMij.XIS0.Example.NL",
        "base_version": 1, "on_behalf_of": "Voorbeeld XIS", "reference": "MEDMIJ-2",
        "urgent": true, "effective_from": "2026-06-02T00:00:00+02:00"
    }))
    .unwrap();
    assert_eq!(parsed.change.key(), "medmij.xis0.example.nl");
    assert!(parsed.urgent);
    assert_eq!(
        parsed.effective_from.unwrap().to_rfc3339(),
        "2026-06-01T22:00:00+00:00"
    );
}

#[test]
fn an_agreed_deadline_belongs_to_an_urgent_mutation() {
    let mut request = json!({
        "list": "whitelist", "operation": "delete", "key": "medmij.xis0.example.nl",
        "base_version": 1, "on_behalf_of": "Voorbeeld XIS", "reference": "MEDMIJ-2",
        "agreed_deadline": "2026-06-02T12:00:00+02:00"
    });
    let found = violations(parse_submission(&request));
    assert!(
        found.iter().any(|(path, _)| path == "$.agreed_deadline"),
        "{found:?}"
    );
    request["urgent"] = json!(true);
    let parsed = parse_submission(&request).unwrap();
    assert!(parsed.urgent && parsed.agreed_deadline.is_some());
}

#[test]
fn every_facet_refusal_is_reported_at_its_field() {
    let mut request = zal_upsert(0, "Not A Name", "", "xis.example.nl:99999");
    request["entry"]["gegevensdiensten"][0]["systeemrollen"] = json!([]);
    request["entry"]["telefoon"] = json!("0101234567");
    request["reference"] = json!("has spaces");
    request["urgent"] = json!("yes");
    let found = violations(parse_submission(&request));
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "$.entry.naam",
        "$.entry.gegevensdiensten[0].id",
        "$.entry.gegevensdiensten[0].authorization_endpoint",
        "$.entry.telefoon",
        "$.reference",
        "$.urgent",
    ] {
        assert!(paths.contains(&expected), "{expected} missing in {found:?}");
    }
}

#[test]
fn structure_refusals_name_the_empty_or_repeated_part() {
    let mut request = zal_upsert(0, "nieuwezorg@medmij", "1", "medmij.xis0.example.nl");
    request["entry"]["gegevensdiensten"][0]["systeemrollen"] = json!([]);
    assert_eq!(
        violations(parse_submission(&request)),
        [(
            "$.entry.gegevensdiensten[0]/Systeemrollen/Systeemrol".to_owned(),
            Rule::Structure
        )]
    );
    let mut request = zal_upsert(0, "nieuwezorg@medmij", "1", "medmij.xis0.example.nl");
    let gd = request["entry"]["gegevensdiensten"][0].clone();
    request["entry"]["gegevensdiensten"] = json!([gd.clone(), gd]);
    assert_eq!(
        violations(parse_submission(&request)),
        [(
            "$.entry/Gegevensdiensten/Gegevensdienst[2]/GegevensdienstId".to_owned(),
            Rule::Unique
        )]
    );
    let mut request = zal_upsert(0, "nieuwezorg@medmij", "1", "medmij.xis0.example.nl");
    request["entry"]["gegevensdiensten"] = json!([]);
    assert_eq!(violations(parse_submission(&request))[0].1, Rule::Structure);
    assert_eq!(
        violations(parse_submission(&json!({"list": "zal"})))
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>(),
        [
            "$.base_version",
            "$.operation",
            "$.on_behalf_of",
            "$.reference"
        ]
    );
}

#[test]
fn references_must_resolve() {
    let state = state();
    let submission = parse_submission(&zal_upsert(
        0,
        "nieuwezorg@medmij",
        "42",
        "onbekend.example.nl",
    ))
    .unwrap();
    let found = invalid(check_change(&submission.change, &state, Stage::Submission));
    assert_eq!(
        found
            .iter()
            .map(|(p, r, _)| (p.as_str(), *r))
            .collect::<Vec<_>>(),
        [
            ("$.entry.gegevensdiensten[0].id", Rule::Reference),
            (
                "$.entry.gegevensdiensten[0].token_endpoint",
                Rule::Reference
            ),
            (
                "$.entry.gegevensdiensten[0].systeemrollen[0].resource_endpoint",
                Rule::Reference
            ),
        ]
    );
    assert!(
        found[1]
            .2
            .contains("onbekend.example.nl is not on the Whitelist")
    );
    let fine = parse_submission(&zal_upsert(
        0,
        "nieuwezorg@medmij",
        "4",
        "medmij.xis1.example.nl",
    ))
    .unwrap();
    assert_eq!(
        check_change(&fine.change, &state, Stage::Submission),
        Ok(())
    );
}

#[test]
fn a_referenced_host_or_id_cannot_be_deleted_and_the_refusal_names_the_referrers() {
    let state = state();
    let delete = |list: &str, key: &str| {
        parse_submission(&json!({
            "list": list, "operation": "delete", "key": key, "base_version": 1,
            "on_behalf_of": "Voorbeeld", "reference": "MEDMIJ-3"
        }))
        .unwrap()
        .change
    };
    let found = invalid(check_change(
        &delete("whitelist", "medmij.xis0.example.nl"),
        &state,
        Stage::Submission,
    ));
    assert_eq!(found[0].1, Rule::Reference);
    assert!(
        found[0].2.contains("Zorgaanbieder zorgaanbiedera@medmij"),
        "{}",
        found[0].2
    );
    let found = invalid(check_change(
        &delete("whitelist", "pgo1.example.com"),
        &state,
        Stage::Submission,
    ));
    assert!(
        found[0].2.contains("OAuthclient pgo1.example.com"),
        "{}",
        found[0].2
    );
    let ListEntries::Zal(zal) = state.list(ListKind::Zal).state.entries.clone() else {
        unreachable!()
    };
    let used = zal.as_slice()[0].gegevensdiensten()[0].id().to_string();
    let found = invalid(check_change(
        &delete("gnl", &used),
        &state,
        Stage::Submission,
    ));
    assert!(
        found[0].2.contains(zal.as_slice()[0].key()),
        "{}",
        found[0].2
    );
    let found = invalid(check_change(
        &delete("zal", "bestaatniet@medmij"),
        &state,
        Stage::Submission,
    ));
    assert_eq!(found[0].1, Rule::Reference);
}

#[test]
fn a_retired_id_is_not_reused_and_the_whitelist_never_empties() {
    let mut state = state();
    let gnl = parse_submission(&json!({
        "list": "gnl", "operation": "upsert", "base_version": 0,
        "entry": {"id": "99", "weergavenaam": "Oude dienst"},
        "on_behalf_of": "Stichting MedMij", "reference": "MEDMIJ-4"
    }))
    .unwrap();
    assert_eq!(
        invalid(check_change(&gnl.change, &state, Stage::Submission))[0].1,
        Rule::Reuse
    );

    let only = crate::domain::EntrySet::new(vec![crate::domain::MedMijNode {
        hostname: Hostname::parse("enige.example.nl").unwrap(),
    }])
    .unwrap();
    let whitelist = state.lists.get_mut(&ListKind::Whitelist).unwrap();
    let whitelist = std::sync::Arc::make_mut(&mut whitelist.state);
    whitelist.entries = ListEntries::Whitelist(only);
    whitelist.versions = BTreeMap::from([("enige.example.nl".to_owned(), 1)]);
    let last = EntryChange::delete(ListKind::Whitelist, "enige.example.nl", 1);
    let found = invalid(check_change(&last, &state, Stage::Submission));
    assert!(found.iter().any(|(_, rule, _)| *rule == Rule::NotEmpty));
}

#[test]
fn a_change_on_an_old_version_is_stale_and_a_second_new_entry_is_not_unique() {
    let state = state();
    let existing = parse_submission(&zal_upsert(
        0,
        "zorgaanbiedera@medmij",
        "1",
        "medmij.xis0.example.nl",
    ))
    .unwrap();
    assert_eq!(
        invalid(check_change(&existing.change, &state, Stage::Submission))[0].1,
        Rule::Unique
    );
    let stale = parse_submission(&zal_upsert(
        7,
        "zorgaanbiedera@medmij",
        "1",
        "medmij.xis0.example.nl",
    ))
    .unwrap();
    assert!(matches!(
        check_change(&stale.change, &state, Stage::Submission),
        Err(CheckError::Stale {
            expected: 7,
            current: 1,
            ..
        })
    ));
    // At approval the entry appeared after submission: a conflict, not a uniqueness error.
    assert!(matches!(
        check_change(&existing.change, &state, Stage::Approval),
        Err(CheckError::Stale {
            expected: 0,
            current: 1,
            ..
        })
    ));
}

#[test]
fn retiring_an_interface_version_reduces_or_removes_its_entries() {
    let mut state = state();
    let v = crate::domain::Interfaceversie::parse("release1").unwrap();
    let ListEntries::Zal(zal) = &state.list(ListKind::Zal).state.entries else {
        unreachable!()
    };
    // Zorgaanbieder 0: all its Gegevensdiensten on release1; Zorgaanbieder 1: one of three.
    let mut za: Vec<Value> = zal
        .as_slice()
        .iter()
        .map(|z| serde_json::to_value(z).unwrap())
        .collect();
    for gd in za[0]["gegevensdiensten"].as_array_mut().unwrap() {
        gd["interfaceversie"] = json!("release1");
    }
    za[1]["gegevensdiensten"][0]["interfaceversie"] = json!("release1");
    let zal: Vec<crate::domain::Zorgaanbieder> = za
        .into_iter()
        .map(|z| serde_json::from_value(z).unwrap())
        .collect();
    std::sync::Arc::make_mut(&mut state.lists.get_mut(&ListKind::Zal).unwrap().state).entries =
        ListEntries::Zal(crate::domain::EntrySet::new(zal).unwrap());
    let plan = retire_interface_version(&v, &state);
    let summary: Vec<(String, bool)> = plan
        .changes
        .iter()
        .map(|c| (c.key().to_owned(), c.entry().is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            ("zorgaanbiedera@medmij".to_owned(), false),
            ("zorgaanbiederb@medmij".to_owned(), true)
        ]
    );
    let Some(AnyEntry::Zorgaanbieder(reduced)) = plan.changes[1].entry() else {
        unreachable!()
    };
    assert_eq!(reduced.gegevensdiensten().len(), 2);
    for change in &plan.changes {
        assert_eq!(
            check_change(change, &state, Stage::Submission),
            Ok(()),
            "the clean-up passes the checks"
        );
    }
}
