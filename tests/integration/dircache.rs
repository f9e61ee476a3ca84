//! The directory cache behind `sync`, catch-up and `status`: a directory whose entries
//! did not change is not listed again, only its files stat'ed. Whatever changes — files,
//! directories, ignore rules, nested repositories — the index must still end equal to
//! the tree (the oracle: `git ls-files` and SHA-256 of every file), and the counts in
//! `sync --json` say which directories were listed.

use crate::common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::rng::Rng;
use common::*;

fn sample_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target/\n*.log\n");
    repo.write("src/store.rs", RUST_SRC);
    repo.write("src/engine/mod.rs", "pub mod store;\n");
    repo.write(
        "tools/deep/nested/dir/indexer.py",
        "def index():\n    pass\n",
    );
    repo.write("web/render.ts", "export function render() {}\n");
    repo.write("target/debug/generated.rs", "fn generated() {}\n");
    repo.write("build.log", "ignored\n");
    // A directory whose own ignore file ignores everything, itself included (as
    // `.pytest_cache/` and virtualenvs do).
    repo.write("cache/.gitignore", "*\n");
    repo.write("cache/keep.txt", "kept out of the index for now\n");
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

/// Every directory of the tree (not `.git`'s or `.codelens`'s).
fn tree_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        for entry in std::fs::read_dir(&dirs[i]).unwrap().flatten() {
            let name = entry.file_name();
            if entry.file_type().unwrap().is_dir() && name != ".git" && name != ".codelens" {
                dirs.push(entry.path());
            }
        }
        i += 1;
    }
    dirs
}

/// Moves every directory's and file's mtime an hour back. What was modified shortly
/// before it was read is read again next time (a later change could leave the same
/// mtime in the same clock tick); what is old is trusted while its stat holds.
fn age_tree(root: &Path) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for dir in tree_dirs(root) {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_file() {
                let file = std::fs::File::options().append(true).open(entry.path());
                file.unwrap().set_modified(hour_ago).unwrap();
            }
        }
        let handle = std::fs::File::open(&dir).unwrap();
        handle.set_modified(hour_ago).unwrap();
    }
}

/// Brings the cache to trusting every directory: aged directories have a new ctime, so
/// one sync lists them again; the next lists none.
fn settle(repo: &TestRepo) {
    age_tree(&repo.root());
    repo.sync_json();
    let again = repo.sync_json();
    assert_eq!(
        again["dirs_listed"], 0,
        "a settled tree lists nothing: {again}"
    );
    oracle::assert_agrees(&repo.root());
}

fn sync_and_check(repo: &TestRepo, what: &str) -> serde_json::Value {
    let report = repo.sync_json();
    if let Err(why) = oracle::check_agrees(&repo.root()) {
        panic!("after {what} (sync said {report}): {why}");
    }
    report
}

#[test]
fn an_unchanged_tree_lists_no_directory_and_an_edit_lists_none() {
    let repo = sample_repo();
    settle(&repo);
    let dirs = tree_dirs(&repo.root()).len();
    assert!(dirs >= 8, "the sample has {dirs} directories");

    // Edited in place: the directory's entries are the same, only the file is read.
    repo.write("src/engine/mod.rs", "pub mod store;\npub mod scan;\n");
    let pending = pending_of(&repo.status_json());
    assert_eq!(
        pending,
        ["modified:src/engine/mod.rs"],
        "status sees the edit"
    );
    let report = sync_and_check(&repo, "an edit");
    assert_eq!(
        (
            &report["modified"],
            &report["hashed"],
            &report["dirs_listed"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{report}"
    );
}

#[test]
fn only_the_directories_whose_entries_changed_are_listed() {
    let repo = sample_repo();
    settle(&repo);
    repo.write("tools/deep/nested/dir/added.py", "def added():\n    pass\n");
    let report = sync_and_check(&repo, "adding a file");
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["dirs_listed"], 1, "only its directory: {report}");

    settle(&repo);
    std::fs::create_dir_all(repo.path("web/components/forms")).unwrap();
    repo.write("web/components/forms/input.ts", "export class Input {}\n");
    repo.write("web/components/button.ts", "export class Button {}\n");
    let report = sync_and_check(&repo, "adding a subtree");
    assert_eq!(report["added"], 2, "{report}");
    // `web` listed again; its new subtree walked (two directories).
    assert_eq!(report["dirs_listed"], 3, "{report}");
}

/// One change made to the tree.
type Step<'a> = Box<dyn Fn() + 'a>;

#[test]
fn every_kind_of_tree_change_leaves_the_index_equal_to_the_tree() {
    let repo = sample_repo();
    let root = repo.root();
    settle(&repo);
    let steps: Vec<(&str, Step)> = vec![
        ("deleting a file", Box::new(|| repo.remove("web/render.ts"))),
        (
            "renaming a directory",
            Box::new(|| {
                std::fs::rename(repo.path("tools/deep"), repo.path("tools/shallow")).unwrap()
            }),
        ),
        (
            "replacing a file by a directory of the same name",
            Box::new(|| {
                repo.remove("src/store.rs");
                repo.write("src/store.rs/inner.rs", "fn inner() {}\n");
            }),
        ),
        (
            "un-ignoring a directory in .gitignore",
            Box::new(|| repo.write(".gitignore", "*.log\n")),
        ),
        (
            "a new .gitignore in a subdirectory",
            Box::new(|| repo.write("target/debug/.gitignore", "generated.rs\n")),
        ),
        (
            "editing an ignore file that ignores itself",
            Box::new(|| repo.write("cache/.gitignore", "*\n!keep.txt\n")),
        ),
        (
            "an untracked file",
            Box::new(|| repo.write("scratch/notes.md", "# notes\n")),
        ),
        (
            // (Untracked: git's own listing, the oracle, excludes no tracked file.)
            "a pattern in .git/info/exclude",
            Box::new(|| {
                std::fs::create_dir_all(repo.path(".git/info")).unwrap();
                std::fs::write(repo.path(".git/info/exclude"), "scratch/\n").unwrap();
            }),
        ),
        (
            "a directory becoming a nested repository",
            Box::new(|| {
                git_in(&repo.path("tools/shallow"), &["init", "-q"]);
            }),
        ),
        (
            "a nested repository becoming a plain directory",
            Box::new(|| std::fs::remove_dir_all(repo.path("tools/shallow/.git")).unwrap()),
        ),
        (
            "a symbolic link to a directory",
            Box::new(|| {
                std::os::unix::fs::symlink(repo.path("web"), repo.path("src/web-link")).unwrap()
            }),
        ),
        (
            "removing a whole subtree",
            Box::new(|| std::fs::remove_dir_all(repo.path("tools")).unwrap()),
        ),
    ];
    for (what, change) in steps {
        change();
        sync_and_check(&repo, what);
        settle(&repo);
    }
    // The un-ignored build output, and the file its own ignore file now lets through.
    let index = oracle::read_index(&root);
    for path in [
        "target/debug/generated.rs",
        "scratch/notes.md",
        "cache/keep.txt",
    ] {
        let indexed = index.rows.contains_key(path.as_bytes());
        let expected = path == "cache/keep.txt";
        assert_eq!(indexed, expected, "{path}");
    }
}

#[test]
fn random_changes_between_syncs_never_leave_the_index_stale() {
    let (mut rng, seed) = Rng::from_env_or(0x00d1_cace);
    let repo = sample_repo();
    let root = repo.root();
    let dirs = [
        "src",
        "src/engine",
        "web",
        "web/ui",
        "tools/deep",
        "docs/a/b",
    ];
    for round in 0..12 {
        // Age the tree half the time, so rounds mix trusted and freshly changed
        // directories.
        if rng.chance(50) {
            age_tree(&root);
            repo.sync_json();
        }
        for _ in 0..1 + rng.index(6) {
            let dir = dirs[rng.index(dirs.len())];
            let file = format!("{dir}/f{}.rs", rng.index(5));
            match rng.index(4) {
                0 | 1 => repo.write(&file, &format!("fn f{round}() {{}}\n")),
                2 => {
                    let _ = std::fs::remove_file(repo.path(&file));
                }
                _ => {
                    let target = format!("{}/moved{round}", dirs[rng.index(dirs.len())]);
                    let _ = std::fs::create_dir_all(repo.path(&target));
                    let _ = std::fs::rename(repo.path(dir), repo.path(&target).join("d"));
                }
            }
        }
        let report = repo.sync_json();
        if let Err(why) = oracle::check_agrees(&root) {
            panic!("seed {seed}, round {round} (sync said {report}): {why}");
        }
    }
}

#[test]
fn a_linked_worktree_notices_a_change_to_the_shared_info_exclude() {
    let repo = sample_repo();
    repo.git(&["worktree", "add", "-q", "-b", "feature", "wt"]);
    let wt = repo.path("wt").canonicalize().unwrap();
    std::fs::write(wt.join("notes.md"), "# untracked\n").unwrap();
    assert_success(&codelens_in(&wt, &["init", "-i", "-q"]), &["init", "-i"]);
    let sync = || -> serde_json::Value {
        let out = codelens_in(&wt, &["sync", "--json"]);
        assert_success(&out, &["sync", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    age_tree(&wt);
    sync();
    assert_eq!(sync()["dirs_listed"], 0);
    assert!(oracle::read_index(&wt).rows.contains_key(&b"notes.md"[..]));

    // A worktree's `.git` is a file; `info/exclude` lives in the main repository's git
    // directory, shared by all its worktrees.
    std::fs::write(repo.path(".git/info/exclude"), "notes.md\n").unwrap();
    let report = sync();
    assert_eq!(report["removed"], 1, "{report}");
    oracle::assert_agrees(&wt);
}

#[test]
fn an_engine_started_on_a_settled_tree_sees_edits_in_every_directory() {
    let repo = sample_repo();
    settle(&repo);
    // Since the cache was recorded: a new directory, and one replaced under its name.
    repo.write("docs/new/guide.md", "# guide\n");
    std::fs::remove_dir_all(repo.path("web")).unwrap();
    repo.write("web/render.ts", "export function render() {}\n");

    // The watcher arms the directories the cache names; the catch-up then finds most of
    // them unchanged and does not arm those again. Each must still report edits.
    let engine = start_engine(&repo);
    let dirs = [
        "",
        "src",
        "src/engine",
        "tools/deep/nested/dir",
        "docs/new",
        "web",
    ];
    for (i, dir) in dirs.iter().enumerate() {
        let path = if dir.is_empty() {
            format!("late{i}.rs")
        } else {
            format!("{dir}/late{i}.rs")
        };
        repo.write(&path, &format!("pub fn late_{i}() {{}}\n"));
    }
    // Well within the heartbeat's first re-arming (30 s): only live watches get here.
    oracle::wait_until_agrees(&repo.root(), Duration::from_secs(10));
    drop(engine);
}

/// A directory created under a running engine, and indexed by it alone, is known to
/// the next engine from its start: not crawled again as if it had just appeared, which
/// showed as a debounce window with no file in it on every start until a CLI sync.
#[test]
fn a_directory_the_engine_indexed_is_known_at_its_next_start() {
    let repo = sample_repo();
    settle(&repo);
    let engine = start_engine(&repo);
    repo.write("docs/fresh/deeper/notes.md", "# notes\n");
    oracle::wait_until_agrees(&repo.root(), Duration::from_secs(10));
    let indexed = engine.wait_until(Duration::from_secs(10), |s| {
        s.pending.is_empty() && s.directories.is_empty()
    });
    assert!(indexed.is_some(), "{:?}", engine.snapshot());
    drop(engine);

    // A window long enough to be seen: any directory waiting after the start shows.
    let engine = start_engine_with(&repo, "1000");
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < until {
        let snapshot = engine.snapshot();
        let empty: Vec<_> = (snapshot.directories.iter())
            .filter(|d| d.files == 0)
            .map(|d| d.dir.clone())
            .collect();
        assert!(empty.is_empty(), "windows with no file at start: {empty:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A watching engine, in process, with a short quiet window.
fn start_engine(repo: &TestRepo) -> codelens::engine::Engine {
    start_engine_with(repo, "100")
}

/// A watching engine, in process, with a quiet window of `debounce_ms`.
fn start_engine_with(repo: &TestRepo, debounce_ms: &str) -> codelens::engine::Engine {
    use codelens::config::Config;
    use codelens::engine::project::Project;
    use codelens::engine::{Catchup, Engine, EngineOptions};

    let config = Config::from_lookup(|name| {
        (name == "CODELENS_WATCH_DEBOUNCE_MS").then(|| debounce_ms.to_string())
    });
    let options = EngineOptions {
        poll_interval: Duration::from_millis(50),
        ..EngineOptions::from_config(&config)
    };
    let engine = Engine::start(Project::at(repo.root()), options).expect("engine starts");
    let caught_up = engine.wait_until(Duration::from_secs(30), |s| {
        matches!(s.catchup, Catchup::Done { .. }) && s.pending.is_empty()
    });
    assert!(caught_up.is_some(), "{:?}", engine.snapshot());
    engine
}

/// The engine re-indexes a directory that went away (its rows go) without walking the
/// whole tree, so the cache still names the directories below it, with their stats. The
/// directory comes back, renamed, while no engine runs: the directories below it are
/// unchanged, but their rows are gone, so they must be walked, not trusted.
#[test]
fn a_directory_renamed_away_under_the_engine_and_back_without_it_is_indexed_again() {
    let repo = sample_repo();
    settle(&repo);
    let outside = tempfile::tempdir().unwrap();
    let engine = start_engine(&repo);
    std::fs::rename(repo.path("tools"), outside.path().join("tools")).unwrap();
    // Polled here rather than with `oracle::wait_until_agrees`, so that a failure shows
    // what the engine thought (this test has failed rarely under heavy load).
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while let Err(why) = oracle::check_agrees(&repo.root()) {
        assert!(
            std::time::Instant::now() < until,
            "never agreed within 30 s: {why}\nengine: {:?}",
            engine.snapshot()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(engine);
    std::fs::rename(outside.path().join("tools"), repo.path("tools")).unwrap();
    assert!(
        pending_of(&repo.status_json())
            .contains(&"added:tools/deep/nested/dir/indexer.py".to_string()),
        "status sees the directory back"
    );
    let report = sync_and_check(&repo, "the directory renamed back");
    assert_eq!(report["added"], 1, "{report}");
}

/// The engine also re-indexes a whole directory that did not move (its watch was
/// renewed, or it was crawled again after events were lost). The directories around it
/// are unchanged: the next sync must still find every file under it, and a file added
/// below it later — here in a directory that held none, so no row of it tells the
/// cache something is missing.
#[test]
fn a_directory_the_engine_reindexed_in_place_is_still_found_by_the_next_sync() {
    use codelens::engine::project::Project;
    use codelens::engine::reconcile;
    use codelens::engine::store::Store;

    let repo = sample_repo();
    std::fs::create_dir_all(repo.path("docs/drafts")).unwrap();
    settle(&repo);
    let project = Project::at(repo.root());
    let reindex = |dir: &str| {
        let mut store = Store::open(&project.db_path()).unwrap();
        let dir = codelens::engine::RelPath::from_bytes(dir.as_bytes().to_vec());
        let (report, _) = reconcile::reindex_scope(&project, &mut store, &dir, true).unwrap();
        assert!(!report.changed(), "nothing to change in {dir}: {report:?}");
    };
    reindex("tools/deep");
    reindex("src");
    let report = sync_and_check(&repo, "directories re-indexed in place");
    assert_eq!(
        (&report["added"], &report["removed"]),
        (&0.into(), &0.into()),
        "{report}"
    );

    settle(&repo);
    reindex("docs");
    repo.write("docs/drafts/plan.md", "# plan\n");
    let report = sync_and_check(&repo, "a file added below a re-indexed directory");
    assert_eq!(report["added"], 1, "{report}");
}
