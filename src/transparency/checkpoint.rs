//! Checkpoints (issue 26): the log's size and root hash in the C2SP `tlog-checkpoint` text
//! (origin line, size, base64 root), signed as a C2SP `signed-note` with an Ed25519 key of the
//! log's own. The key file holds the note signer key as Go's `note` package and the C2SP
//! tools write it (`PRIVATE+KEY+<name>+<key id>+<base64 key>`); or `key_file` is a PKCS#11 URI
//! of an Ed25519 key in a token (issue 27), whose note name is the origin. Consumers are given
//! the matching verifier key (`<name>+<key id>+<base64 public key>`; `stelselnode log-key`
//! prints it). Ed25519 signatures are deterministic: a tree state always gets the same
//! checkpoint bytes, on every replica.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use signed_note::{Note, Signature};

use crate::signing::{TokenAlgorithm, TokenKey, TokenUri};

/// The first byte of a note key: the algorithm, Ed25519 (C2SP signed-note).
const ED25519: u8 = 1;

/// Where the Ed25519 key is.
enum NoteKey {
    File(aws_lc_rs::signature::Ed25519KeyPair),
    Token(TokenKey),
}

/// Signs checkpoints of one log.
pub struct CheckpointSigner {
    origin: String,
    /// The note signature's name and key id.
    name: String,
    id: u32,
    public: [u8; 32],
    key: NoteKey,
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
    #[error("the transparency log key: {0}")]
    Token(crate::signing::SigningError),
}

impl CheckpointSigner {
    /// The signer of `origin`'s checkpoints with the key `key_file` names: a note key file,
    /// or a PKCS#11 URI of an Ed25519 key (its note name: `origin`).
    /// A token's signature is given up on after `timeout`.
    pub fn load(
        origin: &str,
        key_file: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, CheckpointKeyError> {
        if origin.is_empty() || origin.chars().any(char::is_whitespace) {
            return Err(CheckpointKeyError::NoOrigin);
        }
        if TokenUri::is_uri(key_file) {
            return Self::in_token(origin, key_file, timeout);
        }
        let text =
            std::fs::read_to_string(key_file).map_err(|source| CheckpointKeyError::Read {
                file: key_file.to_owned(),
                source,
            })?;
        let malformed = || CheckpointKeyError::Malformed {
            file: key_file.to_owned(),
        };
        // PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>, as Go's note package writes it.
        let mut parts = text.trim().splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(_), Some(key)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        let key = BASE64.decode(key).map_err(|_| malformed())?;
        let Some((&ED25519, seed)) = key.split_first() else {
            return Err(malformed());
        };
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| malformed())?;
        let public =
            <[u8; 32]>::try_from(aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref())
                .map_err(|_| malformed())?;
        if !signed_note::is_key_name_valid(name) {
            return Err(malformed());
        }
        Ok(Self::with(origin, name, public, NoteKey::File(pair)))
    }

    fn in_token(
        origin: &str,
        uri: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, CheckpointKeyError> {
        let token = TokenUri::parse(uri)
            .and_then(|uri| TokenKey::open(uri, timeout))
            .map_err(CheckpointKeyError::Token)?;
        if token.algorithm() != TokenAlgorithm::Ed25519 {
            return Err(CheckpointKeyError::Token(
                crate::signing::SigningError::Key(format!("{} is not an Ed25519 key", token.uri())),
            ));
        }
        let public = token
            .ed25519_public_key()
            .map_err(CheckpointKeyError::Token)?;
        let signer = Self::with(origin, origin, public, NoteKey::Token(token));
        // The token signs, and with the key beside it.
        let probe = b"stelselnode: the log key signs";
        let signature = signer.signature(probe).map_err(CheckpointKeyError::Token)?;
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &public)
            .verify(probe, &signature)
            .map_err(|_| {
                CheckpointKeyError::Token(crate::signing::SigningError::Key(
                    "the token's Ed25519 signature does not verify with its public key".into(),
                ))
            })?;
        Ok(signer)
    }

    fn with(origin: &str, name: &str, public: [u8; 32], key: NoteKey) -> Self {
        let id = signed_note::key_id(name, &[&[ED25519][..], &public[..]].concat());
        Self {
            origin: origin.to_owned(),
            name: name.to_owned(),
            id,
            public,
            key,
        }
    }

    fn signature(&self, message: &[u8]) -> Result<Vec<u8>, crate::signing::SigningError> {
        match &self.key {
            NoteKey::File(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            NoteKey::Token(token) => token.sign(message),
        }
    }

    /// The signed checkpoint of a tree of `size` leaves with root hash `root` (a token can
    /// fail to sign).
    pub fn sign(&self, size: u64, root: [u8; 32]) -> Result<Vec<u8>, crate::signing::SigningError> {
        let text = format!("{}\n{size}\n{}\n", self.origin, BASE64.encode(root));
        let signature =
            Signature::new(self.name.clone(), self.id, self.signature(text.as_bytes())?)
                .expect("a valid key name");
        let note =
            Note::new(text.as_bytes(), &[signature]).expect("a checkpoint is a valid note text");
        Ok(note.to_bytes())
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key consumers are given: `<name>+<id>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let public = [&[ED25519][..], &self.public[..]].concat();
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(public))
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

    const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

    #[test]
    fn a_checkpoint_is_the_c2sp_text_with_one_signature_line() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, verifier) = generate_note_key("medmij.nl/stelselnode");
        let file = dir.path().join("log.key");
        std::fs::write(&file, &secret).unwrap();
        let signer =
            CheckpointSigner::load("medmij.nl/stelselnode", file.to_str().unwrap(), SECOND)
                .unwrap();
        assert_eq!(signer.verifier_key(), verifier);
        let note = String::from_utf8(signer.sign(3, [9; 32]).unwrap()).unwrap();
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
        assert_eq!(signer.sign(3, [9; 32]).unwrap(), note.as_bytes());
        std::fs::write(&file, "PRIVATE+KEY+garbage").unwrap();
        let refused = CheckpointSigner::load("o", file.to_str().unwrap(), SECOND)
            .err()
            .unwrap();
        assert!(!refused.to_string().contains("garbage"));
    }
}
