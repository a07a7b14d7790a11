//! The independent verifiers (Debian's xmllint), shared by the library's unit tests and the
//! integration tests. A missing tool fails the test; scripts/test installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The official schemas and examples (`../shared/conformance`).
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance")
}

/// Validates `document` with `xmllint --noout --schema` against the official XSD named
/// `schema_file`; `Err` carries xmllint's complaint.
pub fn xmllint_validate(document: &[u8], schema_file: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("list.xml");
    std::fs::write(&file, document).expect("write the document");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(conformance_dir().join("xsd").join(schema_file))
        .arg(&file)
        .output()
        .expect("xmllint must be installed (scripts/test installs libxml2-utils)");
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}
