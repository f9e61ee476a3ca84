//! Git worktree mismatch detection and `init -i`, with the real `git` binary building
//! each layout in temp directories.

use crate::common;

use std::path::{Path, PathBuf};

use codelens::engine::project::Project;
use codelens::engine::worktree::{detect_worktree_index_mismatch, git_worktree_root};
use codelens::engine::{Engine, EngineOptions};
use common::*;
use serde_json::Value;

fn main_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "/wt/\n/nested/\n");
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

fn status_in(dir: &Path) -> Value {
    let out = codelens_in(dir, &["status", "--json"]);
    assert_success(&out, &["status", "--json"]);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn canonical(path: PathBuf) -> String {
    path.canonicalize().unwrap().to_string_lossy().into_owned()
}

/// A linked worktree on a new branch, inside the main checkout, with one change.
fn nested_worktree(repo: &TestRepo) -> PathBuf {
    repo.git(&["worktree", "add", "-q", "-b", "feature", "wt"]);
    let wt = repo.path("wt");
    std::fs::write(wt.join("src/feature.rs"), "pub fn feature_only() {}\n").unwrap();
    wt
}

#[test]
fn the_main_checkout_and_its_subdirectories_have_no_mismatch() {
    let repo = main_repo();
    assert!(status_in(&repo.root())["worktree_mismatch"].is_null());
    assert!(status_in(&repo.path("src"))["worktree_mismatch"].is_null());
    assert_eq!(
        git_worktree_root(&repo.path("src")).unwrap(),
        Some(repo.root())
    );
    assert_eq!(
        detect_worktree_index_mismatch(&repo.path("web"), &repo.root()).unwrap(),
        None
    );
}

#[test]
fn a_symlinked_path_to_the_checkout_is_not_a_mismatch() {
    let repo = main_repo();
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("link-to-repo");
    std::os::unix::fs::symlink(repo.root(), &link).unwrap();
    let status = status_in(&link.join("src"));
    assert!(status["worktree_mismatch"].is_null(), "{status}");
    // Even when the index root is named through the link and the start through the real path.
    assert_eq!(
        detect_worktree_index_mismatch(&repo.path("src"), &link).unwrap(),
        None
    );
}

#[test]
fn a_nested_linked_worktree_without_its_own_index_is_a_mismatch() {
    let repo = main_repo();
    let wt = nested_worktree(&repo);
    let status = status_in(&wt.join("src"));
    let mismatch = &status["worktree_mismatch"];
    assert_eq!(mismatch["worktree_root"], canonical(wt.clone()), "{status}");
    assert_eq!(
        mismatch["main_checkout_root"],
        repo.root().to_str().unwrap()
    );
    assert_eq!(mismatch["index_root"], repo.root().to_str().unwrap());
    assert_eq!(mismatch["worktree_branch"], "feature");
    assert_eq!(mismatch["index_branch"], "main");
    assert_eq!(mismatch["worktree_kind"], "linked worktree");
    assert_eq!(status["root"], canonical(wt.clone()));
    assert_eq!(status["index_root"], repo.root().to_str().unwrap());

    // The human status leads with the warning and the fix.
    let out = codelens_in(&wt, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("⚠️ This linked worktree"), "{text}");
    assert!(
        text.contains("branch feature") && text.contains("branch main"),
        "{text}"
    );
    assert!(text.contains("codelens init -i"), "{text}");

    // An engine standing there carries it in every snapshot and banner.
    let options = EngineOptions {
        start_dir: Some(wt.clone()),
        ..EngineOptions::default()
    };
    let engine = Engine::start(Project::at(repo.root()), options).unwrap();
    let snapshot = engine.wait_for_catchup();
    assert!(snapshot.worktree_mismatch.is_some());
    let banner = snapshot
        .banner(&[])
        .expect("every answer carries the warning");
    assert!(banner.starts_with("⚠️ This linked worktree"), "{banner}");
}

#[test]
fn init_i_gives_the_worktree_its_own_index_seeded_from_the_main_checkout() {
    let repo = main_repo();
    let wt = nested_worktree(&repo);
    std::fs::write(
        wt.join("web/render.ts"),
        format!("{TS_SRC}\nexport function onFeature() {{}}\n"),
    )
    .unwrap();

    let out = codelens_in(&wt, &["init", "-i"]);
    assert_success(&out, &["init", "-i"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seeded from the index of"), "{stdout}");
    // Only the two files that differ from the main checkout were parsed again.
    assert!(stdout.contains("+1 ~1 -0"), "{stdout}");

    let status = status_in(&wt);
    assert!(status["worktree_mismatch"].is_null(), "{status}");
    assert_eq!(status["index_root"], canonical(wt.clone()));
    assert_eq!(status["git"]["branch"], "feature");
    assert_eq!(status["files"], 4, "{status}");
    assert!(status["pending"].as_array().unwrap().is_empty());
    let store = codelens::engine::store::Store::open(&wt.join(".codelens/index.db")).unwrap();
    assert_eq!(store.symbols_named("feature_only").unwrap().len(), 1);
    assert_eq!(store.symbols_named("onFeature").unwrap().len(), 1);
    assert_eq!(store.meta("root").unwrap().unwrap(), canonical(wt.clone()));
    // The main checkout's index is untouched.
    let main_store = codelens::engine::store::Store::open(&repo.db_path()).unwrap();
    assert!(main_store.symbols_named("feature_only").unwrap().is_empty());
}

#[test]
fn a_linked_worktree_outside_the_main_checkout_finds_no_foreign_index() {
    let repo = main_repo();
    let outside = tempfile::tempdir().unwrap();
    let wt = outside.path().join("wt-outside");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "outside",
        wt.to_str().unwrap(),
    ]);
    // No index above it: no mismatch to report, just "no index" (exit 3).
    assert_one_line_error(&codelens_in(&wt, &["status"]), 3);
    assert_eq!(
        git_worktree_root(&wt).unwrap(),
        Some(wt.canonicalize().unwrap())
    );
    // Its own index (seeded) works as any other.
    assert_success(&codelens_in(&wt, &["init", "-i", "-q"]), &["init", "-i"]);
    assert!(status_in(&wt)["worktree_mismatch"].is_null());
}

#[test]
fn a_submodule_under_an_indexed_project_is_a_mismatch() {
    let library = TestRepo::new();
    library.write("lib.py", PYTHON_SRC);
    library.commit_all("library");
    let repo = main_repo();
    repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        library.root().to_str().unwrap(),
        "sub",
    ]);
    let status = status_in(&repo.path("sub"));
    let mismatch = &status["worktree_mismatch"];
    assert_eq!(mismatch["worktree_kind"], "submodule", "{status}");
    assert_eq!(mismatch["worktree_root"], canonical(repo.path("sub")));
    assert_eq!(
        mismatch["main_checkout_root"],
        repo.root().to_str().unwrap()
    );
}

#[test]
fn a_nested_independent_repository_is_a_mismatch() {
    let repo = main_repo();
    let nested = repo.path("nested");
    std::fs::create_dir_all(&nested).unwrap();
    git_in(&nested, &["init", "-q", "-b", "trunk"]);
    let status = status_in(&nested);
    let mismatch = &status["worktree_mismatch"];
    assert_eq!(mismatch["worktree_kind"], "nested repository", "{status}");
    assert_eq!(mismatch["worktree_branch"], "trunk");
    assert_eq!(mismatch["index_branch"], "main");
}

#[test]
fn a_worktree_of_a_bare_repository_with_its_own_index_is_fine() {
    let source = main_repo();
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("project.git");
    git_in(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            source.root().to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git_in(&bare, &["worktree", "add", "-q", "../checkout", "main"]);
    let checkout = dir.path().join("checkout");
    assert_eq!(
        git_worktree_root(&checkout.join("src")).unwrap(),
        Some(checkout.canonicalize().unwrap())
    );
    // No main checkout to seed from: a plain build.
    let out = codelens_in(&checkout, &["init", "-i"]);
    assert_success(&out, &["init", "-i"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("seeded"));
    let status = status_in(&checkout.join("src"));
    assert!(status["worktree_mismatch"].is_null(), "{status}");
    assert_eq!(status["files"], 3);
}

#[test]
fn no_git_at_all_is_no_mismatch() {
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("a.py"), PYTHON_SRC).unwrap();
    assert_success(&codelens_in(plain.path(), &["init", "-q"]), &["init"]);
    assert!(status_in(plain.path())["worktree_mismatch"].is_null());
    assert_eq!(git_worktree_root(plain.path()).unwrap(), None);
}

#[test]
fn a_git_file_pointing_to_a_missing_gitdir_is_a_clear_message() {
    let repo = main_repo();
    let broken = repo.path("nested");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join(".git"), "gitdir: /nonexistent/worktrees/gone\n").unwrap();

    // Status still answers from the index above, with a one-line warning.
    let out = codelens_in(&broken, &["status", "--json"]);
    assert_success(&out, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("codelens: warning: "), "{stderr}");
    // Building an index there is refused with one clear line.
    let err = assert_one_line_error(&codelens_in(&broken, &["init", "-q"]), 1);
    assert!(err.contains("git"), "{err}");
    assert!(detect_worktree_index_mismatch(&broken, &repo.root()).is_err());
}
