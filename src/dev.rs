//! `stelselnode dev`: a complete node on this machine for development — a CA, server, client
//! and signing certificates, a configuration, and a SQLite database with the project's own
//! example lists published as version 1 — kept in `./dev/` and reused on the next run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;

use crate::config::{AdminIdentity, Config};
use crate::devpki::{DevCa, Issued, KeyAlgorithm, Purpose};
use crate::domain::EntryChange;
use crate::domain::{AnyEntry, ListEntries, ListKind};
use crate::roles::Role;
use crate::sample::{SampleSize, network};
use rustls_pki_types::CertificateDer;

/// The node certificate's hostname: on the example Whitelist.
pub const DEV_NODE_HOST: &str = "pgo0.example.com";

fn write(dir: &Path, name: &str, content: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}

/// Creates `dir` with certificates and configuration unless it exists; returns the config.
pub fn prepare(dir: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let config_path = dir.join("config.toml");
    if config_path.exists() {
        return Ok((config_path, false));
    }
    std::fs::create_dir_all(dir)?;
    let ca = DevCa::new("stelselnode development CA")?;
    // The staff certificates also as PKCS#12, for a browser (the web application); one
    // random password for this development directory.
    let password: String = {
        let mut bytes = [0u8; 12];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
        crate::signing::hex(&bytes)
    };
    write(dir, "ca.pem", &ca.certificate_pem())?;
    let server = ca.issue(
        &Purpose::Server(vec!["localhost".into()]),
        KeyAlgorithm::EcdsaP256,
    )?;
    let clients = [
        ("node", DEV_NODE_HOST, vec![DEV_NODE_HOST.to_owned()]),
        ("loket", "loket-dev", vec![]),
        ("beheer", "beheer-dev", vec![]),
        ("beheer2", "beheer2-dev", vec![]),
    ];
    for (file, common_name, dns_names) in clients {
        let issued = ca.issue(
            &Purpose::Client {
                common_name: common_name.into(),
                dns_names,
            },
            KeyAlgorithm::EcdsaP256,
        )?;
        write(dir, &format!("{file}.pem"), &issued.certificate_pem)?;
        write(dir, &format!("{file}.key"), &issued.key_pem)?;
        if file != "node" {
            std::fs::write(
                dir.join(format!("{file}.p12")),
                pkcs12(&issued, ca.certificate(), &password)?,
            )?;
        }
    }
    write(dir, BROWSER_PASSWORD_FILE, &password)?;
    let signer = ca.issue(
        &Purpose::Signing {
            common_name: "stelselnode dev signer".into(),
        },
        KeyAlgorithm::Rsa2048,
    )?;
    let absolute = std::fs::canonicalize(dir)?;
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", absolute.join("stelselnode.db").display());
    config.server.certificate_chain_file = write(&absolute, "server.pem", &server.certificate_pem)?;
    config.server.key_file = write(&absolute, "server.key", &server.key_pem)?;
    config.server.client_ca_file = absolute.join("ca.pem").display().to_string();
    config.signing.key_file = write(&absolute, "signer.key", &signer.key_pem)?;
    config.signing.certificate_chain_file =
        write(&absolute, "signer.pem", &signer.certificate_pem)?;
    // The transparency log's checkpoint key; consumers verify with `log.vkey`.
    let origin = "localhost/stelselnode-dev";
    let (log_key, log_verifier) = crate::transparency::generate_note_key(origin);
    config.transparency.origin = origin.into();
    config.transparency.key_file = write(&absolute, "log.key", &log_key)?;
    write(&absolute, "log.vkey", &log_verifier)?;
    config.admin.identities = vec![
        AdminIdentity {
            common_name: Some("loket-dev".into()),
            sha256_fingerprint: None,
            roles: vec![Role::Loket],
        },
        AdminIdentity {
            common_name: Some("beheer-dev".into()),
            sha256_fingerprint: None,
            roles: vec![Role::Beheer],
        },
        AdminIdentity {
            common_name: Some("beheer2-dev".into()),
            sha256_fingerprint: None,
            roles: vec![Role::Beheer],
        },
    ];
    let text = format!(
        "# Development node made by `stelselnode dev`. Keys here are for this machine only.\n{}",
        toml::to_string_pretty(&config)?
    );
    std::fs::write(&config_path, text)?;
    Ok((config_path, true))
}

/// Where Debian and others install SoftHSM2's PKCS#11 module.
const SOFTHSM_MODULES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// `stelselnode dev --softhsm`: the dev signing key in a SoftHSM2 token of its own under
/// `dir/softhsm` (made on first use by `softhsm2-util` and `pkcs11-tool`, Debian `softhsm2`
/// and `opensc`, with a random PIN in `dir/softhsm/pin`), so a newcomer can try a key in a
/// token. Returns what the node runs with: `SOFTHSM2_CONF` and the key's PKCS#11 URI as
/// `STELSELNODE_SIGNING_KEY_FILE` (the configuration keeps naming the key file).
pub fn softhsm_token(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let module = SOFTHSM_MODULES
        .into_iter()
        .find(|m| Path::new(m).exists())
        .context("SoftHSM2 is not installed (Debian: apt install softhsm2 opensc)")?;
    let dir = std::fs::canonicalize(dir)?;
    let hsm = dir.join("softhsm");
    let conf = hsm.join("softhsm2.conf");
    let pin_file = hsm.join("pin");
    let token = "stelselnode-dev";
    if !conf.exists() {
        let tokens = hsm.join("tokens");
        std::fs::create_dir_all(&tokens)?;
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )?;
        let random = |n: usize| -> anyhow::Result<String> {
            let mut bytes = vec![0u8; n];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
            Ok(crate::signing::hex(&bytes))
        };
        let pin = random(8)?;
        std::fs::write(&pin_file, &pin)?;
        let run = |command: &mut std::process::Command| -> anyhow::Result<()> {
            let output = command
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .with_context(|| format!("cannot run {command:?} (apt install softhsm2 opensc)"))?;
            anyhow::ensure!(
                output.status.success(),
                "{:?} failed: {}",
                command.get_program(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            Ok(())
        };
        run(std::process::Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", token, "--pin", &pin])
            .args(["--so-pin", &random(8)?]))?;
        run(std::process::Command::new("pkcs11-tool")
            .args([
                "--module",
                module,
                "--token-label",
                token,
                "--login",
                "--pin",
                &pin,
            ])
            .arg("--write-object")
            .arg(dir.join("signer.key"))
            .args([
                "--type",
                "privkey",
                "--label",
                "signer",
                "--id",
                "01",
                "--usage-sign",
            ]))?;
    }
    let uri = format!(
        "pkcs11:token={token};object=signer?module-path={module}&pin-source=file:{}",
        pin_file.display()
    );
    Ok(vec![
        ("SOFTHSM2_CONF".into(), conf.display().to_string()),
        ("STELSELNODE_SIGNING_KEY_FILE".into(), uri),
    ])
}

/// Puts the example network into an empty database and publishes it as version 1.
pub async fn seed(
    storage: &dyn crate::storage::Storage,
    publisher: &crate::publication::Publisher,
) -> anyhow::Result<()> {
    if storage
        .current_version(ListKind::Whitelist)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let net = network(SampleSize::realistic(25), Utc::now());
    for lijst in [&net.whitelist, &net.gnl, &net.ocl, &net.zal] {
        let entries: Vec<AnyEntry> = match &lijst.entries {
            ListEntries::Zal(s) => s
                .as_slice()
                .iter()
                .cloned()
                .map(AnyEntry::Zorgaanbieder)
                .collect(),
            ListEntries::Ocl(s) => s
                .as_slice()
                .iter()
                .cloned()
                .map(AnyEntry::OAuthclient)
                .collect(),
            ListEntries::Gnl(s) => s
                .as_slice()
                .iter()
                .cloned()
                .map(AnyEntry::GegevensdienstNaam)
                .collect(),
            ListEntries::Whitelist(s) => s
                .as_slice()
                .iter()
                .cloned()
                .map(AnyEntry::MedMijNode)
                .collect(),
        };
        for entry in entries {
            storage
                .apply_change(&EntryChange::upsert(entry, 0), Utc::now())
                .await?;
        }
    }
    let options = crate::publication::PublishOptions {
        confirm_mass_change: false,
        published_by: "dev".into(),
    };
    for list in [
        ListKind::Whitelist,
        ListKind::Gnl,
        ListKind::Ocl,
        ListKind::Zal,
    ] {
        publisher.publish(list, &options).await?;
    }
    Ok(())
}

/// Where `prepare` writes the password of the staff PKCS#12 files.
const BROWSER_PASSWORD_FILE: &str = "browser-password.txt";

/// A staff certificate, its key and the CA as PKCS#12 (AES-256, HMAC-SHA256), for importing
/// into a browser.
fn pkcs12(issued: &Issued, ca: &CertificateDer<'_>, password: &str) -> anyhow::Result<Vec<u8>> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let p12 = |e: p12_keystore::error::Error| anyhow::anyhow!("PKCS#12: {e}");
    let chain = PrivateKeyChain::new(
        crate::signing::sha256_hex(&issued.certificate).into_bytes(),
        PrivateKey::from_der(issued.key_der.secret_pkcs8_der()).map_err(p12)?,
        [
            Certificate::from_der(&issued.certificate).map_err(p12)?,
            Certificate::from_der(ca).map_err(p12)?,
        ],
    );
    let mut store = KeyStore::new();
    store.add_entry("stelselnode dev", KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().map_err(p12)
}

/// Working commands against the development node.
pub fn instructions(dir: &Path, node: SocketAddr, admin: SocketAddr, ops: SocketAddr) -> String {
    let d = dir.display();
    let (np, ap) = (node.port(), admin.port());
    format!(
        "\nstelselnode development node\n\
         \n  node listener  https://localhost:{np}   (client certificate on the Whitelist)\
         \n  admin listener https://localhost:{ap}   (loket / beheer certificates)\
         \n  ops listener   http://{ops}\n\
         \nTry:\n\
         \n  curl --cacert {d}/ca.pem --cert {d}/node.pem --key {d}/node.key https://localhost:{np}/MedMij_Zorgaanbiederslijst.xml\
         \n  curl --cacert {d}/ca.pem --cert {d}/node.pem --key {d}/node.key https://localhost:{np}/lists/whitelist/versions\
         \n  curl --cacert {d}/ca.pem --cert {d}/node.pem --key {d}/node.key https://localhost:{np}/lists/zal/versions/1/signature\
         \n  curl --cacert {d}/ca.pem --cert {d}/beheer.pem --key {d}/beheer.key https://localhost:{ap}/lists/gnl\
         \n  curl --cacert {d}/ca.pem --cert {d}/loket.pem --key {d}/loket.key https://localhost:{ap}/lists/gnl    # 403: loket may not\
         \n  curl http://{ops}/readyz\
         \n  curl http://{ops}/metrics\n\
         \nThe staff web application: import {d}/beheer.p12 (or loket.p12, beheer2.p12) into your\
         \nbrowser with the password in {d}/{BROWSER_PASSWORD_FILE}, trust {d}/ca.pem, and open\
         \n  https://localhost:{ap}/ui\n\
         \nStop with Ctrl-C; `stelselnode dev` again reuses {d}/.\n"
    )
}
