//! The real `codelens-ingest` binary on 127.0.0.1: it says where it listens, answers
//! over HTTP, refuses what it cannot parse with a 400 and never crashes on it. (The
//! client-to-server round trips are in the `codelens` crate's telemetry tests, which run
//! this same binary.)
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One HTTP/1.1 request on a fresh connection: the status code and the body.
fn request(addr: &str, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{head} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[test]
fn the_binary_listens_answers_and_refuses_what_it_cannot_parse() {
    let db = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_codelens-ingest"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(db.path().join("telemetry.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("codelens-ingest starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();

    let (code, body) = request(&addr, "GET /v1/aggregate", "");
    assert_eq!(code, 200, "{body}");
    let aggregate: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(aggregate["buckets"], serde_json::json!([]), "{aggregate}");

    for bad in ["not json", "{}", "[1,2,3]"] {
        let (code, body) = request(&addr, "POST /v1/events", bad);
        assert_eq!(code, 400, "{bad:?}: {body}");
    }
    // Still serving after the bad payloads.
    let (code, _) = request(&addr, "GET /v1/aggregate", "");
    assert_eq!(code, 200);
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    child.kill().unwrap();
    child.wait().unwrap();
}
