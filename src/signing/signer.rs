//! Who may have signed an archive bundle (issue 21, finding 6). A certificate chaining to the
//! CA is not enough: the CA issues certificates to many organisations and for many purposes.
//! A bundle's signer must carry the codeSigning extended key usage, as the node's own signing
//! certificate does, and an auditor can pin the expected signer by its subject common name or
//! by the SHA-256 of its public key (SPKI), which survives a certificate renewal with the same
//! key.

use std::str::FromStr;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::hex;

/// One accepted signer: `cn:<subject common name>` or `spki-sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerPin {
    CommonName(String),
    SpkiSha256(String),
}

impl FromStr for SignerPin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(name) = text.strip_prefix("cn:").filter(|n| !n.is_empty()) {
            return Ok(Self::CommonName(name.to_owned()));
        }
        if let Some(digest) = text.strip_prefix("spki-sha256:") {
            let digest = digest.to_ascii_lowercase();
            if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Self::SpkiSha256(digest));
            }
        }
        Err("expected cn:<subject common name> or spki-sha256:<64 hex digits>".into())
    }
}

/// What identifies a signer certificate: its subject common name and its SPKI SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerIdentity {
    pub common_name: Option<String>,
    pub spki_sha256: String,
    pub code_signing: bool,
}

impl SignerIdentity {
    pub fn of(certificate: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, parsed) = X509Certificate::from_der(certificate.as_ref())
            .map_err(|_| "the signer's certificate cannot be read".to_owned())?;
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let code_signing = matches!(
            parsed.extended_key_usage(),
            Ok(Some(usage)) if usage.value.code_signing
        );
        Ok(Self {
            common_name,
            spki_sha256: hex(&Sha256::digest(parsed.public_key().raw)),
            code_signing,
        })
    }

    /// `cn:… spki-sha256:…`, the forms `--signer` takes.
    pub fn pins(&self) -> String {
        let cn = self
            .common_name
            .as_deref()
            .map(|cn| format!("cn:{} ", cn.replace(char::is_control, "?")))
            .unwrap_or_default();
        format!("{cn}spki-sha256:{}", self.spki_sha256)
    }
}

/// The signers an auditor accepts: any certificate with the codeSigning usage (under the CA,
/// checked by the signature verification), and, when pins are given, only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerPolicy {
    pub pins: Vec<SignerPin>,
}

impl SignerPolicy {
    pub fn pinned(pins: Vec<SignerPin>) -> Self {
        Self { pins }
    }

    /// Why `certificate` may not sign, if it may not.
    pub fn check(&self, certificate: &CertificateDer<'_>) -> Result<SignerIdentity, String> {
        let identity = SignerIdentity::of(certificate)?;
        if !identity.code_signing {
            return Err(format!(
                "the signer ({}) lacks the codeSigning extended key usage of a signing certificate",
                identity.pins()
            ));
        }
        let pinned = self.pins.is_empty()
            || self.pins.iter().any(|pin| match pin {
                SignerPin::CommonName(name) => identity.common_name.as_deref() == Some(name),
                SignerPin::SpkiSha256(digest) => *digest == identity.spki_sha256,
            });
        if !pinned {
            return Err(format!(
                "the signer ({}) is not the expected signer",
                identity.pins()
            ));
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_in_both_forms_and_nothing_else() {
        assert_eq!(
            "cn:stelselnode".parse::<SignerPin>(),
            Ok(SignerPin::CommonName("stelselnode".into()))
        );
        let digest = "AB".repeat(32);
        assert_eq!(
            format!("spki-sha256:{digest}").parse::<SignerPin>(),
            Ok(SignerPin::SpkiSha256(digest.to_ascii_lowercase()))
        );
        for bad in ["", "cn:", "stelselnode", "spki-sha256:abc", "sha256:00"] {
            assert!(bad.parse::<SignerPin>().is_err(), "{bad}");
        }
    }
}
