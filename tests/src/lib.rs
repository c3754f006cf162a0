//! Test support shared by Switchyard's test suites: fake LLM provider APIs (the only thing
//! the tests imitate), written from each provider's published API reference, and a harness
//! that runs the real `switchyard-sidecar` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

pub mod fake;
pub mod sidecar;
