//! Signing keys in a PKCS#11 token (issue 27): `signing.key_file` (and
//! `transparency.key_file`) may be an RFC 7512 URI (`uri.rs`),
//!
//! ```text
//! pkcs11:token=stelselnode;object=lijsten-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/stelselnode/pin
//! ```
//!
//! The private key never leaves the token: ECDSA P-256 signs the SHA-256 digest (`CKM_ECDSA`,
//! r ‖ s as XML Signature 1.1 writes it), RSA signs with `CKM_SHA256_RSA_PKCS`, Ed25519 (the
//! transparency log's checkpoints) with `CKM_EDDSA`.
//!
//! Concurrency and failure: sessions are pooled (one per concurrent signature); a failed
//! operation closes every session, and the next signature opens the token again — logs in,
//! finds the key — so a token that comes back is used without a restart. Each signature runs
//! on a thread of its own and is given up on after a timeout, so a token that hangs costs a
//! publication, not the node; while such a call has not returned no other is made. The
//! module is initialised once per process and never finalised (a second key of the same
//! module, during a key rollover, shares it).

mod uri;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as TokenError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use sha2::Digest;

use super::SigningError;

pub use uri::{PIN_VARIABLE, TokenUri};

/// The kind of key in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAlgorithm {
    EcdsaP256,
    Rsa,
    /// For the transparency log's checkpoints (C2SP signed-note), not for lists.
    Ed25519,
}

/// The token, logged in, with the key found and idle sessions.
struct Opened {
    context: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    algorithm: TokenAlgorithm,
    idle: Vec<Session>,
}

/// A private key in a PKCS#11 token.
pub struct TokenKey {
    token: Arc<Token>,
    /// How long a signature may take before it is given up on.
    timeout: Duration,
}

/// The token as signatures share it, also with a call that outlived its timeout.
struct Token {
    uri: TokenUri,
    algorithm: TokenAlgorithm,
    opened: Mutex<Option<Opened>>,
    /// Why the last signature failed, until one succeeds.
    trouble: Mutex<Option<String>>,
    /// Calls given up on that have not returned yet: while one hangs, no other is made (one
    /// thread waits on the token, not one per retry).
    hanging: AtomicUsize,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("uri", &self.token.uri)
            .field("algorithm", &self.token.algorithm)
            .finish_non_exhaustive()
    }
}

/// A token error in words, naming the operation, never a PIN.
fn token_error(what: &str) -> impl Fn(TokenError) -> SigningError + '_ {
    move |e| SigningError::Key(format!("PKCS#11 token: {what}: {e}"))
}

impl TokenKey {
    /// Opens the key `uri` names: loads the module, logs in, finds the key. A signature that
    /// takes longer than `timeout` is given up on.
    pub fn open(uri: TokenUri, timeout: Duration) -> Result<Self, SigningError> {
        let opened = open(&uri)?;
        Ok(Self {
            token: Arc::new(Token {
                algorithm: opened.algorithm,
                uri,
                opened: Mutex::new(Some(opened)),
                trouble: Mutex::new(None),
                hanging: AtomicUsize::new(0),
            }),
            timeout,
        })
    }

    /// Why the last signature failed, while no later one succeeded (for readiness and
    /// `stelselnode_signing_token_failing`).
    pub fn trouble(&self) -> Option<String> {
        self.token.trouble.lock().expect("token lock").clone()
    }

    /// Signs `message`, remembering whether the token could. The call runs on a thread of
    /// its own: a token that hangs (a network HSM that stops answering) costs this signature
    /// after `timeout`, not the publication forever.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let token = &self.token;
        let signed = match token.hanging.load(Ordering::Acquire) {
            0 => self.sign_within_timeout(message),
            _ => Err(SigningError::Key(format!(
                "PKCS#11 token: an earlier call has not returned after {} s",
                self.timeout.as_secs()
            ))),
        };
        *token.trouble.lock().expect("token lock") = signed.as_ref().err().map(|e| e.to_string());
        signed
    }

    fn sign_within_timeout(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        const RUNNING: u8 = 0;
        const DONE: u8 = 1;
        const ABANDONED: u8 = 2;
        let (token, message) = (self.token.clone(), message.to_vec());
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let call = state.clone();
        std::thread::Builder::new()
            .name("pkcs11-sign".into())
            .spawn(move || {
                let signed = token.sign_once(&message);
                let finished =
                    call.compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire);
                if finished.is_err() {
                    // Given up on: this call no longer hangs.
                    token.hanging.fetch_sub(1, Ordering::AcqRel);
                }
                let _ = answer.send(signed);
            })
            .map_err(|e| SigningError::Key(format!("no thread to sign on: {e}")))?;
        if let Ok(signed) = answered.recv_timeout(self.timeout) {
            return signed;
        }
        // Counted as hanging before it is marked abandoned, so the thread's count-out never
        // comes first; a call that finished meanwhile is taken after all.
        self.token.hanging.fetch_add(1, Ordering::AcqRel);
        let abandoned =
            state.compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
        if abandoned.is_err() {
            self.token.hanging.fetch_sub(1, Ordering::AcqRel);
            return answered
                .recv()
                .unwrap_or_else(|_| Err(SigningError::Key("the signing thread died".into())));
        }
        Err(SigningError::Key(format!(
            "PKCS#11 token: signing: no answer within {} s",
            self.timeout.as_secs()
        )))
    }

    pub fn algorithm(&self) -> TokenAlgorithm {
        self.token.algorithm
    }

    pub fn uri(&self) -> &TokenUri {
        &self.token.uri
    }

    /// See `Token::ed25519_public_key`.
    pub fn ed25519_public_key(&self) -> Result<[u8; 32], SigningError> {
        self.token.ed25519_public_key()
    }
}

impl Token {
    /// Signs `message` in the token: on a pooled session, the token opened again first if an
    /// earlier operation failed.
    fn sign_once(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let (session, key) = self.session()?;
        let signed = match self.algorithm {
            TokenAlgorithm::EcdsaP256 => {
                let digest = sha2::Sha256::digest(message);
                session.sign(&Mechanism::Ecdsa, key, &digest)
            }
            TokenAlgorithm::Rsa => session.sign(&Mechanism::Sha256RsaPkcs, key, message),
            TokenAlgorithm::Ed25519 => session.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                key,
                message,
            ),
        };
        let mut opened = self.opened.lock().expect("token lock");
        match signed {
            Ok(signature) => {
                if let Some(opened) = opened.as_mut() {
                    opened.idle.push(session);
                }
                Ok(signature)
            }
            Err(e) => {
                // Whatever went wrong (token removed, session closed, key gone), the next
                // signature starts from a fresh login.
                *opened = None;
                Err(token_error("signing")(e))
            }
        }
    }

    /// The public half of an Ed25519 key: the 32 bytes of the public key object with the
    /// private key's label and id (`CKA_EC_POINT`, DER OCTET STRING or raw).
    pub fn ed25519_public_key(&self) -> Result<[u8; 32], SigningError> {
        let (session, _) = self.session()?;
        let mut template = self.uri.key_template();
        template[0] = Attribute::Class(ObjectClass::PUBLIC_KEY);
        let found = session
            .find_objects(&template)
            .map_err(token_error("finding the public key"))?;
        let point = match found.first() {
            Some(public) => session
                .get_attributes(*public, &[AttributeType::EcPoint])
                .map_err(token_error("reading the public key"))?,
            None => Vec::new(),
        };
        if let Some(opened) = self.opened.lock().expect("token lock").as_mut() {
            opened.idle.push(session);
        }
        let bytes = match point.first() {
            Some(Attribute::EcPoint(bytes)) => bytes.as_slice(),
            _ => &[],
        };
        let raw = match bytes {
            [0x04, 32, rest @ ..] => rest,
            raw => raw,
        };
        <[u8; 32]>::try_from(raw).map_err(|_| {
            SigningError::Key(format!("{} has no Ed25519 public key beside it", self.uri))
        })
    }

    /// An idle session, or a new one of the token opened (again) if need be.
    fn session(&self) -> Result<(Session, ObjectHandle), SigningError> {
        let mut guard = self.opened.lock().expect("token lock");
        if guard.is_none() {
            let opened = open(&self.uri)?;
            if opened.algorithm != self.algorithm {
                return Err(SigningError::Key(format!(
                    "{} is now another kind of key",
                    self.uri
                )));
            }
            *guard = Some(opened);
        }
        let opened = guard.as_mut().expect("opened just now");
        let session = match opened.idle.pop() {
            Some(session) => session,
            None => opened
                .context
                .open_ro_session(opened.slot)
                .map_err(token_error("opening a session"))?,
        };
        Ok((session, opened.key))
    }
}

/// Loads the module (initialised once per process), finds the token, logs in and finds the
/// key.
fn open(uri: &TokenUri) -> Result<Opened, SigningError> {
    let context = Pkcs11::new(&uri.module_path).map_err(|e| {
        SigningError::Key(format!(
            "cannot load the PKCS#11 module {}: {e}",
            uri.module_path.display()
        ))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(TokenError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(token_error("initialising the module")(e)),
    }
    let slots = context
        .get_slots_with_token()
        .map_err(token_error("listing the slots"))?;
    let slot = slots
        .into_iter()
        .find(|slot| {
            uri.token.as_deref().is_none_or(|label| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label() == label)
            })
        })
        .ok_or_else(|| {
            SigningError::Key(format!(
                "no token {} is present",
                uri.token.as_deref().unwrap_or("")
            ))
        })?;
    let session = context
        .open_ro_session(slot)
        .map_err(token_error("opening a session"))?;
    match session.login(UserType::User, Some(&uri.pin()?)) {
        Ok(()) => {}
        // Logging in is per application: another key of this token logged in already.
        Err(TokenError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(token_error("logging in")(e)),
    }
    let keys = session
        .find_objects(&uri.key_template())
        .map_err(token_error("finding the key"))?;
    let [key] = keys[..] else {
        return Err(SigningError::Key(format!(
            "{uri} names {} private keys, not one",
            keys.len()
        )));
    };
    let algorithm = match session
        .get_attributes(key, &[AttributeType::KeyType])
        .map_err(token_error("reading the key type"))?
        .first()
    {
        Some(Attribute::KeyType(KeyType::EC)) => TokenAlgorithm::EcdsaP256,
        Some(Attribute::KeyType(KeyType::RSA)) => TokenAlgorithm::Rsa,
        Some(Attribute::KeyType(KeyType::EC_EDWARDS)) => TokenAlgorithm::Ed25519,
        _ => {
            return Err(SigningError::Key(format!(
                "{uri} is not an EC, Ed25519 or RSA key"
            )));
        }
    };
    Ok(Opened {
        context,
        slot,
        key,
        algorithm,
        idle: vec![session],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_never_shown() {
        let uri =
            TokenUri::parse("pkcs11:object=k?module-path=/m.so&pin-value=s3cret-7391").unwrap();
        for shown in [format!("{uri:?}"), uri.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        let error = TokenKey::open(uri, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }
}
