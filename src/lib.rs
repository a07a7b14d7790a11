//! stelselnode: the registry publication node of the MedMij network.

pub mod domain;
pub mod sample;
pub mod xml;
