//! Reads an XML document into a small element tree, refusing everything a list never needs
//! and that an attacker could use: DTDs (and so entity declarations), unknown entity
//! references, foreign namespaces, deep nesting, oversized input.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::domain::{Rule, Violation};

/// The lists nest 8 deep at most (ZAL); anything far deeper is not a list.
const MAX_DEPTH: usize = 16;

/// A document's elements in document order, each knowing where its descendants end: one
/// allocation for the whole tree, names from a fixed table and texts borrowed from the
/// document wherever they can be. (A tree of owned nodes made a 10 000-Zorgaanbieder ZAL's
/// 480 000 elements cost twice the document's size; issue 12.)
pub(super) struct Tree<'d> {
    elements: Vec<Element<'d>>,
}

struct Element<'d> {
    /// Local name; the namespace was checked while reading.
    name: Cow<'static, str>,
    /// Character data directly inside this element (after entity and CDATA resolution).
    /// Between the children of a container only whether it is all whitespace is kept.
    text: Cow<'d, str>,
    /// Index one past its last descendant.
    end: usize,
}

impl<'d> Tree<'d> {
    pub fn root(&self) -> Node<'_, 'd> {
        Node {
            tree: self,
            index: 0,
        }
    }
}

/// One element of a `Tree`.
#[derive(Clone, Copy)]
pub(super) struct Node<'t, 'd> {
    tree: &'t Tree<'d>,
    index: usize,
}

impl<'t, 'd> Node<'t, 'd> {
    fn element(&self) -> &'t Element<'d> {
        self.tree
            .elements
            .get(self.index)
            .expect("nodes are made for elements of the tree")
    }

    pub fn name(&self) -> &'t str {
        &self.element().name
    }

    pub fn text(&self) -> &'t str {
        &self.element().text
    }

    /// The children, in document order.
    pub fn children(&self) -> Children<'t, 'd> {
        Children {
            tree: self.tree,
            next: self.index + 1,
            end: self.element().end,
        }
    }
}

/// The children of one element, from a position on.
#[derive(Clone)]
pub(super) struct Children<'t, 'd> {
    tree: &'t Tree<'d>,
    next: usize,
    end: usize,
}

impl<'t, 'd> Iterator for Children<'t, 'd> {
    type Item = Node<'t, 'd>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.next < self.end).then(|| {
            let node = Node {
                tree: self.tree,
                index: self.next,
            };
            self.next = node.element().end;
            node
        })
    }
}

impl<'d> Element<'d> {
    fn new(name: Cow<'static, str>) -> Self {
        Self {
            name,
            text: Cow::Borrowed(""),
            end: 0,
        }
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Every element name of the four lists, so that names are not allocated per element.
const NAMES: [&str; 28] = [
    "Zorgaanbiederslijst",
    "OAuthclientlist",
    "Gegevensdienstnamenlijst",
    "Whitelist",
    "Tijdstempel",
    "Volgnummer",
    "Zorgaanbieders",
    "Zorgaanbieder",
    "Zorgaanbiedernaam",
    "Gegevensdiensten",
    "Gegevensdienst",
    "GegevensdienstId",
    "AuthorizationEndpoint",
    "AuthorizationEndpointuri",
    "TokenEndpoint",
    "TokenEndpointuri",
    "Systeemrollen",
    "Systeemrol",
    "Systeemrolcode",
    "ResourceEndpoint",
    "ResourceEndpointuri",
    "OAuthclients",
    "OAuthclient",
    "Hostname",
    "OAuthclientOrganisatienaam",
    "Weergavenaam",
    "MedMijNodes",
    "MedMijNode",
];

/// An element's name, borrowed when it is one of `NAMES`.
pub(super) fn element_name(local: &str) -> Cow<'static, str> {
    match NAMES.iter().find(|n| **n == local) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(local.to_owned()),
    }
}

/// The elements being read: the tree so far and the indices of the open elements.
struct Building<'d> {
    elements: Vec<Element<'d>>,
    open: Vec<usize>,
}

impl<'d> Building<'d> {
    /// The path of the innermost open element.
    fn path(&self) -> String {
        let mut path = String::new();
        let mut parent: Option<usize> = None;
        for &index in &self.open {
            let name = self.name(index);
            path.push('/');
            path.push_str(name);
            if let Some(parent) = parent
                && REPEATED.contains(&name)
            {
                let position = self
                    .children_so_far(parent)
                    .take_while(|&i| i != index)
                    .filter(|&i| self.name(i) == name)
                    .count();
                path.push_str(&format!("[{}]", position + 1));
            }
            parent = Some(index);
        }
        path
    }

    fn name(&self, index: usize) -> &str {
        self.elements.get(index).map_or("", |e| &e.name)
    }

    /// Children of an open element read so far (their `end` is set once they closed).
    fn children_so_far(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = parent + 1;
        std::iter::from_fn(move || {
            let element = self.elements.get(next)?;
            let index = next;
            next = if element.end > index {
                element.end
            } else {
                self.elements.len()
            };
            Some(index)
        })
    }

    fn add_text(&mut self, piece: Cow<'d, str>) -> bool {
        let Some(&index) = self.open.last() else {
            return false;
        };
        let has_children = self.elements.len() > index + 1;
        let Some(element) = self.elements.get_mut(index) else {
            return false;
        };
        // Whitespace between a container's children is only ever checked for being blank.
        let blank_between_children = has_children && is_blank(&piece) && is_blank(&element.text);
        if element.text.is_empty() {
            element.text = piece;
        } else if !blank_between_children {
            element.text.to_mut().push_str(&piece);
        }
        true
    }
}

fn refuse(path: &str, message: impl Into<String>) -> Violation {
    Violation::new(
        if path.is_empty() { "/" } else { path },
        Rule::Document,
        message,
    )
}

/// The elements that repeat in some list; their paths carry a 1-based position, as the
/// parser's do, so a refusal points at one entry.
const REPEATED: [&str; 5] = [
    "Zorgaanbieder",
    "Gegevensdienst",
    "Systeemrol",
    "OAuthclient",
    "MedMijNode",
];

/// Reads `text` as a document whose elements all live in `namespace`, with root `root`.
pub(super) fn read_tree<'d>(
    text: &'d str,
    root: &str,
    namespace: &str,
) -> Result<Tree<'d>, Violation> {
    let mut reader = NsReader::from_str(text);
    // Mismatched end tags are a well-formedness error we want reported, not tolerated.
    reader.config_mut().check_end_names = true;
    // A list element takes some 90 bytes of the document on average. Reserving for one per
    // 48 bytes costs no memory beyond what is used (untouched pages are not resident) and
    // spares the copies of a growing vector.
    let estimate = text.len() / 48;
    let mut tree = Building {
        elements: Vec::with_capacity(estimate),
        open: Vec::new(),
    };
    let mut root_read = false;
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader.read_resolved_event().map_err(|e| {
            refuse(
                &tree.path(),
                format!("not well-formed XML near byte {position}: {e}"),
            )
        })?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let local = element_name(start.local_name().into_inner());
                if tree.open.is_empty() && !root_read && local != root {
                    return Err(refuse(
                        &format!("/{local}"),
                        format!("the root element must be <{root}>, this document is a <{local}>"),
                    ));
                }
                match resolved {
                    ResolveResult::Bound(ns) if ns.into_inner() == namespace => {}
                    ResolveResult::Bound(ns) => {
                        return Err(refuse(
                            &format!("{}/{local}", tree.path()),
                            format!(
                                "element is in namespace \"{}\", expected \"{namespace}\"",
                                ns.into_inner()
                            ),
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            &format!("{}/{local}", tree.path()),
                            format!("element has no namespace, expected \"{namespace}\""),
                        ));
                    }
                }
                if root_read {
                    return Err(refuse("/", "more than one root element"));
                }
                if tree.open.len() >= MAX_DEPTH {
                    return Err(refuse(&tree.path(), "elements are nested too deeply"));
                }
                let index = tree.elements.len();
                let mut element = Element::new(local);
                if matches!(event, Event::Empty(_)) {
                    element.end = index + 1;
                    root_read |= tree.open.is_empty();
                } else {
                    tree.open.push(index);
                }
                tree.elements.push(element);
            }
            Event::End(_) => {
                let index = tree
                    .open
                    .pop()
                    .expect("check_end_names rejects unmatched ends");
                let end = tree.elements.len();
                if let Some(element) = tree.elements.get_mut(index) {
                    element.end = end;
                }
                root_read |= tree.open.is_empty();
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                if tree.open.is_empty() {
                    if !is_blank(&content) {
                        return Err(refuse("/", "text outside the root element"));
                    }
                } else {
                    tree.add_text(content);
                }
            }
            Event::CData(t) => {
                if !tree.add_text(t.xml10_content()) {
                    return Err(refuse("/", "CDATA outside the root element"));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                refuse(&tree.path(), format!("the entity reference &{name}; is not accepted: lists use no entities"))
                            })?
                            .to_owned()
                    }
                    Err(e) => {
                        return Err(refuse(
                            &tree.path(),
                            format!("bad character reference: {e}"),
                        ));
                    }
                };
                if !tree.add_text(Cow::Owned(resolved)) {
                    return Err(refuse("/", "a reference outside the root element"));
                }
            }
            Event::DocType(_) => {
                return Err(refuse(
                    "/",
                    "a DOCTYPE is not accepted: lists use no DTD and no entity declarations",
                ));
            }
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding()
                    && !encoding.eq_ignore_ascii_case("UTF-8")
                {
                    return Err(refuse(
                        "/",
                        format!("the encoding must be UTF-8, not {encoding}"),
                    ));
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                if let Some(&innermost) = tree.open.last() {
                    return Err(refuse(
                        &tree.path(),
                        format!(
                            "the document ends inside <{}>: it is truncated",
                            tree.name(innermost)
                        ),
                    ));
                }
                if !root_read {
                    return Err(refuse("/", "the document has no root element"));
                }
                return Ok(Tree {
                    elements: tree.elements,
                });
            }
        }
    }
}
