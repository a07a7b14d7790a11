//! stelselnode: the registry publication node of the MedMij network.
//!
//! - `domain`: the lists, mutations and their life cycle, the working state and the audit
//!   record, as types that cannot be invalid; nothing there knows of HTTP, SQL or XML.
//! - `xml` renders and parses the lists' official format; `signing` signs and verifies.
//! - `integrity` checks whole lists before publication (SPEC §4 rules 4–7).
//! - `calendar`: werkdagen (SPEC §8) and business time between instants.
//! - Services, each owning its dependencies with I/O at the edges: `publication::Publisher`
//!   (snapshot → check → render → sign → store, and the preview of exactly that),
//!   `mutations::MutationWorkflow` (submit, decide, approve-then-publish, schedule, the open
//!   queue, release clean-up), `sla::SlaService`, the archive's `ArchiveExports`,
//!   `ArchiveCheck` and `Retention`, `audit_log::AuditLog`.
//! - `leases`: which replica runs each singleton job (the nightly archive, retention, …).
//! - `services`: the composition root — `Services::build` makes all of them once, for
//!   `serve`, `dev`, the CLI and the tests alike.
//! - `storage`: one small trait per concern, their transaction logic written once over
//!   SQLite and PostgreSQL.
//! - `server`: the three listeners; handlers extract, call a service and answer.
//! - `tls`, `roles`: who is on the other end of a connection and what they may do.
//! - The operator's side: `config`, `cli` (with `admin_client` for staff), `dev`, `import`,
//!   `consumer` (the verifier for nodes), `sample`, `metrics`, `clock`.

// No `unsafe` anywhere (also `unsafe_code = "forbid"` in Cargo.toml's `[lints]`).
#![forbid(unsafe_code)]

pub mod admin_client;
pub mod archive;
pub mod audit_log;
pub mod background;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod dev;
pub mod devpki;
pub mod domain;
pub mod import;
pub mod integrity;
pub mod leases;
pub mod metrics;
pub mod mutations;
pub mod publication;
pub mod roles;
pub mod sample;
pub mod server;
pub mod services;
pub mod signing;
pub mod sla;
pub mod storage;
pub mod tls;
pub mod transparency;
pub mod xml;
