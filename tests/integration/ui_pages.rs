//! The staff web application's read pages ask the same services as every other door
//! (issue 22): the Werkvoorraad is the workflow's open queue, exact at any backlog; the
//! Lijsten preview is the publisher's own decision.

use stelselnode::domain::{Decision, EntryChange, ListKind, Rule};
use stelselnode::publication::{PublishError, PublishOptions};
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::mutations::whitelist_upsert;
use super::support::mutations::{LOKET, audit, decide, submission, t, whitelist_node};
use super::support::server::{TestServer, post_form, submit as submit_over_api, token};

on_both_backends!(
    the_work_queue_shows_an_old_open_mutation_behind_a_thousand_decided_ones,
    the_lists_preview_refuses_exactly_when_publish_refuses,
    the_pages_say_what_happened_in_dutch,
);

/// More decided mutations than the work queue ever read at once before issue 22.
const DECIDED: i64 = 1_001;

async fn the_work_queue_shows_an_old_open_mutation_behind_a_thousand_decided_ones(
    db: TestDatabase,
) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    let storage = server.db.storage.clone();
    let submit = async |host: &str, at| {
        let change = EntryChange::upsert(whitelist_node(host), 0);
        storage
            .submit_mutation(&submission(change, LOKET, at), &audit(LOKET, "submit", at))
            .await
            .unwrap()
            .id
    };
    // The oldest open mutation: the most urgent one.
    let open = submit("medmij.oudste.nl", t(0)).await;
    for i in 1..=DECIDED {
        let id = submit("medmij.later.nl", t(i)).await;
        decide(storage.as_ref(), id, Decision::Withdraw, LOKET, t(i))
            .await
            .unwrap();
    }
    let newest_open = submit("medmij.nieuwste.nl", t(DECIDED + 1)).await;

    let queue = server.admin_get(&server.pki.loket, "/ui").await;
    assert_eq!(queue.status, 200);
    let page = queue.text();
    let (oldest, newest) = (
        page.find(&format!("href=\"/ui/mutaties/{open}\"")),
        page.find(&format!("href=\"/ui/mutaties/{newest_open}\"")),
    );
    assert!(oldest.is_some(), "the oldest open mutation is in the queue");
    assert!(oldest < newest, "the earliest deadline comes first");
    assert!(
        !page.contains(&format!("href=\"/ui/mutaties/{}\"", open + 1)),
        "a withdrawn mutation is not open"
    );
    // The filters are the database's too: by deelnemer, in any case.
    let filtered = server
        .admin_get(
            &server.pki.loket,
            "/ui?deelnemer=voorbeeld%20pgo&status=submitted",
        )
        .await
        .text();
    assert!(filtered.contains(&format!("href=\"/ui/mutaties/{open}\"")));
    let none = server
        .admin_get(&server.pki.loket, "/ui?deelnemer=iemand%20anders")
        .await
        .text();
    assert!(none.contains("Geen open mutaties."), "{none}");
}

/// What the Lijsten page says the next publication of `list` does.
#[derive(Debug, PartialEq)]
enum Said {
    Publishes,
    NeedsConfirmation,
    Refused,
}

async fn said(server: &TestServer, list: ListKind) -> Said {
    let response = server
        .admin_get(&server.pki.beheer, &format!("/ui/lijsten/{list}"))
        .await;
    assert_eq!(response.status, 200);
    let page = response.text();
    let said: Vec<Said> = [
        (" wordt gepubliceerd", Said::Publishes),
        (
            "alleen gepubliceerd met een bevestiging",
            Said::NeedsConfirmation,
        ),
        (" wordt geweigerd", Said::Refused),
    ]
    .into_iter()
    .filter(|(words, _)| page.contains(words))
    .map(|(_, said)| said)
    .collect();
    match <[Said; 1]>::try_from(said) {
        Ok([said]) => said,
        Err(said) => panic!("the page says {said:?} about the next {list} version"),
    }
}

/// What `publish` does, unconfirmed and (when refused) confirmed.
async fn publishing(server: &TestServer, list: ListKind) -> (Said, Vec<Rule>) {
    let publish = async |confirm_mass_change| {
        let options = PublishOptions {
            confirm_mass_change,
            published_by: "test".into(),
        };
        server
            .app
            .state()
            .services
            .publisher
            .publish(list, &options)
            .await
    };
    match publish(false).await {
        Ok(_) => (Said::Publishes, Vec::new()),
        Err(PublishError::Refused { violations, .. }) => {
            let rules = violations.as_slice().iter().map(|v| v.rule).collect();
            match publish(true).await {
                Ok(_) => (Said::NeedsConfirmation, rules),
                Err(PublishError::Refused { .. }) => (Said::Refused, rules),
                Err(e) => panic!("{e}"),
            }
        }
        Err(e) => panic!("{e}"),
    }
}

async fn the_lists_preview_refuses_exactly_when_publish_refuses(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let storage = server.db.storage.clone();
    let delete = async |list: ListKind, key: &str| {
        let working = storage.working_state(list).await.unwrap();
        let change = EntryChange::delete(list, key, working.version_of(key));
        storage.apply_change(&change, t(0)).await.unwrap();
    };

    // Nothing changed: a publication renews the list.
    assert_eq!(said(&server, ListKind::Zal).await, Said::Publishes);
    assert_eq!(publishing(&server, ListKind::Zal).await.0, Said::Publishes);

    // Most of the OCL removed: only with the mass-change confirmation (rule 7).
    let ocl = storage.working_state(ListKind::Ocl).await.unwrap();
    let keys: Vec<String> = ocl.entries.keys().iter().map(|k| k.to_string()).collect();
    for key in &keys[1..] {
        delete(ListKind::Ocl, key).await;
    }
    assert_eq!(said(&server, ListKind::Ocl).await, Said::NeedsConfirmation);
    let (did, rules) = publishing(&server, ListKind::Ocl).await;
    assert_eq!(did, Said::NeedsConfirmation);
    assert_eq!(rules, [Rule::MassChange]);

    // GegevensdienstId 4 leaves the GNL while the ZAL still uses it. The rendered GNL would
    // pass its schema, and still its publication is refused (rule 4, across lists: the ZAL
    // would have to go along, and it refers to 4). The ZAL alone still publishes: it is
    // consistent with the GNL nodes hold.
    delete(ListKind::Gnl, "4").await;
    assert_eq!(said(&server, ListKind::Gnl).await, Said::Refused);
    let (did, rules) = publishing(&server, ListKind::Gnl).await;
    assert_eq!(did, Said::Refused);
    assert!(rules.contains(&Rule::Reference), "{rules:?}");
    let page = server
        .admin_get(&server.pki.beheer, "/ui/lijsten/gnl")
        .await
        .text();
    assert!(
        page.contains("Zorgaanbieder[umcharderwijk@medmij]/Gegevensdienst[4]/GegevensdienstId"),
        "the page names what is refused"
    );
    assert!(
        !page.contains("Publiceer de volgende versie"),
        "no publish button for a version that would be refused"
    );
    assert_eq!(said(&server, ListKind::Zal).await, Said::Publishes);
    assert_eq!(publishing(&server, ListKind::Zal).await.0, Said::Publishes);
}

async fn the_pages_say_what_happened_in_dutch(db: TestDatabase) {
    use stelselnode::clock::Clock;

    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let id = submit_over_api(&server, &pki.loket, &whitelist_upsert("medmij.nieuw.nl", 0)).await;

    // The timeline in words, the fields by the names the list gives them.
    let page = server
        .admin_get(&pki.beheer, &format!("/ui/mutaties/{id}"))
        .await
        .text();
    assert!(
        page.contains("indienen via de API, door CN=loket-1"),
        "{page}"
    );
    assert!(!page.contains("POST /mutations"), "no route templates");
    assert!(!page.contains(" — allowed"), "no English outcome");
    assert!(page.contains("<th scope=\"row\">Hostname</th>"), "{page}");

    // A refusal next to its field, in Dutch: what the rule asks.
    let form = server
        .admin_get(&pki.loket, "/ui/nieuw/whitelist")
        .await
        .text();
    let checked = post_form(
        &server,
        &pki.loket,
        "/ui/nieuw/whitelist",
        &format!(
            "csrf={}&base_version=0&entry.hostname=niet%20een%20host&on_behalf_of=Nieuwe%20XIS&reference=MEDMIJ-1&actie=controleer",
            token(&form)
        ),
        &[("Origin", "https://localhost")],
    )
    .await
    .text();
    assert!(checked.contains("id=\"entry-hostname-fout\""), "{checked}");
    assert!(
        checked.contains("Spaties of stuurtekens waar die niet mogen."),
        "{checked}"
    );

    // A refusal in Dutch, its status unchanged.
    let unknown = server.admin_get(&pki.beheer, "/ui/lijsten/onbekend").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("Het verzoek klopt niet"));

    // The Audit page by day (Europe/Amsterdam, both days included).
    let today = stelselnode::calendar::local_date(server.clock.now());
    let object = format!("object=mutations/{id}");
    let server = &server;
    let on = async |query: String| {
        let response = server
            .admin_get(&server.pki.beheer, &format!("/ui/audit?{query}"))
            .await;
        (response.status, response.text())
    };
    let (status, shown) = on(format!("{object}&van={today}&tot={today}")).await;
    assert_eq!(status, 200);
    assert!(shown.contains("POST /mutations"), "{shown}");
    assert!(shown.contains("toegestaan"), "{shown}");
    let (_, before) = on(format!("{object}&tot=2000-01-01")).await;
    assert!(!before.contains("POST /mutations"), "{before}");
    let (_, after) = on(format!("{object}&van={}", today.succ_opt().unwrap())).await;
    assert!(!after.contains("POST /mutations"), "{after}");
    let (status, refused) = on("van=gisteren".into()).await;
    assert_eq!(status, 400);
    assert!(refused.contains("van moet een datum zijn"), "{refused}");
}
