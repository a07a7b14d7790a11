//! A witness's verifier key and its cosignatures on our checkpoints (C2SP tlog-witness,
//! issue 26). Two kinds exist, told apart by the key's type byte:
//!
//! - `0x04`, C2SP `tlog-cosignature/v1`: the signature is an 8-byte big-endian timestamp and
//!   the Ed25519 signature of `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint
//!   text (what current witnesses such as litewitness sign);
//! - `0x01`, a plain Ed25519 signed-note signature of the checkpoint text (what `siglog`'s
//!   witness signs; also older witnesses).
//!
//! Either way the key id is the first four bytes of SHA-256(name ‖ `\n` ‖ type ‖ key), as
//! C2SP signed-note recommends and both specifications require. Ed25519 by aws-lc-rs.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

const NOTE_ED25519: u8 = 0x01;
const COSIGNATURE_V1: u8 = 0x04;

/// A witness verifier key (`<name>+<id>+<base64(type ‖ public key)>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: u32,
    kind: u8,
    public: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a witness verifier key (<name>+<8 hex id>+<base64 of 0x04 or 0x01 and an Ed25519 key>): {0}"
)]
pub struct WitnessKeyError(&'static str);

impl WitnessKey {
    pub fn parse(vkey: &str) -> Result<Self, WitnessKeyError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(WitnessKeyError("three parts joined by +"));
        };
        if !signed_note::is_key_name_valid(name) {
            return Err(WitnessKeyError("the name"));
        }
        let id = (id.len() == 8)
            .then(|| u32::from_str_radix(id, 16).ok())
            .flatten()
            .ok_or(WitnessKeyError("the id"))?;
        let key = BASE64.decode(key).map_err(|_| WitnessKeyError("base64"))?;
        let Some((&kind @ (NOTE_ED25519 | COSIGNATURE_V1), public)) = key.split_first() else {
            return Err(WitnessKeyError("the key type"));
        };
        let public = <[u8; 32]>::try_from(public).map_err(|_| WitnessKeyError("the key size"))?;
        if signed_note::key_id(name, &key) != id {
            return Err(WitnessKeyError("the id does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            kind,
            public,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl signed_note::Verifier for WitnessKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let key = UnparsedPublicKey::new(&ED25519, &self.public);
        match self.kind {
            COSIGNATURE_V1 => {
                let Some((time, signature)) = sig.split_first_chunk::<8>() else {
                    return false;
                };
                let mut signed =
                    format!("cosignature/v1\ntime {}\n", u64::from_be_bytes(*time)).into_bytes();
                signed.extend_from_slice(msg);
                key.verify(&signed, signature).is_ok()
            }
            _ => key.verify(msg, sig).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use signed_note::Verifier;

    use super::*;

    /// A key of `kind` as the specifications define its verifier key, and the pair.
    fn key(name: &str, kind: u8) -> (String, Ed25519KeyPair) {
        let pair = Ed25519KeyPair::generate().unwrap();
        let typed = [&[kind], pair.public_key().as_ref()].concat();
        let id = signed_note::key_id(name, &typed);
        (format!("{name}+{id:08x}+{}", BASE64.encode(typed)), pair)
    }

    const TEXT: &[u8] = b"example.com/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

    #[test]
    fn a_cosignature_v1_verifies_as_the_specification_builds_it() {
        let (vkey, pair) = key("witness.example", COSIGNATURE_V1);
        let witness = WitnessKey::parse(&vkey).unwrap();
        let time: u64 = 1_764_874_800;
        let mut signed = format!("cosignature/v1\ntime {time}\n").into_bytes();
        signed.extend_from_slice(TEXT);
        let signature = [&time.to_be_bytes()[..], pair.sign(&signed).as_ref()].concat();
        assert!(witness.verify(TEXT, &signature));
        let mut other_time = signature.clone();
        other_time[7] ^= 1;
        assert!(!witness.verify(TEXT, &other_time));
        assert!(!witness.verify(b"example.com/log\n8\n", &signature));
        assert!(!witness.verify(TEXT, &signature[..40]));
        // A plain signature of the text is not a cosignature/v1.
        assert!(!witness.verify(TEXT, pair.sign(TEXT).as_ref()));
    }

    #[test]
    fn a_note_signature_verifies_with_a_type_1_key() {
        let (vkey, pair) = key("witness.example", NOTE_ED25519);
        let witness = WitnessKey::parse(&vkey).unwrap();
        assert!(witness.verify(TEXT, pair.sign(TEXT).as_ref()));
        assert!(!witness.verify(b"other", pair.sign(TEXT).as_ref()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let (vkey, _) = key("witness.example", COSIGNATURE_V1);
        let (name, rest) = vkey.split_once('+').unwrap();
        let (id, key) = rest.split_once('+').unwrap();
        for bad in [
            String::new(),
            format!("{name}+{id}"),
            format!("other.example+{id}+{key}"),
            format!("{name}+{}+{key}", "0".repeat(8)),
            format!("{name}+{id}+{}", BASE64.encode([0x02; 33])),
            format!("{name}+{id}+{}", BASE64.encode([0x04; 20])),
            format!("{name}+{id}+not base64!"),
            format!("with space+{id}+{key}"),
        ] {
            assert!(WitnessKey::parse(&bad).is_err(), "{bad}");
        }
    }
}
