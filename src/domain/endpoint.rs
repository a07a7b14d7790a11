//! Hostnames and the two kinds of endpoint URI of the ZAL.
//!
//! The XSD patterns are followed, with three deliberate tightenings that no real list needs
//! and that keep us from ever publishing a hostname a TLS client would not accept: DNS length
//! limits (63 per label, 253 in all), the last label of a front-channel host obeys the same
//! rule as every other hostname (2+ characters, no trailing hyphen), and ports are 1–65535.
//! Hostnames are normalised to lowercase first (SPEC §4 rule 1); paths keep their case.

use super::text::{InnerSpaces, check_text, string_value};
use super::violation::{InvalidValue, Rule};

const MAX_URI_LENGTH: usize = 2048;

fn check_hostname(host: &str) -> Result<(), InvalidValue> {
    check_text(host, 4, 253, InnerSpaces::Forbidden)?;
    if host.contains(':') {
        return Err(InvalidValue::new(
            Rule::Pattern,
            "a hostname must not carry a port",
        ));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let shape = || {
        InvalidValue::new(
            Rule::Pattern,
            format!(
                "\"{host}\" is not a hostname: it needs two or more dot-separated labels of a-z, 0-9 \
                 and '-', each starting with a letter or digit; the last label ends with one"
            ),
        )
    };
    let (last, others) = labels.split_last().ok_or_else(shape)?;
    if others.is_empty() {
        return Err(shape());
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        bytes.first().is_some_and(|&b| alnum(b)) && bytes.iter().all(|&b| alnum(b) || b == b'-')
    };
    if !others.iter().all(|label| label_ok(label))
        || !label_ok(last)
        || last.len() < 2
        || !last.as_bytes().last().is_some_and(|&b| alnum(b))
    {
        return Err(shape());
    }
    if let Some(long) = labels.iter().find(|label| label.len() > 63) {
        return Err(InvalidValue::new(
            Rule::Length,
            format!("the hostname label \"{long}\" is longer than 63 characters"),
        ));
    }
    Ok(())
}

string_value!(
    /// A MedMij node's hostname (Whitelist, OCL): lowercase, two or more labels, no port.
    Hostname,
    |value| {
        let value = value.to_ascii_lowercase();
        check_hostname(&value).map(|()| value)
    }
);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// Reached by the patient's browser: standard port only.
    Front,
    /// Reached server to server: an explicit port is allowed.
    Back,
}

fn parse_uri(value: String, channel: Channel) -> Result<String, InvalidValue> {
    check_text(&value, 1, MAX_URI_LENGTH, InnerSpaces::Forbidden)?;
    let scheme = value
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"));
    if scheme.is_none() {
        return Err(InvalidValue::new(
            Rule::Pattern,
            "must start with \"https://\"",
        ));
    }
    if value.contains(['?', '#']) {
        return Err(InvalidValue::new(
            Rule::Pattern,
            "must not carry a query or a fragment",
        ));
    }
    let rest = value.get(8..).unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        None => (authority, None),
        Some(_) if channel == Channel::Front => {
            return Err(InvalidValue::new(
                Rule::Pattern,
                "a front-channel URI must not carry a port",
            ));
        }
        Some((host, port)) => (host, Some(port)),
    };
    let host = host.to_ascii_lowercase();
    check_hostname(&host)?;
    if let Some(port) = port {
        let in_range = (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && (1..=65535).contains(&port.parse::<u32>().unwrap_or(0));
        if !in_range {
            return Err(InvalidValue::new(
                Rule::Range,
                format!("the port \"{port}\" must be a number from 1 to 65535"),
            ));
        }
    }
    if path.ends_with('/') {
        return Err(InvalidValue::new(
            Rule::Pattern,
            "must not end with a slash",
        ));
    }
    if path.contains("//") {
        return Err(InvalidValue::new(
            Rule::Pattern,
            "must not contain an empty path segment",
        ));
    }
    let mut normalised = String::with_capacity(value.len());
    normalised.push_str("https://");
    normalised.push_str(&host);
    if let Some(port) = port {
        normalised.push(':');
        normalised.push_str(port);
    }
    normalised.push_str(path);
    Ok(normalised)
}

/// The hostname part of a URI that passed `parse_uri`.
fn uri_host(uri: &str) -> &str {
    // `parse_uri` checked the scheme: eight ASCII bytes, in any case.
    let rest = uri.get(8..).unwrap_or_default();
    rest.split([':', '/']).next().unwrap_or(rest)
}

string_value!(
    /// `Frontchanneluri` (AuthorizationEndpointuri): https, no port, no query, fragment or
    /// trailing slash.
    Frontchanneluri,
    |value| parse_uri(value, Channel::Front)
);

string_value!(
    /// `Backchanneluri` (TokenEndpointuri, ResourceEndpointuri): as a front-channel URI, but
    /// a port is allowed.
    Backchanneluri,
    |value| parse_uri(value, Channel::Back)
);

impl Frontchanneluri {
    pub fn host(&self) -> &str {
        uri_host(self.as_str())
    }
}

impl Backchanneluri {
    pub fn host(&self) -> &str {
        uri_host(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostnames_are_lowercased_and_need_two_labels() {
        assert_eq!(
            Hostname::parse("Medmij.XisBridge.NET").unwrap().as_str(),
            "medmij.xisbridge.net"
        );
        assert_eq!(
            Hostname::parse("localhost").unwrap_err().rule,
            Rule::Pattern
        );
        assert_eq!(Hostname::parse("a.n").unwrap_err().rule, Rule::Length);
        assert!(Hostname::parse("rcf-rso.nl").is_ok());
        assert!(Hostname::parse("78834.umcharderwijk.nl").is_ok());
        for bad in [
            "-a.nl", "a..nl", "ab.n", "a.nl-", "a.nl.", ".a.nl", "a_b.nl", "a.n-",
        ] {
            assert_eq!(
                Hostname::parse(bad).unwrap_err().rule,
                Rule::Pattern,
                "{bad}"
            );
        }
    }

    #[test]
    fn hostnames_refuse_ports_whitespace_and_overlong_labels() {
        assert_eq!(Hostname::parse("a.nl:443").unwrap_err().rule, Rule::Pattern);
        assert_eq!(Hostname::parse(" a.nl").unwrap_err().rule, Rule::Whitespace);
        assert_eq!(
            Hostname::parse("a.nl\n").unwrap_err().rule,
            Rule::Whitespace
        );
        assert!(Hostname::parse(format!("{}.nl", "a".repeat(63))).is_ok());
        assert_eq!(
            Hostname::parse(format!("{}.nl", "a".repeat(64)))
                .unwrap_err()
                .rule,
            Rule::Length
        );
        assert_eq!(
            Hostname::parse(format!("{}.nl", "a.".repeat(126)))
                .unwrap_err()
                .rule,
            Rule::Length
        );
    }

    #[test]
    fn front_channel_uris() {
        let ok =
            Frontchanneluri::parse("https://medmij.za982.xisbridge.net/oauth/authorize").unwrap();
        assert_eq!(ok.host(), "medmij.za982.xisbridge.net");
        assert_eq!(
            Frontchanneluri::parse("HTTPS://Medmij.Example.NL/OAuth")
                .unwrap()
                .as_str(),
            "https://medmij.example.nl/OAuth",
            "scheme and host are lowercased, the path keeps its case"
        );
        assert!(Frontchanneluri::parse("https://medmij.example.nl").is_ok());
        for (bad, rule) in [
            ("https://a.nl:443/x", Rule::Pattern),
            ("http://a.nl/x", Rule::Pattern),
            ("https://a.nl/x/", Rule::Pattern),
            ("https://a.nl/", Rule::Pattern),
            ("https://a.nl/x?y=1", Rule::Pattern),
            ("https://a.nl/x#y", Rule::Pattern),
            ("https://a.nl//x", Rule::Pattern),
            ("https://a.nl/x y", Rule::Whitespace),
            ("https://localhost/x", Rule::Pattern),
        ] {
            assert_eq!(Frontchanneluri::parse(bad).unwrap_err().rule, rule, "{bad}");
        }
    }

    #[test]
    fn back_channel_uris_allow_a_port() {
        let ok = Backchanneluri::parse("https://78834.umcharderwijk.nl:8099/oauth/token").unwrap();
        assert_eq!(ok.host(), "78834.umcharderwijk.nl");
        assert!(Backchanneluri::parse("https://a.nl:1").is_ok());
        assert!(Backchanneluri::parse("https://a.nl:65535/x").is_ok());
        for bad in [
            "https://a.nl:0/x",
            "https://a.nl:65536/x",
            "https://a.nl:/x",
            "https://a.nl:123456",
            "https://a.nl:8a/x",
        ] {
            assert_eq!(
                Backchanneluri::parse(bad).unwrap_err().rule,
                Rule::Range,
                "{bad}"
            );
        }
        assert_eq!(
            Backchanneluri::parse("https://a.nl:443/x/")
                .unwrap_err()
                .rule,
            Rule::Pattern
        );
    }

    fn hostname_strategy() -> impl Strategy<Value = String> {
        ("[a-z0-9][a-z0-9-]{0,10}", "[a-z0-9][a-z0-9-]{0,5}[a-z0-9]")
            .prop_map(|(a, b)| format!("{a}.{b}"))
    }

    proptest! {
        #[test]
        fn generated_hostnames_round_trip(host in hostname_strategy()) {
            let parsed = Hostname::parse(host.to_uppercase()).unwrap();
            prop_assert_eq!(parsed.as_str(), host.as_str());
        }

        #[test]
        fn generated_uris_round_trip(host in hostname_strategy(), port in 1u32..=65535, path in "(/[a-zA-Z0-9._~-]{1,8}){0,3}") {
            let uri = format!("https://{host}:{port}{path}");
            let parsed = Backchanneluri::parse(uri.clone()).unwrap();
            prop_assert_eq!(parsed.as_str(), uri.as_str());
            prop_assert_eq!(parsed.host(), host.as_str());
            prop_assert!(Frontchanneluri::parse(uri).is_err());
        }

        #[test]
        fn accepted_hostnames_are_lowercase_without_port(input in "[a-zA-Z0-9.:-]{0,20}") {
            if let Ok(host) = Hostname::parse(input) {
                prop_assert!(!host.as_str().bytes().any(|b| b.is_ascii_uppercase() || b == b':'));
                prop_assert!(host.as_str().contains('.'));
            }
        }
    }
}
