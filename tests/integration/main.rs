//! The integration tests, as one test binary: each module below was a test crate of its
//! own (`tests/NAME.rs`), and each linked the whole of codelens again. Together they
//! link it once; `cargo test --test integration MODULE::` runs one of them.
//!
//! Tests here share one process (two at a time, as the harness runs them): none may set
//! the test process's environment or current directory, or rely on any other
//! process-wide state; what a child needs is given to that child's `Command`.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod containment;
mod dircache;
mod engine;
mod faults;
mod freshness;
mod index;
mod install;
mod mcp;
mod mcp_fuzz;
mod mcp_rmcp;
mod reliability_concurrency;
mod reliability_kill;
mod reliability_storms;
mod soak;
mod telemetry;
mod tui;
mod watcher;
mod worktree;
