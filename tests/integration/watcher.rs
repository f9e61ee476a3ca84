//! The file watcher, with real inotify on real temp repositories: edits become pending
//! at once and are re-indexed after the directory's quiet window.

use crate::common;

use std::sync::mpsc::Receiver;
use std::time::Duration;

use codelens::config::Config;
use codelens::engine::project::Project;
use codelens::engine::store::Store;
use codelens::engine::watcher::WatchMode;
use codelens::engine::{Catchup, Engine, EngineOptions, Event};
use common::*;

/// Generous: the tests wait on real threads, disks and the kernel, never on a duration.
const DEADLINE: Duration = Duration::from_secs(60);

fn repo_with_sources() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "build/\n*.log\n");
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

fn watching_options(debounce_ms: u64) -> EngineOptions {
    let config = Config::from_lookup(|name| match name {
        "CODELENS_WATCH_DEBOUNCE_MS" => Some(debounce_ms.to_string()),
        _ => None,
    });
    EngineOptions {
        poll_interval: Duration::from_millis(50),
        ..EngineOptions::from_config(&config)
    }
}

fn start(repo: &TestRepo, options: EngineOptions) -> Engine {
    let engine = Engine::start(Project::at(repo.root()), options).expect("engine starts");
    engine
        .wait_until(DEADLINE, |s| {
            matches!(s.catchup, Catchup::Done { .. }) && s.pending.is_empty()
        })
        .expect("initial catch-up");
    engine
}

fn symbols(repo: &TestRepo, name: &str) -> usize {
    Store::open(&repo.db_path())
        .unwrap()
        .symbols_named(name)
        .unwrap()
        .len()
}

fn synced_events(events: &Receiver<Event>) -> usize {
    events
        .try_iter()
        .filter(|e| matches!(e, Event::Synced { .. }))
        .count()
}

#[test]
fn an_edit_is_pending_at_once_and_indexed_after_the_debounce() {
    let repo = repo_with_sources();
    // Long enough for another process's `status` to see the file still waiting.
    let engine = start(&repo, watching_options(5000));
    assert_eq!(engine.snapshot().watcher.mode, WatchMode::Native);

    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn freshly_saved() {{}}\n"),
    );
    // A question asked right after the save sees it pending (cookie handshake).
    assert!(engine.settle(DEADLINE));
    let snapshot = engine.snapshot();
    assert!(
        snapshot.pending.iter().any(|p| p.path == "src/store.rs"),
        "{:?}",
        snapshot.pending
    );
    let banner = snapshot
        .banner(&["src/store.rs"])
        .expect("banner while pending");
    assert!(banner.contains("src/store.rs (edited"), "{banner}");
    assert!(banner.contains("re-index in"), "{banner}");
    assert_eq!(snapshot.directories.len(), 1);
    assert_eq!(snapshot.directories[0].dir, "src");
    // Another process sees the watching writer's pending set.
    let status = repo.status_json();
    assert_eq!(status["pending_source"], "engine", "{status}");
    assert_eq!(pending_of(&status), vec!["modified:src/store.rs"]);
    assert_eq!(status["pending"][0]["state"], "waiting");
    assert_eq!(status["watcher"]["mode"], "native");

    wait(&engine, "re-indexed", |s| s.pending.is_empty());
    assert_eq!(symbols(&repo, "freshly_saved"), 1);
}

#[test]
fn an_atomic_save_replaces_the_file_and_its_temp_file_is_never_indexed() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(200));
    // JetBrains-style atomic save: write a temp file beside, then rename it over.
    let temp = repo.path("web/render.ts___jb_tmp___");
    std::fs::write(
        &temp,
        format!("{TS_SRC}\nexport function atomically() {{}}\n"),
    )
    .unwrap();
    assert!(engine.settle(DEADLINE));
    assert!(
        engine.snapshot().pending.is_empty(),
        "a temp file is no edit: {:?}",
        engine.snapshot().pending
    );
    std::fs::rename(&temp, repo.path("web/render.ts")).unwrap();
    assert!(engine.settle(DEADLINE));
    let pending: Vec<String> = engine
        .snapshot()
        .pending
        .iter()
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(pending, vec!["web/render.ts"]);
    assert!(engine.settle(DEADLINE));
    wait(&engine, "re-indexed", |s| {
        s.pending.is_empty() && s.directories.is_empty()
    });
    assert_eq!(symbols(&repo, "atomically"), 1);
    let status = repo.status_json();
    assert_eq!(status["files"], 3, "{status}");
    assert!(pending_of(&status).is_empty());
}

#[test]
fn a_burst_across_fifty_directories_ends_equal_to_the_tree_in_few_batches() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(300));
    let events = engine.subscribe();
    for i in 0..2000 {
        repo.write(
            &format!("gen/d{}/f{i}.py", i % 50),
            &format!("def burst_{i}():\n    pass\n"),
        );
    }
    let done = wait(&engine, "every burst file indexed", |s| {
        s.pending.is_empty() && s.stats.files == 2003
    });
    assert_eq!(done.stats.files, 2003);
    let batches = synced_events(&events);
    assert!(
        batches > 0 && batches < 200,
        "{batches} re-index batches for 2,000 files"
    );
    assert_eq!(symbols(&repo, "burst_1999"), 1);
    drop(engine);
    assert!(
        pending_of(&repo.status_json()).is_empty(),
        "the index equals the tree"
    );
}

#[test]
fn new_and_renamed_in_directories_are_crawled_and_deleted_ones_dropped() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(200));
    // Created inside, with files written before its watch could exist.
    repo.write("pkg/deep/er/mod.py", "def nested_new():\n    pass\n");
    // Built elsewhere, then moved in.
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("moved/inner")).unwrap();
    std::fs::write(
        outside.path().join("moved/inner/m.go"),
        "package m\n\nfunc MovedIn() {}\n",
    )
    .unwrap();
    std::fs::rename(outside.path().join("moved"), repo.path("moved")).unwrap();
    assert!(engine.settle(DEADLINE));
    wait(&engine, "new trees indexed", |s| {
        s.pending.is_empty() && s.stats.files == 5
    });
    assert_eq!(symbols(&repo, "nested_new"), 1);
    assert_eq!(symbols(&repo, "MovedIn"), 1);

    std::fs::remove_dir_all(repo.path("pkg")).unwrap();
    std::fs::rename(repo.path("moved"), outside.path().join("moved-back")).unwrap();
    assert!(engine.settle(DEADLINE));
    wait(&engine, "removed trees dropped", |s| {
        s.pending.is_empty() && s.stats.files == 3
    });
    assert_eq!(symbols(&repo, "nested_new"), 0);
    assert_eq!(symbols(&repo, "MovedIn"), 0);
}

#[test]
fn ignored_files_cause_no_work() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100));
    let events = engine.subscribe();
    repo.write("debug.log", "noise\n");
    repo.write("build/out.rs", "fn generated() {}\n");
    repo.write("src/.store.rs.swp", "vim swap\n");
    assert!(engine.settle(DEADLINE));
    let snapshot = engine.snapshot();
    assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
    assert!(
        snapshot.directories.is_empty(),
        "{:?}",
        snapshot.directories
    );
    // Give a (wrong) re-index every chance to happen before looking.
    std::thread::sleep(Duration::from_millis(300));
    assert!(engine.settle(DEADLINE));
    assert_eq!(synced_events(&events), 0);
    assert_eq!(engine.snapshot().stats.files, 3);
}

#[test]
fn no_watch_turns_the_watcher_off_and_says_so() {
    let repo = repo_with_sources();
    let config = Config::from_lookup(|name| (name == "CODELENS_NO_WATCH").then(|| "1".to_string()));
    let engine = start(&repo, EngineOptions::from_config(&config));
    let snapshot = engine.snapshot();
    assert_eq!(snapshot.watcher.mode, WatchMode::Disabled);
    assert!(
        snapshot.watcher.reason.contains("CODELENS_NO_WATCH"),
        "{}",
        snapshot.watcher.reason
    );
    let notice = snapshot
        .auto_sync_notice()
        .expect("a notice on every answer");
    assert!(notice.starts_with("auto-sync is off"), "{notice}");
    assert_eq!(
        snapshot.freshness.unverified(),
        Some(&codelens::engine::Unverified::WatcherOff)
    );
    // Edits are not re-indexed until asked for, but the engine's own scan of the tree
    // (while its verdict is unverified) lists them, as `unsynced`…
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn unseen() {{}}\n"),
    );
    assert!(
        engine.settle(DEADLINE),
        "nothing to wait for without a watcher"
    );
    let seen = wait(&engine, "the scan lists the edit", |s| {
        s.pending.iter().any(|p| p.path == "src/store.rs")
    });
    assert_eq!(
        seen.pending[0].state,
        codelens::engine::banner::PendingState::Unsynced
    );
    assert_eq!(symbols(&repo, "unseen"), 0, "not re-indexed");
    // …and `status` from another process tells the truth by checking itself.
    assert_eq!(repo.status_json()["watcher"]["mode"], "disabled");
    assert_eq!(
        pending_of(&repo.status_json()),
        vec!["modified:src/store.rs"]
    );
}

#[test]
fn a_lost_event_signal_means_a_full_reconcile_and_is_counted() {
    let repo = repo_with_sources();
    // One watch only (the root): src/ is unwatched, so its edits make no event.
    let config = Config::from_lookup(|name| match name {
        "CODELENS_MAX_DIR_WATCHES" => Some("1".into()),
        "CODELENS_WATCH_DEBOUNCE_MS" => Some("100".into()),
        _ => None,
    });
    let engine = start(
        &repo,
        EngineOptions {
            poll_interval: Duration::from_millis(50),
            ..EngineOptions::from_config(&config)
        },
    );
    let snapshot = engine.snapshot();
    assert_eq!(
        snapshot.watcher.mode,
        WatchMode::Degraded,
        "{:?}",
        snapshot.watcher
    );
    assert!(snapshot.watcher.unwatched_dirs >= 2);
    assert!(
        snapshot
            .auto_sync_notice()
            .unwrap()
            .starts_with("auto-sync is degraded")
    );

    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn behind_the_watchers_back() {{}}\n"),
    );
    // No watch reports it; the degraded engine's own scan of the tree (while its
    // verdict is unverified) finds it and re-indexes it.
    wait(&engine, "the edit in an unwatched directory indexed", |s| {
        s.pending.is_empty() && s.stats.symbols > snapshot.stats.symbols
    });
    assert_eq!(symbols(&repo, "behind_the_watchers_back"), 1);
    // What notify delivers on a kernel queue overflow: the Rescan flag, no paths.
    engine.inject_lost_events();
    wait(&engine, "full reconcile", |s| {
        s.watcher.rescans == 1 && s.pending.is_empty() && matches!(s.catchup, Catchup::Done { .. })
    });
}

#[test]
fn a_branch_switch_of_many_files_ends_with_the_index_equal_to_the_tree() {
    let repo = repo_with_sources();
    repo.git(&["checkout", "-q", "-b", "wide"]);
    for i in 0..5000 {
        repo.write(
            &format!("wide/m{}/w{i}.rs", i % 100),
            &format!("pub fn wide_{i}() {{}}\n"),
        );
    }
    repo.commit_all("wide");
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["sync", "-q"]);
    let engine = start(&repo, watching_options(200));
    repo.git(&["checkout", "-q", "wide"]);
    assert!(engine.settle(DEADLINE));
    wait(&engine, "checkout indexed", |s| {
        s.pending.is_empty() && s.stats.files == 5003
    });
    repo.git(&["checkout", "-q", "main"]);
    assert!(engine.settle(DEADLINE));
    wait(&engine, "checkout back indexed", |s| {
        s.pending.is_empty() && s.stats.files == 3
    });
    drop(engine);
    assert!(pending_of(&repo.status_json()).is_empty());
    assert_eq!(symbols(&repo, "wide_4999"), 0);
}

#[test]
fn hooks_keep_the_index_in_sync_and_uninstall_restores_the_hook() {
    let repo = repo_with_sources();
    let hook = repo.path(".git/hooks/post-commit");
    let original = "#!/bin/sh\necho existing hook > /dev/null\n";
    std::fs::write(&hook, original).unwrap();

    let out = repo.ok(&["hooks", "install"]);
    assert!(out.contains("post-commit    inserted"), "{out}");
    assert!(out.contains("post-checkout  created"), "{out}");
    assert!(
        repo.ok(&["hooks", "install"])
            .lines()
            .all(|l| l.ends_with("unchanged"))
    );

    repo.write("src/hooked.rs", "pub fn via_hook() {}\n");
    repo.commit_all("hooked");
    let deadline = std::time::Instant::now() + DEADLINE;
    while symbols(&repo, "via_hook") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        symbols(&repo, "via_hook"),
        1,
        "the post-commit hook ran codelens sync"
    );

    repo.ok(&["hooks", "uninstall"]);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), original);
    assert!(!repo.path(".git/hooks/post-checkout").exists());
}

#[test]
fn a_directory_deleted_and_recreated_is_watched_again() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100));
    std::fs::remove_dir_all(repo.path("web")).unwrap();
    std::fs::create_dir(repo.path("web")).unwrap();
    assert!(engine.settle(DEADLINE));
    wait(&engine, "the recreated directory reconciled", |s| {
        s.pending.is_empty() && s.directories.is_empty()
    });
    // An edit in the new directory (a new inode) must still be seen.
    repo.write("web/again.ts", "export function recreated() {}\n");
    assert!(engine.settle(DEADLINE));
    wait(&engine, "edit in the recreated directory indexed", |s| {
        s.pending.is_empty() && s.stats.files == 3
    });
    assert_eq!(symbols(&repo, "recreated"), 1);
    assert_eq!(symbols(&repo, "render"), 0);
}

#[test]
fn re_indexing_waits_while_git_holds_its_index_lock() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100));
    let lock = repo.path(".git/index.lock");
    std::fs::write(&lock, b"").unwrap();
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn during_checkout() {{}}\n"),
    );
    assert!(engine.settle(DEADLINE));
    // Several debounce windows later the file is still waiting for git to finish.
    std::thread::sleep(Duration::from_millis(500));
    assert!(engine.settle(DEADLINE));
    assert_eq!(engine.snapshot().pending.len(), 1);
    assert_eq!(symbols(&repo, "during_checkout"), 0);
    std::fs::remove_file(&lock).unwrap();
    wait(&engine, "indexed once git is done", |s| {
        s.pending.is_empty()
    });
    assert_eq!(symbols(&repo, "during_checkout"), 1);
}

#[test]
fn init_refuses_to_swap_the_database_under_a_running_engine() {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100));
    let err = assert_one_line_error(&repo.codelens(&["init", "-q"]), 1);
    assert!(err.contains("running codelens engine"), "{err}");
    drop(engine);
    repo.ok(&["init", "-q"]);
}
