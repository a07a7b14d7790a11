//! Verification of our detached signatures, for the consumer verifier and for the node's
//! own check of every signature it is about to publish.
//!
//! The signature document is read for its values (algorithm, digests, signature, chain,
//! properties); SignedInfo and the Object are then re-emitted canonically from those values
//! and checked, so whatever else a document carries is never trusted.

// What consumers hand in is never sliced or indexed where it could panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use super::key::{ECDSA_SHA256, RSA_SHA256};
use super::xmldsig::{
    PROPERTIES_ID, list_uri, properties_object, signature_document_of, signed_info,
    signed_info_detached,
};
use super::{VersionProperties, hex};
use crate::domain::{ListKind, Tijdstempel, Volgnummer};

/// DER value of the codeSigning extended key usage (1.3.6.1.5.5.7.3.3): a signer certificate
/// with extended key usages must allow it.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the signature document is malformed: {0}")]
    Malformed(String),
    #[error("the signer's certificate is not trusted: {0}")]
    UntrustedSigner(String),
    #[error("the list bytes do not match the signed digest (Reference 1)")]
    ListDigest,
    #[error("the version properties do not match the signed digest (Reference 2)")]
    PropertiesDigest,
    #[error("the signature value does not verify")]
    SignatureValue,
}

/// What a valid signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    pub properties: VersionProperties,
    pub list_sha256: String,
    /// The certificate that signed, for a caller with its own rules on signers.
    pub signer: CertificateDer<'static>,
}

#[derive(Default)]
struct Parsed {
    algorithm: Option<String>,
    reference_uris: Vec<String>,
    digests: Vec<String>,
    signature_value: Option<String>,
    certificates: Vec<String>,
    properties: Vec<(String, String)>,
}

fn malformed(message: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(message.into())
}

fn parse(document: &[u8]) -> Result<Parsed, VerifyError> {
    let text = std::str::from_utf8(document).map_err(|_| malformed("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut parsed = Parsed::default();
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| malformed(e.to_string()))? {
            Event::DocType(_) => return Err(malformed("a DOCTYPE is not accepted")),
            event @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(e) | Event::Empty(e)) = &event else {
                    unreachable!()
                };
                let name = e.local_name().into_inner().to_owned();
                let attribute = |wanted: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == wanted)
                        .map(|a| a.value.into_owned())
                };
                match name.as_str() {
                    "SignatureMethod" => parsed.algorithm = attribute("Algorithm"),
                    "Reference" => parsed
                        .reference_uris
                        .push(attribute("URI").unwrap_or_default()),
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                let value = t.xml10_content().trim().to_owned();
                if value.is_empty() {
                    continue;
                }
                let parent = stack.iter().rev().nth(1).map(String::as_str);
                match (stack.last().map(String::as_str), parent) {
                    (Some("DigestValue"), _) => parsed.digests.push(value),
                    (Some("SignatureValue"), _) => parsed.signature_value = Some(value),
                    (Some("X509Certificate"), _) => parsed.certificates.push(value),
                    (Some(field), Some("Versie")) => {
                        parsed.properties.push((field.to_owned(), value));
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(parsed)
}

fn property<'a>(parsed: &'a Parsed, name: &str) -> Option<&'a str> {
    parsed
        .properties
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

fn properties(parsed: &Parsed) -> Result<VersionProperties, VerifyError> {
    let required = |name: &str| {
        property(parsed, name).ok_or_else(|| malformed(format!("property {name} is missing")))
    };
    let instant = |name: &str| {
        required(name)
            .and_then(|v| Tijdstempel::parse(v).map_err(|e| malformed(format!("{name}: {e}"))))
    };
    Ok(VersionProperties {
        list: required("Lijst")?
            .parse::<ListKind>()
            .map_err(|e| malformed(e.to_string()))?,
        volgnummer: Volgnummer::parse(required("Volgnummer")?)
            .map_err(|e| malformed(e.to_string()))?,
        tijdstempel: instant("Tijdstempel")?,
        valid_from: instant("GeldigVanaf")?,
        expires_at: instant("GeldigTot")?,
        grace_seconds: required("GraceSeconden")?
            .parse()
            .map_err(|_| malformed("GraceSeconden is not a number"))?,
        previous_sha256: property(parsed, "VorigeSha256").map(str::to_owned),
    })
}

fn decode(value: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    let compact: String = value.split_whitespace().collect();
    BASE64
        .decode(compact)
        .map_err(|_| malformed(format!("{what} is not base64")))
}

/// XML Signature writes ECDSA signatures as r||s; X.509 tooling wants DER `SEQUENCE { r, s }`.
fn ecdsa_fixed_to_der(fixed: &[u8]) -> Result<Vec<u8>, VerifyError> {
    if fixed.len() != 64 {
        return Err(malformed("an ECDSA P-256 signature value is 64 bytes"));
    }
    let integer = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|&b| b == 0).collect();
        let mut out = vec![0x02];
        let pad = trimmed.first().is_none_or(|&b| b & 0x80 != 0);
        out.push((trimmed.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend(trimmed);
        out
    };
    let (r, s) = fixed.split_at(32);
    let (r, s) = (integer(r), integer(s));
    let mut der = vec![0x30, (r.len() + s.len()) as u8];
    der.extend(r);
    der.extend(s);
    Ok(der)
}

/// Verifies `signature` over `list` (its exact bytes), with a signer certificate that chains
/// to one of `trust_anchors` at `now`.
pub fn verify_signature(
    signature: &[u8],
    list: &[u8],
    trust_anchors: &[CertificateDer<'_>],
    now: DateTime<Utc>,
) -> Result<SignatureCheck, VerifyError> {
    verify_signature_of_digest(signature, &Sha256::digest(list).into(), trust_anchors, now)
}

/// The same, given the SHA-256 of the list's bytes (so a large archived list can be hashed
/// as it streams by).
pub fn verify_signature_of_digest(
    signature: &[u8],
    list_sha256: &[u8; 32],
    trust_anchors: &[CertificateDer<'_>],
    now: DateTime<Utc>,
) -> Result<SignatureCheck, VerifyError> {
    let parsed = parse(signature)?;
    let properties = properties(&parsed)?;
    let [list_digest, properties_digest] = parsed.digests.as_slice() else {
        return Err(malformed("expected two references"));
    };
    let expected_uris = [
        list_uri(properties.list).to_owned(),
        format!("#{PROPERTIES_ID}"),
    ];
    if parsed.reference_uris != expected_uris {
        return Err(malformed(format!(
            "unexpected reference URIs {:?}",
            parsed.reference_uris
        )));
    }
    let list_digest = decode(list_digest, "DigestValue")?;
    let properties_digest = decode(properties_digest, "DigestValue")?;
    if list_digest[..] != list_sha256[..] {
        return Err(VerifyError::ListDigest);
    }
    if properties_digest[..] != Sha256::digest(properties_object(&properties).as_bytes())[..] {
        return Err(VerifyError::PropertiesDigest);
    }
    let algorithm = parsed.algorithm.as_deref().unwrap_or_default();
    let info = signed_info(
        algorithm,
        &expected_uris[0],
        &list_digest,
        &properties_digest,
    );
    let signer = check_signed_info(&parsed, &info, trust_anchors, now)?;
    Ok(SignatureCheck {
        properties,
        list_sha256: hex(list_sha256),
        signer,
    })
}

/// Verifies a detached signature made by `sign_detached` over the document named `uri`
/// whose SHA-256 is `digest`; the certificate that signed.
pub fn verify_detached(
    signature: &[u8],
    uri: &str,
    digest: &[u8; 32],
    trust_anchors: &[CertificateDer<'_>],
    now: DateTime<Utc>,
) -> Result<CertificateDer<'static>, VerifyError> {
    let parsed = parse(signature)?;
    let [signed_digest] = parsed.digests.as_slice() else {
        return Err(malformed("expected one reference"));
    };
    if parsed.reference_uris != [uri] {
        return Err(malformed(format!(
            "unexpected reference URIs {:?}",
            parsed.reference_uris
        )));
    }
    if decode(signed_digest, "DigestValue")?[..] != digest[..] {
        return Err(VerifyError::ListDigest);
    }
    let algorithm = parsed.algorithm.as_deref().unwrap_or_default();
    let info = signed_info_detached(algorithm, uri, digest);
    require_written_form(signature, &parsed, &info)?;
    check_signed_info(&parsed, &info, trust_anchors, now)
}

/// A detached signature (a bundle's MANIFEST.sig) is a file no digest vouches for: it must be
/// byte for byte the document this node writes for the values it holds, so that no byte of
/// it can change while it still verifies (whitespace in a base64 value, a comment, …).
fn require_written_form(document: &[u8], parsed: &Parsed, info: &str) -> Result<(), VerifyError> {
    let value = decode(
        parsed.signature_value.as_deref().unwrap_or_default(),
        "SignatureValue",
    )?;
    let chain = parsed
        .certificates
        .iter()
        .map(|c| decode(c, "X509Certificate").map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()?;
    match signature_document_of(info, &value, &chain, "").as_bytes() == document {
        true => Ok(()),
        false => Err(malformed("it is not in the form this node writes")),
    }
}

/// Verifies a detached signature like `verify_detached`, made by exactly `certificate` (no
/// CA at hand: the node checking a bundle it made itself with its current key).
pub fn verify_detached_by(
    signature: &[u8],
    uri: &str,
    digest: &[u8; 32],
    certificate: &CertificateDer<'_>,
) -> Result<(), VerifyError> {
    let parsed = parse(signature)?;
    let [signed_digest] = parsed.digests.as_slice() else {
        return Err(malformed("expected one reference"));
    };
    if parsed.reference_uris != [uri] || decode(signed_digest, "DigestValue")?[..] != digest[..] {
        return Err(VerifyError::ListDigest);
    }
    let signer = parsed
        .certificates
        .first()
        .map(|c| decode(c, "X509Certificate"))
        .transpose()?;
    if signer.as_deref() != Some(certificate.as_ref()) {
        return Err(VerifyError::UntrustedSigner(
            "it was not made with this node's signing certificate".into(),
        ));
    }
    let signer = webpki::EndEntityCert::try_from(certificate)
        .map_err(|_| VerifyError::UntrustedSigner("its certificate cannot be read".into()))?;
    let algorithm = parsed.algorithm.as_deref().unwrap_or_default();
    let info = signed_info_detached(algorithm, uri, digest);
    require_written_form(signature, &parsed, &info)?;
    check_value(&parsed, &signer, &info)
}

/// A certificate path error in words (webpki's own text is its Debug form).
fn untrusted(error: webpki::Error) -> VerifyError {
    use webpki::Error as E;
    let words = match error {
        E::UnknownIssuer => "it was not issued by the trusted CA".to_owned(),
        E::CertExpired { .. } => "it had expired when it signed".to_owned(),
        E::CertNotValidYet { .. } => "it was not valid yet when it signed".to_owned(),
        E::InvalidSignatureForPublicKey => "its issuer's signature on it is wrong".to_owned(),
        E::RequiredEkuNotFoundContext(_) => {
            "it is not a signing certificate (extended key usage)".to_owned()
        }
        E::CaUsedAsEndEntity => "it is a CA certificate".to_owned(),
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "it is malformed".to_owned(),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "its signature algorithm is not supported".to_owned()
        }
        other => format!("it cannot be verified ({other})"),
    };
    VerifyError::UntrustedSigner(words)
}

/// The signer's chain to a trust anchor at `now`, and the signature value over `info`; the
/// signer's certificate.
fn check_signed_info(
    parsed: &Parsed,
    info: &str,
    trust_anchors: &[CertificateDer<'_>],
    now: DateTime<Utc>,
) -> Result<CertificateDer<'static>, VerifyError> {
    let chain: Vec<CertificateDer<'static>> = parsed
        .certificates
        .iter()
        .map(|c| decode(c, "X509Certificate").map(CertificateDer::from))
        .collect::<Result<_, _>>()?;
    let (signer, intermediates) = chain
        .split_first()
        .ok_or_else(|| malformed("no certificate"))?;
    let anchors = trust_anchors
        .iter()
        .map(|ca| {
            webpki::anchor_from_trusted_cert(ca).map_err(|_| {
                VerifyError::UntrustedSigner("a trusted CA certificate cannot be read".into())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signer_der = signer.clone().into_owned();
    let signer = webpki::EndEntityCert::try_from(signer)
        .map_err(|_| VerifyError::UntrustedSigner("its certificate cannot be read".into()))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.timestamp().max(0) as u64));
    signer
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            time,
            webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
            None,
            None,
        )
        .map_err(untrusted)?;
    check_value(parsed, &signer, info)?;
    Ok(signer_der)
}

/// The signature value over `info`, by `signer`'s key.
fn check_value(
    parsed: &Parsed,
    signer: &webpki::EndEntityCert<'_>,
    info: &str,
) -> Result<(), VerifyError> {
    let algorithm = parsed.algorithm.as_deref().unwrap_or_default();
    let value = decode(
        parsed.signature_value.as_deref().unwrap_or_default(),
        "SignatureValue",
    )?;
    let verified = match algorithm {
        RSA_SHA256 => signer.verify_signature(
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            info.as_bytes(),
            &value,
        ),
        ECDSA_SHA256 => signer.verify_signature(
            webpki::aws_lc_rs::ECDSA_P256_SHA256,
            info.as_bytes(),
            &ecdsa_fixed_to_der(&value)?,
        ),
        other => {
            return Err(malformed(format!(
                "unsupported signature algorithm {other}"
            )));
        }
    };
    verified.map_err(|_| VerifyError::SignatureValue)
}
