//! A keep-alive HTTPS/1.1 load generator with a client certificate, for benches/load-vs-nginx.sh
//! (wrk and h2load cannot present client certificates). Every connection sends one request
//! at a time; the run reports requests per second and latency percentiles.
//!
//! loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS [HEADER: VALUE]...

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 8 {
        eprintln!("usage: loadgen ADDR PATH CA CERT KEY CONNECTIONS SECONDS [HEADER: VALUE]...");
        std::process::exit(2);
    }
    let address: SocketAddr = args[1].parse().expect("ADDR");
    let path = args[2].clone();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&args[3]).expect("CA") {
        roots.add(ca.expect("CA")).expect("CA");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args[4])
        .expect("CERT")
        .map(|c| c.expect("CERT"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&args[5]).expect("KEY");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client certificate");
    let connector = TlsConnector::from(Arc::new(config));
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
            let mut body = Vec::new();
            'connection: while Instant::now() < deadline {
                let tcp = TcpStream::connect(address).await.expect("connect");
                tcp.set_nodelay(true).unwrap();
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .expect("TLS");
                let mut stream = BufReader::with_capacity(1 << 20, tls);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    stream
                        .get_mut()
                        .write_all(request.as_bytes())
                        .await
                        .expect("write");
                    let mut line = String::new();
                    // A server may close a keep-alive connection between requests: reconnect.
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        reconnects += 1;
                        continue 'connection;
                    }
                    let status: usize = line
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| panic!("no status line: {line:?}"));
                    statuses[status / 100] += 1;
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        stream.read_line(&mut line).await.expect("header");
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("length");
                        }
                    }
                    body.resize(length, 0);
                    stream.read_exact(&mut body).await.expect("body");
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
