//! Detached signatures: accepted by the independent verifier (xmlsec1) and by our own, for
//! RSA-2048 and ECDSA P-256 signers; refused after a one-byte change.

use chrono::{Duration, Utc};

use stelselnode::devpki::{DevCa, KeyAlgorithm};
use stelselnode::domain::{ListKind, Tijdstempel, Volgnummer};
use stelselnode::signing::{VerifyError, VersionProperties, sign_version, verify_signature};

use super::support::official_example;
use super::support::signer::{signer, xmlsec1_verify};

fn properties(list: ListKind) -> VersionProperties {
    let now = Utc::now();
    VersionProperties {
        list,
        volgnummer: Volgnummer::new(7).unwrap(),
        tijdstempel: Tijdstempel::new(now),
        valid_from: Tijdstempel::new(now),
        expires_at: Tijdstempel::new(now + Duration::days(7)),
        grace_seconds: 3600,
        previous_sha256: Some("ab".repeat(32)),
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn check_both_verifiers(algorithm: KeyAlgorithm) {
    let signer = signer(algorithm);
    let list = std::fs::read(official_example(ListKind::Zal)).unwrap();
    let props = properties(ListKind::Zal);
    let signature = sign_version(&signer.key, &sha256(&list), &props).unwrap();
    let ca_pem = signer.ca.certificate_pem();

    xmlsec1_verify(ListKind::Zal, &list, &signature, &ca_pem)
        .unwrap_or_else(|e| panic!("xmlsec1 refused a good signature: {e}"));
    let check = verify_signature(
        &signature,
        &list,
        &[signer.ca.certificate().clone()],
        Utc::now(),
    )
    .unwrap();
    assert_eq!(check.properties, props);

    // One byte of the list changed.
    let mut tampered = list.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    assert!(xmlsec1_verify(ListKind::Zal, &tampered, &signature, &ca_pem).is_err());
    assert_eq!(
        verify_signature(
            &signature,
            &tampered,
            &[signer.ca.certificate().clone()],
            Utc::now()
        )
        .unwrap_err(),
        VerifyError::ListDigest
    );

    // One byte of the properties changed: the Volgnummer 7 becomes 8.
    let text = String::from_utf8(signature.clone()).unwrap();
    let forged = text.replacen(
        "<Volgnummer>7</Volgnummer>",
        "<Volgnummer>8</Volgnummer>",
        1,
    );
    assert_ne!(forged, text);
    assert!(xmlsec1_verify(ListKind::Zal, &list, forged.as_bytes(), &ca_pem).is_err());
    assert_eq!(
        verify_signature(
            forged.as_bytes(),
            &list,
            &[signer.ca.certificate().clone()],
            Utc::now()
        )
        .unwrap_err(),
        VerifyError::PropertiesDigest
    );

    // A signer from another CA.
    let other = DevCa::new("Other CA").unwrap();
    assert!(xmlsec1_verify(ListKind::Zal, &list, &signature, &other.certificate_pem()).is_err());
    assert!(matches!(
        verify_signature(
            &signature,
            &list,
            &[other.certificate().clone()],
            Utc::now()
        ),
        Err(VerifyError::UntrustedSigner(_))
    ));
}

#[test]
fn rsa_2048_signatures_verify_and_tampering_is_detected() {
    check_both_verifiers(KeyAlgorithm::Rsa2048);
}

#[test]
fn ecdsa_p256_signatures_verify_and_tampering_is_detected() {
    check_both_verifiers(KeyAlgorithm::EcdsaP256);
}
