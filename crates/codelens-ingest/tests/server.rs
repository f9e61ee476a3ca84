//! The hardened ingest server, the real binary on 127.0.0.1, on every backend (SQLite,
//! and PostgreSQL when a server is there: see `common/pg.rs`): 413 before reading,
//! canonical input only, the write budget, sybil-resistant suppression, the connection
//! cap and its memory bound, aggregates beside writes, and two replicas on one
//! PostgreSQL.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use codelens_ingest::http::Options;
use common::{Backend, Ingest, count_of, day, machine, payload, read_response, request};

/// Every machine counts, every bucket shows: for tests of what is stored.
const OPEN: &[&str] = &["--min-machines", "1", "--min-days-seen", "1"];

#[test]
fn a_declared_length_over_the_limit_is_refused_before_any_body_is_sent() {
    for backend in Backend::all() {
        let ingest = Ingest::start(&backend, &["--max-body", "1000"]);
        let mut stream = TcpStream::connect(&ingest.addr).unwrap();
        // Less than the body deadline (5 s): the answer must not wait for it.
        stream
            .set_read_timeout(Some(Duration::from_secs(4)))
            .unwrap();
        write!(
            stream,
            "POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n"
        )
        .unwrap();
        let (code, body) = read_response(&mut stream);
        assert_eq!(code, 413, "{}: {body}", backend.name());
        // A client that writes a too-large body before reading sees the 413 too.
        let big = " ".repeat(5000);
        let (code, _) = request(&ingest.addr, "POST /v1/events", &big);
        assert_eq!(code, 413);
        assert_eq!(
            ingest
                .post(&payload(&machine(1), &[(&day(-1), &[("find_files", 1)])]))
                .0,
            200
        );
    }
}

#[test]
fn only_canonical_ids_and_days_within_retention_are_accepted() {
    for backend in Backend::all() {
        let ingest = Ingest::start(&backend, &[OPEN, &["--retention-days", "30"]].concat());
        let id = "6f9619ff-8b86-4d11-b42d-00c04fc964ff";
        let events: &[(&str, u64)] = &[("search_text", 1)];
        for (bad_id, why) in [
            (id.to_uppercase(), "upper case"),
            (format!("{{{id}}}"), "braces"),
            (id.replace('-', ""), "no hyphens"),
            (format!("urn:uuid:{id}"), "a URN"),
            ("6f9619ff-8b86-1d11-b42d-00c04fc964ff".into(), "version 1"),
        ] {
            let (code, body) = ingest.post(&payload(&bad_id, &[(&day(-1), events)]));
            assert_eq!(code, 400, "{}: {why}: {body}", backend.name());
        }
        for (bad_day, why) in [(day(-31), "past retention"), (day(2), "the future")] {
            let (code, body) = ingest.post(&payload(id, &[(&bad_day, events)]));
            assert_eq!(code, 400, "{why}: {body}");
            assert!(body.contains("retention window"), "{body}");
        }
        assert_eq!(
            ingest
                .post(&payload(id, &[(&day(-30), events), (&day(1), events)]))
                .0,
            200
        );
        let upper = format!("DELETE /v1/machines/{}", id.to_uppercase());
        assert_eq!(request(&ingest.addr, &upper, "").0, 400);
        assert_eq!(count_of(&ingest.aggregate(), "search_text"), 2);
        let (code, body) = request(&ingest.addr, &format!("DELETE /v1/machines/{id}"), "");
        assert_eq!((code, body.as_str()), (200, r#"{"deleted_rows":2}"#));
    }
}

#[test]
fn made_up_ids_on_one_day_reveal_nothing_with_the_default_suppression() {
    for backend in Backend::all() {
        let ingest = Ingest::start(&backend, &[]);
        // Four posts under made-up ids (more than the issue's attack needed), each
        // claiming several days: none of them has been seen on two days of arrival.
        for n in 1..=8 {
            let days = [
                (day(-3), &[("file_outline", 7)][..]),
                (day(-2), &[("file_outline", 7)][..]),
            ];
            let days: Vec<(&str, &[(&str, u64)])> =
                days.iter().map(|(d, e)| (d.as_str(), *e)).collect();
            assert_eq!(ingest.post(&payload(&machine(n), &days)).0, 200);
        }
        let aggregate = ingest.aggregate();
        assert_eq!(
            aggregate["buckets"],
            serde_json::json!([]),
            "{}: {aggregate}",
            backend.name()
        );
        assert_eq!(aggregate["min_days_seen"], 2);
        assert_eq!(aggregate["min_machines"], 5);
    }
}

#[test]
fn writes_beyond_the_global_budget_are_answered_429() {
    for backend in Backend::all() {
        // 1 row a second, 2 saved up at most: a post of 5 rows takes the whole bucket,
        // and the next can pass only 2 s later. However slow the machine, 10 posts sent
        // back to back cannot all pass unless they take 18 s or more; the budget is not a
        // matter of timing here, only of counts.
        let ingest = Ingest::start(&backend, &[OPEN, &["--write-budget", "1"]].concat());
        let events: &[(&str, u64)] = &[
            ("search_text", 1),
            ("search_symbols", 1),
            ("find_files", 1),
            ("file_outline", 1),
            ("index_status", 1),
        ];
        let started = std::time::Instant::now();
        let mut accepted = 0;
        let mut refused = 0;
        for n in 0..10 {
            match ingest.post(&payload(&machine(n), &[(&day(-1), events)])) {
                (200, _) => accepted += 1,
                (429, body) => {
                    assert!(body.contains("write budget"), "{body}");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        let took = started.elapsed();
        assert!(
            accepted >= 1,
            "{}: the first post is within budget",
            backend.name()
        );
        if took < Duration::from_secs(18) {
            assert!(refused > 0, "{}: nothing refused", backend.name());
        }
        // A refused post wrote nothing: only the accepted machines are counted.
        assert_eq!(ingest.aggregate()["buckets"][0]["machines"], accepted);
    }
}

#[test]
fn many_large_bodies_at_once_stay_within_the_stated_memory_bound() {
    let backend = Backend::Sqlite(tempfile::tempdir().unwrap());
    let options = Options {
        max_connections: 16,
        max_bodies: 4,
        max_body: 1024 * 1024,
        ..Options::default()
    };
    let ingest = Ingest::start(
        &backend,
        &[
            "--max-connections",
            "16",
            "--max-bodies",
            "4",
            "--max-body",
            "1048576",
        ],
    );
    // Warm up: one request of each kind, so the baseline has its threads and buffers.
    assert_eq!(
        request(&ingest.addr, "POST /v1/events", &" ".repeat(1 << 20)).0,
        400
    );
    let before = ingest.peak_rss_kib();
    let clients = 200;
    let body = std::sync::Arc::new(format!(
        "{{\"schema_version\":1,\"x\":\"{}\"}}",
        "a".repeat((1 << 20) - 40)
    ));
    assert!(body.len() <= 1 << 20);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, body) = (ingest.addr.clone(), body.clone());
            std::thread::spawn(move || request(&addr, "POST /v1/events", &body).0)
        })
        .collect();
    let codes: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        codes.iter().all(|&c| c == 400),
        "every client answered: {codes:?}"
    );
    let grown_kib = ingest.peak_rss_kib().saturating_sub(before);
    let bound_kib = (options.memory_bound() / 1024) as u64;
    // Without the caps, 200 such bodies took 186 MB.
    assert!(
        grown_kib <= bound_kib,
        "the peak grew {grown_kib} KiB for {clients} clients; the stated bound is {bound_kib} KiB"
    );
}

#[test]
fn posts_go_on_while_aggregates_run() {
    for backend in Backend::all() {
        let ingest = Ingest::start(&backend, OPEN);
        let addr = ingest.addr.clone();
        let readers: Vec<_> = (0..20)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    (0..5)
                        .map(|_| request(&addr, "GET /v1/aggregate", "").0)
                        .filter(|&c| c == 200)
                        .count()
                })
            })
            .collect();
        for n in 0..50 {
            let (code, body) = ingest.post(
                &payload(&machine(n), &[(&day(-1), &[("sync_x", 1)][..])])
                    .replace("sync_x", "search_text"),
            );
            assert_eq!(code, 200, "{}: {body}", backend.name());
        }
        let answered: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert_eq!(answered, 100);
        // Each answer is at least as new as its request: all 50 are in the last one.
        assert_eq!(count_of(&ingest.aggregate(), "search_text"), 50);
    }
}

#[test]
fn two_replicas_on_one_postgres_take_interleaved_posts_of_one_machine_and_day_idempotently() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let replicas = [Ingest::start(&backend, OPEN), Ingest::start(&backend, OPEN)];
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let yesterday = day(-1);
    // 8 clients, each alternating between the replicas, re-sending the same two
    // machines' same day (as a client retrying after a lost reply would).
    let handles: Vec<_> = (0..8)
        .map(|client| {
            let (addrs, yesterday) = (addrs.clone(), yesterday.clone());
            std::thread::spawn(move || {
                for round in 0..25 {
                    let addr = &addrs[(client + round) % 2];
                    let id = machine((round % 2) as u64 + 1);
                    let body = payload(
                        &id,
                        &[(&yesterday, &[("search_text", 3), ("find_files", 1)])],
                    );
                    let (code, answer) = request(addr, "POST /v1/events", &body);
                    assert_eq!(code, 200, "{answer}");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    for replica in &replicas {
        let aggregate = replica.aggregate();
        assert_eq!(count_of(&aggregate, "search_text"), 6, "{aggregate}");
        assert_eq!(count_of(&aggregate, "find_files"), 2, "{aggregate}");
        let machines: Vec<u64> = aggregate["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["machines"].as_u64().unwrap())
            .collect();
        assert_eq!(machines, vec![2, 2]);
    }
}
