//! What the ingest crate's tests share: the two storage backends, the real binary on
//! 127.0.0.1, raw HTTP/1.1 requests and payloads.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine
#![allow(dead_code)] // each test binary uses its own part of this

pub mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use codelens_ingest::{PostgresStorage, SqliteStorage, Storage};

/// A fresh, empty store of one kind, with what it takes to reach it again (for the
/// binary) and to keep it alive.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    /// One fresh store of each kind: SQLite always, PostgreSQL when a server is there
    /// (see [`pg::test_server`]).
    pub fn all() -> Vec<Backend> {
        let mut backends = vec![Backend::Sqlite(tempfile::tempdir().unwrap())];
        if let Some(server) = pg::test_server() {
            backends.push(Backend::Postgres(pg::fresh_database(&server)));
        }
        backends
    }

    pub fn postgres() -> Option<Backend> {
        pg::test_server().map(|server| Backend::Postgres(pg::fresh_database(&server)))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The binary's arguments that select this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite(dir) => vec![
                "--db".into(),
                dir.path()
                    .join("telemetry.db")
                    .to_string_lossy()
                    .into_owned(),
            ],
            Backend::Postgres(url) => vec!["--database".into(), url.clone()],
        }
    }

    pub fn open(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Sqlite(dir) => {
                Arc::new(SqliteStorage::open(&dir.path().join("telemetry.db")).unwrap())
            }
            Backend::Postgres(url) => Arc::new(PostgresStorage::connect(url).unwrap()),
        }
    }
}

/// The real `codelens-ingest` on 127.0.0.1 with a port of its own, killed when dropped.
pub struct Ingest {
    pub child: Child,
    pub addr: String,
}

impl Ingest {
    pub fn start(backend: &Backend, args: &[&str]) -> Ingest {
        let mut child = Command::new(env!("CARGO_BIN_EXE_codelens-ingest"))
            .args(["--listen", "127.0.0.1:0"])
            .args(backend.args())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("codelens-ingest starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{}: first line {line:?}", backend.name()))
            .to_string();
        Ingest { child, addr }
    }

    pub fn post(&self, body: &str) -> (u16, String) {
        request(&self.addr, "POST /v1/events", body)
    }

    pub fn aggregate(&self) -> serde_json::Value {
        let (code, body) = request(&self.addr, "GET /v1/aggregate", "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The server's peak resident memory so far, KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: the status code and the body.
pub fn request(addr: &str, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{head} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut stream)
}

pub fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

pub fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A machine id in the canonical form, made from a number (the version and variant
/// nibbles set as a UUID v4 has them).
pub fn machine(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A payload of one machine: `(day, [(event_name, count)])`, every event an MCP tool
/// with fixed context.
pub fn payload(machine_id: &str, days: &[(&str, &[(&str, u64)])]) -> String {
    let days: Vec<serde_json::Value> = days
        .iter()
        .map(|(day, events)| {
            serde_json::json!({
                "timestamp": day,
                "events": events.iter().map(|(name, count)| serde_json::json!({
                    "event_type": "mcp_tool", "event_name": name, "language": "rust",
                    "agent": "cursor", "file_count_bucket": "<100", "count": count,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({"schema_version": 1, "machine_id": machine_id, "days": days}).to_string()
}

/// The total count of `event_name` over the published buckets.
pub fn count_of(aggregate: &serde_json::Value, event_name: &str) -> u64 {
    aggregate["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["event_name"] == event_name)
        .map(|b| b["count"].as_u64().unwrap())
        .sum()
}
