//! codelens: a code index that keeps itself honest about its own freshness.
//!
//! This crate holds the front ends — the dashboard ([`ui`]), the MCP server ([`mcp`]) and
//! `codelens install` ([`install`]); the binary (`src/main.rs`, `src/cli/`) is the
//! command line. They render and translate what the engine in `codelens-core` decides;
//! its modules are re-exported here under their usual names.

// The containment rule of clippy.toml binds the engine and the MCP server (each denies
// it); the rest of the crate (installers, the dashboard) works with files of its own,
// never the project's.
#![allow(clippy::disallowed_methods)]

pub use codelens_core::{config, engine, fsutil, humanize, telemetry};

pub mod install;
pub mod mcp;
pub mod ui;
