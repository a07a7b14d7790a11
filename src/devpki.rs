//! A small certificate authority for development and tests: a CA, and server, client and
//! signing certificates it issues. Never used in production configuration; keys made here
//! are written only under `./dev/` or test directories, never into the repository.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_RSA_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    EcdsaP256,
}

/// What a certificate is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// A TLS server for these DNS names.
    Server(Vec<String>),
    /// A TLS client with this common name and these DNS names (MedMij nodes use hostnames).
    Client {
        common_name: String,
        dns_names: Vec<String>,
    },
    /// Signing published lists.
    Signing { common_name: String },
    /// A certificate with no extended key usage at all, as some CAs issue them: chains to the
    /// CA like the others, but is not a signing certificate (tests of the signer policy).
    Unrestricted { common_name: String },
}

/// A certificate with its private key.
pub struct Issued {
    pub certificate: CertificateDer<'static>,
    pub certificate_pem: String,
    /// PKCS#8.
    pub key_pem: String,
    pub key_der: PrivatePkcs8KeyDer<'static>,
}

pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot make a development certificate: {0}")]
pub struct DevPkiError(#[from] rcgen::Error);

fn key_pair(algorithm: KeyAlgorithm) -> Result<KeyPair, DevPkiError> {
    Ok(KeyPair::generate_for(match algorithm {
        KeyAlgorithm::Rsa2048 => &PKCS_RSA_SHA256,
        KeyAlgorithm::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
    })?)
}

impl DevCa {
    pub fn new(common_name: &str) -> Result<Self, DevPkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key_pair(KeyAlgorithm::EcdsaP256)?)?;
        Ok(Self { issuer })
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        self.issuer.der()
    }

    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A CRL of this CA, valid between two days, that revokes `revoked` (PEM): tests give the
    /// node expired and current ones.
    pub fn crl_pem(
        &self,
        this_update: (i32, u8, u8),
        next_update: (i32, u8, u8),
        revoked: &[&CertificateDer<'_>],
    ) -> Result<String, DevPkiError> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let day = |(y, m, d)| rcgen::date_time_ymd(y, m, d);
        let revoked_certs = revoked
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok())
            .map(|(_, certificate)| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(certificate.raw_serial()),
                revocation_time: day(this_update),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect();
        let params = rcgen::CertificateRevocationListParams {
            this_update: day(this_update),
            next_update: day(next_update),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    pub fn issue(&self, purpose: &Purpose, algorithm: KeyAlgorithm) -> Result<Issued, DevPkiError> {
        let params = Self::params(purpose, algorithm)?;
        let key = key_pair(algorithm)?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            certificate_pem: certificate.pem(),
            certificate: certificate.der().clone(),
            key_pem: key.serialize_pem(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// A signing certificate for an ECDSA P-256 key made elsewhere — in a PKCS#11 token —
    /// given as its SubjectPublicKeyInfo (DER): the certificate and its PEM.
    pub fn issue_signing_for_p256(
        &self,
        common_name: &str,
        public_key_info: &[u8],
    ) -> Result<(CertificateDer<'static>, String), DevPkiError> {
        use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo};
        struct TokenPublicKey(Vec<u8>);
        impl rcgen::PublicKeyData for TokenPublicKey {
            fn der_bytes(&self) -> &[u8] {
                &self.0
            }
            fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
                &PKCS_ECDSA_P256_SHA256
            }
        }
        let (_, info) = SubjectPublicKeyInfo::from_der(public_key_info)
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
        let key = TokenPublicKey(info.subject_public_key.data.to_vec());
        let purpose = Purpose::Signing {
            common_name: common_name.to_owned(),
        };
        let certificate =
            Self::params(&purpose, KeyAlgorithm::EcdsaP256)?.signed_by(&key, &self.issuer)?;
        Ok((certificate.der().clone(), certificate.pem()))
    }

    fn params(
        purpose: &Purpose,
        algorithm: KeyAlgorithm,
    ) -> Result<CertificateParams, DevPkiError> {
        let (common_name, dns_names, usage) = match purpose {
            Purpose::Server(names) => (
                names[0].clone(),
                names.clone(),
                Some(ExtendedKeyUsagePurpose::ServerAuth),
            ),
            Purpose::Client {
                common_name,
                dns_names,
            } => (
                common_name.clone(),
                dns_names.clone(),
                Some(ExtendedKeyUsagePurpose::ClientAuth),
            ),
            Purpose::Signing { common_name } => (
                common_name.clone(),
                Vec::new(),
                Some(ExtendedKeyUsagePurpose::CodeSigning),
            ),
            Purpose::Unrestricted { common_name } => (common_name.clone(), Vec::new(), None),
        };
        let mut params = CertificateParams::new(dns_names)?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = usage.into_iter().collect();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if algorithm == KeyAlgorithm::Rsa2048
            && matches!(purpose, Purpose::Server(_) | Purpose::Client { .. })
        {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        Ok(params)
    }
}
