//! All integration tests in one binary (one link step, one run).

mod cli;
mod conformance;
mod consumer;
mod dev_mode;
mod http_client;
mod publication;
mod server;
mod signatures;
mod storage_contract;
mod support;
mod verifiers;
