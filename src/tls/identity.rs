//! Who is on the other end of a mutual-TLS connection: the names and fingerprint of the
//! client certificate, as the access rules use them.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::signing::hex;

/// The subject's common name, when it has exactly one that is text: with none, or with
/// several (which one would a rule mean?), the certificate is known by its fingerprint only.
fn common_name(certificate: &X509Certificate<'_>) -> Option<String> {
    let mut names = certificate.subject().iter_common_name();
    let name = names.next()?.as_str().ok()?.to_owned();
    names.next().is_none().then_some(name)
}

/// The notAfter of a certificate (DER).
pub fn not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
}

/// The identity a verified client certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub common_name: Option<String>,
    /// DNS subject alternative names, lowercased.
    pub dns_names: Vec<String>,
    /// SHA-256 of the certificate (DER), lowercase hex.
    pub fingerprint: String,
}

impl ClientIdentity {
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        let (_, parsed) = X509Certificate::from_der(der).ok()?;
        let der_certificate = rustls_pki_types::CertificateDer::from(der);
        // DNS names as webpki validates them for the handshake.
        let certificate = webpki::EndEntityCert::try_from(&der_certificate).ok()?;
        Some(Self {
            common_name: common_name(&parsed),
            dns_names: certificate
                .valid_dns_names()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            fingerprint: hex(&Sha256::digest(der)),
        })
    }

    /// A short description for logs and the audit log (no personal data beyond the
    /// certificate's own names).
    pub fn subject(&self) -> String {
        match &self.common_name {
            Some(cn) => format!("CN={cn}"),
            None => format!("sha256:{}", self.fingerprint),
        }
    }

    /// The hostnames this certificate speaks for: its CN and its DNS names (MedMij nodes are
    /// identified by hostname).
    pub fn hostnames(&self) -> impl Iterator<Item = String> + '_ {
        self.common_name
            .iter()
            .map(|cn| cn.to_ascii_lowercase())
            .chain(self.dns_names.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devpki::{DevCa, KeyAlgorithm, Purpose};

    #[test]
    fn names_and_fingerprint_come_from_the_certificate() {
        let ca = DevCa::new("Test CA").unwrap();
        let issued = ca
            .issue(
                &Purpose::Client {
                    common_name: "Node.Example.nl".into(),
                    dns_names: vec!["alt.example.nl".into()],
                },
                KeyAlgorithm::EcdsaP256,
            )
            .unwrap();
        let identity = ClientIdentity::from_certificate(&issued.certificate).unwrap();
        assert_eq!(identity.common_name.as_deref(), Some("Node.Example.nl"));
        assert_eq!(identity.dns_names, vec!["alt.example.nl"]);
        assert_eq!(identity.fingerprint.len(), 64);
        assert_eq!(
            identity.hostnames().collect::<Vec<_>>(),
            vec!["node.example.nl", "alt.example.nl"]
        );
        assert_eq!(identity.subject(), "CN=Node.Example.nl");
    }

    #[test]
    fn a_certificate_with_two_common_names_is_known_by_its_fingerprint() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "beheer-1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "MedMij");
        let one = params.self_signed(&key).unwrap();
        let identity = ClientIdentity::from_certificate(one.der()).unwrap();
        assert_eq!(identity.common_name.as_deref(), Some("beheer-1"));
        // rcgen keeps one value per attribute type: write the second CN into the DER.
        let two = with_second_common_name(one.der(), "beheer-2");
        let identity = ClientIdentity::from_certificate(&two).unwrap();
        assert_eq!(identity.common_name, None);
        assert!(identity.subject().starts_with("sha256:"));
    }

    /// The certificate with its subject's O attribute turned into a second CN (same length).
    fn with_second_common_name(der: &[u8], name: &str) -> Vec<u8> {
        let organization = [&[0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x06][..], b"MedMij"].concat();
        let position = der
            .windows(organization.len())
            .rposition(|w| w == organization.as_slice())
            .expect("the subject's O attribute");
        let mut patched = der.to_vec();
        patched[position + 4] = 0x03;
        patched[position + 7..position + 13].copy_from_slice(&name.as_bytes()[..6]);
        patched
    }

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let ca = DevCa::new("Test CA").unwrap();
        let issued = ca
            .issue(
                &Purpose::Signing {
                    common_name: "s".into(),
                },
                KeyAlgorithm::EcdsaP256,
            )
            .unwrap();
        let expiry = not_after(&issued.certificate).unwrap();
        // rcgen's default validity ends in 4096.
        assert_eq!(expiry.format("%Y").to_string(), "4096");
        assert!(not_after(b"\x30\x03\x02\x01\x00").is_none());
    }
}
