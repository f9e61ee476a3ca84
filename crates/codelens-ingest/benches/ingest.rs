//! The ingest server's throughput and its POST latency beside aggregates, on SQLite and
//! on PostgreSQL: `cargo bench -p codelens-ingest --bench ingest [-- --seconds N]`.
//!
//! - posts/s with 1, 8 and 64 concurrent clients (each a keep-alive connection posting
//!   one day of 5 rows under its own machine ids), write budget off;
//! - POST p50/p99 with 8 posting clients, first alone (the reference, same run), then
//!   while 20 clients request `GET /v1/aggregate` back to back over a store of
//!   10,000 machines (the target: p99 under 100 ms).
//!
//! PostgreSQL: `CODELENS_TEST_POSTGRES_URL`'s server when set, else a private one
//! started here (see `tests/common/pg.rs`), else that half is skipped, said loudly.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

#[path = "../tests/common/pg.rs"]
mod pg;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use codelens_core::telemetry::buffer::Row;
use codelens_ingest::http::{self, Options};
use codelens_ingest::{PostgresStorage, SqliteStorage, Storage, ValidPayload};

const EVENTS: [&str; 5] = [
    "search_text",
    "search_symbols",
    "find_files",
    "file_outline",
    "index_status",
];
const PREFILLED_MACHINES: u64 = 10_000;

fn machine(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn yesterday() -> String {
    (chrono::Utc::now().date_naive() - chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string()
}

fn body(machine_id: &str, day: &str) -> String {
    let events: Vec<serde_json::Value> = EVENTS
        .iter()
        .map(|name| {
            serde_json::json!({"event_type": "mcp_tool", "event_name": name, "language": "rust",
                "agent": "cursor", "file_count_bucket": "<100", "count": 3})
        })
        .collect();
    serde_json::json!({"schema_version": 1, "machine_id": machine_id,
        "days": [{"timestamp": day, "events": events}]})
    .to_string()
}

fn rows(day: &str) -> Vec<(String, Vec<Row>)> {
    let rows = EVENTS
        .iter()
        .map(|name| Row {
            event_type: "mcp_tool".into(),
            event_name: (*name).into(),
            language: "rust".into(),
            agent: "cursor".into(),
            file_count_bucket: "<100".into(),
            count: 3,
        })
        .collect();
    vec![(day.to_string(), rows)]
}

/// 10,000 machines, each with two days stored on two days of arrival: a store whose
/// GROUP BY takes real work.
fn prefill(storage: &Arc<dyn Storage>) {
    let days: Vec<String> = (2..4)
        .map(|back| {
            (chrono::Utc::now().date_naive() - chrono::Days::new(back))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (storage, days) = (Arc::clone(storage), days.clone());
            std::thread::spawn(move || {
                for n in (t..PREFILLED_MACHINES).step_by(8) {
                    for day in &days {
                        let payload = ValidPayload {
                            machine_id: machine(1 << 40 | n),
                            days: rows(day),
                        };
                        storage.put(&payload, day).expect("prefill");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// `clients` threads posting for `seconds`; returns every POST's latency.
fn post_for(url: &str, clients: u64, seconds: f64, first_id: &AtomicU64) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let day = yesterday();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, stop, day) = (url.to_string(), Arc::clone(&stop), day.clone());
            let ids = first_id.fetch_add(1_000_000, Ordering::Relaxed);
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::new();
                let mut n = ids;
                while !stop.load(Ordering::Relaxed) {
                    let body = body(&machine(n), &day);
                    n += 1;
                    let started = Instant::now();
                    let response = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(&body)
                        .expect("POST");
                    assert_eq!(response.status().as_u16(), 200, "POST refused");
                    let _ = response.into_body().read_to_string();
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort();
    latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bench(name: &str, storage: Arc<dyn Storage>, seconds: f64) {
    let started = Instant::now();
    prefill(&storage);
    println!(
        "{name}: prefilled {PREFILLED_MACHINES} machines x 2 days x 5 rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let options = Options {
        write_budget: 0,
        min_machines: 1,
        min_days_seen: 1,
        max_bodies: 64,
        ..Options::default()
    };
    let running = http::serve("127.0.0.1:0", storage, options).expect("serves");
    let base = format!("http://{}/v1", running.addr);
    let events = format!("{base}/events");
    let ids = AtomicU64::new(1);
    for clients in [1, 8, 64] {
        let posts = post_for(&events, clients, seconds, &ids).len();
        println!(
            "{name}: {clients:>2} clients: {:>7.0} posts/s",
            posts as f64 / seconds
        );
    }

    let mut alone = post_for(&events, 8, seconds, &ids);
    println!(
        "{name}: POST with 8 clients, no aggregates (reference): p50 {}, p99 {} ({} posts)",
        ms(percentile(&mut alone, 0.50)),
        ms(percentile(&mut alone, 0.99)),
        alone.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (url, stop) = (format!("{base}/aggregate"), Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = agent();
                let mut waits = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let response = agent.get(&url).call().expect("GET");
                    assert_eq!(response.status().as_u16(), 200);
                    let _ = response
                        .into_body()
                        .with_config()
                        .limit(1 << 30)
                        .read_to_vec();
                    waits.push(started.elapsed());
                }
                waits
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut beside = post_for(&events, 8, seconds, &ids);
    stop.store(true, Ordering::Relaxed);
    let mut aggregates: Vec<Duration> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    let p99 = percentile(&mut beside, 0.99);
    println!(
        "{name}: POST with 8 clients while 20 clients GET /v1/aggregate: p50 {}, p99 {} ({} posts) — target p99 < 100 ms: {}",
        ms(percentile(&mut beside, 0.50)),
        ms(p99),
        beside.len(),
        if p99 < Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "{name}:   meanwhile {} aggregate requests answered, each in p50 {} (concurrent requests share one query)",
        aggregates.len(),
        ms(percentile(&mut aggregates, 0.50)),
    );
    running.stop();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seconds = 3.0;
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStorage::open(&dir.path().join("bench.db")).expect("SQLite");
    bench("sqlite", Arc::new(sqlite), seconds);

    let mut own_server = None;
    let url = match std::env::var(pg::URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => match pg::PgCluster::start() {
            Ok(cluster) => {
                let url = cluster.url();
                own_server = Some(cluster);
                Some(url)
            }
            Err(why) => {
                println!("postgres: SKIPPED, no server: {why}");
                None
            }
        },
    };
    if let Some(url) = url {
        let database = pg::fresh_database(&url);
        let storage = PostgresStorage::connect(&database).expect("PostgreSQL");
        bench("postgres", Arc::new(storage), seconds);
    }
    drop(own_server);
}
