//! The README's run command: `stelselnode dev` from an empty directory brings a node up,
//! and the commands it prints work (here with our own client instead of curl).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::support::http_client::{plain_get, request};
use super::support::process::issued;

/// The dev node, stopped when the test ends, also when an assertion fails first.
struct Running(std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `stelselnode dev` with `args` in `workdir`, started: the node, and what it printed with the
/// node, admin and ops addresses in it.
fn start_dev(
    workdir: &std::path::Path,
    args: &[&str],
) -> (Running, String, [std::net::SocketAddr; 3]) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .arg("dev")
            .args(args)
            .current_dir(workdir)
            .env("STELSELNODE_SERVER_NODE_LISTEN", "127.0.0.1:0")
            .env("STELSELNODE_SERVER_ADMIN_LISTEN", "127.0.0.1:0")
            .env("STELSELNODE_SERVER_OPS_LISTEN", "127.0.0.1:0")
            .env("STELSELNODE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The printed commands name the ports; read until their last line.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    while !printed.contains("Stop with Ctrl-C") {
        let line = lines.next().expect("dev printed its instructions").unwrap();
        printed.push_str(&line);
        printed.push('\n');
    }
    // The rest of what it prints is read too: a closed pipe would end the node at its next
    // line.
    std::thread::spawn(move || lines.for_each(drop));
    let address = |marker: &str| -> std::net::SocketAddr {
        let start = printed.find(marker).unwrap() + marker.len();
        let port: u16 = printed[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap();
        ([127, 0, 0, 1], port).into()
    };
    let addresses = [
        address("node listener  https://localhost:"),
        address("admin listener https://localhost:"),
        address("http://127.0.0.1:"),
    ];
    (child, printed, addresses)
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_brings_a_node_up_and_its_commands_work() {
    let workdir = tempfile::tempdir().unwrap();
    let (mut child, printed, [node, admin, ops]) = start_dev(workdir.path(), &[]);
    let metrics = plain_get(ops, "/metrics").await.text();
    assert!(metrics.contains("stelselnode_signing_key_in_token 0"));
    let dir = workdir.path().join("dev");
    let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap();
    let as_ = |name: &str| super::support::http_client::connector(&ca, Some(&issued(&dir, name)));

    let list = request(
        &as_("node"),
        node,
        "GET",
        "/MedMij_Zorgaanbiederslijst.xml",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(list.status, 200);
    assert!(list.text().contains("<Volgnummer>1</Volgnummer>"));
    let signature = request(
        &as_("node"),
        node,
        "GET",
        "/lists/zal/versions/1/signature",
        &[],
        b"",
    )
    .await
    .unwrap();
    assert!(signature.text().contains("<SignatureValue>"));
    assert_eq!(
        request(&as_("beheer"), admin, "GET", "/lists/gnl", &[], b"")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        request(&as_("loket"), admin, "GET", "/lists/gnl", &[], b"")
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(plain_get(ops, "/readyz").await.status, 200);
    // The web application the instructions point to, and the PKCS#12 files for a browser:
    // openssl reads each with the printed password file, certificate and key inside.
    assert!(printed.contains("/ui"), "{printed}");
    let ui = request(&as_("beheer"), admin, "GET", "/ui", &[], b"")
        .await
        .unwrap();
    assert_eq!(ui.status, 200);
    let password = dir.join("browser-password.txt");
    for name in ["loket", "beheer", "beheer2"] {
        let opened = Command::new("openssl")
            .args(["pkcs12", "-noenc", "-in"])
            .arg(dir.join(format!("{name}.p12")))
            .arg("-passin")
            .arg(format!("file:{}", password.display()))
            .output()
            .expect("openssl is installed");
        let text = String::from_utf8_lossy(&opened.stdout);
        assert!(
            opened.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&opened.stderr)
        );
        assert!(
            text.contains("BEGIN CERTIFICATE") && text.contains("BEGIN PRIVATE KEY"),
            "{name}"
        );
    }
    // SIGHUP reloads certificates and keys, and the staff identities: beheer2 is removed from
    // the configuration and loses its role; the node keeps serving.
    assert_eq!(
        request(&as_("beheer2"), admin, "GET", "/lists/gnl", &[], b"")
            .await
            .unwrap()
            .status,
        200
    );
    let config_file = dir.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_file)
        .unwrap()
        .parse()
        .unwrap();
    config["admin"]["identities"]
        .as_array_mut()
        .unwrap()
        .retain(|identity| identity["common_name"].as_str() != Some("beheer2-dev"));
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let hangup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let again = request(&as_("node"), node, "GET", "/lists/gnl", &[], b"")
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "still running after SIGHUP"
    );
    let mut removed = 200;
    for _ in 0..100 {
        removed = request(&as_("beheer2"), admin, "GET", "/lists/gnl", &[], b"")
            .await
            .unwrap()
            .status;
        if removed == 403 {
            break;
        }
        // The signal is handled asynchronously.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        removed, 403,
        "an identity removed from the configuration has no role"
    );
    drop(child);
    assert!(dir.join("stelselnode.db").exists() && dir.join("config.toml").exists());
}

/// Issue 21: on the very first start the node listener accepted connections before the
/// example Whitelist was published, and refused a whitelisted node (`access_denied`). A node
/// that connects the moment the port opens is served.
#[tokio::test(flavor = "multi_thread")]
async fn a_whitelisted_node_is_served_from_the_first_connection() {
    let workdir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node: std::net::SocketAddr = free.local_addr().unwrap();
    drop(free);
    let _child = Running(
        Command::new(env!("CARGO_BIN_EXE_stelselnode"))
            .arg("dev")
            .current_dir(workdir.path())
            .env("STELSELNODE_SERVER_NODE_LISTEN", node.to_string())
            .env("STELSELNODE_SERVER_ADMIN_LISTEN", "127.0.0.1:0")
            .env("STELSELNODE_SERVER_OPS_LISTEN", "127.0.0.1:0")
            .env("STELSELNODE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = workdir.path().join("dev");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // The certificates are written before anything listens; then the port opens.
    let answer = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the node never listened"
        );
        let ready = dir.join("node.key").exists() && dir.join("ca.pem").exists();
        if !ready || tokio::net::TcpStream::connect(node).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            continue;
        }
        let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap();
        let connector = super::support::http_client::connector(&ca, Some(&issued(&dir, "node")));
        break request(&connector, node, "GET", "/lists/whitelist", &[], b"").await;
    };
    let answer = answer.expect("the first connection is served, not refused");
    assert_eq!(answer.status, 200, "{}", answer.text());
}

/// `stelselnode dev --softhsm`: the same node with its signing key in a SoftHSM2 token it made
/// with the Debian tools; it signs the example lists there.
#[tokio::test(flavor = "multi_thread")]
async fn dev_can_keep_the_signing_key_in_a_softhsm_token() {
    let workdir = tempfile::tempdir().unwrap();
    let (_child, _, [_, _, ops]) = start_dev(workdir.path(), &["--softhsm"]);
    assert!(workdir.path().join("dev/softhsm/softhsm2.conf").exists());
    assert_eq!(plain_get(ops, "/readyz").await.status, 200);
    let metrics = plain_get(ops, "/metrics").await.text();
    for metric in [
        "stelselnode_signing_key_in_token 1",
        "stelselnode_signing_token_failing 0",
    ] {
        assert!(metrics.contains(metric), "{metric}\n{metrics}");
    }
}
