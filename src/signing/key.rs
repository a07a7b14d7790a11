//! The signing key and its certificate chain: a PKCS#8 key from a PEM file, or a key in a
//! PKCS#11 token (`pkcs11.rs`), with the chain from a PEM file.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::SigningError;
use super::pkcs11::{TokenAlgorithm, TokenKey, TokenUri};

/// The XML Signature algorithm identifiers we sign with.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

enum KeyKind {
    Rsa(RsaKeyPair),
    /// P-256; signatures are r||s, as XML Signature 1.1 writes them.
    EcdsaP256(EcdsaKeyPair),
    /// In a PKCS#11 token: RSA or ECDSA P-256, signed in the token.
    Token(TokenKey),
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

/// The certificates of a PEM file, signer first.
fn read_chain(chain: &Path) -> Result<Vec<CertificateDer<'static>>, SigningError> {
    CertificateDer::pem_file_iter(chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            SigningError::Key(format!(
                "cannot read certificates from {}: {e}",
                chain.display()
            ))
        })
}

impl SigningKey {
    /// The key `key` names — a PEM file, or a PKCS#11 URI (`pkcs11:…`, a signature given up
    /// on after `timeout`) — with its chain.
    pub fn load(
        key: &str,
        chain: &Path,
        timeout: std::time::Duration,
    ) -> Result<Self, SigningError> {
        match TokenUri::is_uri(key) {
            true => Self::from_token(
                TokenKey::open(TokenUri::parse(key)?, timeout)?,
                read_chain(chain)?,
            ),
            false => Self::from_pem_files(Path::new(key), chain),
        }
    }

    /// Loads a PKCS#8 private key (RSA or ECDSA P-256) and its chain (signer first).
    pub fn from_pem_files(key: &Path, chain: &Path) -> Result<Self, SigningError> {
        let key_der = PrivatePkcs8KeyDer::from_pem_file(key).map_err(|e| {
            SigningError::Key(format!(
                "cannot read a PKCS#8 key from {}: {e}",
                key.display()
            ))
        })?;
        Self::from_der(key_der.secret_pkcs8_der(), read_chain(chain)?)
    }

    /// A key in a PKCS#11 token with its chain (signer first).
    pub fn from_token(
        key: TokenKey,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Self, SigningError> {
        if key.algorithm() == TokenAlgorithm::Ed25519 {
            return Err(SigningError::Key(format!(
                "{} is an Ed25519 key: it can sign the transparency log's checkpoints, not lists",
                key.uri()
            )));
        }
        Self::with_chain(KeyKind::Token(key), chain)
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
        Self::with_chain(key, chain)
    }

    fn with_chain(key: KeyKind, chain: Vec<CertificateDer<'static>>) -> Result<Self, SigningError> {
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
    /// would fail verification: a signature made now must verify with it (for a token key,
    /// this is also the proof that the token signs).
    fn check_matches_certificate(&self) -> Result<(), SigningError> {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
        };
        use x509_parser::prelude::{FromDer, X509Certificate};
        let mismatch = || {
            SigningError::Key("the first certificate of the chain is not the signing key's".into())
        };
        let (_, certificate) =
            X509Certificate::from_der(self.chain[0].as_ref()).map_err(|_| mismatch())?;
        let public = &certificate.public_key().subject_public_key.data;
        let probe = b"stelselnode: the key matches its certificate";
        let signature = self.sign(probe)?;
        let verified = match self.algorithm() {
            RSA_SHA256 => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
                .verify(probe, &signature),
            _ => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public).verify(probe, &signature),
        };
        verified.map_err(|_| mismatch())
    }

    pub fn algorithm(&self) -> &'static str {
        match &self.key {
            KeyKind::Rsa(_) => RSA_SHA256,
            KeyKind::EcdsaP256(_) => ECDSA_SHA256,
            KeyKind::Token(token) => match token.algorithm() {
                TokenAlgorithm::Rsa => RSA_SHA256,
                // Ed25519 is refused in `from_token`.
                TokenAlgorithm::EcdsaP256 | TokenAlgorithm::Ed25519 => ECDSA_SHA256,
            },
        }
    }

    /// For a key in a token: why its last signature failed, while no later one succeeded.
    pub fn token_trouble(&self) -> Option<String> {
        match &self.key {
            KeyKind::Token(token) => token.trouble(),
            _ => None,
        }
    }

    /// Where the key is: a file, or the token a PKCS#11 URI names (without its PIN).
    pub fn in_token(&self) -> Option<String> {
        match &self.key {
            KeyKind::Token(token) => Some(token.uri().to_string()),
            _ => None,
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
            KeyKind::Token(token) => token.sign(message),
        }
    }
}
