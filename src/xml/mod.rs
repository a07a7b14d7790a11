//! The official XML formats of the four lists: deterministic rendering for publication and
//! strict parsing for import.

// Request text is never sliced or indexed where it could panic (issue 11).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

mod check;
mod parse;
mod render;
mod tree;

pub use check::{CheckedDocument, CheckedEntries, check_rendered, check_rendered_entries};
pub use parse::{MAX_DOCUMENT_BYTES, parse_list};
pub use render::{Rendered, render_entry, render_header, render_list, render_version};

#[cfg(test)]
mod tests;
