//! The official XML formats of the four lists: deterministic rendering for publication and
//! strict parsing for import.

mod parse;
mod render;
mod tree;

pub use parse::{MAX_DOCUMENT_BYTES, parse_list};
pub use render::render_list;

#[cfg(test)]
mod tests;
