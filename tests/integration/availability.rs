//! Availability measured from outside (issue 24, item 5): a real Prometheus
//! blackbox_exporter, with the shipped `deploy/prometheus/blackbox.yml`, probes a real node's
//! list URLs with a whitelisted client certificate. Its answer passes `promtool check
//! metrics`; a probe succeeds while the node serves and fails once it is stopped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stelselnode::domain::ListKind;
use stelselnode::tls::NodeAccess;

use super::support::http_client::plain_get;
use super::support::promtool::promtool_check_metrics;
use super::support::server::TestServer;
use super::support::{free_port, sqlite};

/// The exporter, stopped when the test ends.
struct Exporter(Child, std::net::SocketAddr);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the exporter with the shipped module, its certificate paths pointed at `dir`.
async fn exporter(dir: &Path) -> Exporter {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/blackbox.yml"),
    )
    .unwrap();
    let config = shipped
        .replace(
            "/etc/prometheus/medmij-ca.pem",
            dir.join("ca.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/prometheus/blackbox-node.pem",
            dir.join("prober.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/prometheus/blackbox-node.key",
            dir.join("prober.key").to_str().unwrap(),
        );
    assert_ne!(
        config, shipped,
        "the shipped module names its certificate files"
    );
    let file = dir.join("blackbox.yml");
    std::fs::write(&file, config).unwrap();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-blackbox-exporter (scripts/test installs it)");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the exporter listens"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Exporter(child, address)
}

/// One probe of `target` through the exporter: its scrape, linted by promtool.
async fn probe(exporter: &Exporter, target: &str) -> String {
    let answer = plain_get(
        exporter.1,
        &format!("/probe?module=medmij_list&target={target}"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let scrape = String::from_utf8(answer.body).unwrap();
    promtool_check_metrics(&scrape).unwrap_or_else(|e| panic!("{e}\n{scrape}"));
    scrape
}

fn succeeded(scrape: &str) -> bool {
    scrape.lines().any(|l| l == "probe_success 1")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_blackbox_exporter_sees_the_lists_served_and_then_the_node_down() {
    let server = TestServer::start(sqlite().await, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let dir = server.dir.path();
    std::fs::write(dir.join("prober.pem"), &server.pki.node.certificate_pem).unwrap();
    std::fs::write(dir.join("prober.key"), &server.pki.node.key_pem).unwrap();
    let exporter = exporter(dir).await;
    let node = server.app.node_address().port();
    for list in ListKind::ALL {
        let scrape = probe(&exporter, &format!("https://localhost:{node}/lists/{list}")).await;
        assert!(succeeded(&scrape), "{list}:\n{scrape}");
    }
    // Not a list (the body check), and a certificate off the Whitelist: failures.
    let scrape = probe(
        &exporter,
        &format!("https://localhost:{node}/lists/zal/versions"),
    )
    .await;
    assert!(!succeeded(&scrape), "{scrape}");
    std::fs::write(dir.join("prober.pem"), &server.pki.stranger.certificate_pem).unwrap();
    std::fs::write(dir.join("prober.key"), &server.pki.stranger.key_pem).unwrap();
    let scrape = probe(&exporter, &format!("https://localhost:{node}/lists/zal")).await;
    assert!(!succeeded(&scrape), "a stranger's certificate:\n{scrape}");
    std::fs::write(dir.join("prober.pem"), &server.pki.node.certificate_pem).unwrap();
    std::fs::write(dir.join("prober.key"), &server.pki.node.key_pem).unwrap();

    // The node stops: what a node down looks like from outside.
    server.app.stop().await;
    let scrape = probe(&exporter, &format!("https://localhost:{node}/lists/zal")).await;
    assert!(!succeeded(&scrape), "{scrape}");
}
