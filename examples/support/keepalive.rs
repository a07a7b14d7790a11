//! One keep-alive HTTPS/1.1 connection with a client certificate, one request in flight:
//! what the load generators in examples/ share.

// Each example uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A client that trusts `ca` and presents `certificate` with `key` (all PEM files).
pub fn connector(ca: &Path, certificate: &Path, key: &Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for anchor in CertificateDer::pem_file_iter(ca).expect("CA") {
        roots.add(anchor.expect("CA")).expect("CA");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .expect("certificate")
        .map(|c| c.expect("certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client certificate");
    TlsConnector::from(Arc::new(config))
}

pub struct Connection {
    stream: BufReader<TlsStream<TcpStream>>,
}

/// Status, headers (lowercase names) and body of one response.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Empty when the body was discarded.
    pub body: Vec<u8>,
    /// Bytes of body received.
    pub body_length: usize,
}

#[derive(Clone, Copy)]
enum Body {
    Keep,
    Discard,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Connection {
    pub async fn open(connector: &TlsConnector, address: SocketAddr) -> Self {
        let tcp = TcpStream::connect(address).await.expect("connect");
        tcp.set_nodelay(true).unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS");
        Self {
            stream: BufReader::with_capacity(1 << 20, tls),
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the answer; `None` when the
    /// server closed the connection first (reconnect and try again).
    pub async fn send(&mut self, request: &[u8], head_only: bool) -> Option<Answer> {
        self.exchange(request, head_only).await.ok()
    }

    /// The same, telling why no whole answer came: the connection closed or failed, or the
    /// answer was malformed or cut short. After an error the connection is unusable.
    pub async fn exchange(&mut self, request: &[u8], head_only: bool) -> Result<Answer, String> {
        self.exchange_into(request, head_only, Body::Keep).await
    }

    /// The same, reading the body through a small buffer and keeping only its length (in
    /// `Answer::body_length`): a load generator with hundreds of connections must not hold
    /// hundreds of copies of a large list.
    pub async fn exchange_discarding(&mut self, request: &[u8]) -> Result<Answer, String> {
        self.exchange_into(request, false, Body::Discard).await
    }

    async fn exchange_into(
        &mut self,
        request: &[u8],
        head_only: bool,
        keep: Body,
    ) -> Result<Answer, String> {
        self.stream
            .get_mut()
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        let read = self
            .stream
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            return Err("closed".into());
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line: {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self
                .stream
                .read_line(&mut line)
                .await
                .map_err(|e| format!("read: {e}"))?
                == 0
            {
                return Err("closed inside the header".into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let declared = headers.iter().find(|(n, _)| n == "content-length");
        if declared.is_none() && !head_only && status != 304 && status != 204 {
            return Err("an answer without Content-Length".into());
        }
        let length = match head_only {
            true => 0,
            false => match declared {
                Some((_, v)) => v.parse().map_err(|_| format!("Content-Length {v:?}"))?,
                None => 0,
            },
        };
        let mut body = Vec::new();
        match keep {
            Body::Keep => {
                body = vec![0; length];
                self.stream
                    .read_exact(&mut body)
                    .await
                    .map_err(|e| format!("body cut short: {e}"))?;
            }
            Body::Discard => {
                let mut sink = [0u8; 64 * 1024];
                let mut left = length;
                while left > 0 {
                    let chunk = left.min(sink.len());
                    let read = self
                        .stream
                        .read(&mut sink[..chunk])
                        .await
                        .map_err(|e| format!("body cut short: {e}"))?;
                    if read == 0 {
                        return Err(format!("body cut short: {left} of {length} bytes missing"));
                    }
                    left -= read;
                }
            }
        }
        Ok(Answer {
            status,
            headers,
            body,
            body_length: length,
        })
    }
}
