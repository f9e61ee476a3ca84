//! codelens: a code index that keeps itself honest about its own freshness.
//!
//! The binary (`src/main.rs`) is a thin command-line front end over [`engine`].

// The containment rule of clippy.toml binds the engine and the MCP server (each denies
// it); the rest of the crate (installers, telemetry, the ingest server) works with
// files of its own, never the project's.
#![allow(clippy::disallowed_methods)]

pub mod config;
pub mod engine;
pub mod fsutil;
pub mod humanize;
pub mod ingest;
pub mod install;
pub mod mcp;
pub mod telemetry;
pub mod ui;
