//! Load for benches/mutations-load.sh against a node that has just started, with a sample
//! network of ZORGAANBIEDERS imported and published:
//!
//! 1. a realistic mix at RATE requests per second from CONNECTIONS keep-alive loket clients
//!    for SECONDS: Zorgaanbieder upserts with 1–5 Gegevensdiensten of 1–4 Systeemrollen,
//!    deletes of Zorgaanbieders, Whitelist upserts, validations and entry reads, while a beheer
//!    client approves a submitted mutation every APPROVE_EVERY seconds (each approval publishes
//!    the ZAL). Requests are sent on a fixed schedule and each latency is measured from the
//!    moment its request was due, so a stall counts for every request it held up. Reports
//!    p50/p99/max, the maximum of the first minute (the node's first requests) separately,
//!    and every answer whose status is not the expected one, by status;
//! 2. approval → served: ROUNDS times a Zorgaanbieder is submitted and approved, and the time
//!    from sending the approval until the node listener serves the new ZAL is measured.
//!
//! mutation_load DEV_DIR ADMIN_ADDR NODE_ADDR ZORGAANBIEDERS SECONDS RATE CONNECTIONS ROUNDS
//!
//! With RESULTS set, also appends tab-separated figures for benches/report.sh (with LABEL).
//! With STALLS set, also prints (to stderr) when each approval started and how long it took,
//! and every request slower than 40 ms with when it was due: what a spike coincides with.

#[path = "support/keepalive.rs"]
mod keepalive;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use keepalive::{Answer, Connection, connector};
use stelselnode::sample::letters;
use tokio_rustls::TlsConnector;

const APPROVE_EVERY: Duration = Duration::from_secs(2);
const FIRST_MINUTE: Duration = Duration::from_secs(60);

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// The sample network's name for its `i`th Zorgaanbieder.
fn sample_zorgaanbieder(i: usize) -> String {
    format!("zorgaanbieder{}@medmij", letters(i))
}

/// A small deterministic generator: the same mix in every run.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A new Zorgaanbieder with 1–5 Gegevensdiensten (of the sample GNL's 7) on sample XIS hosts,
/// each with 1–4 Systeemrollen.
fn zal_upsert(naam: &str, random: &mut Random, xis_nodes: u64, reference: &str) -> String {
    let diensten = 1 + random.below(5);
    let first_id = random.below(7);
    let gegevensdiensten: Vec<String> = (0..diensten)
        .map(|g| {
            let id = 1 + (first_id + g) % 7;
            let host = format!("medmij.xis{}.example.nl", random.below(xis_nodes));
            let rollen: Vec<String> = (0..1 + random.below(4))
                .map(|r| {
                    format!(
                        r#"{{"code":"GD{id}-ROL{r}-FHIR","resource_endpoint":"https://{host}:8443/load/gd{id}/fhir{r}"}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"id":"{id}","authorization_endpoint":"https://{host}/load/oauth/authorize","token_endpoint":"https://{host}:8443/load/oauth/token","systeemrollen":[{}]}}"#,
                rollen.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"list":"zal","operation":"upsert","base_version":0,"on_behalf_of":"Load test","reference":"{reference}","entry":{{"naam":"{naam}","gegevensdiensten":[{}]}}}}"#,
        gegevensdiensten.join(",")
    )
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    ZalUpsert,
    ZalDelete,
    WhitelistUpsert,
    Validate,
    EntryRead,
}

/// One request of the mix: what it is, the request, the status that means success.
fn request(
    c: usize,
    k: usize,
    deletes: &mut usize,
    connections: usize,
    n: usize,
    random: &mut Random,
) -> (Kind, Vec<u8>, u16) {
    let xis_nodes = n.clamp(1, 2500) as u64;
    let id = c * 1_000_000 + k;
    let reference = format!("LOAD-{c}-{k}");
    match random.below(100) {
        0..35 => {
            let naam = format!("loadziekenhuis{}@medmij", letters(id));
            let body = zal_upsert(&naam, random, xis_nodes, &reference);
            (Kind::ZalUpsert, post("/mutations", &body), 201)
        }
        35..45 => {
            // Each connection deletes its own sample entries, each once (imported: version 1).
            let victim = sample_zorgaanbieder((c + connections * *deletes) % n);
            *deletes += 1;
            let body = format!(
                r#"{{"list":"zal","operation":"delete","key":"{victim}","base_version":1,"on_behalf_of":"Load test","reference":"{reference}"}}"#
            );
            (Kind::ZalDelete, post("/mutations", &body), 201)
        }
        45..50 => {
            let body = format!(
                r#"{{"list":"whitelist","operation":"upsert","base_version":0,"entry":{{"hostname":"load{c}-{k}.example.nl"}},"on_behalf_of":"Load test","reference":"{reference}"}}"#
            );
            (Kind::WhitelistUpsert, post("/mutations", &body), 201)
        }
        50..75 => {
            let naam = format!("validatie{}@medmij", letters(id));
            let body = zal_upsert(&naam, random, xis_nodes, &reference);
            (Kind::Validate, post("/mutations/validate", &body), 200)
        }
        _ => {
            let key = sample_zorgaanbieder(random.below(n as u64) as usize);
            (Kind::EntryRead, get(&format!("/entries/zal/{key}")), 200)
        }
    }
}

struct Outcome {
    kind: Kind,
    /// When its request was due, from the start of the run.
    due: Duration,
    latency: Duration,
    /// `None`: no answer (connection failed).
    status: Option<u16>,
    expected: u16,
}

/// When and where every loket connection sends.
#[derive(Clone)]
struct Schedule {
    loket: TlsConnector,
    admin: SocketAddr,
    connections: usize,
    /// Zorgaanbieders in the sample network.
    n: usize,
    start: Instant,
    duration: Duration,
    /// Between two requests of one connection.
    interval: Duration,
}

async fn loket_connection(schedule: Schedule, c: usize) -> Vec<Outcome> {
    let Schedule {
        loket,
        admin,
        connections,
        n,
        start,
        duration,
        interval,
    } = schedule;
    let mut outcomes = Vec::new();
    let mut random = Random(c as u64 + 1);
    let mut deletes = 0;
    let mut connection = Connection::open(&loket, admin).await;
    // Connections start spread over one interval, so requests do not come in waves.
    let offset = interval.mul_f64(c as f64 / connections as f64);
    for k in 0.. {
        let due = offset + interval * k as u32;
        if due >= duration {
            break;
        }
        tokio::time::sleep_until((start + due).into()).await;
        let (kind, bytes, expected) = request(c, k, &mut deletes, connections, n, &mut random);
        let status = match connection.exchange(&bytes, false).await {
            Ok(answer) => Some(answer.status),
            Err(_) => {
                connection = Connection::open(&loket, admin).await;
                None
            }
        };
        outcomes.push(Outcome {
            kind,
            due,
            latency: (start + due).elapsed(),
            status,
            expected,
        });
    }
    outcomes
}

/// Approves the oldest submitted mutation every `APPROVE_EVERY`; returns the approvals' latencies
/// and statuses.
async fn approver(
    beheer: TlsConnector,
    admin: SocketAddr,
    start: Instant,
    duration: Duration,
) -> Vec<(Duration, u16)> {
    let mut connection = Connection::open(&beheer, admin).await;
    let mut done = Vec::new();
    let mut next = start + APPROVE_EVERY;
    while next < start + duration {
        tokio::time::sleep_until(next.into()).await;
        next += APPROVE_EVERY;
        let listed = send(
            &mut connection,
            &get("/mutations?status=submitted&list=zal&limit=1"),
        )
        .await;
        let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap_or_default();
        let Some(id) = listed["mutations"][0]["id"].as_i64() else {
            continue;
        };
        let started = Instant::now();
        let answer = send(
            &mut connection,
            &post(&format!("/mutations/{id}/approve"), "{}"),
        )
        .await;
        if std::env::var_os("STALLS").is_some() {
            let at = (started - start).as_secs_f64();
            eprintln!("approval at {at:.3} s took {:.0} ms", ms(started.elapsed()));
        }
        done.push((started.elapsed(), answer.status));
    }
    done
}

async fn send(connection: &mut Connection, request: &[u8]) -> Answer {
    connection
        .exchange(request, false)
        .await
        .unwrap_or_else(|e| panic!("the node keeps the connection open: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 9 {
        eprintln!(
            "usage: mutation_load DEV_DIR ADMIN_ADDR NODE_ADDR ZORGAANBIEDERS SECONDS RATE CONNECTIONS ROUNDS"
        );
        std::process::exit(2);
    }
    let dev = Path::new(&args[1]);
    let admin: SocketAddr = args[2].parse().expect("ADMIN_ADDR");
    let node: SocketAddr = args[3].parse().expect("NODE_ADDR");
    let n: usize = args[4].parse().expect("ZORGAANBIEDERS");
    let duration = Duration::from_secs(args[5].parse().expect("SECONDS"));
    let rate: f64 = args[6].parse().expect("RATE");
    let connections: usize = args[7].parse().expect("CONNECTIONS");
    let rounds: usize = args[8].parse().expect("ROUNDS");
    let as_client = |name: &str| {
        connector(
            &dev.join("ca.pem"),
            &dev.join(format!("{name}.pem")),
            &dev.join(format!("{name}.key")),
        )
    };
    let (loket, beheer2, node_client) =
        (as_client("loket"), as_client("beheer2"), as_client("node"));

    // 1. The mix, from the node's first seconds on.
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let start = Instant::now();
    let schedule = Schedule {
        loket: loket.clone(),
        admin,
        connections,
        n,
        start,
        duration,
        interval,
    };
    let tasks: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(loket_connection(schedule.clone(), c)))
        .collect();
    let approvals = tokio::spawn(approver(beheer2.clone(), admin, start, duration));
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("a connection task does not panic"));
    }
    let approvals = approvals.await.expect("the approver does not panic");

    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.status != Some(o.expected)) {
        let status = o.status.map_or("no answer".into(), |s| s.to_string());
        *errors.entry(format!("{:?} {status}", o.kind)).or_default() += 1;
    }
    for (_, status) in approvals.iter().filter(|(_, s)| *s != 200) {
        *errors.entry(format!("approval {status}")).or_default() += 1;
    }
    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let first_minute_max = outcomes
        .iter()
        .filter(|o| o.due < FIRST_MINUTE)
        .map(|o| o.latency)
        .max()
        .unwrap_or_default();
    let later_max = outcomes
        .iter()
        .filter(|o| o.due >= FIRST_MINUTE)
        .map(|o| o.latency)
        .max();
    let error_count: usize = errors.values().sum();
    println!(
        "mix: {} requests in {:.0} s ({:.0}/s scheduled), p50 {:.2} ms  p99 {:.2} ms  max {:.1} ms; \
         first minute max {:.1} ms{}; errors {error_count} {errors:?}",
        outcomes.len(),
        duration.as_secs_f64(),
        rate,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().map_or(f64::NAN, |d| ms(*d)),
        ms(first_minute_max),
        later_max.map_or(String::new(), |m| format!(", after it {:.1} ms", ms(m))),
    );
    // p99 per 10 seconds: whether latency grows as mutations accumulate.
    let mut windows: BTreeMap<u64, Vec<Duration>> = BTreeMap::new();
    for o in &outcomes {
        windows
            .entry(o.due.as_secs() / 10)
            .or_default()
            .push(o.latency);
    }
    let p99s: Vec<String> = windows
        .into_values()
        .map(|mut l| {
            l.sort();
            format!("{:.0}", percentile(&l, 0.99))
        })
        .collect();
    println!("  p99 per 10 s (ms): {}", p99s.join(" "));
    if std::env::var_os("STALLS").is_some() {
        let mut slow: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.latency > Duration::from_millis(40))
            .collect();
        slow.sort_by_key(|o| o.due);
        for o in slow {
            let due = o.due.as_secs_f64();
            eprintln!(
                "slow {:?} due at {due:.3} s took {:.0} ms",
                o.kind,
                ms(o.latency)
            );
        }
    }
    let mut by_kind: BTreeMap<Kind, Vec<Duration>> = BTreeMap::new();
    for o in &outcomes {
        by_kind.entry(o.kind).or_default().push(o.latency);
    }
    for (kind, mut latencies) in by_kind {
        latencies.sort();
        println!(
            "  {kind:?}: {} requests, p50 {:.2} ms  p99 {:.2} ms",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }
    let mut approval_times: Vec<Duration> = approvals.iter().map(|(d, _)| *d).collect();
    approval_times.sort();
    println!(
        "  approvals during the mix (each publishes the ZAL): {}, p50 {:.0} ms  max {:.0} ms",
        approval_times.len(),
        percentile(&approval_times, 0.5),
        approval_times.last().map_or(f64::NAN, |d| ms(*d)),
    );

    // 2. Approval → the new version is served.
    let mut submitter = Connection::open(&loket, admin).await;
    let mut approver = Connection::open(&beheer2, admin).await;
    let mut reader = Connection::open(&node_client, node).await;
    let head = b"HEAD /lists/zal HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut fetchable = Vec::new();
    let mut random = Random(99);
    // Each run of this program in one database names its Zorgaanbieders apart.
    let first_round: usize =
        std::env::var("FIRST_ROUND").map_or(0, |r| r.parse().expect("FIRST_ROUND"));
    for round in first_round..first_round + rounds {
        let naam = format!("benchronde{}@medmij", letters(round));
        let body = zal_upsert(&naam, &mut random, n.clamp(1, 2500) as u64, "LOAD-Z");
        let submitted = send(&mut submitter, &post("/mutations", &body)).await;
        assert_eq!(
            submitted.status,
            201,
            "{}",
            String::from_utf8_lossy(&submitted.body)
        );
        let id: serde_json::Value = serde_json::from_slice(&submitted.body).unwrap();
        let before = reader.send(head, true).await.expect("HEAD");
        let etag = before.header("etag").expect("ETag").to_owned();
        let started = Instant::now();
        let approved = send(
            &mut approver,
            &post(&format!("/mutations/{}/approve", id["id"]), "{}"),
        )
        .await;
        assert_eq!(
            approved.status,
            200,
            "{}",
            String::from_utf8_lossy(&approved.body)
        );
        loop {
            let now = reader.send(head, true).await.expect("HEAD");
            if now.header("etag") != Some(etag.as_str()) {
                break;
            }
        }
        fetchable.push(started.elapsed());
    }
    fetchable.sort();
    println!(
        "approval → served: median {:.0} ms, max {:.0} ms over {rounds} rounds",
        percentile(&fetchable, 0.5),
        fetchable.last().map_or(f64::NAN, |d| ms(*d))
    );
    if let Ok(file) = std::env::var("RESULTS") {
        let label = std::env::var("LABEL").unwrap_or_default();
        let line = format!(
            "mutations\t{label}\t{:.2}\t{:.2}\t{:.1}\t{:.1}\t{error_count}\t{:.0}\n",
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.last().map_or(f64::NAN, |d| ms(*d)),
            ms(first_minute_max),
            percentile(&fetchable, 0.5),
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("RESULTS is writable");
    }
}
