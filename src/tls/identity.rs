//! Who is on the other end of a mutual-TLS connection: the names and fingerprint of the
//! client certificate, as the access rules use them.

use sha2::{Digest, Sha256};

use crate::der::common_name;
use crate::signing::hex;

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
        let der_certificate = rustls_pki_types::CertificateDer::from(der);
        let certificate = webpki::EndEntityCert::try_from(&der_certificate).ok()?;
        Some(Self {
            common_name: common_name(certificate.subject()),
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
}
