//! Reads an XML document into a small element tree, refusing everything a list never needs
//! and that an attacker could use: DTDs (and so entity declarations), unknown entity
//! references, foreign namespaces, deep nesting, oversized input.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::domain::{Rule, Violation};

/// The lists nest 8 deep at most (ZAL); anything far deeper is not a list.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Default)]
pub(super) struct Element {
    /// Local name; the namespace was checked while reading.
    pub name: String,
    pub children: Vec<Element>,
    /// Character data directly inside this element (after entity and CDATA resolution).
    pub text: String,
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

fn path_of(stack: &[Element]) -> String {
    let mut path = String::new();
    for (i, element) in stack.iter().enumerate() {
        path.push('/');
        path.push_str(&element.name);
        if let Some(parent) = i.checked_sub(1).and_then(|p| stack.get(p))
            && REPEATED.contains(&element.name.as_str())
        {
            let earlier = parent
                .children
                .iter()
                .filter(|c| c.name == element.name)
                .count();
            path.push_str(&format!("[{}]", earlier + 1));
        }
    }
    path
}

/// Reads `text` as a document whose elements all live in `namespace`, with root `root`.
pub(super) fn read_tree(text: &str, root: &str, namespace: &str) -> Result<Element, Violation> {
    let mut reader = NsReader::from_str(text);
    // Mismatched end tags are a well-formedness error we want reported, not tolerated.
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut finished: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader.read_resolved_event().map_err(|e| {
            refuse(
                &path_of(&stack),
                format!("not well-formed XML near byte {position}: {e}"),
            )
        })?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let local = start.local_name().into_inner().to_owned();
                if stack.is_empty() && finished.is_none() && local != root {
                    return Err(refuse(
                        &format!("/{local}"),
                        format!("the root element must be <{root}>, this document is a <{local}>"),
                    ));
                }
                match resolved {
                    ResolveResult::Bound(ns) if ns.into_inner() == namespace => {}
                    ResolveResult::Bound(ns) => {
                        return Err(refuse(
                            &format!("{}/{local}", path_of(&stack)),
                            format!(
                                "element is in namespace \"{}\", expected \"{namespace}\"",
                                ns.into_inner()
                            ),
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            &format!("{}/{local}", path_of(&stack)),
                            format!("element has no namespace, expected \"{namespace}\""),
                        ));
                    }
                }
                if finished.is_some() {
                    return Err(refuse("/", "more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse(&path_of(&stack), "elements are nested too deeply"));
                }
                let element = Element {
                    name: local,
                    ..Element::default()
                };
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => finished = Some(element),
                    }
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().expect("check_end_names rejects unmatched ends");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => finished = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(refuse("/", "text outside the root element")),
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(current) => current.text.push_str(&t.xml10_content()),
                None => return Err(refuse("/", "CDATA outside the root element")),
            },
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                refuse(&path_of(&stack), format!("the entity reference &{name}; is not accepted: lists use no entities"))
                            })?
                            .to_owned()
                    }
                    Err(e) => {
                        return Err(refuse(
                            &path_of(&stack),
                            format!("bad character reference: {e}"),
                        ));
                    }
                };
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&resolved),
                    None => return Err(refuse("/", "a reference outside the root element")),
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
                if !stack.is_empty() {
                    return Err(refuse(
                        &path_of(&stack),
                        format!(
                            "the document ends inside <{}>: it is truncated",
                            stack.last().map_or("", |e| e.name.as_str())
                        ),
                    ));
                }
                return finished.ok_or_else(|| refuse("/", "the document has no root element"));
            }
        }
    }
}
