//! A second, independent look at rendered bytes before they are published: every leaf value
//! is read back from the bytes and must pass its XSD facet unchanged. It streams (no tree),
//! so it costs little next to the rendering it checks.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::domain::{
    Backchanneluri, Frontchanneluri, GegevensdienstId, Hostname, InvalidValue, ListKind,
    OAuthclientOrganisatienaam, Rule, Systeemrolcode, Tijdstempel, Violation, Violations,
    Volgnummer, Weergavenaam, Zorgaanbiedernaam,
};

/// Parses `text` as the value of leaf element `name`; `None` for container elements.
/// `Some(Ok(normalised))` must equal the text for the document to be valid.
fn leaf_value(name: &str, text: &str) -> Option<Result<String, InvalidValue>> {
    let parsed = match name {
        "Tijdstempel" => Tijdstempel::parse(text).map(|t| t.to_xml()),
        "Volgnummer" => Volgnummer::parse(text).map(|v| v.to_string()),
        "Zorgaanbiedernaam" => Zorgaanbiedernaam::parse(text).map(String::from),
        "GegevensdienstId" => GegevensdienstId::parse(text).map(String::from),
        "AuthorizationEndpointuri" => Frontchanneluri::parse(text).map(String::from),
        "TokenEndpointuri" | "ResourceEndpointuri" => Backchanneluri::parse(text).map(String::from),
        "Systeemrolcode" => Systeemrolcode::parse(text).map(String::from),
        "Hostname" => Hostname::parse(text).map(String::from),
        "OAuthclientOrganisatienaam" => OAuthclientOrganisatienaam::parse(text).map(String::from),
        "Weergavenaam" => Weergavenaam::parse(text).map(String::from),
        _ => return None,
    };
    Some(parsed)
}

/// Checks every leaf value of a rendered `kind` document; returns the number of leaves.
pub fn check_rendered(bytes: &[u8], kind: ListKind) -> Result<usize, Violations> {
    let fail = |path: &str, rule: Rule, message: String| {
        Violations::one(Violation::new(path, rule, message))
    };
    let text = std::str::from_utf8(bytes).map_err(|e| fail("/", Rule::Document, e.to_string()))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut leaves = 0;
    let mut violations = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| fail(&stack.join("/"), Rule::Document, e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().into_inner().to_owned();
                if stack.is_empty() {
                    let expected_ns = start
                        .attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == "xmlns" && a.value.as_ref() == kind.namespace());
                    if name != kind.root_element() || !expected_ns {
                        return Err(fail(
                            &name,
                            Rule::Document,
                            format!(
                                "the root must be <{}> in its namespace",
                                kind.root_element()
                            ),
                        ));
                    }
                }
                stack.push(name);
                value.clear();
            }
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(resolved) => value.push_str(resolved),
                    None => {
                        return Err(fail(
                            &stack.join("/"),
                            Rule::Document,
                            format!("unexpected entity &{name};"),
                        ));
                    }
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if let Some(parsed) = leaf_value(&name, &value) {
                    leaves += 1;
                    match parsed {
                        Ok(normalised) if normalised == value => {}
                        Ok(normalised) => violations.push(Violation::new(
                            format!("{}/{name}", stack.join("/")),
                            Rule::Pattern,
                            format!(
                                "rendered as \"{value}\" where the facet gives \"{normalised}\""
                            ),
                        )),
                        Err(invalid) => {
                            violations.push(invalid.at(format!("{}/{name}", stack.join("/"))));
                        }
                    }
                }
                value.clear();
            }
            Event::Empty(_)
            | Event::CData(_)
            | Event::DocType(_)
            | Event::PI(_)
            | Event::Comment(_) => {
                return Err(fail(
                    &stack.join("/"),
                    Rule::Document,
                    "a rendered list has no empty elements, CDATA, DTD, PIs or comments".into(),
                ));
            }
            Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    match Violations::from_vec(violations) {
        Some(v) => Err(v),
        None => Ok(leaves),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{SampleSize, network};
    use crate::xml::render_list;

    #[test]
    fn rendered_lists_pass_and_broken_bytes_do_not() {
        let net = network(SampleSize::realistic(20), chrono::Utc::now());
        for list in [&net.zal, &net.ocl, &net.gnl, &net.whitelist] {
            assert!(check_rendered(&render_list(list), list.kind()).unwrap() > 0);
        }
        let good = String::from_utf8(render_list(&net.whitelist)).unwrap();
        let upper = good.replacen("<Hostname>medmij", "<Hostname>MEDMIJ", 1);
        assert_eq!(
            check_rendered(upper.as_bytes(), ListKind::Whitelist)
                .unwrap_err()
                .as_slice()[0]
                .rule,
            Rule::Pattern
        );
        let port = good.replacen(".example.nl</Hostname>", ".example.nl:443</Hostname>", 1);
        assert!(check_rendered(port.as_bytes(), ListKind::Whitelist).is_err());
        assert!(
            check_rendered(good.as_bytes(), ListKind::Zal).is_err(),
            "wrong root"
        );
    }
}
