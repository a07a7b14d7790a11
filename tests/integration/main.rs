//! All integration tests in one binary (one link step, one run).

/// Runs each named `async fn(TestDatabase)` once on SQLite and once on PostgreSQL: every
/// behaviour that depends on the database is tested on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                super::$name(crate::support::sqlite().await).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                super::$name(crate::support::postgres().await).await
            })*
        }
    };
}

mod architecture;
mod archive;
mod archive_log;
mod availability;
mod backup;
mod cli;
mod conformance;
mod connections;
mod consistency;
mod consumer;
mod crashes;
mod dev_mode;
mod encodings;
mod failover;
mod faults;
mod fuzz;
mod hostile_bundles;
mod hostile_input;
mod hsm;
mod leases;
mod logging;
mod mutation_storage;
mod mutation_workflow;
mod openapi;
mod publication;
mod restore;
mod served_bytes;
mod server;
mod signatures;
mod sla;
mod state_cache;
mod storage_contract;
mod support;
mod transparency;
mod ui;
mod ui_pages;
mod witnesses;
mod workflow;
