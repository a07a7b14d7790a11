//! The `stelselnode` binary as an operator uses it: migrate, import, export, on both backends.

use std::process::{Command, Output};

use stelselnode::domain::ListKind;
use stelselnode::xml::parse_list;

use super::support::{official_example, postgres_url, xmllint_validate};

fn stelselnode(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .args(args)
        .env("STELSELNODE_DATABASE_URL", database_url)
        .env("STELSELNODE_LOG", "warn")
        .output()
        .expect("run stelselnode")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn import_then_export_every_official_example(database_url: &str) {
    let migrate = stelselnode(database_url, &["migrate"]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    for list in ListKind::ALL {
        let file = official_example(list);
        let import = stelselnode(
            database_url,
            &["import", "--list", list.as_str(), file.to_str().unwrap()],
        );
        assert!(import.status.success(), "{list}: {}", stderr(&import));
    }
    for list in ListKind::ALL {
        let export = stelselnode(database_url, &["export", "--list", list.as_str()]);
        assert!(export.status.success(), "{list}: {}", stderr(&export));
        xmllint_validate(&export.stdout, list).unwrap_or_else(|e| panic!("{list}: {e}"));
        let exported = parse_list(&export.stdout, list).unwrap();
        let original = parse_list(&std::fs::read(official_example(list)).unwrap(), list).unwrap();
        assert_eq!(exported.entries, original.entries, "{list}: same entries");
        assert_eq!(
            exported.volgnummer,
            original.volgnummer.next(),
            "{list}: numbering continues"
        );
    }
}

#[test]
fn import_and_export_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    import_then_export_every_official_example(&format!(
        "sqlite://{}",
        dir.path().join("node.db").display()
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn import_and_export_on_postgres() {
    let url = postgres_url().await;
    tokio::task::spawn_blocking(move || import_then_export_every_official_example(&url))
        .await
        .unwrap();
}

#[test]
fn a_refused_import_names_path_and_rule_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    let bad = dir.path().join("bad.xml");
    let xml = std::fs::read_to_string(official_example(ListKind::Whitelist))
        .unwrap()
        .replacen("rcf-rso.nl", "rcf_rso.nl", 1);
    std::fs::write(&bad, xml).unwrap();
    let import = stelselnode(
        &url,
        &["import", "--list", "whitelist", bad.to_str().unwrap()],
    );
    assert_eq!(import.status.code(), Some(2));
    let message = stderr(&import);
    assert!(
        message.contains("/Whitelist/MedMijNodes/MedMijNode[7]/Hostname [pattern]"),
        "{message}"
    );
    assert!(message.contains("nothing was stored"), "{message}");
    let export = stelselnode(&url, &["export", "--list", "whitelist"]);
    assert!(
        parse_list(&export.stdout, ListKind::Whitelist)
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn configuration_mistakes_are_explained() {
    let output = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .arg("migrate")
        .env("STELSELNODE_PUBLICATION_GRACE_PERIOD_SECONDS", "60")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("grace_period_seconds is 60"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn publish_all_then_verify_as_a_consumer() {
    use stelselnode::devpki::{DevCa, KeyAlgorithm, Purpose};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    let ca = DevCa::new("CLI test CA").unwrap();
    let issued = ca
        .issue(
            &Purpose::Signing {
                common_name: "signer".into(),
            },
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.certificate_pem()).unwrap();
    std::fs::write(dir.path().join("signer.pem"), &issued.certificate_pem).unwrap();
    std::fs::write(dir.path().join("signer.key"), &issued.key_pem).unwrap();
    for list in ListKind::ALL {
        let file = official_example(list);
        assert!(
            stelselnode(
                &url,
                &["import", "--list", list.as_str(), file.to_str().unwrap()]
            )
            .status
            .success()
        );
    }
    let publish = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .args(["publish", "--all"])
        .env("STELSELNODE_DATABASE_URL", &url)
        .env(
            "STELSELNODE_SIGNING_KEY_FILE",
            dir.path().join("signer.key"),
        )
        .env(
            "STELSELNODE_SIGNING_CERTIFICATE_CHAIN_FILE",
            dir.path().join("signer.pem"),
        )
        .output()
        .unwrap();
    assert!(publish.status.success(), "{}", stderr(&publish));
    assert!(
        stderr(&publish).contains("published zal Volgnummer 7"),
        "{}",
        stderr(&publish)
    );

    // Without a signing key, publishing is refused with a clear message.
    let unsigned = stelselnode(&url, &["publish", "--list", "zal"]);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(
        stderr(&unsigned).contains("signing.key_file"),
        "{}",
        stderr(&unsigned)
    );
}

#[test]
fn the_example_production_configuration_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/stelselnode.toml");
    let config = stelselnode::config::Config::load(Some(&path), Vec::new()).unwrap();
    assert_eq!(
        config.server.node_access,
        stelselnode::tls::NodeAccess::Whitelist
    );
    assert_eq!(config.admin.identities.len(), 2);
    // The witness it shows, commented out, is in the form the configuration reads.
    let text = std::fs::read_to_string(&path).unwrap();
    let with_witness: String = text
        .lines()
        .map(|line| {
            let shown = [
                "# [[transparency.witnesses]]",
                "# url = ",
                "# verifier_key = ",
            ];
            match shown.iter().any(|s| line.starts_with(s)) {
                true => format!("{}\n", &line[2..]),
                false => format!("{line}\n"),
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("with-witness.toml"), with_witness).unwrap();
    let config =
        stelselnode::config::Config::load(Some(&dir.path().join("with-witness.toml")), Vec::new())
            .unwrap();
    assert_eq!(config.transparency.witnesses.len(), 1);
    // So is the signing key in a token it shows.
    let uri = text
        .lines()
        .find_map(|l| l.strip_prefix("# key_file = \"pkcs11:"))
        .map(|rest| format!("pkcs11:{}", rest.trim_end_matches('"')))
        .expect("the PKCS#11 form is shown");
    stelselnode::signing::TokenUri::parse(&uri).unwrap();
    assert_eq!(
        config.transparency.witnesses[0].url,
        "https://witness.example.org/"
    );
}

/// `stelselnode calendar`: werkdagen by hand, as an operator checks a deadline.
#[test]
fn the_calendar_answers_between_and_deadline() {
    let calendar = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .arg("calendar")
            .args(args)
            .output()
            .expect("run stelselnode");
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    // Thursday before Easter 2026 → Tuesday after: Goede Vrijdag, the weekend and 2e Paasdag
    // do not count.
    assert_eq!(
        calendar(&[
            "between",
            "2026-04-02T09:00:00+02:00",
            "2026-04-07T09:00:00+02:00"
        ]),
        "1.000000"
    );
    // Nieuwjaarsdag, then 2 January 2026 (equated by decree), then the weekend.
    assert_eq!(
        calendar(&["deadline", "2025-12-31T12:00:00+01:00", "1"]),
        "2026-01-05T11:00:00Z"
    );
    assert_eq!(
        calendar(&[
            "deadline",
            "2026-11-28T15:00:00+01:00",
            "0.5",
            "--extra-day",
            "2026-11-30"
        ]),
        "2026-12-01T11:00:00Z"
    );
}

#[test]
fn keeping_no_nightly_bundle_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
        .arg("serve")
        .env(
            "STELSELNODE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("node.db").display()),
        )
        .env("STELSELNODE_ARCHIVE_KEEP_BUNDLES", "0")
        .output()
        .unwrap();
    assert!(!serve.status.success());
    assert!(
        stderr(&serve).contains("archive.keep_bundles must be at least 1"),
        "{}",
        stderr(&serve)
    );
}

#[test]
fn a_log_retention_outside_12_to_15_months_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    for months in ["11", "16"] {
        let serve = Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .arg("serve")
            .env("STELSELNODE_DATABASE_URL", &url)
            .env("STELSELNODE_RETENTION_AUDIT_MONTHS", months)
            .output()
            .unwrap();
        assert!(!serve.status.success(), "{months} months was accepted");
        assert!(
            stderr(&serve).contains(&format!(
                "retention.audit_months is {months}, the audit log is kept 12 to 15 months"
            )),
            "{}",
            stderr(&serve)
        );
    }
}
