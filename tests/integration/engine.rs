//! The engine core through its library API, on real temp git repositories: catch-up,
//! the pending set with edit ages, the banner, and one writer per index.

use crate::common;

use std::time::{Duration, SystemTime};

use codelens::engine::banner::BANNER_HEADER;
use codelens::engine::project::Project;
use codelens::engine::store::Store;
use codelens::engine::{Catchup, Command, Engine, EngineOptions, Role, Snapshot};
use common::*;

fn indexed_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.write("tools/indexer.py", PYTHON_SRC);
    repo.commit_all("initial");
    // Out of the racy window, so only real edits count.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for file in ["src/store.rs", "web/render.ts", "tools/indexer.py"] {
        set_mtime(&repo, file, old);
    }
    repo.ok(&["init", "-q"]);
    repo
}

fn set_mtime(repo: &TestRepo, file: &str, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(repo.path(file))
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// Keeps found files pending (no re-index) until told to sync.
fn holding_options() -> EngineOptions {
    EngineOptions {
        reindex_delay: Duration::from_secs(3600),
        poll_interval: Duration::from_millis(50),
        ..EngineOptions::default()
    }
}

fn start(repo: &TestRepo, options: EngineOptions) -> Engine {
    Engine::start(Project::at(repo.root()), options).expect("engine starts")
}

fn pending_paths(snapshot: &Snapshot) -> Vec<&str> {
    let mut paths: Vec<&str> = snapshot.pending.iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    paths
}

fn caught_up(snapshot: &Snapshot) -> bool {
    matches!(snapshot.catchup, Catchup::Done { .. })
}

#[test]
fn catch_up_absorbs_edits_made_while_no_engine_ran() {
    let repo = indexed_repo();
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn added_offline() {{}}\n"),
    );
    repo.write("src/new.rs", "pub fn brand_new() {}\n");
    repo.remove("tools/indexer.py");

    let engine = start(&repo, EngineOptions::default());
    assert_eq!(engine.snapshot().role, Role::Writer);
    let done = wait(&engine, "catch-up found 3 and re-indexed them", |s| {
        matches!(s.catchup, Catchup::Done { found: 3, .. })
            && s.pending.is_empty()
            && s.stats.files == 3
    });
    assert!(
        done.banner(&["src/store.rs"]).is_none(),
        "a clean answer has no banner"
    );
    drop(engine);

    let store = Store::open(&repo.db_path()).unwrap();
    assert_eq!(store.symbols_named("added_offline").unwrap().len(), 1);
    assert_eq!(store.symbols_named("brand_new").unwrap().len(), 1);
    assert!(
        store.symbols_named("main").unwrap().is_empty(),
        "the deleted file's symbols remain"
    );
    assert!(pending_of(&repo.status_json()).is_empty());
}

#[test]
fn pending_files_have_edit_ages_the_banner_names_them_and_sync_clears_them() {
    let repo = indexed_repo();
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn edited() {{}}\n"),
    );
    set_mtime(
        &repo,
        "src/store.rs",
        SystemTime::now() - Duration::from_secs(42),
    );

    let engine = start(&repo, holding_options());
    let snapshot = wait(&engine, "catch-up done with one pending file", |s| {
        caught_up(s) && s.pending.len() == 1
    });
    assert_eq!(pending_paths(&snapshot), vec!["src/store.rs"]);

    let banner = snapshot
        .banner(&["src/store.rs", "web/render.ts"])
        .expect("a banner");
    assert!(banner.starts_with(BANNER_HEADER), "{banner}");
    let line = banner.lines().nth(1).unwrap();
    // Its age counts from the file's mtime, 42 s ago (plus however long the test took).
    let age: u64 = line
        .strip_prefix("  - src/store.rs (edited ")
        .and_then(|rest| rest.split_once("s ago"))
        .and_then(|(secs, _)| secs.parse().ok())
        .unwrap_or_else(|| panic!("no age in {line}"));
    assert!((42..120).contains(&age), "{line}");
    // An answer that does not mention it gets no banner, only the footer.
    assert!(snapshot.banner(&["web/render.ts"]).is_none());
    let footer = snapshot.footer(&["web/render.ts"]).expect("a footer");
    assert!(
        footer.contains("1 other file pending sync: src/store.rs"),
        "{footer}"
    );

    // This writer does not watch, so `codelens status` checks the tree itself, and
    // agrees. (With a watching writer it reads the writer's set: see watcher.rs.)
    let status = repo.status_json();
    assert_eq!(status["pending_source"], "scan");
    assert_eq!(pending_of(&status), vec!["modified:src/store.rs"]);

    engine.send(Command::SyncNow);
    let synced = wait(&engine, "pending cleared by sync", |s| s.pending.is_empty());
    assert!(synced.banner(&["src/store.rs"]).is_none());
    assert!(pending_of(&repo.status_json()).is_empty());
    drop(engine);
    let store = Store::open(&repo.db_path()).unwrap();
    assert_eq!(store.symbols_named("edited").unwrap().len(), 1);
}

#[test]
fn a_touch_without_a_content_change_is_not_pending() {
    let repo = indexed_repo();
    set_mtime(
        &repo,
        "web/render.ts",
        SystemTime::now() - Duration::from_secs(10),
    );
    let engine = start(&repo, holding_options());
    let snapshot = wait(&engine, "catch-up done", caught_up);
    assert!(
        matches!(snapshot.catchup, Catchup::Done { found: 0, .. }),
        "{:?}",
        snapshot.catchup
    );
    assert!(snapshot.pending.is_empty());
}

#[test]
fn a_query_during_a_slow_catch_up_answers_with_the_unverified_notice() {
    let repo = TestRepo::new();
    for i in 0..2000 {
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 40),
            &format!("pub fn f{i}() {{}}\n"),
        );
    }
    repo.ok(&["init", "-q"]);
    for i in 0..2000 {
        repo.write(
            &format!("src/m{}/f{i}.rs", i % 40),
            &format!("pub fn g{i}() {{ /* edited */ }}\n"),
        );
    }
    let options = EngineOptions {
        catchup_timeout: Duration::from_millis(1),
        ..holding_options()
    };
    let engine = start(&repo, options);
    // Hashing 2,000 changed files cannot be done within the 1 ms the query waits.
    let early = engine.wait_for_catchup();
    assert!(!caught_up(&early), "{:?}", early.catchup);
    let notice = early
        .banner(&[])
        .expect("an unverified notice while catch-up runs");
    assert!(notice.contains("Catch-up"), "{notice}");
    // It does finish, with every edit found.
    let done = wait(&engine, "catch-up done", caught_up);
    assert_eq!(done.pending.len(), 2000);
    assert!(
        done.banner(&[]).is_none(),
        "no referenced file, catch-up done: no banner"
    );
}

#[test]
fn two_engines_on_one_index_have_one_writer_the_same_pending_set_and_a_takeover() {
    let repo = indexed_repo();
    repo.write(
        "web/render.ts",
        &format!("{TS_SRC}\nexport function extra() {{}}\n"),
    );

    let first = start(&repo, holding_options());
    wait(&first, "writer caught up", |s| {
        caught_up(s) && s.pending.len() == 1
    });
    let second = start(&repo, holding_options());
    assert_eq!(first.snapshot().role, Role::Writer);
    assert_eq!(second.snapshot().role, Role::Follower);
    let followed = wait(&second, "follower sees the writer's pending set", |s| {
        s.pending.len() == 1
    });
    assert_eq!(pending_paths(&followed), pending_paths(&first.snapshot()));
    // Commands a follower cannot carry out are ignored, not crashes.
    second.send(Command::SyncNow);

    drop(first);
    let took_over = wait(&second, "follower takes over as writer", |s| {
        s.role == Role::Writer && caught_up(s)
    });
    assert_eq!(pending_paths(&took_over), vec!["web/render.ts"]);
    // Still exactly one writer: a third engine follows.
    let third = start(&repo, holding_options());
    assert_eq!(third.snapshot().role, Role::Follower);
}

#[test]
fn a_cli_sync_while_the_engine_runs_is_noticed() {
    let repo = indexed_repo();
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn edited() {{}}\n"),
    );
    let engine = start(&repo, holding_options());
    wait(&engine, "one pending", |s| {
        caught_up(s) && s.pending.len() == 1
    });
    repo.ok(&["sync", "-q"]);
    wait(&engine, "the engine sees the index synced", |s| {
        s.pending.is_empty() && caught_up(s)
    });
}

#[test]
fn a_corrupt_index_fails_at_start_with_a_clear_error() {
    let repo = indexed_repo();
    std::fs::write(repo.db_path(), b"garbage".repeat(1000)).unwrap();
    let error = Engine::start(Project::at(repo.root()), EngineOptions::default())
        .err()
        .expect("start fails");
    assert_eq!(error.exit_code(), 4, "{error}");
}
