//! The signing key and its certificate chain, loaded from PEM files (PKCS#8 key).

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::SigningError;

/// The XML Signature algorithm identifiers we sign with.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

enum KeyKind {
    Rsa(RsaKeyPair),
    /// P-256; signatures are r||s, as XML Signature 1.1 writes them.
    EcdsaP256(EcdsaKeyPair),
}

/// A private key with the certificate chain that vouches for it (signer first).
pub struct SigningKey {
    key: KeyKind,
    chain: Vec<CertificateDer<'static>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("chain_len", &self.chain.len())
            .finish()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 private key (RSA or ECDSA P-256) and its chain (signer first).
    pub fn from_pem_files(key: &Path, chain: &Path) -> Result<Self, SigningError> {
        let key_der = PrivatePkcs8KeyDer::from_pem_file(key).map_err(|e| {
            SigningError::Key(format!(
                "cannot read a PKCS#8 key from {}: {e}",
                key.display()
            ))
        })?;
        let chain = CertificateDer::pem_file_iter(chain)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                SigningError::Key(format!(
                    "cannot read certificates from {}: {e}",
                    chain.display()
                ))
            })?;
        Self::from_der(key_der.secret_pkcs8_der(), chain)
    }

    pub fn from_der(
        pkcs8: &[u8],
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Self, SigningError> {
        let key = match RsaKeyPair::from_pkcs8(pkcs8) {
            Ok(rsa) => KeyKind::Rsa(rsa),
            Err(_) => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .map(KeyKind::EcdsaP256)
                .map_err(|_| {
                    SigningError::Key("the key is neither RSA nor ECDSA P-256 in PKCS#8".into())
                })?,
        };
        if chain.is_empty() {
            return Err(SigningError::Key("the certificate chain is empty".into()));
        }
        let signing_key = Self {
            key,
            chain,
            rng: SystemRandom::new(),
        };
        signing_key.check_matches_certificate()?;
        Ok(signing_key)
    }

    /// The signer's certificate must carry this key's public key, or every signature we make
    /// would fail verification.
    fn check_matches_certificate(&self) -> Result<(), SigningError> {
        let public = match &self.key {
            KeyKind::Rsa(k) => k.public_key().as_ref().to_vec(),
            KeyKind::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
        };
        let cert = self.chain[0].as_ref();
        let found = cert.windows(public.len()).any(|w| w == public.as_slice());
        match found {
            true => Ok(()),
            false => Err(SigningError::Key(
                "the first certificate of the chain is not the signing key's".into(),
            )),
        }
    }

    pub fn algorithm(&self) -> &'static str {
        match self.key {
            KeyKind::Rsa(_) => RSA_SHA256,
            KeyKind::EcdsaP256(_) => ECDSA_SHA256,
        }
    }

    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let failed = |_| SigningError::Sign;
        match &self.key {
            KeyKind::Rsa(k) => {
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            KeyKind::EcdsaP256(k) => Ok(k
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
        }
    }
}
