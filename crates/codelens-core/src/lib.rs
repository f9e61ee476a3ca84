//! codelens-core: the engine of codelens — the index store, the walk and the watcher,
//! the freshness verdict, the read API, configuration and opt-in telemetry — with no
//! front end in it. The `codelens` crate's CLI, dashboard and MCP server render what
//! this crate decides; `scripts/test` fails if a terminal, MCP, HTTP-server or
//! progress-bar library ever enters its dependencies.

// The containment rule of clippy.toml binds the engine (which denies it again); the
// rest (telemetry, configuration) works with files of its own, never the project's.
#![allow(clippy::disallowed_methods)]

pub mod config;
pub mod engine;
pub mod fsutil;
pub mod humanize;
pub mod telemetry;
