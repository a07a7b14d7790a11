//! Client certificate verifiers. Both delegate the chain, validity and CRL checks to
//! rustls' WebPKI verifier (swappable on reload); the node verifier then refuses, during the
//! handshake and with an `access_denied` alert, a certificate whose names are not on the
//! published Whitelist, as MedMij nodes do.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::ClientIdentity;

/// Who may connect to the node listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeAccess {
    /// Only certificates whose CN or DNS name is on the current published Whitelist.
    Whitelist,
    /// Any certificate of the trusted CA (test environments).
    TrustedCa,
}

/// Handshakes refused, by reason (exported as a metric).
#[derive(Debug, Default)]
pub struct HandshakeRefusals {
    pub untrusted: AtomicU64,
    pub not_whitelisted: AtomicU64,
    /// Open connections cut because their peer is no longer trusted.
    pub trust_changed: AtomicU64,
}

#[derive(Debug)]
pub(super) struct ReloadableVerifier(RwLock<Arc<dyn ClientCertVerifier>>);

impl ReloadableVerifier {
    pub(super) fn new(inner: Arc<dyn ClientCertVerifier>) -> Self {
        Self(RwLock::new(inner))
    }

    pub(super) fn replace(&self, inner: Arc<dyn ClientCertVerifier>) {
        *self.0.write().expect("verifier lock") = inner;
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0.read().expect("verifier lock").clone()
    }
}

/// The checks every listener shares; `Debug` is required by rustls.
macro_rules! delegate_signatures {
    () => {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            // The hints would borrow from a verifier that a reload may replace; sending none
            // is allowed and clients then offer their one certificate.
            &[]
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner
                .current()
                .verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner
                .current()
                .verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.current().supported_verify_schemes()
        }
    };
}

fn verify_chain(
    inner: &ReloadableVerifier,
    refusals: &HandshakeRefusals,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<ClientCertVerified, Error> {
    inner
        .current()
        .verify_client_cert(end_entity, intermediates, now)
        .inspect_err(|e| {
            refusals.untrusted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(reason = %e, "client certificate refused");
        })
}

#[derive(Debug)]
pub(super) struct AdminVerifier {
    pub(super) inner: Arc<ReloadableVerifier>,
    pub(super) refusals: Arc<HandshakeRefusals>,
}

impl ClientCertVerifier for AdminVerifier {
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        verify_chain(&self.inner, &self.refusals, end_entity, intermediates, now)
    }

    delegate_signatures!();
}

#[derive(Debug)]
pub(super) struct NodeVerifier {
    pub(super) inner: Arc<ReloadableVerifier>,
    pub(super) whitelist: Arc<RwLock<Arc<HashSet<String>>>>,
    pub(super) access: NodeAccess,
    pub(super) refusals: Arc<HandshakeRefusals>,
}

impl ClientCertVerifier for NodeVerifier {
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = verify_chain(&self.inner, &self.refusals, end_entity, intermediates, now)?;
        if self.access == NodeAccess::TrustedCa {
            return Ok(verified);
        }
        let whitelist = self.whitelist.read().expect("whitelist lock").clone();
        let identity = ClientIdentity::from_certificate(end_entity);
        if identity
            .as_ref()
            .is_some_and(|id| id.hostnames().any(|h| whitelist.contains(&h)))
        {
            return Ok(verified);
        }
        self.refusals
            .not_whitelisted
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(client = %identity.map(|i| i.subject()).unwrap_or_default(), "node not on the Whitelist");
        // rustls answers ApplicationVerificationFailure with the access_denied alert.
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    delegate_signatures!();
}
