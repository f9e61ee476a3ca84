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

crate::under_both_strategies!(
    an_edit_is_pending_at_once_and_indexed_after_the_debounce,
    an_atomic_save_replaces_the_file_and_its_temp_file_is_never_indexed,
    a_burst_across_fifty_directories_ends_equal_to_the_tree_in_few_batches,
    new_and_renamed_in_directories_are_crawled_and_deleted_ones_dropped,
    ignored_files_cause_no_work,
    a_lost_event_signal_means_a_full_reconcile_and_is_counted,
    a_branch_switch_of_many_files_ends_with_the_index_equal_to_the_tree,
    a_directory_deleted_and_recreated_is_watched_again,
    re_indexing_waits_while_git_holds_its_index_lock,
    lost_events_below_a_directory_rescan_that_subtree_only,
    a_renamed_project_root_is_reported_as_a_degraded_watcher,
    a_deleted_project_root_is_reported_as_a_degraded_watcher,
    events_in_ignored_trees_and_nested_repositories_cause_no_work,
);

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

/// A watching engine's options, read from the environment it would be given: a
/// debounce window and a watch strategy (`CODELENS_WATCH_STRATEGY`).
fn watching_options(debounce_ms: u64, strategy: &str) -> EngineOptions {
    let config = Config::from_lookup(|name| match name {
        "CODELENS_WATCH_DEBOUNCE_MS" => Some(debounce_ms.to_string()),
        "CODELENS_WATCH_STRATEGY" => Some(strategy.to_string()),
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

/// Noise the watcher has seen must cause no work: once a (wrong) re-index has had every
/// chance to run, nothing is pending or waiting and nothing was re-indexed.
fn assert_no_work(engine: &Engine, events: &Receiver<Event>) {
    assert!(engine.settle(DEADLINE));
    std::thread::sleep(Duration::from_millis(300));
    assert!(engine.settle(DEADLINE));
    let snapshot = engine.snapshot();
    assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
    assert!(
        snapshot.directories.is_empty(),
        "{:?}",
        snapshot.directories
    );
    assert_eq!(synced_events(events), 0);
}

fn synced_events(events: &Receiver<Event>) -> usize {
    events
        .try_iter()
        .filter(|e| matches!(e, Event::Synced { .. }))
        .count()
}

fn an_edit_is_pending_at_once_and_indexed_after_the_debounce(strategy: &str) {
    let repo = repo_with_sources();
    // Long enough for another process's `status` to see the file still waiting.
    let engine = start(&repo, watching_options(5000, strategy));
    let watcher = engine.snapshot().watcher.clone();
    assert_eq!(watcher.mode, WatchMode::Native);
    assert_eq!(watcher.strategy.name(), strategy);
    assert!(watcher.descriptors > 0, "{watcher:?}");

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
    assert_eq!(status["watcher"]["strategy"], strategy, "{status}");
    assert_eq!(
        status["watcher"]["descriptors"], watcher.descriptors,
        "{status}"
    );

    wait(&engine, "re-indexed", |s| s.pending.is_empty());
    assert_eq!(symbols(&repo, "freshly_saved"), 1);
}

fn an_atomic_save_replaces_the_file_and_its_temp_file_is_never_indexed(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(200, strategy));
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

fn a_burst_across_fifty_directories_ends_equal_to_the_tree_in_few_batches(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(300, strategy));
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

fn new_and_renamed_in_directories_are_crawled_and_deleted_ones_dropped(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(200, strategy));
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

fn ignored_files_cause_no_work(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100, strategy));
    let events = engine.subscribe();
    repo.write("debug.log", "noise\n");
    repo.write("build/out.rs", "fn generated() {}\n");
    repo.write("src/.store.rs.swp", "vim swap\n");
    assert_no_work(&engine, &events);
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

fn a_lost_event_signal_means_a_full_reconcile_and_is_counted(strategy: &str) {
    let repo = repo_with_sources();
    // One watch only (the root): under per-directory watches, src/ is unwatched, so its
    // edits make no event. The cap is on per-directory watches: the recursive watch
    // covers everything whatever it says.
    let config = Config::from_lookup(|name| match name {
        "CODELENS_MAX_DIR_WATCHES" => Some("1".into()),
        "CODELENS_WATCH_DEBOUNCE_MS" => Some("100".into()),
        "CODELENS_WATCH_STRATEGY" => Some(strategy.into()),
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
    if strategy == "recursive" {
        assert_eq!(
            snapshot.watcher.mode,
            WatchMode::Native,
            "{:?}",
            snapshot.watcher
        );
        assert_eq!(snapshot.watcher.unwatched_dirs, 0);
        // Overflow: notify's Rescan flag, no paths. A full reconcile, counted.
        engine.inject_lost_events();
        wait(&engine, "full reconcile", |s| {
            s.watcher.rescans == 1
                && s.pending.is_empty()
                && matches!(s.catchup, Catchup::Done { .. })
        });
        repo.write(
            "src/store.rs",
            &format!("{RUST_SRC}\npub fn behind_the_watchers_back() {{}}\n"),
        );
        assert!(engine.settle(DEADLINE));
        wait(&engine, "the edit seen and indexed after the rescan", |s| {
            s.pending.is_empty() && s.stats.symbols > snapshot.stats.symbols
        });
        assert_eq!(symbols(&repo, "behind_the_watchers_back"), 1);
        return;
    }
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

fn a_branch_switch_of_many_files_ends_with_the_index_equal_to_the_tree(strategy: &str) {
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
    let engine = start(&repo, watching_options(200, strategy));
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

fn a_directory_deleted_and_recreated_is_watched_again(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100, strategy));
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

fn re_indexing_waits_while_git_holds_its_index_lock(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100, strategy));
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
    let engine = start(&repo, watching_options(100, WATCH_STRATEGIES[0]));
    let err = assert_one_line_error(&repo.codelens(&["init", "-q"]), 1);
    assert!(err.contains("running codelens engine"), "{err}");
    drop(engine);
    repo.ok(&["init", "-q"]);
}

fn lost_events_below_a_directory_rescan_that_subtree_only(strategy: &str) {
    let repo = repo_with_sources();
    repo.write("src/deep/more.rs", "pub fn more() {}\n");
    repo.ok(&["sync", "-q"]);
    let engine = start(&repo, watching_options(100, strategy));
    let events = engine.subscribe();
    // An unchanged subtree rescanned: nothing is pending (its stats match the index).
    engine.inject_lost_events_in("src");
    assert!(engine.settle(DEADLINE));
    let snapshot = engine.snapshot();
    assert!(snapshot.pending.is_empty(), "{:?}", snapshot.pending);
    assert_eq!(snapshot.watcher.rescans, 1, "counted with the rescans");
    // A subtree, not the tree: no full catch-up ran.
    let seen: Vec<Event> = events.try_iter().collect();
    assert!(
        seen.iter().any(|e| matches!(e, Event::Rescan { count: 1 })),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::CatchupFinished { .. })),
        "{seen:?}"
    );
    // A name that is no directory (any more) stands for its parent; an edit made at
    // the same moment is pending either way, and the index ends equal to the tree.
    repo.write("src/deep/more.rs", "pub fn more_after_the_loss() {}\n");
    engine.inject_lost_events_in("src/deep/more.rs");
    assert!(engine.settle(DEADLINE));
    assert!(
        engine
            .snapshot()
            .pending
            .iter()
            .any(|p| p.path == "src/deep/more.rs"),
        "{:?}",
        engine.snapshot().pending
    );
    wait(&engine, "the subtree re-indexed", |s| {
        s.pending.is_empty() && s.directories.is_empty() && s.watcher.rescans == 2
    });
    assert_eq!(symbols(&repo, "more_after_the_loss"), 1);
    drop(engine);
    assert!(pending_of(&repo.status_json()).is_empty());
}

/// Waits until the engine's watcher says it is degraded for a reason containing `why`,
/// and returns that reason.
fn wait_degraded(engine: &Engine, why: &str) -> String {
    let snapshot = wait(engine, "the watcher reported degraded", |s| {
        s.watcher.mode == WatchMode::Degraded && s.watcher.reason.contains(why)
    });
    snapshot.watcher.reason.clone()
}

fn a_renamed_project_root_is_reported_as_a_degraded_watcher(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100, strategy));
    let events = engine.subscribe();
    let root = repo.root();
    let moved = root.with_extension("moved");
    std::fs::rename(&root, &moved).unwrap();
    let reason = wait_degraded(&engine, "renamed");
    assert!(reason.contains(&root.display().to_string()), "{reason}");
    assert!(reason.contains(strategy), "{reason}");
    // Never silence: the mode change and the error both reach subscribers (in either
    // order: the status may be refreshed for another event first).
    let reported = |seen: &[Event]| {
        seen.iter()
            .any(|e| matches!(e, Event::WatcherChanged { mode, .. } if mode == "degraded"))
            && seen.iter().any(|e| matches!(e, Event::Error(_)))
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while !reported(&seen) {
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        seen.extend(events.recv_timeout(Duration::from_millis(100)));
    }
    drop(engine);
    // Back where the temp directory will remove it.
    std::fs::rename(&moved, &root).unwrap();
}

fn a_deleted_project_root_is_reported_as_a_degraded_watcher(strategy: &str) {
    let repo = repo_with_sources();
    let engine = start(&repo, watching_options(100, strategy));
    let root = repo.root();
    // The running engine may create a file under `.codelens/` between `remove_dir_all`'s
    // listing and its `rmdir` (ENOTEMPTY): try again until the root is gone.
    let mut attempts = 0;
    while let Err(error) = std::fs::remove_dir_all(&root) {
        attempts += 1;
        assert!(
            attempts < 100 && error.kind() == std::io::ErrorKind::DirectoryNotEmpty,
            "{error}"
        );
    }
    let reason = wait_degraded(&engine, "deleted");
    assert!(reason.contains(&root.display().to_string()), "{reason}");
    assert!(engine.is_running());
    // `status` and the verdict say so: the degraded state is what answers carry.
    assert!(
        matches!(
            engine.snapshot().freshness.unverified(),
            Some(codelens::engine::Unverified::WatcherDegraded { .. })
                | Some(codelens::engine::Unverified::CatchUpFailed { .. })
        ),
        "{:?}",
        engine.snapshot().freshness
    );
}

fn events_in_ignored_trees_and_nested_repositories_cause_no_work(strategy: &str) {
    let repo = repo_with_sources();
    repo.write(".gitignore", "build/\n*.log\nnode_modules/\n");
    repo.write("node_modules/dep/index.ts", "export function dep() {}\n");
    let nested = repo.path("vendor/nested");
    std::fs::create_dir_all(&nested).unwrap();
    git_in(&nested, &["init", "-q"]);
    std::fs::write(nested.join("lib.rs"), "pub fn nested_lib() {}\n").unwrap();
    repo.ok(&["sync", "-q"]);
    let files = repo.status_json()["files"].clone();
    let engine = start(&repo, watching_options(100, strategy));
    let events = engine.subscribe();
    for round in 0..20 {
        repo.write(
            &format!("node_modules/dep/gen{round}/x.ts"),
            &format!("export function gen{round}() {{}}\n"),
        );
        std::fs::write(
            nested.join(format!("churn{round}.rs")),
            format!("pub fn churn{round}() {{}}\n"),
        )
        .unwrap();
        repo.write(".git/codelens-test-noise", &format!("{round}\n"));
    }
    assert_no_work(&engine, &events);
    assert_eq!(repo.status_json()["files"], files);
    // The index's own directories still work as before.
    repo.write("web/after.ts", "export function after() {}\n");
    assert!(engine.settle(DEADLINE));
    wait(&engine, "an edit beside the noise indexed", |s| {
        s.pending.is_empty() && s.directories.is_empty()
    });
    assert_eq!(symbols(&repo, "after"), 1);
}
