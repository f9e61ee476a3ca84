//! `codelens-ingest`: the public telemetry ingest server (see TELEMETRY.md).
//!
//! ```text
//! codelens-ingest [--listen 127.0.0.1:8787] [--db telemetry.db] [--min-machines 5]
//!                 [--max-body 1048576] [--retention-days 730]
//! ```
//! Prints `listening on ADDR` on stdout once it accepts requests (port 0 picks one).
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use codelens_ingest::SqliteStorage;
use codelens_ingest::http::{self, Options};

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
    /// The SQLite database of rollups (created if missing).
    #[arg(long, default_value = "telemetry.db")]
    db: PathBuf,
    /// Aggregate buckets reported by fewer machines are left out.
    #[arg(long, default_value_t = 5)]
    min_machines: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
    /// Days older than this are deleted.
    #[arg(long, default_value_t = 730)]
    retention_days: u64,
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
    let storage = match SqliteStorage::open(&args.db) {
        Ok(storage) => storage,
        Err(error) => {
            eprintln!("codelens-ingest: {}: {error}", args.db.display());
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        max_body: args.max_body,
        min_machines: args.min_machines,
        retention_days: args.retention_days,
        ..Options::default()
    };
    match http::serve(&args.listen, Box::new(storage), options) {
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
