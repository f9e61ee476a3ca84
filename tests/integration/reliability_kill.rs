//! `kill -9` at random moments: of `codelens init`, of `codelens sync` and of a watching
//! engine (`codelens watch`), on a real temp git repository whose files change between
//! and during the rounds. After every kill the index passes `PRAGMA integrity_check`,
//! the next start opens it (or, when there was none yet, says so clearly and `init`
//! builds one), and after the next `sync` — or the next engine's catch-up — the oracle
//! finds every edit in it: none is ever lost.
//!
//! Choices come from a seeded PRNG; a failure prints the seed and the round, and
//! `CODELENS_TEST_SEED=<seed>` replays it.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::oracle;
use common::procs::{self, Proc};
use common::rng::Rng;
use common::*;

const DEADLINE: Duration = Duration::from_secs(60);

/// A tree of `files` real-looking sources in 20 directories, plus a binary file and a
/// file over the 2 MiB cap.
fn populate(repo: &TestRepo, rng: &mut Rng, files: usize) {
    repo.write(".gitignore", "build/\n*.log\n");
    repo.write("build/out.txt", "ignored\n");
    repo.write("debug.log", "ignored\n");
    for i in 0..files {
        let (path, content) = source(rng, &format!("d{}/f{i}", i % 20));
        repo.write(&path, &content);
    }
    repo.write_bytes("assets/logo.bin", &[0u8, 1, 2, 3, 0, 255, 7]);
    repo.write_bytes("assets/huge.txt", &vec![b'x'; 2 * 1024 * 1024 + 10]);
    repo.commit_all("initial");
}

/// A file at `stem` plus an extension, with content varying by `rng`.
fn source(rng: &mut Rng, stem: &str) -> (String, String) {
    let n = rng.below(1_000_000);
    match rng.below(5) {
        0 => (
            format!("{stem}.rs"),
            format!("pub fn f{n}() -> u32 {{\n    {n}\n}}\n"),
        ),
        1 => (
            format!("{stem}.py"),
            format!("def f{n}():\n    return {n}\n"),
        ),
        2 => (
            format!("{stem}.ts"),
            format!("export function f{n}(): number {{\n  return {n};\n}}\n"),
        ),
        3 => (
            format!("{stem}.go"),
            format!("package d\n\nfunc F{n}() int {{\n\treturn {n}\n}}\n"),
        ),
        _ => (format!("{stem}.md"), format!("# Note {n}\n\ntext {n}\n")),
    }
}

/// Every regular, non-ignored file of the tree (relative paths).
fn tree_files(repo: &TestRepo) -> Vec<String> {
    oracle::expected_paths(&repo.root())
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect()
}

/// A few random edits: rewrites (some of the same size, the racy case), appends, new
/// files, deletions and renames.
fn mutate(repo: &TestRepo, rng: &mut Rng, ops: u64) {
    let mut files = tree_files(repo);
    files.retain(|f| !f.starts_with("assets/") && f != ".gitignore");
    for _ in 0..ops {
        if files.is_empty() {
            break;
        }
        let pick = rng.below(files.len() as u64) as usize;
        let path = files[pick].clone();
        match rng.below(6) {
            0 => {
                // Same size, different bytes: only the hash can tell.
                let mut bytes = std::fs::read(repo.path(&path)).unwrap();
                if let Some(b) = bytes.iter_mut().find(|b| b.is_ascii_digit()) {
                    *b = if *b == b'9' { b'0' } else { *b + 1 };
                }
                std::fs::write(repo.path(&path), bytes).unwrap();
            }
            1 => {
                let mut bytes = std::fs::read(repo.path(&path)).unwrap();
                bytes.extend_from_slice(format!("// edit {}\n", rng.below(1000)).as_bytes());
                std::fs::write(repo.path(&path), bytes).unwrap();
            }
            2 => {
                let stem = format!("d{}/n{}", rng.below(25), rng.below(1 << 30));
                let (new, content) = source(rng, &stem);
                repo.write(&new, &content);
                files.push(new);
            }
            3 => {
                std::fs::remove_file(repo.path(&path)).unwrap();
                files.swap_remove(pick);
            }
            4 => {
                let to = format!(
                    "d{}/moved{}-{}",
                    rng.below(25),
                    rng.below(1 << 30),
                    path.replace('/', "_")
                );
                std::fs::create_dir_all(repo.path(&to).parent().unwrap()).unwrap();
                std::fs::rename(repo.path(&path), repo.path(&to)).unwrap();
                files[pick] = to;
            }
            _ => {
                let (_, content) = source(rng, "x");
                std::fs::write(repo.path(&path), content).unwrap();
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Init,
    Sync,
    Watch,
}

#[derive(Debug, Default)]
struct Tally {
    rounds: u32,
    /// Rounds where the process was still running when it got SIGKILL.
    killed_mid_run: u32,
    by_victim: [u32; 3],
    /// Rounds that started without any index (a first `init` killed).
    without_index: u32,
}

/// How long an unkilled `init` of this tree takes here: kill moments are drawn from
/// around that span, whatever the machine's speed.
fn measure_init(repo: &TestRepo, home: &Path) -> Duration {
    let started = Instant::now();
    let out = procs::run(&repo.root(), home, &["init", "-q"]);
    assert_success(&out, &["init", "-q"]);
    started.elapsed()
}

/// `rounds` kills on `files` files; the watching engines arm their watches the
/// `strategy` way.
fn kill_rounds(files: usize, rounds: u32, default_seed: u64, strategy: &str) -> Tally {
    let (mut rng, seed) = Rng::from_env_or(default_seed);
    eprintln!("kill -9 rounds: seed {seed} (replay with CODELENS_TEST_SEED={seed})");
    let repo = TestRepo::new();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let root = repo.root();
    populate(&repo, &mut rng, files);
    let span = measure_init(&repo, home).max(Duration::from_millis(20));
    oracle::assert_agrees(&root);

    let mut tally = Tally::default();
    for round in 0..rounds {
        let victim = match rng.below(3) {
            0 => Victim::Init,
            1 => Victim::Sync,
            _ => Victim::Watch,
        };
        // Now and then the kill hits the very first `init`: there is no index yet.
        let fresh = victim == Victim::Init && rng.chance(10);
        if fresh {
            std::fs::remove_dir_all(root.join(".codelens")).unwrap();
            tally.without_index += 1;
        }
        let had_index = oracle::db_path(&root).is_file();
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64 * 6 / 5 + 1) as u64);
        let context = format!("seed {seed}, round {round}, {victim:?} killed after {delay:?}");
        eprintln!("{context}");
        let ops = 1 + rng.below(8);
        mutate(&repo, &mut rng, ops);

        let mid_run = match victim {
            Victim::Init | Victim::Sync => {
                let args: &[&str] = if victim == Victim::Init {
                    &["init", "-q"]
                } else {
                    &["sync", "-q"]
                };
                let mut command = procs::command(&root, home, args);
                command.stdout(Stdio::null());
                let mut proc = Proc::spawn(command, args[0]);
                std::thread::sleep(delay);
                let mid = proc.kill9();
                procs::assert_no_lock_error(&context, &proc.stderr());
                mid
            }
            Victim::Watch => {
                let mut proc = Proc::spawn(procs::watch_command(&root, home, strategy), "watch");
                // Edits land while it catches up, watches and re-indexes.
                std::thread::sleep(delay / 2);
                let ops = 1 + rng.below(6);
                mutate(&repo, &mut rng, ops);
                std::thread::sleep(delay / 2 + Duration::from_millis(rng.below(300)));
                let mid = proc.kill9();
                procs::assert_no_lock_error(&context, &proc.stderr());
                mid
            }
        };
        tally.rounds += 1;
        tally.killed_mid_run += u32::from(mid_run);
        tally.by_victim[victim as usize] += 1;

        // Never a corrupt database.
        if oracle::db_path(&root).is_file() {
            if let Err(findings) = oracle::integrity(&root) {
                panic!("{context}: corrupt index: {findings}");
            }
        } else {
            assert!(!had_index, "{context}: the previous index is gone");
        }
        recover(&repo, home, &mut rng, had_index, &context, strategy);
        if let Err(why) = oracle::check_agrees(&root) {
            panic!("{context}: an edit was lost: {why}");
        }
        oracle::assert_integrity(&root);
    }
    eprintln!("{tally:?}");
    tally
}

/// The next start after a kill: it opens the index (or, when there was none, says so
/// and `init` builds it), then a `sync` or a new engine's catch-up brings it up to date.
fn recover(
    repo: &TestRepo,
    home: &Path,
    rng: &mut Rng,
    had_index: bool,
    context: &str,
    strategy: &str,
) {
    let root = repo.root();
    let status = procs::run(&root, home, &["status", "--json"]);
    match status.status.code() {
        Some(0) => {}
        Some(3) if !had_index => {
            // No index yet: one clear line, then a rebuild.
            let line = assert_one_line_error(&status, 3);
            assert!(line.contains("codelens init"), "{context}: {line}");
            let out = procs::run(&root, home, &["init", "-q"]);
            assert_success(&out, &["init"]);
            return;
        }
        _ => panic!(
            "{context}: the next start cannot open the index ({:?}): {}",
            status.status.code(),
            String::from_utf8_lossy(&status.stderr)
        ),
    }
    if rng.chance(30) {
        // The next engine catches up by itself.
        let mut engine = Proc::spawn(procs::watch_command(&root, home, strategy), "watch");
        oracle::wait_until_agrees(&root, DEADLINE);
        engine.terminate();
        procs::assert_no_lock_error(context, &engine.stderr());
    } else {
        let out = procs::run(&root, home, &["sync", "--json"]);
        assert_success(&out, &["sync", "--json"]);
        procs::assert_no_lock_error(context, &String::from_utf8_lossy(&out.stderr));
    }
}

fn fifty_kill_nines_of_init_sync_and_watch_never_corrupt_or_lose_an_edit(strategy: &str) {
    let tally = kill_rounds(300, 50, 0x5EED_0009, strategy);
    assert_eq!(tally.rounds, 50);
    for (victim, n) in ["init", "sync", "watch"].iter().zip(tally.by_victim) {
        assert!(n > 5, "only {n} rounds killed {victim}: {tally:?}");
    }
    // Kill moments span the run: most land while the process still works.
    assert!(
        tally.killed_mid_run >= 15,
        "only {} of 50 kills landed mid-run: {tally:?}",
        tally.killed_mid_run
    );
}

/// The heavier variant: `cargo test --test integration -- --ignored reliability_kill::`.
#[test]
#[ignore = "heavy: 5,000 files, 200 rounds"]
fn two_hundred_kill_nines_on_five_thousand_files() {
    for strategy in crate::common::WATCH_STRATEGIES {
        let tally = kill_rounds(5000, 200, 0x5EED_0200, strategy);
        assert_eq!(tally.rounds, 200);
    }
}

crate::under_both_strategies!(
    fifty_kill_nines_of_init_sync_and_watch_never_corrupt_or_lose_an_edit
);
