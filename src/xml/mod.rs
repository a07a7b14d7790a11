//! The official XML formats of the four lists: deterministic rendering for publication and
//! strict parsing for import.

mod check;
mod parse;
mod render;
mod tree;

pub use check::check_rendered;
pub use parse::{MAX_DOCUMENT_BYTES, parse_list};
pub use render::render_list;

#[cfg(test)]
mod tests;
