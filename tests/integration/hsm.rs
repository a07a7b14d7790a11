//! Signing keys in a PKCS#11 token (issue 27), with a real SoftHSM2 token set up by the Debian
//! tools: the node signs lists, heartbeats and archive MANIFESTs in the token, xmlsec1 and
//! `archive verify` accept them; a key rollover from a file to the token changes nothing a
//! consumer trusting the CA notices; a token that goes away stops publication (readiness
//! says why) but not serving, and its return is used without a restart; a SIGHUP after the
//! configuration file names a new key in the token rolls over while the node serves. The
//! node runs as processes here: SoftHSM2 reads its configuration once per process.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use stelselnode::admin_client::StaffRequest;
use stelselnode::devpki::{DevCa, KeyAlgorithm, Purpose};
use stelselnode::domain::ListKind;
use stelselnode::publication::assemble;
use stelselnode::signing::{SignerIdentity, verify_signature};

use super::support::TestDatabase;
use super::support::http_client::plain_get;
use super::support::node::LOG_ORIGIN;
use super::support::process::NodeFiles;
use super::support::signer::xmlsec1_verify;
use super::support::softhsm::{P11_KIT_CLIENT, ProxiedToken, SoftHsm};

on_both_backends!(
    the_token_signs_and_a_rollover_from_a_file_goes_unnoticed,
    a_token_that_goes_away_stops_publication_not_serving_and_sighup_rolls_over,
    a_token_that_hangs_costs_a_publication_not_the_node,
);

const TOKEN: &str = "stelselnode";
const KEY: &str = "lijsten-2026";

/// A SoftHSM2 token with a P-256 key, its certificate from `ca` (`token.pem` in `dir`), and
/// the key's URI.
fn token_key(dir: &Path, ca: &DevCa) -> (SoftHsm, String) {
    let hsm = SoftHsm::new(dir, TOKEN);
    let public = hsm.generate_p256(TOKEN, KEY);
    let (_, pem) = ca.issue_signing_for_p256(KEY, &public).unwrap();
    std::fs::write(dir.join("token.pem"), pem).unwrap();
    let uri = hsm.uri(TOKEN, KEY, &dir.join("pin"));
    (hsm, uri)
}

/// The current version of `list`: its bytes and signature.
async fn current(db: &TestDatabase, list: ListKind) -> (Vec<u8>, Vec<u8>) {
    let record = db.storage.current_version(list).await.unwrap().unwrap();
    let stored = db
        .storage
        .version(list, record.volgnummer)
        .await
        .unwrap()
        .unwrap();
    (assemble(&stored).unwrap(), stored.signature)
}

/// Who signed `signature` over `list`, checked against `ca`.
fn signer(list: &[u8], signature: &[u8], ca: &DevCa) -> Option<String> {
    let check = verify_signature(
        signature,
        list,
        std::slice::from_ref(ca.certificate()),
        chrono::Utc::now(),
    )
    .unwrap();
    SignerIdentity::of(&check.signer).unwrap().common_name
}

async fn the_token_signs_and_a_rollover_from_a_file_goes_unnoticed(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("registry signing CA").unwrap();
    let (hsm, uri) = token_key(dir.path(), &ca);
    let file = ca
        .issue(
            &Purpose::Signing {
                common_name: "lijsten-2025".into(),
            },
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("file.key"), &file.key_pem).unwrap();
    std::fs::write(path("file.pem"), &file.certificate_pem).unwrap();
    let (conf_name, conf) = hsm.env();
    let node = NodeFiles::prepare(&dir.path().join("node"), db.url.clone())
        .with_env(conf_name, conf.to_str().unwrap())
        .with_setting("SIGNING_KEY_FILE", &path("file.key"))
        .with_setting("SIGNING_CERTIFICATE_CHAIN_FILE", &path("file.pem"));
    // The key in a file: every list renewed (heartbeats).
    node.run(&["publish", "--all", "--confirm-mass-change"]);
    let (before, before_signature) = current(&db, ListKind::Zal).await;

    // The rollover: the configuration names the token and its certificate; the transparency
    // log's key moves into the token too (Ed25519), its verifier key printed for consumers.
    hsm.generate_ed25519(TOKEN, "log-2026");
    let log_uri = hsm.uri(TOKEN, "log-2026", &dir.path().join("pin"));
    let node = node
        .with_setting("SIGNING_KEY_FILE", &uri)
        .with_setting("SIGNING_CERTIFICATE_CHAIN_FILE", &path("token.pem"))
        .with_setting("TRANSPARENCY_ORIGIN", LOG_ORIGIN)
        .with_setting("TRANSPARENCY_KEY_FILE", &log_uri);
    let printed = node.command(&["log-key"]).output().unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let log_verifier = String::from_utf8(printed.stdout).unwrap().trim().to_owned();
    node.run(&["publish", "--all", "--confirm-mass-change"]);
    let (after, after_signature) = current(&db, ListKind::Zal).await;
    assert_ne!(before, after);

    // Both verify for a consumer trusting the CA — with xmlsec1 and with the node's own
    // verifier — each signed by its own key.
    for (list, signature, key) in [
        (&before, &before_signature, "lijsten-2025"),
        (&after, &after_signature, KEY),
    ] {
        xmlsec1_verify(ListKind::Zal, list, signature, &ca.certificate_pem())
            .unwrap_or_else(|e| panic!("xmlsec1 refused {key}'s signature: {e}"));
        assert_eq!(signer(list, signature, &ca).as_deref(), Some(key));
    }

    // A bundle of versions on both sides of the switch, its MANIFEST signed in the token,
    // verifies; so does the MANIFEST with xmlsec1.
    let mut trust = std::fs::read_to_string(dir.path().join("node/ca.pem")).unwrap();
    trust.push_str(&ca.certificate_pem());
    std::fs::write(path("trust.pem"), trust).unwrap();
    let to = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    node.run(&["archive", "export", "--out", &path("bundle"), "--to", &to]);
    let verified = node
        .command(&[
            "archive",
            "verify",
            &path("bundle"),
            "--ca",
            &path("trust.pem"),
            "--log-key",
            &log_verifier,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("cn:{KEY}")), "{said}");
    std::fs::write(path("ca.pem"), ca.certificate_pem()).unwrap();
    let xmlsec = std::process::Command::new("xmlsec1")
        .current_dir(dir.path().join("bundle"))
        .args(["--verify", "--trusted-pem", &path("ca.pem"), "MANIFEST.sig"])
        .output()
        .unwrap();
    assert!(
        xmlsec.status.success(),
        "{}",
        String::from_utf8_lossy(&xmlsec.stderr)
    );

    // The bundle's log checkpoint, signed in the token, verifies with aws-lc-rs's Ed25519.
    let note = std::fs::read_to_string(dir.path().join("bundle/log-checkpoint")).unwrap();
    super::transparency::verified_checkpoint(&note, &log_verifier);

    // A wrong PIN: the command fails, naming the token, never the PIN.
    std::fs::write(dir.path().join("pin"), "0000\n").unwrap();
    let refused = node
        .command(&["publish", "--list", "zal"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("PKCS#11 token: logging in"), "{said}");
    assert!(
        !said.contains(super::support::softhsm::PIN) && !said.contains("0000"),
        "{said}"
    );
}

/// Names the signing key and its chain in the node's configuration file (what an operator
/// edits before a SIGHUP).
fn set_signing_key(node_dir: &Path, key: &str, chain: &Path) {
    let file = node_dir.join("config.toml");
    let mut config =
        stelselnode::config::Config::load(Some(&file), Vec::<(String, String)>::new()).unwrap();
    config.signing.key_file = key.to_owned();
    config.signing.certificate_chain_file = chain.display().to_string();
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
}

/// A serving node, killed when the test ends, also when an assertion fails first.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/readyz` of `node`: its status and words.
async fn readiness(node: &NodeFiles) -> (u16, String) {
    let answer = plain_get(node.ops(), "/readyz").await;
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

async fn a_token_that_goes_away_stops_publication_not_serving_and_sighup_rolls_over(
    db: TestDatabase,
) {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("registry signing CA").unwrap();
    let (hsm, uri) = token_key(dir.path(), &ca);
    let (conf_name, conf) = hsm.env();
    let node_dir = dir.path().join("node");
    let node =
        NodeFiles::prepare(&node_dir, db.url.clone()).with_env(conf_name, conf.to_str().unwrap());
    set_signing_key(&node_dir, &uri, &dir.path().join("token.pem"));
    let serving = Serving(node.serve().await);
    node.whitelist_dev_node().await;
    let served = current(&db, ListKind::Whitelist).await;

    // The token unplugged: the approved change is not published, readiness says why, the
    // current lists are still served.
    hsm.unplug();
    let approved = approve_whitelisting(&node, "na-de-token.medmij.nl").await;
    let (status, words) = readiness(&node).await;
    assert_eq!(status, 503, "{words}");
    // The token's own words: the signature that failed, or a retry's login that did.
    assert!(
        words.contains("signing key: ")
            && words.contains("nothing can be published until the token signs again"),
        "{words}"
    );
    assert_eq!(
        current(&db, ListKind::Whitelist).await,
        served,
        "approval answered {approved}"
    );
    node.until_dev_node_served().await;
    let metrics = plain_get(node.ops(), "/metrics").await.text();
    for failing in [
        r#"stelselnode_publication_failing{list="whitelist"} 1"#,
        "stelselnode_signing_token_failing 1",
    ] {
        assert!(metrics.contains(failing), "{failing}\n{metrics}");
    }

    // The token back: the next retry publishes the change, without a restart.
    hsm.plug_in();
    until_ready(&node).await;
    let (list, signature) = current(&db, ListKind::Whitelist).await;
    assert!(
        String::from_utf8_lossy(&list).contains("na-de-token.medmij.nl"),
        "the change was published after the token came back"
    );
    assert_eq!(signer(&list, &signature, &ca).as_deref(), Some(KEY));

    // A rollover while serving: a new key in the token, named in the configuration file,
    // SIGHUP; the node signs the next versions with it.
    let public = hsm.generate_p256(TOKEN, "lijsten-2027");
    let (_, pem) = ca.issue_signing_for_p256("lijsten-2027", &public).unwrap();
    let chain = dir.path().join("token-2027.pem");
    std::fs::write(&chain, pem).unwrap();
    let new_uri = hsm.uri(TOKEN, "lijsten-2027", &dir.path().join("pin"));
    set_signing_key(&node_dir, &new_uri, &chain);
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &serving.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let mut signed_by = None;
    for round in 0..50 {
        let hostname = format!("na-de-wissel-{round}.medmij.nl");
        assert_eq!(approve_whitelisting(&node, &hostname).await, 200);
        let (list, signature) = current(&db, ListKind::Whitelist).await;
        signed_by = signer(&list, &signature, &ca);
        if signed_by.as_deref() == Some("lijsten-2027") {
            break;
        }
    }
    assert_eq!(signed_by.as_deref(), Some("lijsten-2027"));
    assert_eq!(readiness(&node).await.0, 200);
    let metrics = plain_get(node.ops(), "/metrics").await.text();
    assert!(
        metrics.contains("stelselnode_signing_token_failing 0"),
        "{metrics}"
    );
    drop(serving);
}

/// Waits until `node` is ready again (a retried publication went through).
async fn until_ready(node: &NodeFiles) {
    let started = Instant::now();
    while readiness(node).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{}",
            readiness(node).await.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits a Whitelist change for `hostname` and approves it; returns the approval's status.
async fn approve_whitelisting(node: &NodeFiles, hostname: &str) -> u16 {
    let change = json!({
        "list": "whitelist", "operation": "upsert", "base_version": 0,
        "entry": { "hostname": hostname },
        "on_behalf_of": "Een PGO", "reference": "HSM-1"
    });
    let created = node
        .client("loket")
        .send(&StaffRequest::Submit(change))
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    node.client("beheer")
        .send(&StaffRequest::Approve(id))
        .await
        .unwrap()
        .status
}

/// A network HSM that stops answering (the token behind `p11-kit server`, the server
/// stopped): the signature is given up on after `signing.token_timeout_seconds`, the approval
/// is answered, readiness says why, the lists are served; when it answers again the change is
/// published without a restart.
async fn a_token_that_hangs_costs_a_publication_not_the_node(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("registry signing CA").unwrap();
    let (hsm, _) = token_key(dir.path(), &ca);
    let proxied = ProxiedToken::serve(&hsm, TOKEN, dir.path());
    std::fs::write(
        dir.path().join("pin"),
        format!("{}\n", super::support::softhsm::PIN),
    )
    .unwrap();
    let uri = format!(
        "pkcs11:token={TOKEN};object={KEY}?module-path={P11_KIT_CLIENT}&pin-source=file:{}",
        dir.path().join("pin").display()
    );
    let node_dir = dir.path().join("node");
    let node = NodeFiles::prepare(&node_dir, db.url.clone())
        .with_env("P11_KIT_SERVER_ADDRESS", &proxied.address)
        .with_setting("SIGNING_TOKEN_TIMEOUT_SECONDS", "1");
    set_signing_key(&node_dir, &uri, &dir.path().join("token.pem"));
    let serving = Serving(node.serve().await);
    node.whitelist_dev_node().await;
    let served = current(&db, ListKind::Whitelist).await;

    proxied.hang();
    let started = Instant::now();
    let status = approve_whitelisting(&node, "tijdens-de-hang.medmij.nl").await;
    let answered_in = started.elapsed();
    assert!(
        answered_in < Duration::from_secs(20),
        "{answered_in:?}, {status}"
    );
    let (ready, words) = readiness(&node).await;
    assert_eq!(ready, 503, "{words}");
    assert!(
        words.contains("no answer within 1 s") || words.contains("has not returned after 1 s"),
        "{words}"
    );
    assert_eq!(current(&db, ListKind::Whitelist).await, served);
    node.until_dev_node_served().await;

    proxied.resume();
    until_ready(&node).await;
    let (list, signature) = current(&db, ListKind::Whitelist).await;
    assert!(String::from_utf8_lossy(&list).contains("tijdens-de-hang.medmij.nl"));
    assert_eq!(signer(&list, &signature, &ca).as_deref(), Some(KEY));
    drop(serving);
}
