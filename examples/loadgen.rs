//! A keep-alive HTTPS/1.1 load generator with a client certificate, for benches/load-vs-nginx.sh
//! (wrk and h2load cannot present client certificates). Every connection sends one request
//! at a time; the run reports requests per second and latency percentiles.
//!
//! loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS [HEADER: VALUE]...

#[path = "support/keepalive.rs"]
mod keepalive;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keepalive::{Connection, connector};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 8 {
        eprintln!("usage: loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS [HEADER: VALUE]...");
        std::process::exit(2);
    }
    let address: SocketAddr = args[1].parse().expect("ADDR");
    let path = args[2].clone();
    let connector = connector(args[3].as_ref(), args[4].as_ref(), args[5].as_ref());
    let connections: usize = args[6].parse().expect("CONNECTIONS");
    let duration = Duration::from_secs(args[7].parse().expect("SECONDS"));
    let extra: String = args[8..].iter().map(|h| format!("{h}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");

    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (connector, request) = (connector.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses = [0u64; 6];
            let mut reconnects = 0u64;
            'connection: while Instant::now() < deadline {
                let mut connection = Connection::open(&connector, address).await;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    // A server may close a keep-alive connection between requests: reconnect.
                    let Some(answer) = connection.send(request.as_bytes(), false).await else {
                        reconnects += 1;
                        continue 'connection;
                    };
                    statuses[usize::from(answer.status / 100)] += 1;
                    latencies.push(started.elapsed());
                }
            }
            (latencies, statuses, reconnects)
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = [0u64; 6];
    let mut reconnects = 0;
    for task in tasks {
        let (l, s, r) = task.await.unwrap();
        latencies.extend(l);
        reconnects += r;
        for (total, n) in statuses.iter_mut().zip(s) {
            *total += n;
        }
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  ({} requests; 2xx {} 3xx {} 4xx {} 5xx {}; reconnects {})",
        latencies.len() as f64 / duration.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        latencies.len(),
        statuses[2],
        statuses[3],
        statuses[4],
        statuses[5],
        reconnects,
    );
}
