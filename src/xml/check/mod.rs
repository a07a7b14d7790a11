//! A second, independent look at rendered bytes before they are published: every leaf value
//! is read back from the bytes and must pass its XSD facet unchanged. It streams (no tree).
//! `entries.rs` reads only the entries a list's last check did not see (an approval changes
//! one entry of thousands).

mod entries;

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::tree::element_name;
use crate::domain::{
    Backchanneluri, Frontchanneluri, GegevensdienstId, Hostname, InvalidValue, ListKind,
    OAuthclientOrganisatienaam, Rule, Systeemrolcode, Tijdstempel, Violation, Violations,
    Volgnummer, Weergavenaam, Zorgaanbiedernaam,
};

pub use entries::{CheckedDocument, CheckedEntries, check_rendered_entries};

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
    let mut checker = Checker::new(kind, Part::Document { cut: None });
    checker.read(bytes)?;
    checker.finish()
}

/// Which bytes a `Checker` reads.
enum Part {
    /// A whole document; `cut`: the offset entries were taken out at, if they were.
    Document { cut: Option<usize> },
    /// One entry element alone (with the line break and indentation before it).
    Entry,
}

/// Reads rendered bytes event by event, checking every leaf value against its facet.
struct Checker {
    kind: ListKind,
    part: Part,
    /// Open elements; an entry starts inside the root and the element around the entries.
    stack: Vec<Cow<'static, str>>,
    value: String,
    leaves: usize,
    /// An `Entry` part has read its one entry element.
    entry_done: bool,
    /// A `Document` part with a cut has passed it.
    cut_found: bool,
    violations: Vec<Violation>,
}

fn fail(path: &str, rule: Rule, message: String) -> Violations {
    Violations::one(Violation::new(path, rule, message))
}

impl Checker {
    fn new(kind: ListKind, part: Part) -> Self {
        let (outer, _) = kind.entry_elements();
        let stack = match part {
            Part::Entry => vec![Cow::Borrowed(kind.root_element()), Cow::Borrowed(outer)],
            Part::Document { .. } => Vec::new(),
        };
        Self {
            kind,
            part,
            stack,
            value: String::new(),
            leaves: 0,
            entry_done: false,
            cut_found: false,
            violations: Vec::new(),
        }
    }

    fn path(&self) -> String {
        self.stack.join("/")
    }

    /// Whether the open elements are the root and the element around the entries.
    fn between_entries(&self) -> bool {
        let (outer, _) = self.kind.entry_elements();
        matches!(self.stack.as_slice(), [root, around] if root == self.kind.root_element() && around == outer)
    }

    fn read(&mut self, bytes: &[u8]) -> Result<(), Violations> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| fail("/", Rule::Document, e.to_string()))?;
        let mut reader = Reader::from_str(text);
        let cut = match self.part {
            Part::Document { cut } => cut.map(|c| c as u64),
            Part::Entry => None,
        };
        loop {
            let before = reader.buffer_position();
            // Events follow each other without gaps: the entries' place must be where one
            // ends and the next starts, directly inside the element around the entries.
            if cut == Some(before) {
                if !self.between_entries() {
                    return Err(self.misplaced_entries());
                }
                self.cut_found = true;
            }
            let event = reader
                .read_event()
                .map_err(|e| fail(&self.path(), Rule::Document, e.to_string()))?;
            if cut.is_some_and(|cut| before < cut && cut < reader.buffer_position()) {
                return Err(self.misplaced_entries());
            }
            if !self.event(event)? {
                return Ok(());
            }
        }
    }

    fn misplaced_entries(&self) -> Violations {
        fail(
            &self.path(),
            Rule::Document,
            "the entries are not where the element around them has them".into(),
        )
    }

    /// Takes one event; `false` at the end of the bytes.
    fn event(&mut self, event: Event<'_>) -> Result<bool, Violations> {
        match event {
            Event::Start(start) => {
                if self.stack.is_empty() && !has_namespace(&start, self.kind.namespace()) {
                    return Err(self.wrong_root());
                }
                self.open(element_name(start.local_name().into_inner()))?;
                self.value.clear();
            }
            Event::Text(t) => self.value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(resolved) => self.value.push_str(resolved),
                    None => {
                        return Err(fail(
                            &self.path(),
                            Rule::Document,
                            format!("unexpected entity &{name};"),
                        ));
                    }
                }
            }
            Event::End(_) => {
                let name = self.stack.pop().unwrap_or_default();
                if let Some(parsed) = leaf_value(&name, &self.value) {
                    self.leaves += 1;
                    match parsed {
                        Ok(normalised) if normalised == self.value => {}
                        Ok(normalised) => self.violations.push(Violation::new(
                            format!("{}/{name}", self.path()),
                            Rule::Pattern,
                            format!(
                                "rendered as \"{}\" where the facet gives \"{normalised}\"",
                                self.value
                            ),
                        )),
                        Err(invalid) => {
                            let path = format!("{}/{name}", self.path());
                            self.violations.push(invalid.at(path));
                        }
                    }
                }
                if matches!(self.part, Part::Entry) && self.between_entries() {
                    self.entry_done = true;
                }
                self.value.clear();
            }
            Event::Empty(_)
            | Event::CData(_)
            | Event::DocType(_)
            | Event::PI(_)
            | Event::Comment(_) => {
                return Err(fail(
                    &self.path(),
                    Rule::Document,
                    "a rendered list has no empty elements, CDATA, DTD, PIs or comments".into(),
                ));
            }
            Event::Decl(_) => {
                if matches!(self.part, Part::Entry) {
                    return Err(fail(
                        &self.path(),
                        Rule::Document,
                        "a declaration inside the list".into(),
                    ));
                }
            }
            Event::Eof => return Ok(false),
        }
        Ok(true)
    }

    /// An element opens: the root at the top of a document; in an entry part, one entry
    /// element directly inside the element around the entries.
    fn open(&mut self, name: Cow<'static, str>) -> Result<(), Violations> {
        let (_, entry) = self.kind.entry_elements();
        match self.part {
            Part::Document { .. } if self.stack.is_empty() && name != self.kind.root_element() => {
                return Err(self.wrong_root());
            }
            Part::Entry if self.between_entries() && (self.entry_done || name != entry) => {
                return Err(fail(
                    &self.path(),
                    Rule::Document,
                    format!("an entry must be exactly one <{entry}> element"),
                ));
            }
            _ => {}
        }
        self.stack.push(name);
        Ok(())
    }

    fn wrong_root(&self) -> Violations {
        let root = self.kind.root_element();
        fail(
            root,
            Rule::Document,
            format!("the root must be <{root}> in its namespace"),
        )
    }

    fn finish(self) -> Result<usize, Violations> {
        let complete = match self.part {
            Part::Document { cut } => self.stack.is_empty() && (cut.is_none() || self.cut_found),
            Part::Entry => self.entry_done && self.between_entries(),
        };
        if !complete {
            return Err(fail(
                &self.path(),
                Rule::Document,
                "the rendered bytes end early".into(),
            ));
        }
        match Violations::from_vec(self.violations) {
            Some(v) => Err(v),
            None => Ok(self.leaves),
        }
    }
}

fn has_namespace(start: &quick_xml::events::BytesStart<'_>, namespace: &str) -> bool {
    start
        .attributes()
        .flatten()
        .any(|a| a.key.as_ref() == "xmlns" && a.value.as_ref() == namespace)
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
