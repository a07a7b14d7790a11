//! String value types of the four lists. Each type can only hold a value that obeys its XSD
//! facet (and the document rules of SPEC §3), so a list built from them renders valid XML.

use super::violation::{InvalidValue, Rule};

/// Declares a string newtype whose only constructor is `parse`, which runs `$check` (returning
/// the normalised value). Serde goes through the same constructor, so a value read back from
/// storage is checked like any other input.
macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, $crate::domain::InvalidValue> {
                let check: fn(String) -> Result<String, $crate::domain::InvalidValue> = $check;
                check(value.into()).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use string_value;

/// Whether a text value may contain single inner spaces (display names) or none (identifiers).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum InnerSpaces {
    Allowed,
    Forbidden,
}

/// Characters that change how text around them shows, or show as nothing: bidirectional
/// embeddings, overrides, isolates and marks, and zero-width characters. A name or reason
/// holding them reads as something else in a list, a log or a browser.
pub fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The document rules every text value obeys: no surrounding whitespace, no control
/// characters, no bidirectional controls or zero-width characters, only characters XML 1.0
/// can carry, and a length in characters (as XSD counts) within bounds.
pub(crate) fn check_text(
    value: &str,
    min: usize,
    max: usize,
    inner_spaces: InnerSpaces,
) -> Result<(), InvalidValue> {
    // Nearly every value is plain ASCII: accept it in one pass over its bytes (the profile of
    // a publication showed these checks at a sixth of the time). Without control characters
    // the only ASCII whitespace is the space, and every character is one byte. Anything else,
    // and every refusal with its reason, goes the general way.
    if value.is_ascii() {
        let bytes = value.as_bytes();
        let plain = !bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
            && bytes.first() != Some(&b' ')
            && bytes.last() != Some(&b' ')
            && (inner_spaces == InnerSpaces::Allowed || !bytes.contains(&b' '))
            && (min..=max).contains(&bytes.len());
        if plain {
            return Ok(());
        }
    }
    check_text_general(value, min, max, inner_spaces)
}

/// `check_text` for any text, with the reason of a refusal.
fn check_text_general(
    value: &str,
    min: usize,
    max: usize,
    inner_spaces: InnerSpaces,
) -> Result<(), InvalidValue> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    {
        return Err(InvalidValue::new(
            Rule::Whitespace,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    if let Some(c) = value.chars().find(|&c| is_deceptive(c)) {
        return Err(InvalidValue::new(
            Rule::Character,
            format!(
                "contains U+{:04X}, a bidirectional control or zero-width character",
                c as u32
            ),
        ));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(InvalidValue::new(
            Rule::Whitespace,
            "must not begin or end with whitespace",
        ));
    }
    if inner_spaces == InnerSpaces::Forbidden && value.contains(char::is_whitespace) {
        return Err(InvalidValue::new(
            Rule::Whitespace,
            "must not contain whitespace",
        ));
    }
    let length = value.chars().count();
    if length < min || length > max {
        return Err(InvalidValue::new(
            Rule::Length,
            format!("must be {min} to {max} characters long, is {length}"),
        ));
    }
    Ok(())
}

/// Text normalised to NFC, so that what looks the same is stored, compared and counted the
/// same.
pub(crate) fn nfc(value: String) -> String {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    match is_nfc_quick(value.chars()) {
        IsNormalized::Yes => value,
        _ => value.nfc().collect(),
    }
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $min:literal ..= $max:literal, $spaces:expr) => {
        string_value!($(#[$doc])* $name, |value| {
            let value = nfc(value);
            check_text(&value, $min, $max, $spaces).map(|()| value)
        });
    };
}

bounded_text!(
    /// `GegevensdienstId` (ZAL and GNL): 1–30 characters.
    GegevensdienstId, 1..=30, InnerSpaces::Forbidden
);
bounded_text!(
    /// `Systeemrolcode` (ZAL): 1–30 characters.
    Systeemrolcode, 1..=30, InnerSpaces::Forbidden
);
bounded_text!(
    /// `Weergavenaam` (GNL): the display name of a Gegevensdienst, 3–50 characters.
    Weergavenaam, 3..=50, InnerSpaces::Allowed
);
bounded_text!(
    /// `OAuthclientOrganisatienaam` (OCL): 3–50 characters.
    OAuthclientOrganisatienaam, 3..=50, InnerSpaces::Allowed
);
bounded_text!(
    /// The interface version an entry belongs to (not in release2 XML; used for the release
    /// clean-up of seed 001). Our own bound: 1–30 characters, no whitespace.
    Interfaceversie, 1..=30, InnerSpaces::Forbidden
);

bounded_text!(
    /// The deelnemer on whose behalf a mutation is requested (not in any list; our bound).
    Deelnemer, 2..=100, InnerSpaces::Allowed
);
bounded_text!(
    /// The MedMij-loket ticket a mutation belongs to (not in any list; our bound).
    Ticketreferentie, 1..=64, InnerSpaces::Forbidden
);
bounded_text!(
    /// Why beheer rejects a mutation: for people, so bounded and never empty.
    Reden, 1..=500, InnerSpaces::Allowed
);

string_value!(
    /// `Zorgaanbiedernaam` (ZAL): `([a-z])+@medmij`, 10–57 characters.
    Zorgaanbiedernaam,
    |value| {
        check_text(&value, 10, 57, InnerSpaces::Forbidden)?;
        let letters = value.strip_suffix("@medmij").ok_or_else(|| {
            InvalidValue::new(Rule::Pattern, "must end with \"@medmij\"")
        })?;
        if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(InvalidValue::new(
                Rule::Pattern,
                "must be lowercase letters a-z followed by \"@medmij\"",
            ));
        }
        Ok(value)
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name_of(letters: usize) -> String {
        format!("{}@medmij", "a".repeat(letters))
    }

    #[test]
    fn zorgaanbiedernaam_length_boundaries() {
        // "@medmij" is 7 characters: 10 characters means 3 letters, 57 means 50.
        assert_eq!(
            Zorgaanbiedernaam::parse(name_of(2)).unwrap_err().rule,
            Rule::Length
        );
        assert!(Zorgaanbiedernaam::parse(name_of(3)).is_ok());
        assert!(Zorgaanbiedernaam::parse(name_of(50)).is_ok());
        assert_eq!(
            Zorgaanbiedernaam::parse(name_of(51)).unwrap_err().rule,
            Rule::Length
        );
    }

    #[test]
    fn zorgaanbiedernaam_pattern() {
        for bad in [
            "Umcharderwijk@medmij",
            "umc2harderwijk@medmij",
            "umcharderwijk@medmij.nl",
            "umc-harderwijk@medmij",
            "umcharderwijk@MedMij",
        ] {
            assert_eq!(
                Zorgaanbiedernaam::parse(bad).unwrap_err().rule,
                Rule::Pattern,
                "{bad}"
            );
        }
        assert_eq!(
            Zorgaanbiedernaam::parse(" umcharderwijk@medmij")
                .unwrap_err()
                .rule,
            Rule::Whitespace
        );
        assert_eq!(
            Zorgaanbiedernaam::parse("umcharderwijk@medmij\n")
                .unwrap_err()
                .rule,
            Rule::Whitespace
        );
        assert_eq!(
            Zorgaanbiedernaam::parse("umcharderwijk@medmij")
                .unwrap()
                .as_str(),
            "umcharderwijk@medmij"
        );
    }

    #[test]
    fn id_and_code_bounds() {
        assert_eq!(GegevensdienstId::parse("").unwrap_err().rule, Rule::Length);
        assert!(GegevensdienstId::parse("1").is_ok());
        assert!(GegevensdienstId::parse("x".repeat(30)).is_ok());
        assert_eq!(
            GegevensdienstId::parse("x".repeat(31)).unwrap_err().rule,
            Rule::Length
        );
        assert_eq!(
            Systeemrolcode::parse("LAB 1").unwrap_err().rule,
            Rule::Whitespace
        );
        assert!(Systeemrolcode::parse("LAB-1.0.0-LRB-FHIR").is_ok());
    }

    #[test]
    fn display_names_allow_inner_spaces_but_not_padding() {
        assert!(Weergavenaam::parse("Basisgegevens Zorg").is_ok());
        assert_eq!(Weergavenaam::parse("ab").unwrap_err().rule, Rule::Length);
        assert!(Weergavenaam::parse("abc").is_ok());
        assert!(
            Weergavenaam::parse("é".repeat(50)).is_ok(),
            "length counts characters, not bytes"
        );
        assert_eq!(
            Weergavenaam::parse("é".repeat(51)).unwrap_err().rule,
            Rule::Length
        );
        assert_eq!(
            Weergavenaam::parse("Basis\tZorg").unwrap_err().rule,
            Rule::Whitespace
        );
        assert_eq!(
            OAuthclientOrganisatienaam::parse("De PGO ")
                .unwrap_err()
                .rule,
            Rule::Whitespace
        );
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let err = serde_json::from_str::<Zorgaanbiedernaam>("\"NOPE@medmij\"").unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        let ok: Zorgaanbiedernaam = serde_json::from_str("\"abcdefg@medmij\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"abcdefg@medmij\"");
    }

    #[test]
    fn free_text_is_nfc_and_holds_nothing_that_shows_as_something_else() {
        // "é" as e + combining acute becomes the one precomposed character.
        let decomposed = "Cafe\u{0301} Gezond";
        assert_eq!(
            Deelnemer::parse(decomposed).unwrap().as_str(),
            "Café Gezond"
        );
        for deceptive in [
            "Ziekenhuis \u{202E}tset",
            "Zieken\u{200B}huis",
            "PGO\u{2066}x\u{2069}",
            "\u{FEFF}Een PGO",
        ] {
            assert_eq!(
                Deelnemer::parse(deceptive).unwrap_err().rule,
                Rule::Character,
                "{deceptive:?}"
            );
            assert_eq!(
                Weergavenaam::parse(deceptive).unwrap_err().rule,
                Rule::Character
            );
        }
        assert_eq!(Reden::parse("a\0b").unwrap_err().rule, Rule::Whitespace);
        assert_eq!(Reden::parse("").unwrap_err().rule, Rule::Length);
        assert!(Reden::parse("ticket onvolledig").is_ok());
    }

    proptest! {
        #[test]
        fn the_ascii_fast_path_decides_as_the_general_check(
            value in "[ -~\t\n\x0B\r\x00\x7f\u{200B}é]{0,12}",
            min in 0usize..4,
            max in 0usize..12,
            forbid in any::<bool>(),
        ) {
            let spaces = if forbid { InnerSpaces::Forbidden } else { InnerSpaces::Allowed };
            prop_assert_eq!(
                check_text(&value, min, max, spaces).is_ok(),
                check_text_general(&value, min, max, spaces).is_ok()
            );
        }
    }

    proptest! {
        #[test]
        fn every_valid_name_is_accepted(letters in "[a-z]{3,50}") {
            let name = format!("{letters}@medmij");
            let parsed = Zorgaanbiedernaam::parse(name.clone()).unwrap();
            prop_assert_eq!(parsed.as_str(), name.as_str());
        }

        #[test]
        fn accepted_names_obey_the_facet(input in "\\PC{0,60}") {
            if let Ok(name) = Zorgaanbiedernaam::parse(input) {
                let s = name.as_str();
                let len = s.chars().count();
                prop_assert!((10..=57).contains(&len));
                let letters = s.strip_suffix("@medmij").unwrap();
                prop_assert!(letters.bytes().all(|b| b.is_ascii_lowercase()));
            }
        }

        #[test]
        fn accepted_display_names_have_no_padding(input in "\\PC{0,60}") {
            if let Ok(name) = Weergavenaam::parse(input) {
                let s = name.as_str();
                prop_assert!(!s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace));
                prop_assert!((3..=50).contains(&s.chars().count()));
            }
        }
    }
}
