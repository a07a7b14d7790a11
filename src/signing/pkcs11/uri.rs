//! The RFC 7512 PKCS#11 URI naming a key in a token, as far as signing needs it: `token`
//! (label), `object` (label) and/or `id`, `module-path`, and where the user PIN comes from —
//! `pin-source` (a file, or a `file:` URI; read at every login so it can be replaced),
//! `pin-value` (tests), or else `STELSELNODE_PKCS11_PIN`. The PIN is never in Debug or
//! Display output, never in an error.

use std::path::PathBuf;

use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::types::AuthPin;

use crate::signing::SigningError;

/// The environment variable with the user PIN when the URI names no PIN.
pub const PIN_VARIABLE: &str = "STELSELNODE_PKCS11_PIN";

/// Where the PIN comes from.
#[derive(Clone, PartialEq, Eq)]
enum PinSource {
    File(PathBuf),
    Value(String),
    Environment,
}

/// A parsed RFC 7512 PKCS#11 URI, as far as signing needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenUri {
    pub(super) token: Option<String>,
    object: Option<String>,
    id: Option<Vec<u8>>,
    pub(super) module_path: PathBuf,
    pin: PinSource,
}

impl std::fmt::Debug for TokenUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the PIN, not even its value's length.
        f.debug_struct("TokenUri")
            .field("token", &self.token)
            .field("object", &self.object)
            .field("module_path", &self.module_path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for TokenUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pkcs11:token={};object={} ({})",
            self.token.as_deref().unwrap_or("*"),
            self.object.as_deref().unwrap_or("*"),
            self.module_path.display()
        )
    }
}

fn invalid(why: &str) -> SigningError {
    SigningError::Key(format!("the PKCS#11 URI {why}"))
}

/// RFC 3986 percent-decoding, as RFC 7512 requires for attribute values.
fn percent_decoded(text: &str) -> Result<Vec<u8>, SigningError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid("has a malformed %-escape"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn decoded_text(text: &str) -> Result<String, SigningError> {
    String::from_utf8(percent_decoded(text)?).map_err(|_| invalid("has a value that is not UTF-8"))
}

impl TokenUri {
    pub fn is_uri(text: &str) -> bool {
        text.starts_with("pkcs11:")
    }

    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| invalid("must start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut id) = (None, None, None);
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| invalid("has an attribute without a value"))?;
            match name {
                "token" => token = Some(decoded_text(value)?),
                "object" => object = Some(decoded_text(value)?),
                "id" => id = Some(percent_decoded(value)?),
                // Attributes that select nothing we need (manufacturer, serial, type, …).
                _ => {}
            }
        }
        let (mut module_path, mut pin) = (None, PinSource::Environment);
        for attribute in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| invalid("has a query attribute without a value"))?;
            match name {
                "module-path" => module_path = Some(PathBuf::from(decoded_text(value)?)),
                "pin-source" => {
                    let source = decoded_text(value)?;
                    let path = source.strip_prefix("file:").unwrap_or(&source);
                    pin = PinSource::File(PathBuf::from(path));
                }
                "pin-value" => pin = PinSource::Value(decoded_text(value)?),
                _ => {}
            }
        }
        if object.is_none() && id.is_none() {
            return Err(invalid("names no key (object= or id=)"));
        }
        Ok(Self {
            token,
            object,
            id,
            module_path: module_path.ok_or_else(|| invalid("has no module-path"))?,
            pin,
        })
    }

    pub(super) fn pin(&self) -> Result<AuthPin, SigningError> {
        let text = match &self.pin {
            PinSource::Value(value) => value.clone(),
            PinSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    SigningError::Key(format!(
                        "cannot read the PKCS#11 PIN from {}: {}",
                        path.display(),
                        e.kind()
                    ))
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            PinSource::Environment => std::env::var(PIN_VARIABLE).map_err(|_| {
                SigningError::Key(format!(
                    "the PKCS#11 URI names no PIN (pin-source, pin-value) and {PIN_VARIABLE} is not set"
                ))
            })?,
        };
        Ok(AuthPin::new(text.into()))
    }

    /// The private key's template.
    pub(super) fn key_template(&self) -> Vec<Attribute> {
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &self.object {
            template.push(Attribute::Label(label.clone().into_bytes()));
        }
        if let Some(id) = &self.id {
            template.push(Attribute::Id(id.clone()));
        }
        template
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_names_token_key_module_and_pin_source() {
        let uri = TokenUri::parse(
            "pkcs11:token=stelsel%20node;object=lijsten-2026;id=%01%02\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/stelselnode/pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("stelsel node"));
        assert_eq!(uri.object.as_deref(), Some("lijsten-2026"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(
            uri.module_path,
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert!(uri.pin == PinSource::File("/etc/stelselnode/pin".into()));
        let bare =
            TokenUri::parse("pkcs11:object=k?module-path=/m.so&pin-source=/run/pin").unwrap();
        assert!(bare.pin == PinSource::File("/run/pin".into()));
        let env = TokenUri::parse("pkcs11:object=k?module-path=/m.so").unwrap();
        assert!(env.pin == PinSource::Environment);
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "file:/k.pem",
            "pkcs11:token=t?module-path=/m.so",
            "pkcs11:object=k",
            "pkcs11:object=k%4?module-path=/m.so",
            "pkcs11:object?module-path=/m.so",
            "pkcs11:object=%ff%fe?module-path=/m.so",
        ] {
            assert!(TokenUri::parse(bad).is_err(), "{bad}");
        }
    }
}
