//! A signing key and certificate made for a test, and the independent signature verifier
//! (Debian's xmlsec1; scripts/test installs it).

use std::process::Command;

use stelselnode::devpki::{DevCa, KeyAlgorithm, Purpose};
use stelselnode::domain::ListKind;
use stelselnode::signing::{SigningKey, list_uri};

pub struct Signer {
    pub ca: DevCa,
    pub key: SigningKey,
    pub certificate: rustls_pki_types::CertificateDer<'static>,
    /// The same key and certificate as PEM, for a configuration to name.
    pub key_pem: String,
    pub certificate_pem: String,
}

pub fn signer(algorithm: KeyAlgorithm) -> Signer {
    let ca = DevCa::new("Stelselnode Test CA").unwrap();
    let issued = ca
        .issue(
            &Purpose::Signing {
                common_name: "stelselnode signer".into(),
            },
            algorithm,
        )
        .unwrap();
    let key = SigningKey::from_der(
        issued.key_der.secret_pkcs8_der(),
        vec![issued.certificate.clone()],
    )
    .unwrap();
    Signer {
        ca,
        key,
        certificate: issued.certificate,
        key_pem: issued.key_pem,
        certificate_pem: issued.certificate_pem,
    }
}

/// Runs `xmlsec1 --verify` with the list stored under Reference 1's URI next to the signature.
pub fn xmlsec1_verify(
    list: ListKind,
    list_bytes: &[u8],
    signature: &[u8],
    ca_pem: &str,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(list_uri(list)), list_bytes).unwrap();
    std::fs::write(dir.path().join("signature.xml"), signature).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
    let output = Command::new("xmlsec1")
        .current_dir(dir.path())
        .args(["--verify", "--trusted-pem", "ca.pem", "signature.xml"])
        .output()
        .expect("xmlsec1 must be installed (scripts/test installs it)");
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}
