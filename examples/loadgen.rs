//! A keep-alive HTTPS/1.1 load generator with a client certificate, for benches/load-vs-nginx.sh
//! (wrk and h2load cannot present client certificates). Every connection sends one request
//! at a time for SECONDS.
//!
//! It is honest about what it counts: only requests whose whole answer arrived before the
//! end of the run, and of those only the ones with the expected status and exactly the
//! expected body length; every other outcome is an error, reported by kind (wrong status,
//! wrong length, connection closed or failed — after which the connection is opened again).
//!
//! loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS STATUS LENGTH [HEADER: VALUE]...
//!
//! Prints one line: `<good answers per second> req/s p50 … p99 … (…; errors …)`.

#[path = "support/keepalive.rs"]
mod keepalive;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keepalive::{Connection, connector};

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    wrong_status: u64,
    wrong_length: u64,
    failed: u64,
    /// An example of each kind of error, for the report.
    example: Option<String>,
}

impl Tally {
    fn error(&mut self, counter: fn(&mut Self) -> &mut u64, what: String) {
        *counter(self) += 1;
        self.example.get_or_insert(what);
    }

    fn add(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.wrong_status += other.wrong_status;
        self.wrong_length += other.wrong_length;
        self.failed += other.failed;
        if self.example.is_none() {
            self.example = other.example;
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 10 {
        eprintln!(
            "usage: loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS STATUS LENGTH [HEADER: VALUE]..."
        );
        std::process::exit(2);
    }
    let address: SocketAddr = args[1].parse().expect("ADDR");
    let path = args[2].clone();
    let connector = connector(args[3].as_ref(), args[4].as_ref(), args[5].as_ref());
    let connections: usize = args[6].parse().expect("CONNECTIONS");
    let duration = Duration::from_secs(args[7].parse().expect("SECONDS"));
    let expected_status: u16 = args[8].parse().expect("STATUS");
    let expected_length: usize = args[9].parse().expect("LENGTH");
    let extra: String = args[10..].iter().map(|h| format!("{h}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");

    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (connector, request) = (connector.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let opened =
                    tokio::time::timeout_at(deadline.into(), Connection::open(&connector, address));
                let Ok(mut connection) = opened.await else {
                    break;
                };
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let exchange = connection.exchange_discarding(request.as_bytes());
                    // An answer still coming at the end of the run is not counted.
                    let Ok(answer) = tokio::time::timeout_at(deadline.into(), exchange).await
                    else {
                        break;
                    };
                    match answer {
                        Err(e) => {
                            tally.error(|t| &mut t.failed, e);
                            break; // open a new connection
                        }
                        Ok(a) if a.status != expected_status => tally.error(
                            |t| &mut t.wrong_status,
                            format!("status {} instead of {expected_status}", a.status),
                        ),
                        Ok(a) if a.body_length != expected_length => tally.error(
                            |t| &mut t.wrong_length,
                            format!("{} bytes instead of {expected_length}", a.body_length),
                        ),
                        Ok(_) => tally.latencies.push(started.elapsed()),
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.add(task.await.expect("a connection task does not panic"));
    }
    let mut latencies = total.latencies;
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let errors = total.wrong_status + total.wrong_length + total.failed;
    println!(
        "{:.0} req/s  p50 {:.2} ms  p99 {:.2} ms  ({} good answers; errors {} = status {} + length {} + failed {}{})",
        latencies.len() as f64 / duration.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        latencies.len(),
        errors,
        total.wrong_status,
        total.wrong_length,
        total.failed,
        total
            .example
            .map(|e| format!("; e.g. {e}"))
            .unwrap_or_default(),
    );
}
