//! Parses a list in its official format into the domain types. Every value goes through its
//! constructor; every refusal names the element path (XPath style, 1-based positions for
//! repeated elements) and the rule it broke. All refusals of a document are reported at once.

use super::tree::{self, Node, read_tree};
use crate::domain::{
    Backchanneluri, EntrySet, Frontchanneluri, Gegevensdienst, GegevensdienstFields,
    GegevensdienstId, GegevensdienstNaam, Hostname, InvalidValue, Lijst, ListEntries, ListKind,
    MedMijNode, OAuthclient, OAuthclientOrganisatienaam, Rule, Systeemrol, Systeemrolcode,
    Tijdstempel, Violation, Violations, Volgnummer, Weergavenaam, Zorgaanbieder,
    ZorgaanbiederFields, Zorgaanbiedernaam,
};

/// Larger input is refused before it is read: a 50 000-Zorgaanbieder ZAL is far below this.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024 * 1024;

/// Parses `bytes` as the official XML of `kind`.
pub fn parse_list(bytes: &[u8], kind: ListKind) -> Result<Lijst, Violations> {
    let document = |message: String| Violations::one(Violation::new("/", Rule::Document, message));
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(document(format!(
            "the document is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    // A byte order mark is tolerated on input; we never write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| document(format!("the document is not UTF-8: {e}")))?;
    let root = read_tree(text, kind.root_element(), kind.namespace()).map_err(Violations::one)?;
    let mut walker = Walker::default();
    let lijst = walker.list(root.root(), kind);
    match (Violations::from_vec(walker.violations), lijst) {
        (None, Some(lijst)) => Ok(lijst),
        (Some(violations), _) => Err(violations),
        (None, None) => unreachable!("a missing part always records a violation"),
    }
}

/// The children of one element, taken in the order the XSD sequence demands.
struct Children<'t, 'd> {
    path: String,
    rest: std::iter::Peekable<tree::Children<'t, 'd>>,
}

impl<'t, 'd> Children<'t, 'd> {
    fn of(node: Node<'t, 'd>, path: &str) -> Self {
        Self {
            path: path.to_owned(),
            rest: node.children().peekable(),
        }
    }

    /// Exactly one child called `name`, next in sequence.
    fn one(&mut self, name: &str, w: &mut Walker) -> Option<(Node<'t, 'd>, String)> {
        match self.rest.next() {
            Some(node) if node.name() == name => Some((node, format!("{}/{name}", self.path))),
            Some(other) => {
                w.refuse(
                    format!("{}/{}", self.path, other.name()),
                    Rule::Structure,
                    format!("expected <{name}> here, found <{}>", other.name()),
                );
                // The unexpected one is skipped, so its siblings are still checked.
                None
            }
            None => {
                w.refuse(
                    format!("{}/{name}", self.path),
                    Rule::Structure,
                    format!("<{name}> is missing"),
                );
                None
            }
        }
    }

    /// All consecutive children called `name`, with their positional paths.
    fn many(&mut self, name: &str) -> Vec<(Node<'t, 'd>, String)> {
        let mut found = Vec::new();
        while let Some(node) = self.rest.next_if(|n| n.name() == name) {
            found.push((node, format!("{}/{name}[{}]", self.path, found.len() + 1)));
        }
        found
    }

    /// Nothing may follow the expected sequence.
    fn end(self, w: &mut Walker) {
        for extra in self.rest {
            w.refuse(
                format!("{}/{}", self.path, extra.name()),
                Rule::Structure,
                format!("unexpected element <{}>", extra.name()),
            );
        }
    }
}

#[derive(Default)]
struct Walker {
    violations: Vec<Violation>,
}

impl Walker {
    fn refuse(&mut self, path: String, rule: Rule, message: impl Into<String>) {
        self.violations.push(Violation::new(path, rule, message));
    }

    fn extend(&mut self, prefix: &str, violations: Violations) {
        self.violations
            .extend(violations.into_vec().into_iter().map(|v| v.within(prefix)));
    }

    /// The text of a leaf element, parsed by `parse`.
    fn value<T>(
        &mut self,
        found: Option<(Node<'_, '_>, String)>,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let (node, path) = found?;
        if let Some(child) = node.children().next() {
            self.refuse(
                format!("{path}/{}", child.name()),
                Rule::Structure,
                format!("<{}> may only hold text", node.name()),
            );
            return None;
        }
        match parse(node.text()) {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.violations.push(invalid.at(path));
                None
            }
        }
    }

    /// A container element may hold whitespace between its children, nothing else.
    fn container<'t, 'd>(
        &mut self,
        found: Option<(Node<'t, 'd>, String)>,
    ) -> Option<Children<'t, 'd>> {
        let (node, path) = found?;
        if !node.text().trim().is_empty() {
            self.refuse(
                path.clone(),
                Rule::Structure,
                format!("<{}> may only hold elements, not text", node.name()),
            );
        }
        Some(Children::of(node, &path))
    }

    /// `<Outer><Inner>value</Inner></Outer>`, as the endpoint wrappers are.
    fn wrapped<T>(
        &mut self,
        parent: &mut Children<'_, '_>,
        outer: &str,
        inner: &str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        let found = parent.one(outer, self);
        let mut children = self.container(found)?;
        let found = children.one(inner, self);
        let value = self.value(found, parse);
        children.end(self);
        value
    }

    fn list(&mut self, root: Node<'_, '_>, kind: ListKind) -> Option<Lijst> {
        let root_path = format!("/{}", root.name());
        let mut children = self.container(Some((root, root_path)))?;
        let found = children.one("Tijdstempel", self);
        let tijdstempel = self.value(found, Tijdstempel::parse);
        let found = children.one("Volgnummer", self);
        let volgnummer = self.value(found, Volgnummer::parse);
        let entries = match kind {
            ListKind::Zal => self
                .entries(
                    &mut children,
                    "Zorgaanbieders",
                    "Zorgaanbieder",
                    Self::zorgaanbieder,
                )
                .map(ListEntries::Zal),
            ListKind::Ocl => self
                .entries(
                    &mut children,
                    "OAuthclients",
                    "OAuthclient",
                    Self::oauthclient,
                )
                .map(ListEntries::Ocl),
            ListKind::Gnl => self
                .entries(
                    &mut children,
                    "Gegevensdiensten",
                    "Gegevensdienst",
                    Self::gegevensdienstnaam,
                )
                .map(ListEntries::Gnl),
            ListKind::Whitelist => self
                .entries(&mut children, "MedMijNodes", "MedMijNode", Self::medmijnode)
                .map(ListEntries::Whitelist),
        };
        children.end(self);
        Some(Lijst {
            tijdstempel: tijdstempel?,
            volgnummer: volgnummer?,
            entries: entries?,
        })
    }

    /// The container of a list's entries, each parsed by `entry`, keys checked for uniqueness.
    fn entries<E: crate::domain::Entry>(
        &mut self,
        parent: &mut Children<'_, '_>,
        container: &str,
        element: &str,
        entry: fn(&mut Self, Children<'_, '_>) -> Option<E>,
    ) -> Option<EntrySet<E>> {
        let found = parent.one(container, self);
        let container_path = found.as_ref().map(|(_, path)| path.clone())?;
        let mut children = self.container(found)?;
        let mut entries = Vec::new();
        let mut complete = true;
        for found in children.many(element) {
            match self.container(Some(found)) {
                Some(entry_children) => match entry(self, entry_children) {
                    Some(e) => entries.push(e),
                    None => complete = false,
                },
                None => complete = false,
            }
        }
        children.end(self);
        if !complete {
            return None;
        }
        EntrySet::new(entries)
            .map_err(|violations| self.extend(&container_path, violations))
            .ok()
    }

    fn zorgaanbieder(&mut self, mut children: Children<'_, '_>) -> Option<Zorgaanbieder> {
        let path = children.path.clone();
        let found = children.one("Zorgaanbiedernaam", self);
        let naam = self.value(found, |t| Zorgaanbiedernaam::parse(t));
        let found = children.one("Gegevensdiensten", self);
        let gegevensdiensten = self.container(found).and_then(|mut list| {
            let mut diensten = Vec::new();
            let mut complete = true;
            for found in list.many("Gegevensdienst") {
                match self
                    .container(Some(found))
                    .and_then(|c| self.gegevensdienst(c))
                {
                    Some(g) => diensten.push(g),
                    None => complete = false,
                }
            }
            list.end(self);
            complete.then_some(diensten)
        });
        children.end(self);
        Zorgaanbieder::new(ZorgaanbiederFields {
            naam: naam?,
            aanbiedertype: Default::default(),
            gegevensdiensten: gegevensdiensten?,
        })
        .map_err(|violations| self.extend(&path, violations))
        .ok()
    }

    fn gegevensdienst(&mut self, mut children: Children<'_, '_>) -> Option<Gegevensdienst> {
        let path = children.path.clone();
        let found = children.one("GegevensdienstId", self);
        let id = self.value(found, |t| GegevensdienstId::parse(t));
        let authorization_endpoint = self.wrapped(
            &mut children,
            "AuthorizationEndpoint",
            "AuthorizationEndpointuri",
            |t| Frontchanneluri::parse(t),
        );
        let token_endpoint =
            self.wrapped(&mut children, "TokenEndpoint", "TokenEndpointuri", |t| {
                Backchanneluri::parse(t)
            });
        let found = children.one("Systeemrollen", self);
        let systeemrollen = self.container(found).and_then(|mut list| {
            let mut rollen = Vec::new();
            let mut complete = true;
            for found in list.many("Systeemrol") {
                match self.container(Some(found)).and_then(|c| self.systeemrol(c)) {
                    Some(r) => rollen.push(r),
                    None => complete = false,
                }
            }
            list.end(self);
            complete.then_some(rollen)
        });
        children.end(self);
        Gegevensdienst::new(GegevensdienstFields {
            id: id?,
            authorization_endpoint: authorization_endpoint?,
            token_endpoint: token_endpoint?,
            systeemrollen: systeemrollen?,
            interfaceversie: None,
        })
        .map_err(|violations| self.extend(&path, violations))
        .ok()
    }

    fn systeemrol(&mut self, mut children: Children<'_, '_>) -> Option<Systeemrol> {
        let found = children.one("Systeemrolcode", self);
        let code = self.value(found, |t| Systeemrolcode::parse(t));
        let resource_endpoint = self.wrapped(
            &mut children,
            "ResourceEndpoint",
            "ResourceEndpointuri",
            |t| Backchanneluri::parse(t),
        );
        children.end(self);
        Some(Systeemrol {
            code: code?,
            resource_endpoint: resource_endpoint?,
        })
    }

    fn oauthclient(&mut self, mut children: Children<'_, '_>) -> Option<OAuthclient> {
        let found = children.one("Hostname", self);
        let hostname = self.value(found, |t| Hostname::parse(t));
        let found = children.one("OAuthclientOrganisatienaam", self);
        let organisatienaam = self.value(found, |t| OAuthclientOrganisatienaam::parse(t));
        children.end(self);
        Some(OAuthclient {
            hostname: hostname?,
            organisatienaam: organisatienaam?,
            interfaceversie: None,
        })
    }

    fn gegevensdienstnaam(&mut self, mut children: Children<'_, '_>) -> Option<GegevensdienstNaam> {
        let found = children.one("GegevensdienstId", self);
        let id = self.value(found, |t| GegevensdienstId::parse(t));
        let found = children.one("Weergavenaam", self);
        let weergavenaam = self.value(found, |t| Weergavenaam::parse(t));
        children.end(self);
        Some(GegevensdienstNaam {
            id: id?,
            weergavenaam: weergavenaam?,
        })
    }

    fn medmijnode(&mut self, mut children: Children<'_, '_>) -> Option<MedMijNode> {
        let found = children.one("Hostname", self);
        let hostname = self.value(found, |t| Hostname::parse(t));
        children.end(self);
        Some(MedMijNode {
            hostname: hostname?,
        })
    }
}
