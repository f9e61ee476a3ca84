//! codelens: a code index that keeps itself honest about its own freshness.
//!
//! The binary (`src/main.rs`) is a thin command-line front end over [`engine`].

pub mod config;
pub mod engine;
pub mod fsutil;
pub mod humanize;
pub mod ingest;
pub mod install;
pub mod mcp;
pub mod telemetry;
pub mod ui;
