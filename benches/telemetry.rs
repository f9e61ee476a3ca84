//! What telemetry costs, measured in one run (issue 6's benchmark):
//! - one `record()` call, off and on (target: < 100 ns, no system call);
//! - `codelens status` wall time with telemetry on vs off on the same tree (target: no
//!   measurable difference).
//!
//! Run it:
//!
//!     cargo bench --bench telemetry                   # 2,000-file tree, 40 runs each
//!     cargo bench --bench telemetry -- --files 10000 --runs 60
//!
//! Numbers live here, never in tests.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codelens::telemetry::{self, EventName, EventType, TelemetryEnv};

const BIN: &str = env!("CARGO_BIN_EXE_codelens");

fn main() {
    let mut files = 2_000usize;
    let mut runs = 40usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--files" => files = args.next().and_then(|v| v.parse().ok()).unwrap_or(files),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            _ => {} // cargo bench passes --bench
        }
    }
    let home = tempfile::tempdir().expect("temp dir");
    record_case(home.path());
    status_case(home.path(), files, runs);
}

/// ns per `record()` call, with the recorder off, then on (one thread, then two
/// threads hammering the same counter: the worst case for the cache line).
fn record_case(home: &Path) {
    const CALLS: u64 = 20_000_000;
    let env_of = |switch: &'static str| {
        let home = home.join("record");
        TelemetryEnv::from_lookup(move |name| match name {
            "CODELENS_TELEMETRY" => Some(switch.to_string()),
            "CODELENS_HOME" => Some(home.to_string_lossy().into_owned()),
            "CODELENS_TELEMETRY_URL" => Some("http://127.0.0.1:9/v1/events".into()),
            _ => None,
        })
    };
    let time = |threads: u64| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..CALLS {
                        telemetry::record(
                            black_box(EventType::McpTool),
                            black_box(EventName::SearchSymbols),
                        );
                    }
                });
            }
        });
        started.elapsed().as_nanos() as f64 / CALLS as f64
    };
    let off = telemetry::start(env_of("0"));
    assert!(!telemetry::is_enabled());
    let off_ns = time(1);
    drop(off);
    let on = telemetry::start(env_of("1"));
    assert!(
        telemetry::is_enabled(),
        "CODELENS_TELEMETRY=1 turns the recorder on"
    );
    let on_ns = time(1);
    let contended_ns = time(2);
    drop(on); // flushes the counts into the temp home, off the measured path
    println!("record() off                  {off_ns:>8.2} ns/call   (target < 100 ns)");
    println!("record() on, 1 thread         {on_ns:>8.2} ns/call   (target < 100 ns)");
    println!("record() on, 2 threads, same counter {contended_ns:>5.2} ns/call per thread");
}

/// `codelens status` on the same indexed tree, telemetry on and off interleaved so
/// drift in the machine's load hits both alike.
fn status_case(home: &Path, files: usize, runs: usize) {
    let tree = home.join("tree");
    generate_tree(&tree, files);
    git(&tree, &["init", "-q", "-b", "main"]);
    let init = Command::new(BIN)
        .args(["init", "-q"])
        .current_dir(&tree)
        .status()
        .expect("codelens init runs");
    assert!(init.success());
    let home_on = home.join("home-on");
    let home_off = home.join("home-off");
    let run = |on: bool| {
        let mut command = Command::new(BIN);
        command
            .arg("status")
            .current_dir(&tree)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("CODELENS_TELEMETRY", if on { "1" } else { "0" })
            .env("CODELENS_HOME", if on { &home_on } else { &home_off })
            .env("CODELENS_TELEMETRY_URL", "http://127.0.0.1:9/v1/events");
        let started = Instant::now();
        let status = command.status().expect("codelens status runs");
        assert!(status.success());
        started.elapsed()
    };
    // Warm the page cache and the buffer file before measuring.
    run(true);
    run(false);
    let mut on = Vec::with_capacity(runs);
    let mut off = Vec::with_capacity(runs);
    for _ in 0..runs {
        on.push(run(true));
        off.push(run(false));
    }
    let (on_median, off_median) = (percentile(&mut on, 50), percentile(&mut off, 50));
    println!(
        "codelens status, {files} files, {runs} runs each: telemetry off median {} p90 {} · on median {} p90 {} · difference {:+.1}%",
        human(off_median),
        human(percentile(&mut off, 90)),
        human(on_median),
        human(percentile(&mut on, 90)),
        (on_median.as_secs_f64() / off_median.as_secs_f64() - 1.0) * 100.0
    );
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

fn human(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success());
}

/// A tree of small Rust files with a few symbols each, in nested directories.
fn generate_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("src/m{}/d{}", i % 17, i % 5));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(format!("f{i}.rs")),
            format!(
                "pub struct S{i} {{ v: u64 }}\n\nimpl S{i} {{\n    pub fn get{i}(&self) -> u64 {{\n        self.v + {i}\n    }}\n}}\n"
            ),
        )
        .expect("write");
    }
}
