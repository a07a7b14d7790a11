//! Detached W3C XML Signatures over published list versions (SPEC §5), written by our own
//! code in canonical form, so no XMLDSig library is needed: what we sign is exactly what we
//! write. `xmlsec1 --verify` is the independent check in the tests.

mod key;
mod pkcs11;
mod signer;
mod verify;
mod xmldsig;

pub use key::{ECDSA_SHA256, RSA_SHA256, SigningKey};
pub use pkcs11::{PIN_VARIABLE, TokenAlgorithm, TokenKey, TokenUri};
pub use signer::{SignerIdentity, SignerPin, SignerPolicy};
pub use verify::{
    SignatureCheck, VerifyError, verify_detached, verify_detached_by, verify_signature,
    verify_signature_of_digest,
};
pub use xmldsig::{VersionProperties, list_uri, sign_detached, sign_version};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("the signing operation failed")]
    Sign,
}

/// Lowercase hex of a SHA-256 digest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}
