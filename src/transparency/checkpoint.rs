//! Checkpoints (issue 26): the log's size and root hash in the C2SP `tlog-checkpoint` text
//! (origin line, size, base64 root), signed as a C2SP `signed-note` with an Ed25519 key of the
//! log's own. The key file holds the note signer key as Go's `note` package and the C2SP
//! tools write it (`PRIVATE+KEY+<name>+<key id>+<base64 key>`); consumers are given the
//! matching verifier key (`<name>+<key id>+<base64 public key>`). Ed25519 signatures are
//! deterministic: a tree state always gets the same checkpoint bytes, on every replica.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use signed_note::{Note, Signer, StandardSigner};

/// The first byte of a note key: the algorithm, Ed25519 (C2SP signed-note).
const ED25519: u8 = 1;

/// Signs checkpoints of one log.
pub struct CheckpointSigner {
    origin: String,
    signer: StandardSigner,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointKeyError {
    #[error("cannot read the transparency log key {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// Never the key's text: it is secret.
    #[error("the transparency log key {file} is not a signed-note Ed25519 signer key")]
    Malformed { file: String },
    #[error("transparency.origin must be set (a name without spaces, e.g. medmij.nl/stelselnode)")]
    NoOrigin,
}

impl CheckpointSigner {
    /// The signer of `origin`'s checkpoints with the key in `key_file`.
    pub fn load(origin: &str, key_file: &str) -> Result<Self, CheckpointKeyError> {
        if origin.is_empty() || origin.chars().any(char::is_whitespace) {
            return Err(CheckpointKeyError::NoOrigin);
        }
        let text =
            std::fs::read_to_string(key_file).map_err(|source| CheckpointKeyError::Read {
                file: key_file.to_owned(),
                source,
            })?;
        let signer =
            StandardSigner::new(text.trim()).map_err(|_| CheckpointKeyError::Malformed {
                file: key_file.to_owned(),
            })?;
        Ok(Self {
            origin: origin.to_owned(),
            signer,
        })
    }

    /// The signed checkpoint of a tree of `size` leaves with root hash `root`.
    pub fn sign(&self, size: u64, root: [u8; 32]) -> Vec<u8> {
        let text = format!("{}\n{size}\n{}\n", self.origin, BASE64.encode(root));
        let mut note = Note::new(text.as_bytes(), &[]).expect("a checkpoint is a valid note text");
        note.add_sigs(&[&self.signer as &dyn Signer])
            .expect("an Ed25519 signature over a checkpoint cannot fail");
        note.to_bytes()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// A new Ed25519 note key pair for a log named `name`: the signer key (secret, for the node's
/// key file) and the verifier key (public, for consumers). For `stelselnode dev` and tests.
pub fn generate_note_key(name: &str) -> (String, String) {
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed).expect("the system's random source works");
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .expect("any 32 bytes are an Ed25519 seed");
    let public = [
        &[ED25519][..],
        aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref(),
    ]
    .concat();
    let id = signed_note::key_id(name, &public);
    let private = [&[ED25519][..], &seed[..]].concat();
    (
        format!("PRIVATE+KEY+{name}+{id:08x}+{}", BASE64.encode(private)),
        format!("{name}+{id:08x}+{}", BASE64.encode(public)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_the_c2sp_text_with_one_signature_line() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, verifier) = generate_note_key("medmij.nl/stelselnode");
        let file = dir.path().join("log.key");
        std::fs::write(&file, &secret).unwrap();
        let signer =
            CheckpointSigner::load("medmij.nl/stelselnode", file.to_str().unwrap()).unwrap();
        let note = String::from_utf8(signer.sign(3, [9; 32])).unwrap();
        let (text, signatures) = note.split_once("\n\n").unwrap();
        assert_eq!(
            text,
            format!("medmij.nl/stelselnode\n3\n{}", BASE64.encode([9; 32]))
        );
        assert!(signatures.starts_with("— medmij.nl/stelselnode "));
        assert_eq!(signatures.lines().count(), 1);
        // The verifier key verifies it (signed_note's own check; the integration tests check
        // with another Ed25519 implementation).
        let verifier = signed_note::StandardVerifier::new(&verifier).unwrap();
        let verifiers = signed_note::VerifierList::new(vec![Box::new(verifier)]);
        Note::from_bytes(note.as_bytes())
            .unwrap()
            .verify(&verifiers)
            .unwrap();
        // Deterministic: the same tree, the same bytes.
        assert_eq!(signer.sign(3, [9; 32]), note.as_bytes());
        std::fs::write(&file, "PRIVATE+KEY+garbage").unwrap();
        let refused = CheckpointSigner::load("o", file.to_str().unwrap())
            .err()
            .unwrap();
        assert!(!refused.to_string().contains("garbage"));
    }
}
