//! Renders a list in its official format, byte for byte deterministic: the same list always
//! gives the same bytes, whatever order its entries were stored in.
//!
//! Document rules (SPEC §3): XML declaration with UTF-8, no BOM, the default namespace without
//! prefix, indentation only between elements, never inside a value, Tijdstempel in UTC with `Z`.

use std::ops::Range;

use crate::domain::{
    AnyEntry, GegevensdienstNaam, Lijst, ListEntries, ListKind, MedMijNode, OAuthclient,
    Tijdstempel, Volgnummer, Zorgaanbieder,
};

struct Writer {
    out: Vec<u8>,
    depth: usize,
}

impl Writer {
    /// A line break and four spaces per level, in one copy (a third of the lines of a ZAL
    /// are ten levels deep).
    fn indent(&mut self) {
        const INDENT: &[u8; 65] =
            b"\n                                                                ";
        match INDENT.get(..1 + 4 * self.depth) {
            Some(indent) => self.out.extend_from_slice(indent),
            None => {
                self.out.push(b'\n');
                for _ in 0..self.depth {
                    self.out.extend_from_slice(b"    ");
                }
            }
        }
    }

    /// The declaration, the root's start tag, Tijdstempel and Volgnummer.
    fn header(&mut self, kind: ListKind, tijdstempel: Tijdstempel, volgnummer: Volgnummer) {
        self.out
            .extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        self.out.extend_from_slice(kind.root_element().as_bytes());
        self.out.extend_from_slice(b" xmlns=\"");
        self.out.extend_from_slice(kind.namespace().as_bytes());
        self.out.extend_from_slice(b"\">");
        self.depth = 1;
        self.leaf("Tijdstempel", &tijdstempel.to_xml());
        self.leaf("Volgnummer", &volgnummer.to_string());
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    /// `<name>value</name>` on one line, the value escaped.
    fn leaf(&mut self, name: &str, value: &str) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
        escape_into(&mut self.out, value);
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    /// A container with one leaf: `<outer><inner>value</inner></outer>` (the endpoint wrappers).
    fn wrapped_leaf(&mut self, outer: &str, inner: &str, value: &str) {
        self.open(outer);
        self.leaf(inner, value);
        self.close(outer);
    }
}

/// One entry of any list, borrowed.
#[derive(Clone, Copy)]
enum AnyEntryRef<'a> {
    Zorgaanbieder(&'a Zorgaanbieder),
    OAuthclient(&'a OAuthclient),
    GegevensdienstNaam(&'a GegevensdienstNaam),
    MedMijNode(&'a MedMijNode),
}

impl<'a> From<&'a AnyEntry> for AnyEntryRef<'a> {
    fn from(entry: &'a AnyEntry) -> Self {
        match entry {
            AnyEntry::Zorgaanbieder(e) => AnyEntryRef::Zorgaanbieder(e),
            AnyEntry::OAuthclient(e) => AnyEntryRef::OAuthclient(e),
            AnyEntry::GegevensdienstNaam(e) => AnyEntryRef::GegevensdienstNaam(e),
            AnyEntry::MedMijNode(e) => AnyEntryRef::MedMijNode(e),
        }
    }
}

impl Writer {
    /// The element around a list's entries, and the entries; where each entry's bytes are,
    /// one range after the other (the line break and indentation before it included).
    fn entries<'a>(
        &mut self,
        outer: &str,
        entries: impl ExactSizeIterator<Item = AnyEntryRef<'a>>,
    ) -> Vec<Range<usize>> {
        let mut ranges = Vec::with_capacity(entries.len());
        self.open(outer);
        for entry in entries {
            let start = self.out.len();
            self.entry(entry);
            ranges.push(start..self.out.len());
        }
        self.close(outer);
        ranges
    }

    /// One entry element, as it stands in its list.
    fn entry(&mut self, entry: AnyEntryRef<'_>) {
        match entry {
            AnyEntryRef::Zorgaanbieder(za) => {
                self.open("Zorgaanbieder");
                self.leaf("Zorgaanbiedernaam", za.naam().as_str());
                self.open("Gegevensdiensten");
                for gd in za.gegevensdiensten() {
                    self.open("Gegevensdienst");
                    self.leaf("GegevensdienstId", gd.id().as_str());
                    self.wrapped_leaf(
                        "AuthorizationEndpoint",
                        "AuthorizationEndpointuri",
                        gd.authorization_endpoint().as_str(),
                    );
                    self.wrapped_leaf(
                        "TokenEndpoint",
                        "TokenEndpointuri",
                        gd.token_endpoint().as_str(),
                    );
                    self.open("Systeemrollen");
                    for rol in gd.systeemrollen() {
                        self.open("Systeemrol");
                        self.leaf("Systeemrolcode", rol.code.as_str());
                        self.wrapped_leaf(
                            "ResourceEndpoint",
                            "ResourceEndpointuri",
                            rol.resource_endpoint.as_str(),
                        );
                        self.close("Systeemrol");
                    }
                    self.close("Systeemrollen");
                    self.close("Gegevensdienst");
                }
                self.close("Gegevensdiensten");
                self.close("Zorgaanbieder");
            }
            AnyEntryRef::OAuthclient(client) => {
                self.open("OAuthclient");
                self.leaf("Hostname", client.hostname.as_str());
                self.leaf(
                    "OAuthclientOrganisatienaam",
                    client.organisatienaam.as_str(),
                );
                self.close("OAuthclient");
            }
            AnyEntryRef::GegevensdienstNaam(naam) => {
                self.open("Gegevensdienst");
                self.leaf("GegevensdienstId", naam.id.as_str());
                self.leaf("Weergavenaam", naam.weergavenaam.as_str());
                self.close("Gegevensdienst");
            }
            AnyEntryRef::MedMijNode(node) => {
                self.wrapped_leaf("MedMijNode", "Hostname", node.hostname.as_str());
            }
        }
    }
}

/// One entry exactly as `render_list` writes it inside its list, without the list around it
/// (the mutation page shows what a change does to the published XML).
pub fn render_entry(entry: &AnyEntry) -> String {
    let mut w = Writer {
        out: Vec::new(),
        depth: 0,
    };
    w.entry(entry.into());
    let text = String::from_utf8(w.out).expect("rendered XML is UTF-8");
    text.trim_start_matches('\n').to_owned()
}

fn escape_into(out: &mut Vec<u8>, value: &str) {
    let mut rest = value.as_bytes();
    while let Some(i) = rest.iter().position(|b| matches!(b, b'&' | b'<' | b'>')) {
        let (plain, special) = rest.split_at(i);
        out.extend_from_slice(plain);
        let Some((&c, after)) = special.split_first() else {
            break;
        };
        out.extend_from_slice(match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            _ => b"&gt;",
        });
        rest = after;
    }
    out.extend_from_slice(rest);
}

/// A rough size per entry, so the buffer is allocated once for typical lists.
fn estimated_size(entries: &ListEntries) -> usize {
    let per_entry = match entries {
        ListEntries::Zal(_) => 2048,
        ListEntries::Ocl(_) => 160,
        ListEntries::Gnl(_) => 140,
        ListEntries::Whitelist(_) => 100,
    };
    512 + per_entry * entries.len()
}

/// A rendered list: its bytes, and the range of each entry in them, in order and adjacent
/// (`xml::check_rendered_entries` checks entries it has not seen before one by one).
pub struct Rendered {
    pub document: Vec<u8>,
    pub entries: Vec<Range<usize>>,
}

/// The published bytes of a list.
pub fn render_list(list: &Lijst) -> Vec<u8> {
    render_version(list.tijdstempel, list.volgnummer, &list.entries, 0).document
}

/// The header of a version of `kind`: its bytes up to the end of its Volgnummer, exactly as
/// `render_version` begins (a renewal puts it before the current version's body).
pub fn render_header(kind: ListKind, tijdstempel: Tijdstempel, volgnummer: Volgnummer) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(256),
        depth: 0,
    };
    w.header(kind, tijdstempel, volgnummer);
    w.out
}

/// The published bytes of a version with these entries and where its entries are, in a
/// buffer of at least `expected_size` bytes (the size of the current version: a 10 000-
/// Zorgaanbieder ZAL grown by doubling is copied twice and touches twice its size).
pub fn render_version(
    tijdstempel: Tijdstempel,
    volgnummer: Volgnummer,
    entries: &ListEntries,
    expected_size: usize,
) -> Rendered {
    let kind = entries.kind();
    let (outer, _) = kind.entry_elements();
    let mut w = Writer {
        out: Vec::with_capacity(estimated_size(entries).max(expected_size + expected_size / 16)),
        depth: 0,
    };
    w.header(kind, tijdstempel, volgnummer);
    let entries = match entries {
        ListEntries::Zal(s) => {
            w.entries(outer, s.as_slice().iter().map(AnyEntryRef::Zorgaanbieder))
        }
        ListEntries::Ocl(s) => w.entries(outer, s.as_slice().iter().map(AnyEntryRef::OAuthclient)),
        ListEntries::Gnl(s) => w.entries(
            outer,
            s.as_slice().iter().map(AnyEntryRef::GegevensdienstNaam),
        ),
        ListEntries::Whitelist(s) => {
            w.entries(outer, s.as_slice().iter().map(AnyEntryRef::MedMijNode))
        }
    };
    w.close(kind.root_element());
    w.out.push(b'\n');
    Rendered {
        document: w.out,
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_characters() {
        let mut out = Vec::new();
        escape_into(&mut out, "a<b>&c");
        assert_eq!(out, b"a&lt;b&gt;&amp;c");
    }
}
