//! The signature document. SignedInfo and the properties Object are emitted directly in
//! exclusive XML canonical form (no whitespace between elements, empty elements as start/end
//! pairs, the namespace declared on the first element that uses it), so the bytes we digest
//! and sign are the bytes in the document.
//!
//! Reference 1 is the detached list document: its exact bytes, no transforms. Reference 2 is
//! the `Object` with the version's properties, exclusive-C14N transformed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::{SigningError, SigningKey};
use crate::domain::{ListKind, Tijdstempel, Volgnummer};

pub(super) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(super) const PROPERTIES_NS: &str = "urn:medmij:stelselnode:versie:1";
pub(super) const PROPERTIES_ID: &str = "versie";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// What Reference 2 signs about a version, beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProperties {
    pub list: ListKind,
    pub volgnummer: Volgnummer,
    pub tijdstempel: Tijdstempel,
    pub valid_from: Tijdstempel,
    pub expires_at: Tijdstempel,
    pub grace_seconds: u64,
    /// SHA-256 (hex) of the list's previous version: the hash chain.
    pub previous_sha256: Option<String>,
}

/// The canonical `Object` element holding the properties.
pub(super) fn properties_object(p: &VersionProperties) -> String {
    let mut out = format!(
        "<Object xmlns=\"{DSIG_NS}\" Id=\"{PROPERTIES_ID}\"><Versie xmlns=\"{PROPERTIES_NS}\">\
         <Lijst>{}</Lijst><Volgnummer>{}</Volgnummer><Tijdstempel>{}</Tijdstempel>\
         <GeldigVanaf>{}</GeldigVanaf><GeldigTot>{}</GeldigTot><GraceSeconden>{}</GraceSeconden>",
        p.list,
        p.volgnummer,
        p.tijdstempel.to_xml(),
        p.valid_from.to_xml(),
        p.expires_at.to_xml(),
        p.grace_seconds,
    );
    if let Some(previous) = &p.previous_sha256 {
        out.push_str(&format!("<VorigeSha256>{previous}</VorigeSha256>"));
    }
    out.push_str("</Versie></Object>");
    out
}

/// The canonical `SignedInfo` over the two digests.
pub(super) fn signed_info(
    algorithm: &str,
    list_uri: &str,
    list_digest: &[u8],
    properties_digest: &[u8],
) -> String {
    format!(
        "<SignedInfo xmlns=\"{DSIG_NS}\">\
         <CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></CanonicalizationMethod>\
         <SignatureMethod Algorithm=\"{algorithm}\"></SignatureMethod>\
         <Reference URI=\"{list_uri}\"><DigestMethod Algorithm=\"{SHA256}\"></DigestMethod>\
         <DigestValue>{}</DigestValue></Reference>\
         <Reference URI=\"#{PROPERTIES_ID}\"><Transforms><Transform Algorithm=\"{EXC_C14N}\"></Transform></Transforms>\
         <DigestMethod Algorithm=\"{SHA256}\"></DigestMethod><DigestValue>{}</DigestValue></Reference>\
         </SignedInfo>",
        BASE64.encode(list_digest),
        BASE64.encode(properties_digest),
    )
}

/// The file name a consumer stores the list under, next to the signature: Reference 1's URI.
pub fn list_uri(list: ListKind) -> &'static str {
    match list {
        ListKind::Zal => "MedMij_Zorgaanbiederslijst.xml",
        ListKind::Ocl => "MedMij_OAuthclientlist.xml",
        ListKind::Gnl => "MedMij_Gegevensdienstnamenlijst.xml",
        ListKind::Whitelist => "MedMij_Whitelist.xml",
    }
}

/// Signs one version: `list_digest` is the SHA-256 of its exact published bytes.
pub fn sign_version(
    key: &SigningKey,
    list_digest: &[u8; 32],
    properties: &VersionProperties,
) -> Result<Vec<u8>, SigningError> {
    let object = properties_object(properties);
    let info = signed_info(
        key.algorithm(),
        list_uri(properties.list),
        list_digest,
        &Sha256::digest(object.as_bytes()),
    );
    signature_document(key, &info, &object)
}

/// The canonical `SignedInfo` of a detached signature over one document named `uri`.
pub(super) fn signed_info_detached(algorithm: &str, uri: &str, digest: &[u8]) -> String {
    format!(
        "<SignedInfo xmlns=\"{DSIG_NS}\">\
         <CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></CanonicalizationMethod>\
         <SignatureMethod Algorithm=\"{algorithm}\"></SignatureMethod>\
         <Reference URI=\"{uri}\"><DigestMethod Algorithm=\"{SHA256}\"></DigestMethod>\
         <DigestValue>{}</DigestValue></Reference></SignedInfo>",
        BASE64.encode(digest),
    )
}

/// Signs the document named `uri` (e.g. an archive bundle's `MANIFEST`) whose SHA-256 is
/// `digest`: the same format as a version's signature, with one Reference and no properties,
/// so `xmlsec1 --verify` checks it next to the document.
pub fn sign_detached(
    key: &SigningKey,
    uri: &str,
    digest: &[u8; 32],
) -> Result<Vec<u8>, SigningError> {
    let info = signed_info_detached(key.algorithm(), uri, digest);
    signature_document(key, &info, "")
}

/// `<Signature>` around a canonical SignedInfo: its value, the signer's chain, and `object`.
fn signature_document(key: &SigningKey, info: &str, object: &str) -> Result<Vec<u8>, SigningError> {
    let signature = key.sign(info.as_bytes())?;
    Ok(signature_document_of(info, &signature, key.chain(), object).into_bytes())
}

/// The signature document with these parts, byte for byte as this node writes it: the
/// verifier of a detached signature rebuilds it to require exactly that form.
pub(super) fn signature_document_of(
    info: &str,
    signature_value: &[u8],
    chain: &[CertificateDer<'_>],
    object: &str,
) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<Signature xmlns=\"{DSIG_NS}\">"));
    out.push_str(info);
    out.push_str("<SignatureValue>");
    out.push_str(&BASE64.encode(signature_value));
    out.push_str("</SignatureValue><KeyInfo><X509Data>");
    for cert in chain {
        out.push_str("<X509Certificate>");
        out.push_str(&BASE64.encode(cert.as_ref()));
        out.push_str("</X509Certificate>");
    }
    out.push_str("</X509Data></KeyInfo>");
    out.push_str(object);
    out.push_str("</Signature>\n");
    out
}
