//! A small HTTPS/1.1 client for the admin API, presenting a staff client certificate: what
//! the staff CLI (`stelselnode mutation ...`) uses instead of hand-written curl commands.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Responses larger than this are refused (a listing is bounded far below it).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("the admin URL must look like https://host:port, got {0}")]
    Url(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connection to {address}: {source}")]
    Io {
        address: String,
        source: std::io::Error,
    },
    #[error("the server's answer is not HTTP/1.1 with a JSON body: {0}")]
    Response(String),
}

/// The admin listener and the certificate to present to it.
pub struct AdminClient {
    host: String,
    port: u16,
    connector: TlsConnector,
}

/// An answer: status and JSON body (`null` when empty).
#[derive(Debug)]
pub struct AdminResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn pem_error(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> ClientError + '_ {
    move |e| ClientError::File {
        path: path.display().to_string(),
        message: format!("not usable PEM: {e}"),
    }
}

impl AdminClient {
    /// `url` is `https://host:port`; `ca` the CA(s) the server chains to; `certificate` and
    /// `key` the staff member's certificate chain and PKCS#8 key, all PEM.
    pub fn new(url: &str, ca: &Path, certificate: &Path, key: &Path) -> Result<Self, ClientError> {
        let authority = url
            .strip_prefix("https://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.contains('/'))
            .ok_or_else(|| ClientError::Url(url.to_owned()))?;
        let (host, port) = authority
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
            .ok_or_else(|| ClientError::Url(url.to_owned()))?;
        let mut roots = rustls::RootCertStore::empty();
        for anchor in CertificateDer::pem_slice_iter(&read(ca)?) {
            roots.add(anchor.map_err(pem_error(ca))?)?;
        }
        let chain = CertificateDer::pem_slice_iter(&read(certificate)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_error(certificate))?;
        let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(pem_error(key))?;
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Self {
            host,
            port,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// One request on its own connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<AdminResponse, ClientError> {
        let address = format!("{}:{}", self.host, self.port);
        let io = |source| ClientError::Io {
            address: address.clone(),
            source,
        };
        // `localhost` may resolve to ::1 first while the listener is on 127.0.0.1.
        let mut tcp = Err(std::io::ErrorKind::NotFound.into());
        for socket in address.to_socket_addrs().map_err(io)? {
            tcp = TcpStream::connect(socket).await;
            if tcp.is_ok() {
                break;
            }
        }
        let tcp = tcp.map_err(io)?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| ClientError::Url(self.host.clone()))?;
        let mut tls = self.connector.connect(name, tcp).await.map_err(io)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        tls.write_all(head.as_bytes()).await.map_err(io)?;
        tls.write_all(body.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut tls)
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        parse_response(&raw)
    }
}

fn parse_response(raw: &[u8]) -> Result<AdminResponse, ClientError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Response("no header end".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Response("no status line".into()))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(ClientError::Response(
            "chunked bodies are not expected".into(),
        ));
    }
    let body = &raw[end + 4..];
    let body = match body.is_empty() {
        true => serde_json::Value::Null,
        false => serde_json::from_slice(body).map_err(|e| ClientError::Response(e.to_string()))?,
    };
    Ok(AdminResponse { status, body })
}
