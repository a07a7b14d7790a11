//! Prometheus metrics (SPEC §8), all prefixed `stelselnode_`. Gauges that describe the
//! current state (Volgnummer, age, time to expiry) are set when scraped.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// `list_fetches_total` handles resolved once: [list][0 = 200, 1 = 304].
    fetch_counters: Vec<[prometheus::IntCounter; 2]>,
    pub list_volgnummer: IntGaugeVec,
    pub list_seconds_since_publication: IntGaugeVec,
    pub list_seconds_until_expiry: IntGaugeVec,
    pub publications: IntCounterVec,
    pub heartbeats: IntCounterVec,
    pub publication_failures: IntCounterVec,
    /// 1 while a list's last publication attempt failed (the heartbeat retries it).
    pub publication_failing: IntGaugeVec,
    pub fetches: IntCounterVec,
    pub tls_handshakes_refused: IntGaugeVec,
    /// Seconds until each configured CRL's nextUpdate (negative: expired).
    pub crl_seconds_until_next_update: IntGaugeVec,
    /// Seconds until the signing certificate expires (negative: expired).
    pub signing_certificate_seconds_until_expiry: prometheus::IntGauge,
    /// 1 while the signing key's token fails to sign (issue 27); 0 for a key in a file.
    pub signing_token_failing: prometheus::IntGauge,
    /// 1 when the signing key is in a PKCS#11 token, 0 when it is a file.
    pub signing_key_in_token: prometheus::IntGauge,
    /// The last archive check's problems (-1 before the first) and when it ran.
    pub archive_check_problems: prometheus::IntGauge,
    pub archive_check_last_run: prometheus::IntGauge,
    /// The transparency log's leaves this node holds, and 1 while it signs no checkpoint
    /// because its tree disagrees with the one checked before (issue 26).
    pub transparency_log_leaves: prometheus::IntGauge,
    pub transparency_log_signing_refused: prometheus::IntGauge,
    /// Per witness: 1 while it gives no cosignature, and the tree size it cosigned last.
    pub transparency_witness_failing: IntGaugeVec,
    pub transparency_witness_cosigned_leaves: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    /// 1 while this replica holds a singleton job's lease (issue 24).
    pub lease_held: IntGaugeVec,
    /// Leases acquired, lost and released by this replica.
    pub lease_changes: IntCounterVec,
    /// The node listener's answers for the availability SLI (issue 24), resolved once.
    node_answers: NodeAnswers,
}

/// How the node listener answered, for the availability SLI: good, or bad and why. Answers
/// that are the client's own fault (4xx: not whitelisted, no such list) are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAnswer {
    /// 2xx or 3xx (a list, or 304 for the one the node holds) within `NodeAnswer::IN_TIME`.
    Good,
    /// 503 because the current version expired: fail closed, and an outage all the same.
    Expired,
    /// Any other 5xx.
    ServerError,
    /// A success, but later than `NodeAnswer::IN_TIME`: to a waiting node, a timeout.
    Slow,
}

impl NodeAnswer {
    /// The SLI's bound on a good answer.
    pub const IN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

    /// `None` for answers that do not count (4xx, 1xx).
    pub fn classify(
        status: u16,
        took: std::time::Duration,
        expired_list: bool,
    ) -> Option<NodeAnswer> {
        match status {
            500..=599 if expired_list => Some(NodeAnswer::Expired),
            500..=599 => Some(NodeAnswer::ServerError),
            200..=399 if took > Self::IN_TIME => Some(NodeAnswer::Slow),
            200..=399 => Some(NodeAnswer::Good),
            _ => None,
        }
    }
}

/// `node_answers_total` handles, one per `NodeAnswer` (a hot path: no label lookup).
struct NodeAnswers([prometheus::IntCounter; 4]);

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("stelselnode".into()), None).expect("valid prefix");
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let fetches = counter(
            "list_fetches_total",
            "List fetches by nodes",
            &["list", "result"],
        );
        let node_answers = counter(
            "node_answers_total",
            "Node-listener answers for the availability SLI: good (2xx/3xx within 1 s) or bad \
             (reason: expired list, server_error, slow); 4xx are not counted",
            &["outcome", "reason"],
        );
        let fetch_counters = crate::domain::ListKind::ALL
            .iter()
            .map(|l| {
                [
                    fetches.with_label_values(&[l.as_str(), "200"]),
                    fetches.with_label_values(&[l.as_str(), "304"]),
                ]
            })
            .collect();
        Self {
            fetch_counters,
            list_volgnummer: gauge(
                "list_volgnummer",
                "Volgnummer of the current version",
                &["list"],
            ),
            list_seconds_since_publication: gauge(
                "list_seconds_since_publication",
                "Seconds since the current version was published",
                &["list"],
            ),
            list_seconds_until_expiry: gauge(
                "list_seconds_until_expiry",
                "Seconds until the current version expires",
                &["list"],
            ),
            publications: counter("publications_total", "Versions published", &["list"]),
            heartbeats: counter(
                "heartbeats_total",
                "Versions published to renew validity only",
                &["list"],
            ),
            publication_failures: counter(
                "publication_failures_total",
                "Publications refused or failed (integrity, signature, storage)",
                &["list", "reason"],
            ),
            publication_failing: gauge(
                "publication_failing",
                "1 while the last publication attempt of the list failed",
                &["list"],
            ),
            fetches,
            signing_certificate_seconds_until_expiry: register(
                &registry,
                prometheus::IntGauge::new(
                    "signing_certificate_seconds_until_expiry",
                    "Seconds until the signing certificate expires; negative once it expired",
                )
                .expect("valid metric"),
            ),
            signing_key_in_token: register(
                &registry,
                prometheus::IntGauge::new(
                    "signing_key_in_token",
                    "1 when the signing key is in a PKCS#11 token, 0 when it is in a file",
                )
                .expect("valid metric"),
            ),
            signing_token_failing: register(
                &registry,
                prometheus::IntGauge::new(
                    "signing_token_failing",
                    "1 while the PKCS#11 token with the signing key fails to sign",
                )
                .expect("valid metric"),
            ),
            crl_seconds_until_next_update: gauge(
                "crl_seconds_until_next_update",
                "Seconds until a configured CRL should be replaced; negative once it expired",
                &["crl"],
            ),
            tls_handshakes_refused: gauge(
                "tls_handshakes_refused",
                "TLS handshakes refused since start, by reason",
                &["reason"],
            ),
            transparency_log_leaves: register(
                &registry,
                prometheus::IntGauge::new(
                    "transparency_log_leaves",
                    "Leaves of the transparency log this node holds",
                )
                .expect("valid metric"),
            ),
            transparency_log_signing_refused: register(
                &registry,
                prometheus::IntGauge::new(
                    "transparency_log_signing_refused",
                    "1 while this node signs no checkpoint: its log disagrees with the tree checked before",
                )
                .expect("valid metric"),
            ),
            transparency_witness_failing: gauge(
                "transparency_witness_failing",
                "1 while the witness gives no cosignature of this node's checkpoint",
                &["witness"],
            ),
            transparency_witness_cosigned_leaves: gauge(
                "transparency_witness_cosigned_leaves",
                "The tree size the witness cosigned last, as far as this node knows",
                &["witness"],
            ),
            archive_check_problems: register(
                &registry,
                prometheus::IntGauge::new(
                    "archive_check_problems",
                    "Problems the last archive check found in stored versions (-1: not run yet)",
                )
                .expect("valid metric"),
            ),
            archive_check_last_run: register(
                &registry,
                prometheus::IntGauge::new(
                    "archive_check_last_run_timestamp_seconds",
                    "When the last archive check finished (Unix time; 0: not yet)",
                )
                .expect("valid metric"),
            ),
            http_requests: counter(
                "http_requests_total",
                "HTTP requests",
                &["listener", "route", "status"],
            ),
            http_request_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                        .buckets(vec![
                            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        ]),
                    &["listener", "route"],
                )
                .expect("valid metric"),
            ),
            lease_held: gauge(
                "lease_held",
                "1 while this replica holds the lease on a singleton job",
                &["lease"],
            ),
            lease_changes: counter(
                "lease_changes_total",
                "Leases on singleton jobs acquired, lost (not given up) and released by this replica",
                &["lease", "change"],
            ),
            node_answers: NodeAnswers(
                [
                    ("good", ""),
                    ("bad", "expired"),
                    ("bad", "server_error"),
                    ("bad", "slow"),
                ]
                .map(|(outcome, reason)| node_answers.with_label_values(&[outcome, reason])),
            ),
            registry,
        }
    }

    /// Counts one answer of the node listener for the availability SLI.
    pub fn count_node_answer(&self, answer: NodeAnswer) {
        let index = match answer {
            NodeAnswer::Good => 0,
            NodeAnswer::Expired => 1,
            NodeAnswer::ServerError => 2,
            NodeAnswer::Slow => 3,
        };
        self.node_answers.0[index].inc();
    }

    /// Counts one fetch of a current list (a hot path: no label lookup).
    pub fn count_fetch(&self, list: crate::domain::ListKind, not_modified: bool) {
        let index = crate::domain::ListKind::ALL
            .iter()
            .position(|l| *l == list)
            .expect("every list");
        self.fetch_counters[index][usize::from(not_modified)].inc();
    }

    /// Counts a version this node published.
    pub fn count_publication(&self, version: &crate::domain::VersionRecord) {
        let counter = match version.heartbeat {
            true => &self.heartbeats,
            false => &self.publications,
        };
        counter.with_label_values(&[version.list.as_str()]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::NodeAnswer;

    #[test]
    fn node_answers_are_good_only_when_successful_and_in_time() {
        let quick = Duration::from_millis(20);
        let late = NodeAnswer::IN_TIME + Duration::from_millis(1);
        let cases = [
            (200, quick, false, Some(NodeAnswer::Good)),
            (304, quick, false, Some(NodeAnswer::Good)),
            (200, NodeAnswer::IN_TIME, false, Some(NodeAnswer::Good)),
            (200, late, false, Some(NodeAnswer::Slow)),
            (503, quick, true, Some(NodeAnswer::Expired)),
            (503, late, false, Some(NodeAnswer::ServerError)),
            (500, quick, false, Some(NodeAnswer::ServerError)),
            // The client's own mistakes do not count, however long they took.
            (400, late, false, None),
            (403, late, false, None),
            (404, quick, false, None),
            (408, late, false, None),
            (429, quick, false, None),
        ];
        for (status, took, expired, expected) in cases {
            assert_eq!(
                NodeAnswer::classify(status, took, expired),
                expected,
                "{status} after {took:?}"
            );
        }
    }
}
