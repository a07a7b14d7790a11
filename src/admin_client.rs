//! The staff CLI's client for the admin API (`stelselnode mutation ...`): each staff request
//! as a method, path, query and body, sent with reqwest over our own rustls configuration
//! (the node's crypto provider and TLS versions) presenting the staff member's certificate.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, Url};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::domain::ListKind;

/// Responses larger than this are refused (a listing is bounded far below it).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("the admin URL must look like https://host:port, got {0}")]
    Url(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("request to the admin listener: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server's answer is not usable: {0}")]
    Response(String),
}

/// Which mutations to list; every filter is optional (also the CLI's `list` arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MutationFilter {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub list: Option<ListKind>,
    /// Certificate subject (CN=...) or fingerprint.
    #[arg(long)]
    pub submitter: Option<String>,
    /// Submitted at least this long ago: 90s, 15m, 36h, 2d.
    #[arg(long)]
    pub min_age: Option<String>,
    #[arg(long)]
    pub max_age: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
}

/// One request of the mutation workflow (docs/openapi.yaml).
#[derive(Debug, Clone)]
pub enum StaffRequest {
    Submit(Value),
    Validate(Value),
    Approve(i64),
    Reject { id: i64, reason: String },
    Withdraw(i64),
    Show(i64),
    List(MutationFilter),
}

impl StaffRequest {
    /// Method, path, query and JSON body.
    fn parts(&self) -> (Method, String, Vec<(&'static str, String)>, Option<Value>) {
        let decision = |id: &i64, what: &str, body| {
            (
                Method::POST,
                format!("/mutations/{id}/{what}"),
                Vec::new(),
                Some(body),
            )
        };
        match self {
            StaffRequest::Submit(body) => (
                Method::POST,
                "/mutations".into(),
                Vec::new(),
                Some(body.clone()),
            ),
            StaffRequest::Validate(body) => (
                Method::POST,
                "/mutations/validate".into(),
                Vec::new(),
                Some(body.clone()),
            ),
            StaffRequest::Approve(id) => decision(id, "approve", json!({})),
            StaffRequest::Reject { id, reason } => {
                decision(id, "reject", json!({ "reason": reason }))
            }
            StaffRequest::Withdraw(id) => decision(id, "withdraw", json!({})),
            StaffRequest::Show(id) => (Method::GET, format!("/mutations/{id}"), Vec::new(), None),
            StaffRequest::List(f) => {
                let query = [
                    ("status", f.status.clone()),
                    ("list", f.list.map(|l| l.as_str().to_owned())),
                    ("submitter", f.submitter.clone()),
                    ("min_age", f.min_age.clone()),
                    ("max_age", f.max_age.clone()),
                    ("limit", f.limit.map(|l| l.to_string())),
                ]
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?)))
                .collect();
                (Method::GET, "/mutations".into(), query, None)
            }
        }
    }
}

/// An answer: status and JSON body (`null` when empty).
#[derive(Debug)]
pub struct AdminResponse {
    pub status: u16,
    pub body: Value,
}

/// The admin listener and the certificate to present to it.
pub struct AdminClient {
    base: Url,
    http: reqwest::Client,
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
        let base = Url::parse(url)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host().is_some() && u.path() == "/")
            .filter(|u| u.query().is_none() && u.username().is_empty())
            .ok_or_else(|| ClientError::Url(url.to_owned()))?;
        let mut roots = rustls::RootCertStore::empty();
        for anchor in CertificateDer::pem_slice_iter(&read(ca)?) {
            roots.add(anchor.map_err(pem_error(ca))?)?;
        }
        let chain = CertificateDer::pem_slice_iter(&read(certificate)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_error(certificate))?;
        let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(pem_error(key))?;
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        Ok(Self { base, http })
    }

    pub async fn send(&self, request: &StaffRequest) -> Result<AdminResponse, ClientError> {
        let (method, path, query, body) = request.parts();
        let url = self
            .base
            .join(&path)
            .map_err(|e| ClientError::Url(e.to_string()))?;
        let mut builder = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&query);
        if let Some(body) = &body {
            builder = builder.json(body);
        }
        let mut response = builder.send().await?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Response(format!(
                    "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = match bytes.is_empty() {
            true => Value::Null,
            false => {
                serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(e.to_string()))?
            }
        };
        Ok(AdminResponse { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_puts_its_filters_in_the_query() {
        let (method, path, query, body) = StaffRequest::List(MutationFilter {
            status: Some("submitted".into()),
            submitter: Some("CN=loket 1&2".into()),
            limit: Some(5),
            ..MutationFilter::default()
        })
        .parts();
        assert_eq!(
            (method, path.as_str(), body),
            (Method::GET, "/mutations", None)
        );
        assert_eq!(
            query,
            [
                ("status", "submitted".to_owned()),
                ("submitter", "CN=loket 1&2".to_owned()),
                ("limit", "5".to_owned())
            ]
        );
    }

    #[test]
    fn decisions_post_to_the_mutation() {
        let (method, path, _, body) = StaffRequest::Reject {
            id: 7,
            reason: "onvolledig".into(),
        }
        .parts();
        assert_eq!(method, Method::POST);
        assert_eq!(path, "/mutations/7/reject");
        assert_eq!(body, Some(json!({ "reason": "onvolledig" })));
    }
}
