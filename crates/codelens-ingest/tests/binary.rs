//! The real `codelens-ingest` binary on 127.0.0.1: it says where it listens, answers
//! over HTTP, refuses what it cannot parse with a 400 and never crashes on it — on
//! every backend. (The client-to-server round trips are in the `codelens` crate's
//! telemetry tests, which run this same binary.)
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

mod common;

use common::{Backend, Ingest, request};

#[test]
fn the_binary_listens_answers_and_refuses_what_it_cannot_parse() {
    for backend in Backend::all() {
        let mut ingest = Ingest::start(&backend, &[]);
        let aggregate = ingest.aggregate();
        assert_eq!(aggregate["buckets"], serde_json::json!([]), "{aggregate}");

        for bad in ["not json", "{}", "[1,2,3]"] {
            let (code, body) = ingest.post(bad);
            assert_eq!(code, 400, "{}: {bad:?}: {body}", backend.name());
        }
        // Still serving after the bad payloads.
        assert_eq!(request(&ingest.addr, "GET /v1/aggregate", "").0, 200);
        assert!(
            ingest.child.try_wait().unwrap().is_none(),
            "the server exited"
        );
    }
}

#[test]
fn an_unreachable_or_malformed_database_is_one_line_and_a_failure() {
    for (url, says) in [
        // Port 1 on 127.0.0.1: nothing listens there, the connection is refused at once.
        ("postgres://nobody:secret@127.0.0.1:1/none", "refused"),
        ("not a url", "not a usable PostgreSQL URL"),
        (
            "postgres://nobody:secret@127.0.0.1:port/none",
            "invalid value",
        ),
        ("postgres://nobody:secret@127.0.0.1:1", "dbname"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_codelens-ingest"))
            .args(["--listen", "127.0.0.1:0", "--database", url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{url}: {stderr}");
        assert!(
            stderr.starts_with("codelens-ingest: --database: "),
            "{url}: {stderr}"
        );
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(
            !stderr.contains("secret"),
            "the password is never shown: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
