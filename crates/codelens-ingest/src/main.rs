//! `codelens-ingest`: the public telemetry ingest server (see TELEMETRY.md).
//!
//! ```text
//! codelens-ingest [--listen 127.0.0.1:8787] [--db telemetry.db | --database postgres://…]
//!                 [--min-machines 5] [--min-days-seen 2] [--max-body 1048576]
//!                 [--retention-days 730] [--max-connections 512] [--max-bodies 16]
//!                 [--write-budget 20000]
//! ```
//! Prints `listening on ADDR` on stdout once it accepts requests (port 0 picks one).
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use codelens_ingest::http::{self, Options};
use codelens_ingest::{PostgresStorage, SqliteStorage, Storage};

#[derive(Debug, Parser)]
#[command(
    name = "codelens-ingest",
    version,
    about = "The codelens telemetry ingest server"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// The SQLite database of rollups (created if missing): the embedded default.
    #[arg(long, default_value = "telemetry.db", conflicts_with = "database")]
    db: PathBuf,
    /// A PostgreSQL database instead (`postgres://user@host:port/db`), which several
    /// replicas can share; tables and indexes are created if missing.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Aggregate buckets reported by fewer machines are left out.
    #[arg(long, default_value_t = defaults().min_machines)]
    min_machines: u64,
    /// Aggregates count only machines that posted on at least this many distinct days.
    #[arg(long, default_value_t = defaults().min_days_seen)]
    min_days_seen: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = defaults().max_body)]
    max_body: usize,
    /// Days older than this are refused and deleted.
    #[arg(long, default_value_t = defaults().retention_days)]
    retention_days: u64,
    /// Connections served at once (more wait in the listen backlog).
    #[arg(long, default_value_t = defaults().max_connections)]
    max_connections: usize,
    /// Request bodies held in memory at once.
    #[arg(long, default_value_t = defaults().max_bodies)]
    max_bodies: usize,
    /// Rows written per second, all clients together (beyond it: 429); 0 for none.
    #[arg(long, default_value_t = defaults().write_budget)]
    write_budget: u64,
}

fn defaults() -> Options {
    Options::default()
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let text = error.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("codelens-ingest: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let storage: Arc<dyn Storage> = match &args.database {
        // A write connection for every body slot (a put runs while its request holds
        // one), and two for DELETEs and retention: puts never wait for a connection.
        Some(url) => match PostgresStorage::connect_with(url, args.max_bodies.max(1) + 2) {
            Ok(storage) => Arc::new(storage),
            Err(error) => {
                // Not the URL itself: it may hold a password.
                eprintln!("codelens-ingest: --database: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => match SqliteStorage::open(&args.db) {
            Ok(storage) => Arc::new(storage),
            Err(error) => {
                eprintln!("codelens-ingest: {}: {error}", args.db.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let options = Options {
        max_body: args.max_body,
        min_machines: args.min_machines,
        min_days_seen: args.min_days_seen.max(1),
        retention_days: args.retention_days,
        max_connections: args.max_connections.max(1),
        max_bodies: args.max_bodies.max(1),
        write_budget: args.write_budget,
        ..defaults()
    };
    match http::serve(&args.listen, storage, options) {
        Ok(running) => {
            println!("listening on {}", running.addr);
            running.wait();
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("codelens-ingest: {error}");
            ExitCode::FAILURE
        }
    }
}
