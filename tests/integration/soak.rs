//! Soak: a watching engine (`codelens watch`, a real process) under random edits, new
//! files, renames, deletes and branch switches for 10 minutes, checked every 30 s: every
//! file whose content differs from the index (hashed independently, by the oracle) must
//! be in `status --json`'s pending list. The engine's RSS, CPU time and open descriptors
//! are sampled from /proc at every check and must not grow without bound.
//!
//! Opt-in (it is long):
//!   cargo test --release --test integration -- --ignored --nocapture soak::
//! `CODELENS_SOAK_SECS` (default 600) and `CODELENS_SOAK_CHECK_SECS` (default 30) shorten
//! it; `CODELENS_SOAK_SEED` replays a run.

use crate::common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::rng::Rng;
use common::*;

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// RSS in KiB, CPU (user + system) in clock ticks, open descriptors.
fn sample(pid: u32) -> (u64, u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let cpu = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, cpu, fds)
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const DIRS: usize = 20;

fn source(rng: &mut Rng, n: usize) -> String {
    let functions = 1 + rng.index(8);
    (0..functions)
        .map(|k| {
            format!(
                "pub fn soak_{n}_{k}_{}() -> u64 {{ {} }}\n",
                rng.next_u64() % 1000,
                k
            )
        })
        .collect()
}

/// One random change to the tree.
fn mutate(
    repo: &TestRepo,
    rng: &mut Rng,
    files: &mut Vec<String>,
    counter: &mut usize,
) -> &'static str {
    let pick = rng.index(100);
    if files.is_empty() || pick < 25 {
        *counter += 1;
        let path = format!("d{}/new_{counter}.rs", rng.index(DIRS));
        repo.write(&path, &source(rng, *counter));
        files.push(path);
        return "create";
    }
    let i = rng.index(files.len());
    match pick {
        25..=69 => {
            let n = rng.index(1_000_000);
            repo.write(&files[i], &source(rng, n));
            "edit"
        }
        70..=84 => {
            *counter += 1;
            let to = format!("d{}/moved_{counter}.rs", rng.index(DIRS));
            std::fs::create_dir_all(repo.path(&to).parent().unwrap()).unwrap();
            if std::fs::rename(repo.path(&files[i]), repo.path(&to)).is_ok() {
                files[i] = to;
            }
            "rename"
        }
        _ => {
            let _ = std::fs::remove_file(repo.path(&files[i]));
            files.swap_remove(i);
            "delete"
        }
    }
}

/// Every file of the tree (git's listing, as the oracle reads it), relative, for the
/// mutator to pick from after a checkout.
fn list_files(repo: &TestRepo) -> Vec<String> {
    oracle::expected_paths(&repo.root())
        .iter()
        .map(|p| oracle::lossy(p))
        .collect()
}

#[test]
#[ignore = "a 10-minute soak: cargo test --release --test integration -- --ignored --nocapture soak::"]
fn a_watching_engine_stays_honest_for_ten_minutes() {
    let total = Duration::from_secs(env_secs("CODELENS_SOAK_SECS", 600));
    let every = Duration::from_secs(env_secs("CODELENS_SOAK_CHECK_SECS", 30));
    let seed = env_secs("CODELENS_SOAK_SEED", 0x50A4_5EED);
    let mut rng = Rng::new(seed);
    eprintln!("soak: {total:?}, checked every {every:?}, seed {seed}");

    let repo = TestRepo::new();
    let mut counter = 0;
    for n in 0..400 {
        repo.write(&format!("d{}/f{n}.rs", n % DIRS), &source(&mut rng, n));
    }
    repo.commit_all("initial");
    repo.git(&["checkout", "-q", "-b", "other"]);
    for n in (0..400).step_by(4) {
        repo.write(
            &format!("d{}/f{n}.rs", n % DIRS),
            &source(&mut rng, n + 10_000),
        );
    }
    repo.commit_all("other");
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["init", "-q"]);

    let child = codelens_command(&repo.root(), &["watch"])
        .env("CODELENS_TELEMETRY", "0")
        .env("CODELENS_WATCH_DEBOUNCE_MS", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("codelens watch starts");
    let pid = child.id();
    let _watch = Watch(child);

    let started = Instant::now();
    let mut files = list_files(&repo);
    let mut ops = std::collections::BTreeMap::<&str, u64>::new();
    let mut checks = 0;
    let mut warm_rss = None;
    let mut samples = Vec::new();
    let ticks = ticks_per_second();
    while started.elapsed() < total {
        let round = Instant::now();
        while round.elapsed() < every && started.elapsed() < total {
            if rng.index(400) == 0 {
                // A branch switch, as a user does it: commit what is there, check out.
                repo.git(&["add", "-A"]);
                repo.git(&["commit", "-q", "--allow-empty", "-m", "wip"]);
                let branch = repo.git(&["branch", "--show-current"]);
                let to = if branch.trim() == "main" {
                    "other"
                } else {
                    "main"
                };
                repo.git(&["checkout", "-q", to]);
                files = list_files(&repo);
                *ops.entry("checkout").or_default() += 1;
            } else {
                *ops.entry(mutate(&repo, &mut rng, &mut files, &mut counter))
                    .or_default() += 1;
            }
            // Bursts and pauses, like a person and their tools.
            if rng.index(20) == 0 {
                std::thread::sleep(Duration::from_millis(rng.index(300) as u64));
            }
        }
        // Edits pause; the kernel's events reach the engine (a moment, not a bound).
        std::thread::sleep(Duration::from_millis(500));
        let status = repo.status_json();
        assert_eq!(status["watcher"]["engine"], "running", "{status}");
        let stale = oracle::silently_stale(&repo.root(), &status);
        checks += 1;
        let (rss, cpu, fds) = sample(pid);
        let pending = status["pending"].as_array().unwrap().len();
        eprintln!(
            "soak: t={:>4}s check {checks}: {} files, {pending} pending, {} rescans, rss {} MiB, cpu {:.1} s, fds {fds}",
            started.elapsed().as_secs(),
            status["files"],
            status["watcher"]["rescans"],
            rss / 1024,
            cpu as f64 / ticks as f64,
        );
        assert!(
            stale.is_empty(),
            "seed {seed}: differ from the index without being pending: {stale:?}"
        );
        if checks == 1 {
            warm_rss = Some(rss);
        }
        samples.push((rss, cpu, fds));
    }

    // The edits stop: the watcher settles and the index equals the tree.
    let settled = Instant::now();
    loop {
        let status = repo.status_json();
        let differing = oracle::differing(&repo.root());
        if status["pending"].as_array().unwrap().is_empty() && differing.is_empty() {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(120),
            "seed {seed}: never settled: {} {status}",
            differing.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (rss, cpu, fds) = sample(pid);
    let warm = warm_rss.unwrap();
    let peak = samples.iter().map(|s| s.0).max().unwrap();
    eprintln!(
        "soak: done after {:?}: ops {ops:?}; {checks} checks, 0 silently stale; engine RSS warm {} MiB, peak {} MiB, end {} MiB; CPU {:.1} s; fds {} → {fds}",
        started.elapsed(),
        warm / 1024,
        peak / 1024,
        rss / 1024,
        cpu as f64 / ticks as f64,
        samples[0].2,
    );
    assert!(
        rss < 2 * warm,
        "RSS grew: {warm} KiB after warm-up, {rss} KiB at the end"
    );
    assert!(
        fds <= samples[0].2 + 8,
        "descriptors leak: {} → {fds}",
        samples[0].2
    );
}
