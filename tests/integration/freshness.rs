//! The freshness verdict: the engine is the one judge of whether its index can be
//! trusted, and every front end shows its verdict. Each of the five situations in which
//! the dashboard used to say "✓ index in sync" while `codelens status` listed a pending
//! file is reproduced here with real parts — a real engine on a real temp repository, a
//! real `codelens watch` stopped with SIGSTOP, a real SQLite lock — and the dashboard is
//! drawn on ratatui's `TestBackend` from the engine's snapshot. Each test waits until
//! `status` sees the edit, then asserts the dashboard does not claim "in sync" and shows
//! the file or an unverified state with its reason. Then `status --json` and the MCP
//! server's `index_status` are held to the same keys.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use codelens::engine::freshness::{Freshness, Unverified};
use codelens::engine::project::Project;
use codelens::engine::{Engine, EngineOptions, Role, Snapshot};
use codelens::ui::app::App;
use common::mcp_client::Client;
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

/// Generous: these tests wait on real threads and disks, never assert a duration.
const DEADLINE: Duration = Duration::from_secs(60);

fn indexed_repo(dirs: usize) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/store.rs", RUST_SRC);
    for d in 0..dirs {
        repo.write(&format!("pkg{d}/mod{d}.py"), "def f():\n    return 1\n");
    }
    repo.commit_all("initial");
    // Out of the racy window, so only real edits count.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for entry in walk_files(&repo.root()) {
        std::fs::File::options()
            .write(true)
            .open(&entry)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    repo.ok(&["init", "-q"]);
    repo
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n == ".git" || n == ".codelens")
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn append(repo: &TestRepo, relative: &str, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(repo.path(relative))
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn options(watch: bool) -> EngineOptions {
    let mut options = EngineOptions {
        poll_interval: Duration::from_millis(100),
        ..EngineOptions::default()
    };
    options.watch.enabled = watch;
    options
}

fn start(repo: &TestRepo, options: EngineOptions) -> Engine {
    Engine::start(Project::at(repo.root()), options).expect("engine starts")
}

/// The dashboard as it draws `snapshot` in an 80×24 pane.
fn dashboard(snapshot: Arc<Snapshot>) -> String {
    let now = codelens::engine::now_ns();
    let mut app = App::new(false, false, now);
    app.on_snapshot(snapshot, now);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("backend");
    terminal
        .draw(|frame| codelens::ui::view::render(frame, &mut app))
        .expect("render");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Polls `codelens status --json` until it lists `path` as pending.
fn status_lists(repo: &TestRepo, path: &str) -> Value {
    let until = Instant::now() + DEADLINE;
    loop {
        let status = repo.status_json();
        if pending_paths(&status).iter().any(|p| p == path) {
            return status;
        }
        assert!(
            Instant::now() < until,
            "status never listed {path}: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pending_paths(status: &Value) -> Vec<String> {
    (status["pending"].as_array().expect("pending is a list"))
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

/// The promise under test: once `status` sees the edit, the dashboard never says the
/// index is in sync; it names the file or an unverified reason.
fn assert_dashboard_is_honest(screen: &str, path: &str, reason: &str) {
    assert!(!screen.contains("in sync"), "{screen}");
    assert!(
        screen.contains(path) || screen.contains(reason),
        "neither {path:?} nor {reason:?} shown:\n{screen}"
    );
}

fn pending_names(snapshot: &Snapshot, path: &str) -> bool {
    snapshot.pending.iter().any(|p| p.path == path)
}

#[test]
fn without_a_watcher_the_dashboard_is_unverified_and_the_scan_lists_the_edit() {
    let repo = indexed_repo(2);
    let engine = start(&repo, options(false));
    let settled = wait(&engine, "catch-up done", |s| {
        s.freshness.unverified() == Some(&Unverified::WatcherOff)
    });
    assert!(dashboard(settled).contains("unverified: watcher off"));

    append(&repo, "src/store.rs", "// edited");
    status_lists(&repo, "src/store.rs");
    assert_dashboard_is_honest(&dashboard(engine.snapshot()), "src/store.rs", "watcher off");

    // The engine's own scan (at most a second old) lists the file, as status does.
    let seen = wait(&engine, "the scan lists the edit", |s| {
        pending_names(s, "src/store.rs")
    });
    let screen = dashboard(seen);
    assert!(screen.contains("src/store.rs"), "{screen}");
    assert!(screen.contains("unsynced"), "{screen}");
}

#[test]
fn a_follower_whose_writer_is_stopped_says_the_writer_is_not_responding() {
    let repo = indexed_repo(2);
    let home = tempfile::tempdir().unwrap();
    let mut writer = common::procs::start_watch(&repo.root(), home.path());
    let follower = start(&repo, options(true));
    let ready = wait(&follower, "a verified follower", |s| {
        s.role == Role::Follower && s.freshness.is_verified()
    });
    assert!(dashboard(ready).contains("in sync"));

    // SAFETY: a plain signal to a child process this test spawned.
    assert_eq!(unsafe { libc::kill(writer.pid(), libc::SIGSTOP) }, 0);
    append(
        &repo,
        "src/store.rs",
        "// edited while the writer is stopped",
    );
    status_lists(&repo, "src/store.rs");
    let seen = wait(&follower, "the follower notices", |s| {
        matches!(
            s.freshness.unverified(),
            Some(Unverified::WriterNotResponding { .. })
        ) || pending_names(s, "src/store.rs")
    });
    assert_dashboard_is_honest(&dashboard(seen), "src/store.rs", "writer not responding");
    // Its own scan then lists the edit the stopped writer cannot publish.
    let listed = wait(&follower, "the follower's scan lists the edit", |s| {
        pending_names(s, "src/store.rs")
    });
    let screen = dashboard(listed);
    assert!(screen.contains("src/store.rs"), "{screen}");
    assert!(!screen.contains("in sync"), "{screen}");

    assert_eq!(unsafe { libc::kill(writer.pid(), libc::SIGCONT) }, 0);
    writer.terminate();
}

#[test]
fn a_degraded_watcher_is_unverified_and_edits_in_unwatched_directories_show() {
    let repo = indexed_repo(8);
    let mut options = options(true);
    options.watch.force = true;
    // The root, .codelens and one more: most package directories go unwatched.
    options.watch.max_dir_watches = Some(3);
    let engine = start(&repo, options);
    let degraded = wait(&engine, "a degraded watcher after catch-up", |s| {
        matches!(
            s.freshness.unverified(),
            Some(Unverified::WatcherDegraded { unwatched_dirs }) if *unwatched_dirs > 0
        )
    });
    assert!(
        dashboard(degraded.clone()).contains("unverified: watcher degraded"),
        "{:?}",
        engine.snapshot().freshness
    );

    let symbols_before = degraded.stats.symbols;
    for d in 0..8 {
        append(
            &repo,
            &format!("pkg{d}/mod{d}.py"),
            &format!("def added_{d}():\n    pass"),
        );
    }
    // Whatever status sees (some edits lie in unwatched directories), the dashboard
    // names the degraded watcher.
    assert_dashboard_is_honest(&dashboard(engine.snapshot()), "pkg", "watcher degraded");
    // Every edit is indexed, watched directory or not: the engine's own scan finds the
    // ones no watch reports, well before the 30-second re-check would.
    wait(&engine, "every edit re-indexed", |s| {
        s.pending.is_empty() && s.stats.symbols == symbols_before + 8
    });
    let status = repo.status_json();
    assert_eq!(pending_paths(&status), Vec::<String>::new(), "{status}");
}

#[test]
fn another_process_holding_the_sqlite_lock_shows_the_edit_and_the_locked_index() {
    let repo = indexed_repo(2);
    let engine = start(&repo, options(true));
    wait(&engine, "verified", |s| s.freshness.is_verified());

    // A real second connection takes SQLite's write lock and keeps it.
    let holder = rusqlite::Connection::open(repo.db_path()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    append(&repo, "src/store.rs", "// edited while the index is locked");
    status_lists(&repo, "src/store.rs");
    let seen = wait(&engine, "the edit and the lock", |s| {
        pending_names(s, "src/store.rs")
            && matches!(
                s.freshness.unverified(),
                Some(Unverified::IndexLocked { .. })
            )
    });
    let screen = dashboard(seen);
    assert_dashboard_is_honest(&screen, "src/store.rs", "index locked");
    assert!(screen.contains("src/store.rs"), "{screen}");
    assert!(
        screen.contains("index locked by another process"),
        "{screen}"
    );

    // Once the lock goes, the edit is indexed and the verdict is verified again.
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    wait(&engine, "verified again", |s| {
        s.freshness.is_verified() && s.pending.is_empty()
    });
}

#[test]
fn start_up_catch_up_is_unverified_until_it_has_compared_the_tree() {
    let repo = indexed_repo(40);
    // Edited while no engine ran.
    for d in (0..40).step_by(4) {
        append(&repo, &format!("pkg{d}/mod{d}.py"), "# offline edit");
    }
    status_lists(&repo, "pkg0/mod0.py");
    let options = EngineOptions {
        // Keep what catch-up finds pending, so the dashboard can be read with it.
        reindex_delay: Duration::from_secs(3600),
        ..options(true)
    };
    let engine = start(&repo, options);
    // The first snapshot, before the engine thread has looked at anything.
    let first = engine.snapshot();
    assert!(
        matches!(
            first.freshness.unverified(),
            Some(Unverified::CatchingUp { .. })
        ),
        "{:?}",
        first.freshness
    );
    assert_dashboard_is_honest(&dashboard(first), "pkg0/mod0.py", "catching up");

    let done = wait(&engine, "catch-up found the offline edits", |s| {
        matches!(s.freshness, Freshness::Pending { files: 10, .. })
    });
    let screen = dashboard(done);
    assert!(screen.contains("● 10 pending"), "{screen}");
    assert!(screen.contains("pkg0/mod0.py"), "{screen}");
}

/// The keys both documents carry, with the values that may differ by a clock tick
/// (ages) compared loosely.
#[test]
fn status_json_and_index_status_agree_on_every_shared_key() {
    let repo = indexed_repo(2);
    let home = tempfile::tempdir().unwrap();
    let home_env = home.path().to_string_lossy().into_owned();
    // A long debounce keeps the edit pending while both documents are read.
    let mut mcp = Client::start(
        &repo.root(),
        &[
            ("CODELENS_HOME", home_env.as_str()),
            ("CODELENS_WATCH_DEBOUNCE_MS", "60000"),
        ],
    );
    let until = Instant::now() + DEADLINE;
    loop {
        let status = mcp.call("index_status", json!({}))["structuredContent"].clone();
        if status["freshness"]["state"] == "verified" {
            break;
        }
        assert!(Instant::now() < until, "never verified: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    append(&repo, "src/store.rs", "// pending in both");
    let agent = loop {
        let status = mcp.call("index_status", json!({}))["structuredContent"].clone();
        if status["freshness"] == json!({"state": "pending", "files": 1, "basis": "watcher"}) {
            break status;
        }
        assert!(Instant::now() < until, "never pending: {status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let person = common::codelens_command(&repo.root(), &["status", "--json"])
        .env("CODELENS_HOME", &home_env)
        .output()
        .unwrap();
    assert!(person.status.success());
    let person: Value = serde_json::from_slice(&person.stdout).unwrap();

    let (Value::Object(agent), Value::Object(person)) = (&agent, &person) else {
        panic!("objects expected: {agent} {person}");
    };
    let mut compared = 0;
    for (key, agent_value) in agent {
        let Some(person_value) = person.get(key) else {
            // Only the engine's own: role, catch-up.
            assert!(["role", "catchup"].contains(&key.as_str()), "{key}");
            continue;
        };
        compared += 1;
        assert_same(key, agent_value, person_value);
    }
    assert!(compared >= 18, "{compared} keys compared");
    // The machine id and the buffer's path never reach an agent.
    assert!(person["telemetry"].get("machine_id").is_some());
    assert!(agent["telemetry"].get("machine_id").is_none());
    mcp.assert_stdout_is_protocol_only();
}

/// Equal, except ages (a second may pass between the two reads), the database's size on
/// disk, and keys only one side
/// has inside objects (the engine knows its watcher's directories; a person sees the
/// telemetry machine id).
fn assert_same(key: &str, agent: &Value, person: &Value) {
    match (agent, person) {
        (Value::Object(a), Value::Object(p)) => {
            for (k, v) in a {
                if let Some(w) = p.get(k) {
                    assert_same(&format!("{key}.{k}"), v, w);
                }
            }
        }
        (Value::Array(a), Value::Array(p)) => {
            assert_eq!(a.len(), p.len(), "{key}: {agent} vs {person}");
            for (i, (v, w)) in a.iter().zip(p).enumerate() {
                assert_same(&format!("{key}[{i}]"), v, w);
            }
        }
        (Value::Number(a), Value::Number(p)) if key.ends_with("secs_ago") => {
            let (a, p) = (a.as_u64().unwrap(), p.as_u64().unwrap());
            assert!(a.abs_diff(p) <= 2, "{key}: {a} vs {p}");
        }
        // The file's size moves with every write to the write-ahead log.
        (Value::Number(_), Value::Number(_)) if key == "db_bytes" => {}
        _ => assert_eq!(agent, person, "{key}"),
    }
}

/// What the writer does not vouch for, nobody does: with a rescan due after lost
/// events (backing off), `codelens status` checks the tree itself and a follower says
/// the writer is rescanning, though the writer's set is current and it answers probes.
#[test]
fn a_writer_that_lost_events_is_vouched_for_by_no_one_until_it_has_rescanned() {
    let repo = indexed_repo(2);
    let writer = start(&repo, options(true));
    wait(&writer, "verified", |s| s.freshness.is_verified());
    let follower = start(&repo, options(true));
    wait(&follower, "a verified follower", |s| {
        s.role == Role::Follower && s.freshness.is_verified()
    });
    // Lost events in a burst: the first rescans are free, then they back off (up to
    // 10 s): one more now leaves a rescan due for seconds.
    for _ in 0..8 {
        writer.inject_lost_events();
    }
    wait(&writer, "the burst's rescan done", |s| {
        s.watcher.rescans == 8 && s.freshness.is_verified()
    });
    writer.inject_lost_events();
    wait(&writer, "a rescan due", |s| {
        s.freshness.unverified() == Some(&Unverified::Rescanning)
    });
    let status = repo.status_json();
    assert_eq!(status["pending_source"], "scan", "{status}");
    assert_eq!(status["freshness"]["basis"], "scan", "{status}");
    let seen = wait(&follower, "the follower adopts the writer's reason", |s| {
        s.freshness.unverified() == Some(&Unverified::Rescanning)
    });
    assert!(dashboard(seen).contains("unverified: rescanning"));
}
