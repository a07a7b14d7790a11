//! Renders a list in its official format, byte for byte deterministic: the same list always
//! gives the same bytes, whatever order its entries were stored in.
//!
//! Document rules (SPEC §3): XML declaration with UTF-8, no BOM, the default namespace without
//! prefix, indentation only between elements, never inside a value, Tijdstempel in UTC with `Z`.

use crate::domain::{Lijst, ListEntries};

struct Writer {
    out: Vec<u8>,
    depth: usize,
}

impl Writer {
    fn indent(&mut self) {
        self.out.push(b'\n');
        for _ in 0..self.depth {
            self.out.extend_from_slice(b"    ");
        }
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

/// The published bytes of a list.
pub fn render_list(list: &Lijst) -> Vec<u8> {
    let kind = list.kind();
    let root = kind.root_element();
    let mut w = Writer {
        out: Vec::with_capacity(estimated_size(&list.entries)),
        depth: 0,
    };
    w.out
        .extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    w.out.extend_from_slice(root.as_bytes());
    w.out.extend_from_slice(b" xmlns=\"");
    w.out.extend_from_slice(kind.namespace().as_bytes());
    w.out.extend_from_slice(b"\">");
    w.depth = 1;
    w.leaf("Tijdstempel", &list.tijdstempel.to_xml());
    w.leaf("Volgnummer", &list.volgnummer.to_string());
    match &list.entries {
        ListEntries::Zal(zorgaanbieders) => {
            w.open("Zorgaanbieders");
            for za in zorgaanbieders.as_slice() {
                w.open("Zorgaanbieder");
                w.leaf("Zorgaanbiedernaam", za.naam().as_str());
                w.open("Gegevensdiensten");
                for gd in za.gegevensdiensten() {
                    w.open("Gegevensdienst");
                    w.leaf("GegevensdienstId", gd.id().as_str());
                    w.wrapped_leaf(
                        "AuthorizationEndpoint",
                        "AuthorizationEndpointuri",
                        gd.authorization_endpoint().as_str(),
                    );
                    w.wrapped_leaf(
                        "TokenEndpoint",
                        "TokenEndpointuri",
                        gd.token_endpoint().as_str(),
                    );
                    w.open("Systeemrollen");
                    for rol in gd.systeemrollen() {
                        w.open("Systeemrol");
                        w.leaf("Systeemrolcode", rol.code.as_str());
                        w.wrapped_leaf(
                            "ResourceEndpoint",
                            "ResourceEndpointuri",
                            rol.resource_endpoint.as_str(),
                        );
                        w.close("Systeemrol");
                    }
                    w.close("Systeemrollen");
                    w.close("Gegevensdienst");
                }
                w.close("Gegevensdiensten");
                w.close("Zorgaanbieder");
            }
            w.close("Zorgaanbieders");
        }
        ListEntries::Ocl(clients) => {
            w.open("OAuthclients");
            for client in clients.as_slice() {
                w.open("OAuthclient");
                w.leaf("Hostname", client.hostname.as_str());
                w.leaf(
                    "OAuthclientOrganisatienaam",
                    client.organisatienaam.as_str(),
                );
                w.close("OAuthclient");
            }
            w.close("OAuthclients");
        }
        ListEntries::Gnl(namen) => {
            w.open("Gegevensdiensten");
            for naam in namen.as_slice() {
                w.open("Gegevensdienst");
                w.leaf("GegevensdienstId", naam.id.as_str());
                w.leaf("Weergavenaam", naam.weergavenaam.as_str());
                w.close("Gegevensdienst");
            }
            w.close("Gegevensdiensten");
        }
        ListEntries::Whitelist(nodes) => {
            w.open("MedMijNodes");
            for node in nodes.as_slice() {
                w.wrapped_leaf("MedMijNode", "Hostname", node.hostname.as_str());
            }
            w.close("MedMijNodes");
        }
    }
    w.close(root);
    w.out.push(b'\n');
    w.out
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
