//! Served latency behind connections that never speak, for benches/load-vs-nginx.sh
//! (`CASES=idle`, issue 21): opens IDLE TCP connections that send nothing and STALLED ones
//! that send the first bytes of a ClientHello and stop, holds them, then times REQUESTS
//! requests of a whitelisted node, each on a new connection (TCP, full TLS handshake with its
//! client certificate, request, whole answer).
//!
//! idle_flood ADDR PATH CA CERT KEY IDLE STALLED REQUESTS
//!
//! Prints one line: `p50 … ms  max … ms  (N requests, E errors)`.

#[path = "support/keepalive.rs"]
mod keepalive;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keepalive::{Connection, connector};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A TLS record announcing a 512-byte ClientHello, and only its first bytes.
const PARTIAL_CLIENT_HELLO: [u8; 13] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5a,
];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, path, ca, cert, key, idle, stalled, requests] = args.as_slice() else {
        eprintln!("usage: idle_flood ADDR PATH CA CERT KEY IDLE STALLED REQUESTS");
        std::process::exit(2);
    };
    let address: SocketAddr = address.parse().expect("ADDR");
    let (idle, stalled, requests): (usize, usize, usize) = (
        idle.parse().expect("IDLE"),
        stalled.parse().expect("STALLED"),
        requests.parse().expect("REQUESTS"),
    );
    let connector = connector(ca.as_ref(), cert.as_ref(), key.as_ref());
    let mut held = Vec::with_capacity(idle + stalled);
    for i in 0..idle + stalled {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        if i >= idle {
            stream
                .write_all(&PARTIAL_CLIENT_HELLO)
                .await
                .expect("write");
        }
        held.push(stream);
    }
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    for _ in 0..requests {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(60), async {
            let mut connection = Connection::open(&connector, address).await;
            connection.exchange_discarding(request.as_bytes()).await
        })
        .await;
        match answer {
            Ok(Ok(answer)) if answer.status == 200 => latencies.push(started.elapsed()),
            _ => errors += 1,
        }
    }
    drop(held);
    latencies.sort();
    let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!(
        "p50 {:.2} ms  max {:.2} ms  ({} requests, {errors} errors)",
        ms(latencies.get(latencies.len() / 2)),
        ms(latencies.last()),
        latencies.len()
    );
}
