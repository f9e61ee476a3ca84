//! Everything on one index at once: a watching engine (`codelens watch`), an MCP server
//! (`codelens --mcp`, spoken to over stdio) and `codelens sync` run again and again,
//! while files change. One writer at a time (the other engine follows), no `database
//! is locked` (or any SQLite busy error, or a panic) reaching the user from any of them,
//! every sync succeeds, a follower takes over when the writer is `kill -9`ed, and in the
//! end the oracle agrees with the tree.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mcp_client::Client;
use common::oracle;
use common::procs::{self, Proc};
use common::rng::Rng;
use common::*;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// The MCP server on the shared index, with the environment every reliability test
/// gives codelens, initialized.
fn start_mcp(root: &Path, home: &Path) -> Client {
    let mut mcp = Client::spawn(procs::command(root, home, &["--mcp"]), "mcp");
    mcp.initialize("reliability-test");
    mcp
}

/// A tool call that must succeed (no JSON-RPC error, no tool error) without a lock
/// error in its text.
fn call_ok(mcp: &mut Client, tool: &str, arguments: Value) -> Value {
    let result = mcp.call(tool, arguments);
    assert_ne!(result["isError"], json!(true), "{tool}: {result}");
    procs::assert_no_lock_error(tool, &Client::text(&result));
    result
}

/// The role of the MCP server's engine, as `index_status` reports it.
fn role(mcp: &mut Client) -> String {
    let status = call_ok(mcp, "index_status", json!({}));
    status["structuredContent"]["role"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Random edits to the tree, from a seeded PRNG.
fn edit(root: &Path, rng: &mut Rng, n: u64) {
    for _ in 0..n {
        let i = rng.below(400);
        let path = root.join(format!("src/m{}/f{i}.rs", i % 20));
        match rng.below(4) {
            0 if path.exists() => std::fs::remove_file(&path).unwrap(),
            _ => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(
                    &path,
                    format!("pub fn f{i}_{}() {{}}\n", rng.below(1_000_000)),
                )
                .unwrap();
            }
        }
    }
}

/// `codelens sync` in a loop on its own thread until told to stop; every run must
/// succeed without a lock error. Returns how many ran.
fn sync_loop(root: PathBuf, home: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut runs = 0;
        while !stop.load(Ordering::Relaxed) {
            let out = procs::run(&root, &home, &["sync", "--json"]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                out.status.success(),
                "sync #{runs} failed ({:?}): {stderr}",
                out.status.code()
            );
            procs::assert_no_lock_error("sync", &stderr);
            let _: Value = serde_json::from_slice(&out.stdout).expect("sync --json is JSON");
            runs += 1;
        }
        runs
    })
}

fn engine_status(root: &Path) -> Value {
    oracle::status_json(root)
}

#[test]
fn watch_mcp_and_repeated_syncs_share_one_index_with_one_writer_and_a_takeover() {
    let (mut rng, seed) = Rng::from_env_or(0xC0C0_0009);
    eprintln!("seed {seed} (replay with CODELENS_TEST_SEED={seed})");
    let repo = TestRepo::new();
    let root = repo.root();
    let home = tempfile::tempdir().unwrap();
    for i in 0..400 {
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 20),
            &format!("pub fn f{i}() {{}}\n"),
        );
    }
    repo.commit_all("initial");
    assert_success(&procs::run(&root, home.path(), &["init", "-q"]), &["init"]);

    // The watching engine comes first and is the writer; the MCP server's engine follows.
    let mut watch = procs::start_watch(&root, home.path());
    let mut mcp = start_mcp(&root, home.path());
    assert_eq!(role(&mut mcp), "follower");
    assert!(oracle::writer_engine_running(&root));

    let stop = Arc::new(AtomicBool::new(false));
    let syncs = sync_loop(root.clone(), home.path().to_path_buf(), Arc::clone(&stop));
    let lookups = Arc::new(Mutex::new(0u32));
    for step in 0..20 {
        let n = 1 + rng.below(15);
        edit(&root, &mut rng, n);
        let hits = call_ok(
            &mut mcp,
            "search_symbols",
            json!({"query": "f1", "match": "prefix"}),
        );
        assert!(hits["structuredContent"].is_object(), "{hits}");
        call_ok(&mut mcp, "find_files", json!({"pattern": "src/m1/*.rs"}));
        *lookups.lock().unwrap() += 2;
        if step % 5 == 4 {
            // One writer: the MCP server's engine still follows the watch.
            assert_eq!(role(&mut mcp), "follower", "step {step}");
        }
    }

    // The writer dies; the follower (the MCP server's engine) takes over and watches.
    assert!(watch.kill9(), "watch was running");
    procs::assert_no_lock_error("watch", &watch.stderr());
    let until = Instant::now() + DEADLINE;
    while role(&mut mcp) != "writer" {
        assert!(Instant::now() < until, "the MCP server never took over");
        std::thread::sleep(Duration::from_millis(50));
    }
    // While syncs run back to back, every one of them moves the index on and `status`
    // rightly stops trusting the engine's published set until the engine has looked
    // again (it then checks the tree itself: `pending_source: scan`). So the syncs pause
    // while the new writer's own report is checked, then resume.
    stop.store(true, Ordering::Relaxed);
    let runs_before_takeover = syncs.join().expect("every sync succeeded");
    let until = Instant::now() + DEADLINE;
    loop {
        let status = engine_status(&root);
        if status["watcher"]["engine"] == "running"
            && status["pending_source"] == "engine"
            && status["watcher"]["mode"] == "native"
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "no watching writer after takeover: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let syncs = sync_loop(root.clone(), home.path().to_path_buf(), Arc::clone(&stop));
    // It watches: edits keep being picked up, syncs keep running beside it.
    for _ in 0..10 {
        let n = 1 + rng.below(10);
        edit(&root, &mut rng, n);
        call_ok(
            &mut mcp,
            "search_symbols",
            json!({"query": "f2", "match": "prefix"}),
        );
    }

    // A new `watch` is now the follower; kill the MCP server and it takes over in turn.
    let mut watch2 = Proc::spawn(
        {
            let mut c = procs::command(&root, home.path(), &["watch"]);
            c.stdout(Stdio::null());
            c
        },
        "watch (second)",
    );
    let until = Instant::now() + DEADLINE;
    while !watch2.stderr().contains("following another engine") {
        assert!(Instant::now() < until, "second watch: {}", watch2.stderr());
        assert!(watch2.running(), "second watch exited: {}", watch2.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    edit(&root, &mut rng, 10);
    assert!(mcp.proc.kill9(), "the MCP server was running");
    procs::assert_no_lock_error("mcp", &mcp.proc.stderr());
    mcp.assert_stdout_is_protocol_only();
    edit(&root, &mut rng, 10);

    stop.store(true, Ordering::Relaxed);
    let runs = runs_before_takeover + syncs.join().expect("every sync succeeded");
    // The second watch became the writer: its watcher keeps the index.
    procs::wait_for_engine(&root, &mut watch2);
    edit(&root, &mut rng, 20);
    oracle::assert_no_silent_staleness(&root);
    oracle::wait_until_agrees(&root, Duration::from_secs(120));
    assert!(watch2.stderr().contains("writer"), "{}", watch2.stderr());
    procs::assert_no_lock_error("watch (second)", &watch2.stderr());
    watch2.terminate();
    eprintln!(
        "{runs} syncs and {} MCP lookups beside the engines",
        lookups.lock().unwrap()
    );
    assert!(runs >= 3, "only {runs} syncs ran");
}

/// From a new writer's start until the index agrees, `status --json` (polled as fast as
/// it answers) lists every file that differs: no window where a writer engine's
/// published set is trusted before that engine has looked at the tree. Returns the
/// polls that read the engine's set and those that scanned.
fn status_never_silent_until_agrees(root: &Path, proc: &mut Proc) -> (u32, u32) {
    let tree = oracle::read_tree(root);
    let (mut from_engine, mut from_scan) = (0, 0);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        match oracle::check_status_covers(root, &tree) {
            Ok(status) if status["pending_source"] == "engine" => from_engine += 1,
            Ok(_) => from_scan += 1,
            Err(stale) => panic!(
                "status --json called {} differing files fresh (first: {}) after {from_engine} engine and {from_scan} scan polls; engine stderr: {}",
                stale.len(),
                oracle::lossy(&stale[0]),
                proc.stderr()
            ),
        }
        if oracle::check_agrees(root).is_ok() {
            return (from_engine, from_scan);
        }
        assert!(Instant::now() < until, "never agreed");
        assert!(proc.running(), "{} exited: {}", proc.name, proc.stderr());
    }
}

fn many_files(n: usize) -> (TestRepo, tempfile::TempDir) {
    let repo = TestRepo::new();
    for i in 0..n {
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 60),
            &format!("pub fn f{i}() {{}}\n"),
        );
    }
    repo.commit_all("initial");
    let home = tempfile::tempdir().unwrap();
    assert_success(
        &procs::run(&repo.root(), home.path(), &["init", "-q"]),
        &["init"],
    );
    (repo, home)
}

/// `codelens watch` with a quiet window long enough that only syncs and catch-ups
/// index, once it is the writer with a native watcher.
fn quiet_watch(root: &Path, home: &Path) -> Proc {
    let mut command = procs::command(root, home, &["watch"]);
    command
        .stdout(Stdio::null())
        .env("CODELENS_WATCH_DEBOUNCE_MS", "60000");
    let mut engine = Proc::spawn(command, "watch");
    procs::wait_for_engine(root, &mut engine);
    engine
}

fn edit_all(repo: &TestRepo, n: usize) {
    for i in 0..n {
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 60),
            &format!("pub fn f{i}() {{}}\npub fn edited_{i}() {{}}\n"),
        );
    }
}

#[test]
fn a_restarted_engine_is_not_trusted_before_its_catch_up() {
    let (repo, home) = many_files(3000);
    let root = repo.root();
    let mut first = procs::start_watch(&root, home.path());
    assert!(first.kill9());
    // Edited while no engine runs; the dead engine's published set knows nothing of it.
    edit_all(&repo, 3000);
    let mut command = procs::command(&root, home.path(), &["watch"]);
    command.stdout(Stdio::null());
    let mut second = Proc::spawn(command, "watch (restarted)");
    let polls = status_never_silent_until_agrees(&root, &mut second);
    eprintln!("status polls (engine, scan): {polls:?}");
    second.terminate();
}

#[test]
fn a_follower_taking_over_is_not_trusted_before_its_catch_up() {
    let (repo, home) = many_files(3000);
    let root = repo.root();
    let mut writer = procs::start_watch(&root, home.path());
    let mut command = procs::command(&root, home.path(), &["watch"]);
    command.stdout(Stdio::null());
    let mut follower = Proc::spawn(command, "watch (follower)");
    let until = Instant::now() + DEADLINE;
    while !follower.stderr().contains("following another engine") {
        assert!(
            Instant::now() < until && follower.running(),
            "{}",
            follower.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(writer.kill9());
    // Edited between the writer's death and the follower's takeover.
    edit_all(&repo, 3000);
    let polls = status_never_silent_until_agrees(&root, &mut follower);
    eprintln!("status polls (engine, scan): {polls:?}");
    follower.terminate();
}

#[test]
fn an_edit_made_while_a_cli_sync_runs_stays_pending() {
    let (mut rng, seed) = Rng::from_env_or(0x5C_0009);
    eprintln!("seed {seed} (replay with CODELENS_TEST_SEED={seed})");
    let (repo, home) = many_files(2000);
    let root = repo.root();
    // A long quiet window: only the syncs (and the engine's catch-up after each) index.
    let mut engine = quiet_watch(&root, home.path());
    for round in 0..6 {
        // Work for the sync: 667 files to read, hash and parse.
        for i in (0..2000).filter(|i| i % 3 == round % 3) {
            repo.write(
                &format!("src/m{}/f{i}.rs", i % 60),
                &format!("pub fn f{i}() {{}}\npub fn r{round}_{i}() {{}}\n"),
            );
        }
        let mut sync = Proc::spawn(
            {
                let mut c = procs::command(&root, home.path(), &["sync", "-q"]);
                c.stdout(Stdio::null());
                c
            },
            "sync",
        );
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        // Edited while the sync runs: after its walk, or before.
        let i = rng.below(2000);
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 60),
            &format!("pub fn during_sync_{round}() {{}}\n"),
        );
        let status = sync.wait_exit(DEADLINE);
        assert!(status.success(), "sync: {}", sync.stderr());
        procs::assert_no_lock_error("sync", &sync.stderr());
        // At once: the status first, the (still) tree and the index after it.
        let status = oracle::status_json(&root);
        let stale = oracle::unlisted(&status, &oracle::read_tree(&root), &root);
        assert!(
            stale.is_empty(),
            "round {round}: silently stale right after the sync: {stale:?}; status: {status}"
        );
        oracle::assert_no_silent_staleness(&root);
    }
    oracle::assert_no_silent_staleness(&root);
    engine.terminate();
}

/// Holds a process still (SIGSTOP) until dropped, or until `resume_after` lets it go on
/// another thread.
struct Stopped(i32);

impl Stopped {
    fn new(proc: &Proc) -> Stopped {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(proc.pid(), libc::SIGSTOP) };
        Stopped(proc.pid())
    }

    fn resume_after(self, pause: Duration) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            std::thread::sleep(pause);
            drop(self);
        })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// The event of an edit saved just before `status` may still be on its way to the
/// writer engine; here it is held up for certain (the engine is stopped). `status` must
/// not answer from the set published before the edit: it asks the writer (a probe file
/// the writer deletes once it has published every earlier event) and, when no answer
/// comes in time, checks the tree itself. Resumed soon, slowly, then never (the status
/// runs entirely while the engine is stopped).
#[test]
fn status_right_after_an_edit_lists_it_even_while_the_writer_lags() {
    let (repo, home) = many_files(120);
    let root = repo.root();
    let mut engine = quiet_watch(&root, home.path());
    for (round, hold) in [Some(20), Some(1_000), None].into_iter().enumerate() {
        let stopped = Stopped::new(&engine);
        repo.write(
            &format!("src/m{round}/f{round}.rs"),
            &format!("pub fn saved_while_the_engine_lags_{round}() {{}}\n"),
        );
        let status = match hold {
            Some(ms) => {
                let resumed = stopped.resume_after(Duration::from_millis(ms));
                let status = oracle::status_json(&root);
                resumed.join().unwrap();
                status
            }
            None => {
                let status = oracle::status_json(&root);
                drop(stopped);
                status
            }
        };
        let stale = oracle::unlisted(&status, &oracle::read_tree(&root), &root);
        assert!(
            stale.is_empty(),
            "round {round} (held {hold:?} ms): silently stale: {stale:?}; status: {status}"
        );
        eprintln!(
            "round {round}: held {hold:?} ms, answered from {}",
            status["pending_source"]
        );
        assert!(
            std::fs::read_dir(root.join(".codelens"))
                .unwrap()
                .all(|e| !e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("probe-")),
            "round {round}: a probe file was left behind"
        );
    }
    engine.terminate();
}

/// The same for an MCP server following a writer (`codelens watch`): its answer to a
/// question asked right after a save names the file in the banner, although only the
/// writer's watcher saw the edit and the writer is lagging when the question comes.
#[test]
fn a_follower_answer_right_after_an_edit_has_the_banner_while_the_writer_lags() {
    let (repo, home) = many_files(120);
    let root = repo.root();
    let mut engine = quiet_watch(&root, home.path());
    let mut mcp = start_mcp(&root, home.path());
    assert_eq!(role(&mut mcp), "follower");
    for round in 0..3 {
        let path = format!("src/m{round}/f{round}.rs");
        let stopped = Stopped::new(&engine);
        repo.write(&path, &format!("pub fn lagging_{round}() {{}}\n"));
        let resumed = stopped.resume_after(Duration::from_millis(20));
        let answer = call_ok(&mut mcp, "file_outline", json!({"path": path}));
        resumed.join().unwrap();
        let text = answer["content"][0]["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with(
                "⚠️ Some files referenced below were edited since the last index sync"
            ) && text.contains(&path),
            "round {round}: no banner naming {path}: {text}"
        );
    }
    mcp.proc.terminate();
    engine.terminate();
}

/// A probe left by a `status` killed while it waited is removed when a writer starts:
/// nobody waits on it, and no event would ever bring it to a writer's attention.
#[test]
fn a_writer_removes_stale_probe_files_when_it_starts() {
    let (repo, home) = many_files(10);
    let root = repo.root();
    let stale = root.join(".codelens/probe-4000000-0");
    let file = std::fs::File::create(&stale).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let mut engine = quiet_watch(&root, home.path());
    assert!(!stale.exists(), "the stale probe is still there");
    engine.terminate();
}
