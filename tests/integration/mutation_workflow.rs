//! The mutation workflow end to end, over real mutual TLS on both backends: loket submits,
//! a second beheer identity approves, nodes fetch the signed change; every integrity rule
//! refuses with a message staff can act on and changes nothing; every refusal is audited.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use stelselnode::clock::Clock;

use stelselnode::devpki::Issued;
use stelselnode::domain::EntryChange;
use stelselnode::domain::ListKind;
use stelselnode::signing::verify_signature;
use stelselnode::storage::MutationQuery;
use stelselnode::tls::NodeAccess;

use super::support::mutations::{
    NEW_HOST, delete, gegevensdienst, whitelist_upsert, zorgaanbieder,
};
use super::support::server::{TestServer, approve, post, submit};
use super::support::signer::xmlsec1_verify;
use super::support::{TestDatabase, xmllint_validate};

on_both_backends!(
    loket_submits_beheer_approves_and_nodes_fetch_the_signed_change,
    nobody_decides_on_their_own_mutation,
    each_integrity_rule_refuses_with_a_useful_message_and_changes_nothing,
    a_mass_removal_and_an_empty_whitelist_are_not_published_without_staff,
    concurrent_edits_of_one_entry_give_one_success_and_one_conflict,
    a_scheduled_mutation_is_published_first_after_its_instant,
    the_release_clean_up_is_a_reviewed_set_of_mutations,
    the_staff_cli_submits_approves_and_lists,
);

/// Everything an integrity refusal must leave untouched.
async fn fingerprint(server: &TestServer) -> (Vec<(ListKind, i64)>, usize) {
    let storage = &server.db.storage;
    let revisions = storage.revisions().await.unwrap().into_iter().collect();
    let mutations = storage
        .mutations(&MutationQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    (revisions, mutations)
}

async fn loket_submits_beheer_approves_and_nodes_fetch_the_signed_change(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let before = server.current(ListKind::Whitelist).await;

    let id = submit(
        &server,
        &pki.loket,
        &whitelist_upsert("MedMij.NieuweXIS.nl", 0),
    )
    .await;
    let seen = server
        .admin_get(&pki.loket, &format!("/mutations/{id}"))
        .await
        .json();
    assert_eq!(seen["status"], "submitted");
    assert_eq!(seen["entry_key"], NEW_HOST, "hostnames are lowercased");
    assert_eq!(seen["submitted_by_subject"], "CN=loket-1");

    let (status, approved) = approve(&server, &pki.beheer2, id).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "published");
    let volgnummer = before.volgnummer.get() + 1;
    assert_eq!(approved["publication"]["volgnummer"], volgnummer);
    assert_eq!(approved["published_volgnummer"], volgnummer);
    assert!(approved["published_at"].is_string());

    // The next fetch by a node has the change, one Volgnummer on, validly signed.
    let list = server
        .node_get(Some(&pki.node), "/lists/whitelist", &[])
        .await
        .unwrap();
    assert_eq!(list.status, 200);
    let text = list.text();
    assert!(text.contains(&format!("<Hostname>{NEW_HOST}</Hostname>")));
    assert!(text.contains(&format!("<Volgnummer>{volgnummer}</Volgnummer>")));
    let signature = server
        .node_get(
            Some(&pki.node),
            &format!("/lists/whitelist/versions/{volgnummer}/signature"),
            &[],
        )
        .await
        .unwrap();
    let check = verify_signature(
        &signature.body,
        &list.body,
        &[pki.ca.certificate().clone()],
        Utc::now(),
    )
    .unwrap();
    assert_eq!(check.properties.volgnummer.get(), volgnummer);
    // …and the independent verifiers agree.
    xmllint_validate(&list.body, ListKind::Whitelist).unwrap();
    xmlsec1_verify(
        ListKind::Whitelist,
        &list.body,
        &signature.body,
        &pki.ca.certificate_pem(),
    )
    .unwrap();

    // The entry's version moved on; the audit names who did what on whose behalf.
    let entry = server
        .admin_get(&pki.loket, &format!("/entries/whitelist/{NEW_HOST}"))
        .await
        .json();
    assert_eq!(entry["version"], 1);
    let audit = server
        .admin_get(&pki.beheer, &format!("/audit?object=mutations/{id}"))
        .await
        .json();
    let records = audit["records"].as_array().unwrap();
    let actions: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["actor_subject"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("POST /mutations", "CN=loket-1", "allowed")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("POST /mutations/{id}/approve", "CN=beheer-2", "allowed")),
        "{actions:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["on_behalf_of"] == "Nieuwe XIS B.V.")
    );
    assert!(records.iter().all(|r| {
        r["actor_fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 64)
    }));

    // Filters: by status, list, submitter, age.
    let listed = server
        .admin_get(
            &pki.loket,
            "/mutations?status=published&list=whitelist&submitter=CN%3Dloket-1&max_age=1h",
        )
        .await
        .json();
    assert_eq!(listed["mutations"].as_array().unwrap().len(), 1);
    let none = server
        .admin_get(&pki.loket, "/mutations?min_age=1d")
        .await
        .json();
    assert!(none["mutations"].as_array().unwrap().is_empty());
    assert_eq!(
        server
            .admin_get(&pki.loket, "/mutations?min_age=soon")
            .await
            .status,
        400
    );
    // The audit log is for beheer.
    assert_eq!(server.admin_get(&pki.loket, "/audit").await.status, 403);
    server.app.stop().await;
}

async fn nobody_decides_on_their_own_mutation(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let id = submit(&server, &pki.beheer, &whitelist_upsert(NEW_HOST, 0)).await;
    let (status, refused) = approve(&server, &pki.beheer, id).await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("another beheer identity")
    );
    let (status, _) = post(
        &server,
        &pki.beheer,
        &format!("/mutations/{id}/reject"),
        &json!({"reason": "eigen"}),
    )
    .await;
    assert_eq!(status, 403);
    // Loket has no approval role at all; nor may it withdraw someone else's mutation.
    assert_eq!(approve(&server, &pki.loket, id).await.0, 403);
    assert_eq!(
        post(
            &server,
            &pki.loket,
            &format!("/mutations/{id}/withdraw"),
            &json!({})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        server
            .db
            .storage
            .mutation(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "submitted"
    );
    let (status, rejected) = post(
        &server,
        &pki.beheer2,
        &format!("/mutations/{id}/reject"),
        &json!({"reason": "ticket onvolledig"}),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["rejection_reason"], "ticket onvolledig");
    assert_eq!(
        approve(&server, &pki.beheer2, id).await.0,
        409,
        "decided once"
    );

    // The submitter withdraws their own.
    let own = submit(&server, &pki.loket, &whitelist_upsert(NEW_HOST, 0)).await;
    let (status, withdrawn) = post(
        &server,
        &pki.loket,
        &format!("/mutations/{own}/withdraw"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(withdrawn["status"], "withdrawn");

    let refused = server
        .admin_get(&pki.beheer2, "/audit?outcome=refused")
        .await
        .json();
    let refused = refused["records"].as_array().unwrap();
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    server.app.stop().await;
}

async fn each_integrity_rule_refuses_with_a_useful_message_and_changes_nothing(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    // Retire GNL id 7 (used by no Zorgaanbieder) the regular way, for rule 5 below.
    let retire = submit(&server, &pki.loket, &delete("gnl", "7", 1)).await;
    assert_eq!(approve(&server, &pki.beheer, retire).await.0, 200);

    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        // (rule, request, status, path, words in the message)
        (
            "1 facet",
            whitelist_upsert("geen_host", 0),
            422,
            "$.entry.hostname",
            "pattern",
        ),
        (
            "2 unique id in a Zorgaanbieder",
            zorgaanbieder(
                "nieuwziekenhuis@medmij",
                json!([
                    gegevensdienst("4", "medmij.xisbridge.net"),
                    gegevensdienst("4", "medmij.xisbridge.net")
                ]),
            ),
            422,
            "$.entry/Gegevensdiensten/Gegevensdienst[2]/GegevensdienstId",
            "more than once",
        ),
        (
            "2 unique Zorgaanbiedernaam",
            zorgaanbieder(
                "umcharderwijk@medmij",
                json!([gegevensdienst("4", "medmij.xisbridge.net")]),
            ),
            422,
            "$.entry",
            "already has an entry",
        ),
        (
            "3 structure",
            zorgaanbieder("nieuwziekenhuis@medmij", json!([])),
            422,
            "$.entry/Gegevensdiensten/Gegevensdienst",
            "at least one",
        ),
        (
            "4 unknown GegevensdienstId",
            zorgaanbieder(
                "nieuwziekenhuis@medmij",
                json!([gegevensdienst("42", "medmij.xisbridge.net")]),
            ),
            422,
            "$.entry.gegevensdiensten[0].id",
            "not in the Gegevensdienstnamenlijst",
        ),
        (
            "4 host not whitelisted",
            zorgaanbieder(
                "nieuwziekenhuis@medmij",
                json!([gegevensdienst("4", "onbekend.example.nl")]),
            ),
            422,
            "$.entry.gegevensdiensten[0].token_endpoint",
            "onbekend.example.nl is not on the Whitelist",
        ),
        (
            "4 delete of a referenced host names the referrers",
            delete("whitelist", "medmij.xisbridge.net", 1),
            422,
            "$.key",
            "Zorgaanbieder radiologencentraalflevoland@medmij",
        ),
        (
            "5 retired id",
            json!({"list": "gnl", "operation": "upsert", "base_version": 2, "entry": {"id": "7", "weergavenaam": "Nieuwe dienst"}, "on_behalf_of": "Stichting MedMij", "reference": "MEDMIJ-5"}),
            422,
            "$.entry.id",
            "never reused",
        ),
        (
            "8 stale base version",
            delete("whitelist", "rcf-rso.nl", 5),
            409,
            "",
            "based on version 5",
        ),
    ];
    for (rule, request, status, path, words) in cases {
        let before = fingerprint(&server).await;
        for route in ["/mutations/validate", "/mutations"] {
            let (got, body) = post(&server, &pki.loket, route, &request).await;
            assert_eq!(got, status, "rule {rule} on {route}: {body}");
            let text = body.to_string();
            assert!(text.contains(words), "rule {rule}: {text}");
            if status == 422 {
                let violations = body["violations"].as_array().unwrap();
                assert!(
                    violations.iter().any(|v| v["path"] == path),
                    "rule {rule}: expected a violation at {path}: {text}"
                );
            }
        }
        assert_eq!(
            fingerprint(&server).await,
            before,
            "rule {rule} changed something"
        );
    }
    // Rule 4 again at approval: the Whitelist host goes away between submission and approval.
    let za = submit(
        &server,
        &pki.loket,
        &zorgaanbieder(
            "nieuwziekenhuis@medmij",
            json!([gegevensdienst("4", "rcf-rso.nl")]),
        ),
    )
    .await;
    server
        .db
        .storage
        .apply_change(
            &EntryChange::delete(ListKind::Whitelist, "rcf-rso.nl", 1),
            Utc::now(),
        )
        .await
        .unwrap();
    let (status, body) = approve(&server, &pki.beheer, za).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string()
            .contains("rcf-rso.nl is not on the Whitelist")
    );
    assert_eq!(
        server
            .db
            .storage
            .mutation(za)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "submitted"
    );

    // Every refusal is in the audit log with its reason.
    let refused = server
        .admin_get(&pki.beheer, "/audit?outcome=refused&limit=100")
        .await
        .json();
    let refused = refused["records"].as_array().unwrap();
    assert_eq!(refused.len(), 9 * 2 + 1, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r["reason"].as_str().is_some_and(|r| r.len() > 10))
    );
    assert!(
        refused
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("never reused"))
    );
    server.app.stop().await;
}

async fn a_mass_removal_and_an_empty_whitelist_are_not_published_without_staff(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    // Rule 7: one of the OCL's two clients is 50 %, over the 10 % threshold.
    let id = submit(
        &server,
        &pki.loket,
        &delete("ocl", "pgocluster68.personalhealthprovider.net", 1),
    )
    .await;
    let (status, approved) = approve(&server, &pki.beheer, id).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["publication"]["published"], false);
    assert_eq!(
        approved["publication"]["violations"][0]["rule"],
        "mass_change"
    );
    let ocl = server
        .db
        .storage
        .current_version(ListKind::Ocl)
        .await
        .unwrap()
        .unwrap();
    let (status, refused) = post(
        &server,
        &pki.beheer,
        "/publications",
        &json!({"lists": ["ocl"]}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("confirm the mass change"));
    assert_eq!(
        server
            .db
            .storage
            .current_version(ListKind::Ocl)
            .await
            .unwrap()
            .unwrap()
            .volgnummer,
        ocl.volgnummer
    );
    let (status, published) = post(
        &server,
        &pki.beheer,
        "/publications",
        &json!({"lists": ["ocl"], "confirm_mass_change": true}),
    )
    .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["published"]["ocl"], ocl.volgnummer.get() + 1);
    let record = server.db.storage.mutation(id).await.unwrap().unwrap();
    assert_eq!(record.published_volgnummer, Some(ocl.volgnummer.get() + 1));
    let fetched = server
        .node_get(Some(&pki.node), "/lists/ocl", &[])
        .await
        .unwrap()
        .text();
    assert!(!fetched.contains("pgocluster68"));

    // Rule 6: the working state loses every host (bypassing the checks, as a broken import
    // would); the Whitelist is still never published empty, confirmed or not.
    let storage = &server.db.storage;
    let whitelist = storage.working_state(ListKind::Whitelist).await.unwrap();
    for host in whitelist.entries.keys() {
        storage
            .apply_change(
                &EntryChange::delete(ListKind::Whitelist, host, whitelist.version_of(host)),
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let (status, refused) = post(
        &server,
        &pki.beheer,
        "/publications",
        &json!({"lists": ["whitelist"], "confirm_mass_change": true}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "not_empty"),
        "{refused}"
    );
    assert!(
        server
            .node_get(Some(&pki.node), "/lists/whitelist", &[])
            .await
            .unwrap()
            .text()
            .contains("rcf-rso.nl")
    );
    // …and the last host cannot be removed by a mutation either.
    storage
        .apply_change(
            &EntryChange::upsert(
                stelselnode::domain::AnyEntry::MedMijNode(stelselnode::domain::MedMijNode {
                    hostname: stelselnode::domain::Hostname::parse("laatste.example.nl").unwrap(),
                }),
                0,
            ),
            Utc::now(),
        )
        .await
        .unwrap();
    let (status, refused) = post(
        &server,
        &pki.loket,
        "/mutations",
        &delete("whitelist", "laatste.example.nl", 1),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(refused["violations"][0]["rule"], "not_empty");
    server.app.stop().await;
}

async fn concurrent_edits_of_one_entry_give_one_success_and_one_conflict(db: TestDatabase) {
    let server = std::sync::Arc::new(TestServer::start(db, NodeAccess::Whitelist).await);
    server.publish_all().await;
    let attempts = ["Loket A", "Loket B"].map(|who| {
        let server = server.clone();
        let mut body = whitelist_upsert(NEW_HOST, 0);
        body["on_behalf_of"] = json!(who);
        tokio::spawn(async move { post(&server, &server.pki.loket, "/mutations", &body).await })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        if status == 409 {
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("already has mutation"),
                "{body}"
            );
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    // Two approvals of the same mutation: one wins.
    let id = server
        .db
        .storage
        .mutations(&MutationQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .id;
    let approvals = [0, 1].map(|i| {
        let server = server.clone();
        tokio::spawn(async move {
            let who = if i == 0 {
                &server.pki.beheer
            } else {
                &server.pki.beheer2
            };
            approve(&server, who, id).await.0
        })
    });
    let mut statuses = Vec::new();
    for a in approvals {
        statuses.push(a.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
}

async fn a_scheduled_mutation_is_published_first_after_its_instant(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let effective = server.clock.now() + Duration::hours(1);
    let mut body = whitelist_upsert(NEW_HOST, 0);
    body["effective_from"] = json!(effective.to_rfc3339());
    let id = submit(&server, &pki.loket, &body).await;
    let (status, approved) = approve(&server, &pki.beheer, id).await;
    assert_eq!(status, 200);
    assert_eq!(approved["status"], "approved");
    assert!(approved["publication"].is_null());
    // A publication before the instant does not contain it.
    server.clock.set(effective - Duration::seconds(1));
    let (status, before) = post(
        &server,
        &pki.beheer,
        "/publications",
        &json!({"lists": ["whitelist"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!has_host(&server, NEW_HOST).await);
    // The first version after the instant does: the node publishes it itself.
    server.clock.set(effective);
    let outcomes = server.app.state().services.workflow.publish_due().await;
    let version = outcomes[0].1.as_ref().unwrap().volgnummer.get();
    assert_eq!(
        version,
        before["published"]["whitelist"].as_i64().unwrap() + 1
    );
    server.app.refresh().await.unwrap();
    assert!(has_host(&server, NEW_HOST).await);
    let record = server
        .admin_get(&pki.loket, &format!("/mutations/{id}"))
        .await
        .json();
    assert_eq!(record["status"], "published");
    assert_eq!(record["published_volgnummer"], version);
}

async fn the_release_clean_up_is_a_reviewed_set_of_mutations(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    // A Zorgaanbieder with one Gegevensdienst on the retiring interface version and one not.
    let mut old = gegevensdienst("4", "medmij.xisbridge.net");
    old["interfaceversie"] = json!("release1");
    let id = submit(
        &server,
        &pki.loket,
        &zorgaanbieder(
            "nieuwziekenhuis@medmij",
            json!([old, gegevensdienst("6", "medmij.xisbridge.net")]),
        ),
    )
    .await;
    assert_eq!(approve(&server, &pki.beheer, id).await.0, 200);
    let request = json!({"interfaceversie": "release1", "reference": "RELEASE-2", "dry_run": true});
    let (status, preview) = post(
        &server,
        &pki.beheer,
        "/releases/retire-interface-version",
        &request,
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["changes"],
        json!([{"list": "zal", "key": "nieuwziekenhuis@medmij", "operation": "upsert"}])
    );
    assert_eq!(
        post(
            &server,
            &pki.loket,
            "/releases/retire-interface-version",
            &request
        )
        .await
        .0,
        403
    );
    let mut real = request.clone();
    real["dry_run"] = json!(false);
    let (status, created) = post(
        &server,
        &pki.beheer,
        "/releases/retire-interface-version",
        &real,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let clean_up = created["mutations"][0]["id"].as_i64().unwrap();
    // Reviewed: not by the one who started it.
    assert_eq!(approve(&server, &pki.beheer, clean_up).await.0, 403);
    let (status, approved) = approve(&server, &pki.beheer2, clean_up).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "published");
    let entry = server
        .admin_get(&pki.loket, "/entries/zal/nieuwziekenhuis@medmij")
        .await
        .json();
    let ids: Vec<&str> = entry["entry"]["gegevensdiensten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["6"]);
}

async fn has_host(server: &TestServer, host: &str) -> bool {
    server
        .node_get(Some(&server.pki.node), "/lists/whitelist", &[])
        .await
        .unwrap()
        .text()
        .contains(host)
}

async fn the_staff_cli_submits_approves_and_lists(db: TestDatabase) {
    use std::process::Command;
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let dir = server.dir.path();
    let write = |name: &str, content: &str| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let ca = write("staff-ca.pem", &pki.ca.certificate_pem());
    let as_staff = |who: &Issued, name: &str| {
        (
            write(&format!("{name}.pem"), &who.certificate_pem),
            write(&format!("{name}.key"), &who.key_pem),
        )
    };
    let loket = as_staff(&pki.loket, "loket");
    let beheer2 = as_staff(&pki.beheer2, "beheer2");
    let admin = format!("https://localhost:{}", server.app.admin_address().port());
    let run = |who: &(String, String), args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .args([
                "mutation", "--admin", &admin, "--ca", &ca, "--cert", &who.0, "--key", &who.1,
            ])
            .args(args)
            .output()
            .unwrap();
        let body: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code(), body)
    };
    let request = write("mutation.json", &whitelist_upsert(NEW_HOST, 0).to_string());
    let invalid = write(
        "invalid.json",
        &whitelist_upsert("geen_host", 0).to_string(),
    );

    let (code, refused) = tokio::task::block_in_place(|| run(&loket, &["validate", &invalid]));
    assert_eq!(code, Some(2), "{refused}");
    assert_eq!(refused["violations"][0]["path"], "$.entry.hostname");
    let (code, valid) = tokio::task::block_in_place(|| run(&loket, &["validate", &request]));
    assert_eq!((code, &valid["valid"]), (Some(0), &json!(true)), "{valid}");
    let (code, submitted) = tokio::task::block_in_place(|| run(&loket, &["submit", &request]));
    assert_eq!(code, Some(0), "{submitted}");
    let id = submitted["id"].as_i64().unwrap().to_string();
    let (code, _) = tokio::task::block_in_place(|| run(&loket, &["approve", &id]));
    assert_eq!(code, Some(2), "loket cannot approve");
    let (code, approved) = tokio::task::block_in_place(|| run(&beheer2, &["approve", &id]));
    assert_eq!(code, Some(0), "{approved}");
    assert_eq!(approved["status"], "published");
    let (code, listed) = tokio::task::block_in_place(|| {
        run(
            &loket,
            &["list", "--status", "published", "--submitter", "CN=loket-1"],
        )
    });
    assert_eq!(code, Some(0));
    assert_eq!(listed["mutations"][0]["entry_key"], NEW_HOST);
    assert!(has_host(&server, NEW_HOST).await);
}
