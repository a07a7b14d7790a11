//! stelselnode: the registry publication node of the MedMij network.
//!
//! `domain` holds the lists as types that cannot be invalid; `xml` renders and parses their
//! official format; `storage` keeps them (SQLite or PostgreSQL); `import` brings existing
//! lists in; `config` and `cli` are the operator's side.

pub mod admin_client;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod dev;
pub mod devpki;
pub mod domain;
pub mod import;
pub mod integrity;
pub mod metrics;
pub mod mutations;
pub mod publication;
pub mod roles;
pub mod sample;
pub mod server;
pub mod signing;
pub mod storage;
pub mod tls;
pub mod xml;
