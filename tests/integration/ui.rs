//! The staff web application (issue 15) on both backends, over real mutual TLS: a real
//! headless Chromium driven by Playwright (`tests/browser/ui.mjs`) reviews and approves a
//! mutation and checks accessibility with axe-core; forged and cross-site form posts are
//! refused and audited; roles guard every page.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use stelselnode::devpki::Issued;
use stelselnode::domain::ListKind;
use stelselnode::server::UI_ROUTES;
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::http_client::plain_get;
use super::support::mutations::whitelist_upsert;
use super::support::proxy::SwitchingProxy;
use super::support::server::{TestServer, post_form, submit, token};

on_both_backends!(
    beheer_reviews_and_approves_in_a_real_browser,
    forged_and_cross_site_form_posts_are_refused_and_audited,
    a_form_opened_on_one_replica_is_accepted_by_another,
);

fn write_identity(dir: &Path, name: &str, who: &Issued) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &who.certificate_pem).unwrap();
    std::fs::write(&key, &who.key_pem).unwrap();
    (cert, key)
}

/// Runs a script of tests/browser in Chromium with `env`; panics with its output if it fails.
fn browser(script: &str, env: &[(&str, String)]) {
    let run = Command::new("node")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser"))
        .arg(script)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("node runs (scripts/test installs the browser test's npm packages)");
    assert!(
        run.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

async fn beheer_reviews_and_approves_in_a_real_browser(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let before = server.current(ListKind::Zal).await;

    let dir = server.dir.path();
    let (beheer_cert, beheer_key) = write_identity(dir, "beheer", &server.pki.beheer);
    let (loket_cert, loket_key) = write_identity(dir, "loket", &server.pki.loket);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let backend = match server.db.url.starts_with("sqlite") {
        true => "sqlite",
        false => "postgres",
    };
    let shots = root.join("target/ui-screenshots").join(backend);
    std::fs::create_dir_all(&shots).unwrap();
    browser(
        "ui.mjs",
        &[
            (
                "UI_BASE",
                format!("https://localhost:{}", server.app.admin_address().port()),
            ),
            ("BEHEER_CERT", beheer_cert.display().to_string()),
            ("BEHEER_KEY", beheer_key.display().to_string()),
            ("LOKET_CERT", loket_cert.display().to_string()),
            ("LOKET_KEY", loket_key.display().to_string()),
            ("SCREENSHOTS", shots.display().to_string()),
        ],
    );
    for page in [
        "nieuwe-mutatie",
        "werkvoorraad",
        "mutatie",
        "goedgekeurd",
        "audit",
    ] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "{page} screenshot"
        );
    }

    // What the browser entered and approved, nodes fetch: the new Zorgaanbieder with both
    // Gegevensdiensten, one Volgnummer on.
    let served = server
        .node_get(Some(&server.pki.node), "/lists/zal", &[])
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    let text = served.text();
    assert!(text.contains("<Zorgaanbiedernaam>nieuwziekenhuis@medmij</Zorgaanbiedernaam>"));
    let next = before.volgnummer.get() + 1;
    assert!(text.contains(&format!("<Volgnummer>{next}</Volgnummer>")));
}

/// Behind a load balancer without affinity (issue 24, item 4): Chromium opens the form on one
/// replica, and its post reaches another, which accepts the token — the key is shared
/// through the database.
async fn a_form_opened_on_one_replica_is_accepted_by_another(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    // Submitted by beheer-1, so beheer-2 may approve it.
    let id = submit(
        &server,
        &pki.beheer,
        &whitelist_upsert("medmij.nieuwexis.nl", 0),
    )
    .await;
    let other = server.replica().await;
    let proxy =
        SwitchingProxy::start(vec![server.app.admin_address(), other.admin_address()]).await;
    let (cert, key) = write_identity(server.dir.path(), "beheer2", &pki.beheer2);
    browser(
        "replicas.mjs",
        &[
            (
                "UI_BASE",
                format!("https://localhost:{}", proxy.address.port()),
            ),
            ("SWITCH_URL", format!("http://{}/switch/1", proxy.control)),
            ("MUTATION", id.to_string()),
            ("BEHEER_CERT", cert.display().to_string()),
            ("BEHEER_KEY", key.display().to_string()),
        ],
    );
    let decided = server
        .admin_get(&pki.beheer2, &format!("/mutations/{id}"))
        .await
        .json();
    assert_ne!(decided["status"], "submitted");
    // The page came from the first replica, the post went to the other (which also
    // served the page it redirected to).
    let first = server.app.ops_address();
    assert_eq!(requests(first, "/ui/mutaties/{id}", 200).await, 1);
    assert_eq!(
        requests(first, "/ui/mutaties/{id}/goedkeuren", 303).await,
        0
    );
    assert_eq!(
        requests(other.ops_address(), "/ui/mutaties/{id}/goedkeuren", 303).await,
        1
    );
    other.stop().await;
}

/// How many requests a replica's admin listener answered on `route` with `status`.
async fn requests(ops: std::net::SocketAddr, route: &str, status: u16) -> u64 {
    let metrics = plain_get(ops, "/metrics").await.text();
    let series = format!(
        "stelselnode_http_requests_total{{listener=\"admin\",route=\"{route}\",status=\"{status}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

async fn forged_and_cross_site_form_posts_are_refused_and_audited(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let pki = &server.pki;
    let before = server.current(ListKind::Whitelist).await;
    // Submitted by beheer-1: the four-eyes rule keeps them from approving it.
    let id = submit(
        &server,
        &pki.beheer,
        &whitelist_upsert("medmij.nieuwexis.nl", 0),
    )
    .await;
    let path = format!("/ui/mutaties/{id}/goedkeuren");

    // The page: headers, identity, and for the submitter no approve button.
    let own = server
        .admin_get(&pki.beheer, &format!("/ui/mutaties/{id}"))
        .await;
    assert_eq!(own.status, 200);
    assert!(
        own.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'self'"))
    );
    let own_page = own.text();
    assert!(own_page.contains("CN=beheer-1"), "the identity is shown");
    assert!(
        own_page.contains("Integriteit nu: de mutatie voldoet"),
        "the check an approval would make"
    );
    assert!(!own_page.contains("Goedkeuren en publiceren"));
    // A forged post by the submitter, with a valid token of their own, is refused by the
    // workflow all the same.
    let forged = post_form(
        &server,
        &pki.beheer,
        &path,
        &format!("csrf={}", token(&own_page)),
        &[],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.text());

    // Another beheer identity: no token, another's token, another origin, another site.
    let page = server
        .admin_get(&pki.beheer2, &format!("/ui/mutaties/{id}"))
        .await
        .text();
    assert!(page.contains("Goedkeuren en publiceren"));
    let mine = token(&page);
    // The test client's Host header is `localhost`; a browser's names the port too.
    let origin = "https://localhost".to_owned();
    for (form, headers) in [
        (String::new(), vec![]),
        (format!("csrf={}", token(&own_page)), vec![]),
        (
            format!("csrf={mine}"),
            vec![("Origin", "https://evil.example")],
        ),
        (
            format!("csrf={mine}"),
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
    ] {
        let refused = post_form(&server, &pki.beheer2, &path, &form, &headers).await;
        assert_eq!(
            refused.status,
            403,
            "{form} {headers:?}: {}",
            refused.text()
        );
    }
    assert_eq!(
        server.current(ListKind::Whitelist).await,
        before,
        "nothing was published"
    );
    let still = server
        .admin_get(&pki.beheer2, &format!("/mutations/{id}"))
        .await
        .json();
    assert_eq!(still["status"], "submitted", "nothing was approved");

    // Each refusal is in the audit log with its reason.
    let log: Value = server
        .admin_get(&pki.beheer, "/audit?outcome=refused&action=POST%20/ui")
        .await
        .json();
    let reasons: Vec<String> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for expected in [
        "CSRF token",
        "another origin",
        "Sec-Fetch-Site",
        "another beheer identity",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }

    // The right form, from the application itself, goes through.
    let approved = post_form(
        &server,
        &pki.beheer2,
        &path,
        &format!("csrf={mine}"),
        &[
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(approved.status, 303, "{}", approved.text());
    let after = server
        .admin_get(&pki.beheer2, &format!("/mutations/{id}"))
        .await
        .json();
    assert_eq!(after["status"], "published");

    // Every page and action is guarded: a certificate without a role gets 403 everywhere.
    for (method, route) in UI_ROUTES {
        let path = route.replace("{id}", &id.to_string());
        let method = if *method == "read" { "GET" } else { "POST" };
        let body = json!({});
        let answer = server
            .admin(&pki.stranger, method, &path, Some(&body))
            .await;
        assert_eq!(answer.status, 403, "{method} {path}");
    }
}
