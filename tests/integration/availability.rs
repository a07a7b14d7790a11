//! Availability measured from outside (issue 24, item 5): a real Prometheus
//! blackbox_exporter, with the shipped `deploy/prometheus/blackbox.yml`, probes a real node's
//! list URLs with a whitelisted client certificate. Its answer passes `promtool check
//! metrics`; a probe succeeds while the node serves and fails once it is stopped.
//!
//! Then the whole chain with one outage: a real Prometheus server with the shipped
//! `prometheus.yml` and `rules.yml` (intervals shortened to a second) scrapes the exporter and
//! the node's ops listener; the node process is killed and started again a while later, and
//! Prometheus's own figures show the outage: its time to restore, the error ratio, the fast
//! burn-rate alert firing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stelselnode::domain::ListKind;
use stelselnode::tls::NodeAccess;

use super::support::http_client::plain_get;
use super::support::process::NodeFiles;
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

/// Waits until `address` accepts connections.
async fn until_listening(address: std::net::SocketAddr, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} listens"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The shipped file `name` of deploy/prometheus with `replacements` made, each of which must
/// occur in it.
fn shipped_with(name: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/prometheus")
            .join(name),
    )
    .unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{name} names {from}");
        text = text.replace(from, to);
    }
    text
}

/// Starts the exporter with the shipped module, its certificate paths pointed at `dir`.
async fn exporter(dir: &Path) -> Exporter {
    let path = |file: &str| dir.join(file).to_str().unwrap().to_owned();
    let config = shipped_with(
        "blackbox.yml",
        &[
            ("/etc/prometheus/medmij-ca.pem", &path("ca.pem")),
            ("/etc/prometheus/blackbox-node.pem", &path("prober.pem")),
            ("/etc/prometheus/blackbox-node.key", &path("prober.key")),
        ],
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
    let exporter = Exporter(child, address);
    until_listening(address, "the exporter").await;
    exporter
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

/// A Prometheus server, stopped when the test ends.
struct Prometheus(Child, std::net::SocketAddr);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Prometheus {
    /// The shipped configuration and rules, every interval a second, scraping `ops` and the
    /// exporter probing the lists of the node listener at `node`.
    async fn start(
        dir: &Path,
        ops: std::net::SocketAddr,
        node: std::net::SocketAddr,
        exporter: &Exporter,
    ) -> Self {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
        let config = shipped_with(
            "prometheus.yml",
            &[
                ("scrape_interval: 30s", "scrape_interval: 1s"),
                ("scrape_interval: 15s", "scrape_interval: 1s"),
                ("evaluation_interval: 15s", "evaluation_interval: 1s"),
                ("- rules.yml", &format!("- {}", rules.display())),
                ("127.0.0.1:9100", &ops.to_string()),
                ("127.0.0.1:9115", &exporter.1.to_string()),
                (
                    "https://lijsten.medmij.example:8443",
                    &format!("https://localhost:{}", node.port()),
                ),
            ],
        );
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (scripts/test installs it)");
        let prometheus = Self(child, address);
        until_listening(address, "prometheus").await;
        let started = Instant::now();
        while plain_get(address, "/-/ready").await.status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus is ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        prometheus
    }

    /// An instant query: each result's labels and value.
    async fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = plain_get(self.1, &format!("/api/v1/query?query={encoded}")).await;
        assert_eq!(answer.status, 200, "{expr}: {}", answer.text());
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        body["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{expr}: {body}"))
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of `expr`, once it has one that `wanted` accepts.
    async fn until(&self, expr: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let started = Instant::now();
        loop {
            if let [(_, value)] = self.query(expr).await[..]
                && wanted(value)
            {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{expr}: {:?}",
                self.query(expr).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_shows_an_outage_of_the_node_and_its_time_to_restore() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    let files = NodeFiles::prepare(dir.path(), url);
    let mut node = files.serve().await;
    files.whitelist_dev_node().await;
    std::fs::copy(dir.path().join("node.pem"), dir.path().join("prober.pem")).unwrap();
    std::fs::copy(dir.path().join("node.key"), dir.path().join("prober.key")).unwrap();
    let exporter = exporter(dir.path()).await;
    let prometheus = Prometheus::start(dir.path(), files.ops(), files.node(), &exporter).await;

    // Served: every list probe succeeds, and the node counts its good answers.
    prometheus
        .until("stelselnode:lists_unavailable:seconds", |s| s == 0.0)
        .await;
    prometheus
        .until(
            r#"sum(stelselnode_node_answers_total{outcome="good"})"#,
            |n| n >= 4.0,
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // some history before the outage

    // The outage: the node is killed, and started again once Prometheus has seen it down
    // for a while.
    node.kill().unwrap();
    node.wait().unwrap();
    let stopped = Instant::now();
    prometheus
        .until("stelselnode:lists_unavailable:seconds", |s| s >= 8.0)
        .await;
    assert!(
        prometheus
            .query("stelselnode:lists_time_to_restore:seconds")
            .await
            .is_empty(),
        "no outage has ended yet"
    );
    let mut node = files.serve().await;
    let outage = stopped.elapsed().as_secs_f64();
    let time_to_restore = prometheus
        .until("stelselnode:lists_time_to_restore:seconds", |_| true)
        .await;
    let unavailable_now = prometheus
        .until("stelselnode:lists_unavailable:seconds", |s| s == 0.0)
        .await;
    // Prometheus sees the outage from its last good to its first good evaluation: up to a
    // probe and an evaluation (a second each) either side of the node's own.
    assert!(
        (outage - 2.5..=outage + 6.0).contains(&time_to_restore),
        "outage {outage:.1} s, time to restore {time_to_restore} s"
    );
    let error_ratio = prometheus
        .until("stelselnode:availability_error:ratio_rate5m", |r| r > 0.0)
        .await;
    let firing = prometheus
        .query(r#"ALERTS{alertstate="firing",alertname=~"StelselnodeListsAvailabilityBurn.*"}"#)
        .await;
    let firing: Vec<&str> = firing
        .iter()
        .map(|(labels, _)| labels["alertname"].as_str().unwrap())
        .collect();
    assert!(
        firing.contains(&"StelselnodeListsAvailabilityBurn1h"),
        "{firing:?}"
    );
    every_dashboard_query_runs(&prometheus).await;
    eprintln!(
        "one outage: the node down {outage:.1} s; Prometheus: time to restore \
         {time_to_restore} s, unavailable now {unavailable_now} s, error ratio over 5 minutes \
         {error_ratio:.3}, firing {firing:?}"
    );
    node.kill().unwrap();
    node.wait().unwrap();
}

/// Every query of the shipped Grafana dashboard is valid PromQL to a real Prometheus, and
/// the availability panels show data after the outage.
async fn every_dashboard_query_runs(prometheus: &Prometheus) {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/stelselnode-sla.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut availability = false;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            availability = panel["title"].as_str().unwrap().starts_with("Availability");
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let result = prometheus.query(expr).await;
            assert!(
                !availability || !result.is_empty(),
                "{}: {expr} has no data",
                panel["title"]
            );
        }
    }
    assert!(availability, "the dashboard has its availability row");
}
