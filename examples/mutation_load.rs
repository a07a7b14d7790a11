//! Load for benches/mutations-load.sh against a running node made by `stelselnode dev`:
//!
//! 1. sustained submissions: CONNECTIONS keep-alive mTLS clients (the dev loket certificate)
//!    each POST one Whitelist mutation at a time for SECONDS; requests per second and
//!    latency percentiles;
//! 2. approval → fetchable: ROUNDS times, a Zorgaanbieder mutation is submitted (loket) and
//!    approved (beheer2); the time from sending the approval until the node listener serves a
//!    new ZAL (its ETag changes) is measured.
//!
//! mutation_load DEV_DIR ADMIN_ADDR NODE_ADDR CONNECTIONS SECONDS ROUNDS

#[path = "support/keepalive.rs"]
mod keepalive;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use keepalive::{Answer, Connection, connector};

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// A Zorgaanbiedernaam for round `n`: letters only.
fn naam(n: usize) -> String {
    let letters: String = n
        .to_string()
        .bytes()
        .map(|d| (b'a' + (d - b'0')) as char)
        .collect();
    format!("benchronde{letters}@medmij")
}

async fn send(connection: &mut Connection, request: &[u8], head_only: bool) -> Answer {
    connection
        .send(request, head_only)
        .await
        .expect("the node keeps the connection open")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: mutation_load DEV_DIR ADMIN_ADDR NODE_ADDR CONNECTIONS SECONDS ROUNDS");
        std::process::exit(2);
    }
    let dev = Path::new(&args[1]);
    let admin: SocketAddr = args[2].parse().expect("ADMIN_ADDR");
    let node: SocketAddr = args[3].parse().expect("NODE_ADDR");
    let connections: usize = args[4].parse().expect("CONNECTIONS");
    let duration = Duration::from_secs(args[5].parse().expect("SECONDS"));
    let rounds: usize = args[6].parse().expect("ROUNDS");
    let as_client = |name: &str| {
        connector(
            &dev.join("ca.pem"),
            &dev.join(format!("{name}.pem")),
            &dev.join(format!("{name}.key")),
        )
    };
    let (loket, beheer2, node_client) =
        (as_client("loket"), as_client("beheer2"), as_client("node"));

    // 1. Sustained submissions.
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let loket = loket.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses = [0u64; 6];
            let mut connection = Connection::open(&loket, admin).await;
            let mut i = 0;
            while Instant::now() < deadline {
                let body = format!(
                    r#"{{"list":"whitelist","operation":"upsert","base_version":0,"entry":{{"hostname":"load{c}-{i}.example.nl"}},"on_behalf_of":"Load test","reference":"LOAD-{c}-{i}"}}"#
                );
                let started = Instant::now();
                let answer = send(&mut connection, &post("/mutations", &body), false).await;
                latencies.push(started.elapsed());
                statuses[usize::from(answer.status / 100)] += 1;
                i += 1;
            }
            (latencies, statuses)
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = [0u64; 6];
    for task in tasks {
        let (l, s) = task.await.unwrap();
        latencies.extend(l);
        statuses.iter_mut().zip(s).for_each(|(t, n)| *t += n);
    }
    latencies.sort();
    println!(
        "submissions: {:.0}/s  p50 {:.2} ms  p99 {:.2} ms  ({} requests; 2xx {} 4xx {} 5xx {})",
        latencies.len() as f64 / duration.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.len(),
        statuses[2],
        statuses[4],
        statuses[5],
    );

    // 2. Approval → the new version is served.
    let mut submitter = Connection::open(&loket, admin).await;
    let mut approver = Connection::open(&beheer2, admin).await;
    let mut reader = Connection::open(&node_client, node).await;
    let head = b"HEAD /lists/zal HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut fetchable = Vec::new();
    for round in 0..rounds {
        let body = format!(
            r#"{{"list":"zal","operation":"upsert","base_version":0,"on_behalf_of":"Load test","reference":"LOAD-Z{round}",
               "entry":{{"naam":"{}","gegevensdiensten":[{{"id":"1",
               "authorization_endpoint":"https://medmij.xis0.example.nl/oauth/authorize",
               "token_endpoint":"https://medmij.xis0.example.nl/oauth/token",
               "systeemrollen":[{{"code":"BENCH-ROL","resource_endpoint":"https://medmij.xis0.example.nl/fhir"}}]}}]}}}}"#,
            naam(round)
        );
        let submitted = send(&mut submitter, &post("/mutations", &body), false).await;
        assert_eq!(
            submitted.status,
            201,
            "{}",
            String::from_utf8_lossy(&submitted.body)
        );
        let id: serde_json::Value = serde_json::from_slice(&submitted.body).unwrap();
        let before = send(&mut reader, head, true).await;
        let etag = before.header("etag").expect("ETag").to_owned();
        let started = Instant::now();
        let approved = send(
            &mut approver,
            &post(&format!("/mutations/{}/approve", id["id"]), "{}"),
            false,
        )
        .await;
        assert_eq!(
            approved.status,
            200,
            "{}",
            String::from_utf8_lossy(&approved.body)
        );
        let answered = started.elapsed();
        loop {
            let now = send(&mut reader, head, true).await;
            if now.header("etag") != Some(etag.as_str()) {
                break;
            }
        }
        let served = started.elapsed();
        println!(
            "approval {round}: answered in {:.0} ms, new ZAL served after {:.0} ms",
            answered.as_secs_f64() * 1e3,
            served.as_secs_f64() * 1e3
        );
        fetchable.push(served);
    }
    fetchable.sort();
    println!(
        "approval → fetchable: median {:.0} ms, max {:.0} ms over {rounds} rounds",
        percentile(&fetchable, 0.5),
        fetchable.last().unwrap().as_secs_f64() * 1e3
    );
}
