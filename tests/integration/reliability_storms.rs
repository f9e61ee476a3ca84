//! Event storms under a watching engine (`codelens watch`, the real binary, real
//! inotify): a `git checkout` between branches differing in 5,000 files, 2,000 files
//! written at once, a directory tree renamed, `rm -rf` of a big directory, and 1,000
//! editor-style atomic saves. While each storm runs (paused for a moment so the tree
//! holds still) every file that differs from the index is pending — never silently
//! stale — and once the watcher settles the oracle agrees with the tree byte for byte.
//! Every storm runs under both watch strategies (`NAME::per_directory`, `NAME::recursive`).

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::oracle;
use common::procs::{self, Proc};
use common::*;

/// Generous: storms wait on the kernel, the disk and two shared cores.
const SETTLE: Duration = Duration::from_secs(120);

struct Storm {
    repo: TestRepo,
    home: tempfile::TempDir,
    engine: Option<Proc>,
}

impl Storm {
    /// `files` sources in directories of 50 (`tree/dNN/…`), committed and indexed, with a
    /// watching engine (its watches armed the `strategy` way) caught up on them.
    fn new(files: usize, strategy: &str) -> Storm {
        let repo = TestRepo::new();
        repo.write(".gitignore", "target/\n*.tmp\n");
        for i in 0..files {
            repo.write(
                &format!("tree/d{:03}/f{i}.py", i / 50),
                &format!("def f{i}():\n    return {i}\n"),
            );
        }
        repo.commit_all("initial");
        let home = tempfile::tempdir().unwrap();
        let out = procs::run(&repo.root(), home.path(), &["init", "-q"]);
        assert_success(&out, &["init"]);
        let engine = procs::start_watch_with(&repo.root(), home.path(), strategy);
        let storm = Storm {
            repo,
            home,
            engine: Some(engine),
        };
        oracle::wait_until_agrees(&storm.root(), SETTLE);
        storm
    }

    fn root(&self) -> std::path::PathBuf {
        self.repo.root()
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Mid-storm, tree held still: nothing differs silently. Returns how many files
    /// were pending then.
    fn check_mid_storm(&mut self) -> usize {
        let engine = self.engine.as_mut().unwrap();
        assert!(engine.running(), "the engine died: {}", engine.stderr());
        oracle::assert_no_silent_staleness(&self.root())
    }

    /// The watcher settles, the oracle agrees, and the engine said nothing alarming.
    fn settle(&mut self) {
        oracle::wait_until_agrees(&self.root(), SETTLE);
        let engine = self.engine.as_mut().unwrap();
        assert!(engine.running(), "the engine died: {}", engine.stderr());
        procs::assert_no_lock_error("watch", &engine.stderr());
    }
}

crate::under_both_strategies!(
    checkout_between_branches_differing_in_five_thousand_files,
    two_thousand_files_written_at_once,
    a_directory_tree_renamed_and_renamed_back,
    rm_rf_of_a_big_directory,
    a_thousand_editor_style_atomic_saves,
    the_engine_survives_every_storm_and_then_a_sync_finds_nothing,
    a_file_saved_while_the_engine_reindexes_a_storm_is_listed_at_once
);

impl Drop for Storm {
    fn drop(&mut self) {
        if let Some(mut engine) = self.engine.take() {
            engine.terminate();
        }
    }
}

fn checkout_between_branches_differing_in_five_thousand_files(strategy: &str) {
    let mut storm = Storm::new(4500, strategy);
    let repo = &storm.repo;
    // `other`: 4,000 files modified, 500 deleted, 500 added in new directories.
    repo.git(&["checkout", "-q", "-b", "other"]);
    for i in 0..4500 {
        let path = format!("tree/d{:03}/f{i}.py", i / 50);
        if i < 4000 {
            repo.write(
                &path,
                &format!("def f{i}():\n    return {i} * 2  # other\n"),
            );
        } else {
            repo.remove(&path);
        }
    }
    for i in 0..500 {
        repo.write(
            &format!("branch/n{:02}/g{i}.rs", i / 50),
            &format!("pub fn g{i}() {{}}\n"),
        );
    }
    repo.commit_all("other");
    // The engine follows the commit's tree; let it settle on `other` first.
    storm.settle();
    let changed = storm.repo.git(&["diff", "--name-only", "main", "other"]);
    assert_eq!(changed.lines().count(), 5000);

    for (round, branch) in ["main", "other", "main"].into_iter().enumerate() {
        storm.repo.git(&["checkout", "-q", branch]);
        let pending = storm.check_mid_storm();
        storm.settle();
        eprintln!("checkout {round} to {branch}: {pending} pending right after it");
    }
}

fn two_thousand_files_written_at_once(strategy: &str) {
    let mut storm = Storm::new(200, strategy);
    let mut pending_seen = Vec::new();
    for part in 0..2 {
        for i in part * 1000..(part + 1) * 1000 {
            storm.repo.write(
                &format!("burst/b{:02}/x{i}.ts", i % 40),
                &format!("export function x{i}(): number {{ return {i}; }}\n"),
            );
        }
        pending_seen.push(storm.check_mid_storm());
    }
    storm.settle();
    // And rewritten in place, same sizes (only hashes tell), then settled again.
    for i in 0..2000 {
        let path = format!("burst/b{:02}/x{i}.ts", i % 40);
        let bytes = std::fs::read(storm.repo.path(&path)).unwrap();
        let flipped: Vec<u8> = bytes
            .iter()
            .map(|&b| if b == b'x' { b'y' } else { b })
            .collect();
        std::fs::write(storm.repo.path(&path), flipped).unwrap();
    }
    pending_seen.push(storm.check_mid_storm());
    storm.settle();
    eprintln!("pending at the mid-storm checks: {pending_seen:?}");
}

fn a_directory_tree_renamed_and_renamed_back(strategy: &str) {
    let mut storm = Storm::new(1000, strategy);
    // Nest part of it deeper first, so the rename moves a multi-level tree.
    for i in 0..200 {
        storm.repo.write(
            &format!("tree/d000/deep/er/h{i}.go"),
            &format!("package er\n\nfunc H{i}() {{}}\n"),
        );
    }
    storm.settle();
    let root = storm.root();
    std::fs::rename(root.join("tree"), root.join("renamed")).unwrap();
    storm.check_mid_storm();
    storm.settle();
    std::fs::rename(root.join("renamed/d000"), root.join("top")).unwrap();
    std::fs::rename(root.join("renamed"), root.join("tree")).unwrap();
    storm.check_mid_storm();
    storm.settle();
    // Out of the tree and back in.
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(root.join("top"), outside.path().join("top")).unwrap();
    storm.check_mid_storm();
    storm.settle();
    std::fs::rename(outside.path().join("top"), root.join("back")).unwrap();
    storm.check_mid_storm();
    storm.settle();
}

fn rm_rf_of_a_big_directory(strategy: &str) {
    let mut storm = Storm::new(3000, strategy);
    std::fs::remove_dir_all(storm.root().join("tree")).unwrap();
    let pending = storm.check_mid_storm();
    storm.settle();
    eprintln!("{pending} pending right after rm -rf");
    let status = oracle::status_json(&storm.root());
    let left = oracle::read_index(&storm.root()).rows;
    assert!(
        left.keys().all(|p| !p.starts_with(b"tree/")),
        "rows under the removed directory remain: {status}"
    );
    // And recreated in one go (a `git checkout .` restores it).
    storm.repo.git(&["checkout", "-q", "--", "tree"]);
    storm.check_mid_storm();
    storm.settle();
}

fn a_thousand_editor_style_atomic_saves(strategy: &str) {
    let mut storm = Storm::new(100, strategy);
    let root = storm.root();
    for save in 0..1000 {
        let target = format!("tree/d{:03}/f{}.py", (save % 100) / 50, save % 100);
        // Write a temp file beside the target, then rename it over (vim's `backupcopy=no`,
        // VS Code's and JetBrains' safe write). Temps alternate between an ignored name
        // and a hidden, not ignored one.
        let temp = if save % 2 == 0 {
            format!("{target}.{save}.tmp")
        } else {
            let (dir, name) = target.rsplit_once('/').unwrap();
            format!("{dir}/.{name}.swx{save}")
        };
        std::fs::write(
            root.join(&temp),
            format!("def f{}():\n    return {save}  # save {save}\n", save % 100),
        )
        .unwrap();
        std::fs::rename(root.join(&temp), root.join(&target)).unwrap();
        if save % 250 == 249 {
            storm.check_mid_storm();
        }
    }
    storm.settle();
}

fn the_engine_survives_every_storm_and_then_a_sync_finds_nothing(strategy: &str) {
    // After a mixed storm settles, a CLI sync has nothing left to do: the watcher's
    // incremental re-indexing left the index exactly as a full reconcile would.
    let mut storm = Storm::new(500, strategy);
    let root = storm.root();
    for i in 0..300 {
        storm.repo.write(
            &format!("mixed/m{}/z{i}.rs", i % 7),
            &format!("pub fn z{i}() {{}}\n"),
        );
    }
    std::fs::rename(root.join("tree/d001"), root.join("mixed/moved")).unwrap();
    std::fs::remove_dir_all(root.join("tree/d002")).unwrap();
    storm.check_mid_storm();
    storm.settle();
    let out = procs::run(&root, storm.home(), &["sync", "--json"]);
    assert_success(&out, &["sync"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&report["added"], &report["modified"], &report["removed"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(0),
            &serde_json::json!(0)
        ),
        "{report}"
    );
}

fn a_file_saved_while_the_engine_reindexes_a_storm_is_listed_at_once(strategy: &str) {
    // 3,000 files in 60 directories: past 32 directories due at once the engine runs
    // one full sync, a second or so here during which it reads no events. A file saved
    // then must still be in `status --json` right away (checked with no marker and no
    // grace: the engine is busy, `status` looks at the tree itself).
    let mut storm = Storm::new(3000, strategy);
    let root = storm.root();
    for round in 0..5 {
        for i in 0..3000 {
            storm.repo.write(
                &format!("tree/d{:03}/f{i}.py", i / 50),
                &format!("def f{i}():\n    return {i} + {round}\n"),
            );
        }
        // Past the 100 ms quiet window: the re-index of the burst is under way.
        std::thread::sleep(Duration::from_millis(300));
        storm
            .repo
            .write("lone/x.py", &format!("def lone_{round}():\n    pass\n"));
        let status = oracle::status_json(&root);
        let stale = oracle::unlisted(&status, &oracle::read_tree(&root), &root);
        assert!(
            stale.is_empty(),
            "round {round}: saved during the re-index, not listed ({} source): {stale:?}",
            status["pending_source"]
        );
        storm.settle();
    }
}
