//! The few X.509 fields the node reads itself (a subject's common name, a certificate's end
//! of validity): a minimal DER reader rather than a full X.509 parser dependency.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Reads one DER TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// The (last) commonName of an X.501 Name's contents (the RDNSequence without its outer
/// tag, as webpki hands it over).
pub fn common_name(mut rdns: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut found = None;
    while let Some((_, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut attributes = set;
        while let Some((_, attribute, rest)) = tlv(attributes) {
            attributes = rest;
            let Some((0x06, oid, value)) = tlv(attribute) else {
                continue;
            };
            if oid == CN
                && let Some((_, text, _)) = tlv(value)
            {
                found = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    found
}

/// The notAfter of a certificate (DER).
pub fn not_after(certificate: &[u8]) -> Option<DateTime<Utc>> {
    let (_, certificate, _) = tlv(certificate)?;
    let (_, tbs, _) = tlv(certificate)?;
    let mut rest = tbs;
    // [0] version is optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        rest = tlv(rest)?.2;
    }
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let text = text.strip_suffix('Z')?;
    let full = match tag {
        // UTCTime: YY 50..99 are 19YY (RFC 5280).
        0x17 => {
            let year: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if year >= 50 { "19" } else { "20" })
        }
        0x18 => text.to_owned(),
        _ => return None,
    };
    NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devpki::{DevCa, KeyAlgorithm, Purpose};

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let ca = DevCa::new("Test CA").unwrap();
        let issued = ca
            .issue(
                &Purpose::Signing {
                    common_name: "s".into(),
                },
                KeyAlgorithm::EcdsaP256,
            )
            .unwrap();
        let expiry = not_after(&issued.certificate).unwrap();
        // rcgen's default validity ends in 4096.
        assert_eq!(expiry.format("%Y").to_string(), "4096");
        assert!(not_after(b"\x30\x03\x02\x01\x00").is_none());
    }
}
