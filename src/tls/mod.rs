//! TLS for the node and admin listeners: TLS 1.2 and 1.3 only, NCSC "goed" cipher suites and
//! key exchange groups, client certificates required. The server certificate, the trust
//! anchors and the CRLs sit behind locks so that `reload` (SIGHUP) replaces them without
//! restarting the listeners; the Whitelist check reads the current published Whitelist.

mod identity;
pub mod outgoing;
mod verifier;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

pub use identity::{ClientIdentity, not_after};
pub use verifier::{HandshakeRefusals, NodeAccess};

use verifier::ReloadableVerifier;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The files TLS is built from (all PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate_chain: String,
    pub key: String,
    /// CA certificates that client certificates must chain to.
    pub client_ca: String,
    pub crls: Vec<String>,
}

fn read_error(path: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// NCSC "goed": AEAD suites with forward secrecy only; X25519 and the NIST P-curves.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    use aws_lc_rs::cipher_suite::*;
    use aws_lc_rs::kx_group::{SECP256R1, SECP384R1, X25519};
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![X25519, SECP256R1, SECP384R1],
        ..aws_lc_rs::default_provider()
    })
}

fn load_certified_key(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(&files.certificate_chain)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_error(&files.certificate_chain, e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| read_error(&files.key, e))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::Config(format!("server key and certificate: {e}")))
}

fn load_client_verifier(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&files.client_ca)
        .map_err(|e| read_error(&files.client_ca, e))?
    {
        roots
            .add(ca.map_err(|e| read_error(&files.client_ca, e))?)
            .map_err(|e| TlsError::Config(format!("client CA {}: {e}", files.client_ca)))?;
    }
    let crls = read_crls(files)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))
}

fn read_crls(files: &TlsFiles) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    files
        .crls
        .iter()
        .map(|path| {
            CertificateRevocationListDer::from_pem_file(Path::new(path))
                .map_err(|e| read_error(path, e))
        })
        .collect()
}

/// When a configured CRL should be replaced by a newer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlValidity {
    pub file: String,
    /// Its nextUpdate; `None` when the CRL names none.
    pub next_update: Option<DateTime<Utc>>,
}

fn crl_validity(files: &TlsFiles) -> Result<Vec<CrlValidity>, TlsError> {
    use x509_parser::prelude::FromDer;
    let crls = read_crls(files)?;
    files
        .crls
        .iter()
        .zip(crls)
        .map(|(file, der)| {
            let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
                .map_err(|e| read_error(file, e))?;
            Ok(CrlValidity {
                file: file.clone(),
                next_update: crl
                    .next_update()
                    .and_then(|t| DateTime::from_timestamp(t.timestamp(), 0)),
            })
        })
        .collect()
}

/// The server certificate, swappable at run time.
#[derive(Debug)]
struct ReloadableCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("certificate lock").clone())
    }
}

/// Everything TLS of the node: built once, reloaded in place.
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    certificate: Arc<ReloadableCertificate>,
    client_verifier: Arc<ReloadableVerifier>,
    whitelist: Arc<RwLock<Arc<HashSet<String>>>>,
    refusals: Arc<HandshakeRefusals>,
    crls: RwLock<Vec<CrlValidity>>,
    /// Grows whenever trust changes (a Whitelist published; certificates, trust anchors or
    /// CRLs reloaded), so that an open connection can tell cheaply whether the verdict of its
    /// handshake still stands.
    generation: AtomicU64,
}

/// Which listener a peer is on, for `Tls::still_trusted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Node(NodeAccess),
    Admin,
}

impl Tls {
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = crypto_provider();
        let certificate = load_certified_key(&files, &provider)?;
        let verifier = load_client_verifier(&files, &provider)?;
        let crls = RwLock::new(crl_validity(&files)?);
        Ok(Self {
            crls,
            generation: AtomicU64::new(0),
            certificate: Arc::new(ReloadableCertificate(RwLock::new(Arc::new(certificate)))),
            client_verifier: Arc::new(ReloadableVerifier::new(verifier)),
            whitelist: Arc::new(RwLock::new(Arc::new(HashSet::new()))),
            refusals: Arc::new(HandshakeRefusals::default()),
            files,
            provider,
        })
    }

    /// Re-reads certificate, key, trust anchors and CRLs; on any error the old ones stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certificate = load_certified_key(&self.files, &self.provider)?;
        let verifier = load_client_verifier(&self.files, &self.provider)?;
        let crls = crl_validity(&self.files)?;
        *self.certificate.0.write().expect("certificate lock") = Arc::new(certificate);
        self.client_verifier.replace(verifier);
        *self.crls.write().expect("CRL lock") = crls;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// See the `generation` field.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether a peer let in by an earlier handshake would be let in now: its chain against
    /// the current trust anchors and CRLs and, on the node listener, its names against the
    /// current Whitelist. Cut connections are counted as `trust_changed`.
    pub fn still_trusted(&self, chain: &[CertificateDer<'static>], peer: Peer) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return false;
        };
        let unrecorded = Arc::new(HandshakeRefusals::default());
        let verdict = match peer {
            Peer::Node(access) => verifier::NodeVerifier {
                inner: self.client_verifier.clone(),
                whitelist: self.whitelist.clone(),
                access,
                refusals: unrecorded,
            }
            .verify_client_cert(end_entity, intermediates, UnixTime::now()),
            Peer::Admin => verifier::AdminVerifier {
                inner: self.client_verifier.clone(),
                refusals: unrecorded,
            }
            .verify_client_cert(end_entity, intermediates, UnixTime::now()),
        };
        if verdict.is_err() {
            self.refusals.trust_changed.fetch_add(1, Ordering::Relaxed);
        }
        verdict.is_ok()
    }

    /// The configured CRLs and when each should have been replaced. A CRL past its nextUpdate
    /// is still used (refusing every client would take the network down), but the node is
    /// not ready and the metric shows it.
    pub fn crls(&self) -> Vec<CrlValidity> {
        self.crls.read().expect("CRL lock").clone()
    }

    /// The hostnames of the current published Whitelist, for the node listener's check.
    pub fn set_whitelist(&self, hostnames: HashSet<String>) {
        *self.whitelist.write().expect("whitelist lock") = Arc::new(hostnames);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn refusals(&self) -> &Arc<HandshakeRefusals> {
        &self.refusals
    }

    fn server_config(&self, verifier: Arc<dyn ClientCertVerifier>) -> ServerConfig {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the provider supports TLS 1.2 and 1.3")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.certificate.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// The node listener: a client certificate of the trusted CA, and (unless relaxed) one
    /// whose CN or a DNS name is on the current published Whitelist.
    pub fn node_config(&self, access: NodeAccess) -> ServerConfig {
        self.server_config(Arc::new(verifier::NodeVerifier {
            inner: self.client_verifier.clone(),
            whitelist: self.whitelist.clone(),
            access,
            refusals: self.refusals.clone(),
        }))
    }

    /// The admin listener: a client certificate of the trusted CA; roles are decided per request.
    pub fn admin_config(&self) -> ServerConfig {
        self.server_config(Arc::new(verifier::AdminVerifier {
            inner: self.client_verifier.clone(),
            refusals: self.refusals.clone(),
        }))
    }
}
