//! `codelens init`, `sync` and `status` on real temp git repositories, through the real
//! binary.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use codelens::engine::store::Store;
use common::*;

fn sample_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target/\n*.log\n");
    repo.write("src/store.rs", RUST_SRC);
    repo.write("tools/deep/nested/dir/indexer.py", PYTHON_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.write("server/server.go", GO_SRC);
    repo.write("README.md", "# sample\n");
    repo.write(
        "target/debug/generated.rs",
        "fn ignored_by_gitignore() {}\n",
    );
    repo.write("build.log", "ignored\n");
    repo.write_bytes("assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    repo.commit_all("initial");
    repo
}

fn symbol_paths(repo: &TestRepo, name: &str) -> Vec<String> {
    let store = Store::open(&repo.db_path()).expect("index opens");
    store
        .symbols_named(name)
        .expect("lookup")
        .into_iter()
        .map(|hit| format!("{}:{}:{}", hit.path, hit.line, hit.family))
        .collect()
}

#[test]
fn init_indexes_sources_symbols_and_respects_ignores() {
    let repo = sample_repo();
    let out = repo.codelens(&["init"]);
    assert_success(&out, &["init"]);
    // stdout is not a terminal here: no progress bar may be drawn anywhere.
    assert!(
        out.stderr.is_empty(),
        "unexpected stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("indexed 6 files"));

    let status = repo.status_json();
    assert_eq!(status["files"], 6, "{status}");
    assert_eq!(status["skipped"]["binary"], 1);
    assert_eq!(status["schema_version"], 2);
    assert_eq!(status["root"], repo.root().to_str().unwrap());
    for (language, count) in [
        ("rust", 1),
        ("python", 1),
        ("typescript", 1),
        ("go", 1),
        ("markdown", 1),
        ("text", 1),
    ] {
        assert_eq!(
            status["languages"][language], count,
            "{language} in {status}"
        );
    }
    assert!(status["pending"].as_array().unwrap().is_empty());
    assert!(status["worktree_mismatch"].is_null());
    assert!(status["last_sync"].as_str().unwrap().ends_with('Z'));
    assert!(status["db_bytes"].as_u64().unwrap() > 0);

    assert_eq!(symbol_paths(&repo, "open"), vec!["src/store.rs:6:method"]);
    assert_eq!(
        symbol_paths(&repo, "run"),
        vec!["tools/deep/nested/dir/indexer.py:2:method"]
    );
    assert_eq!(
        symbol_paths(&repo, "render"),
        vec!["web/render.ts:5:function"]
    );
    assert_eq!(
        symbol_paths(&repo, "Start"),
        vec!["server/server.go:5:method"]
    );
    assert!(
        symbol_paths(&repo, "ignored_by_gitignore").is_empty(),
        "gitignored file was indexed"
    );

    // The index keeps itself out of the repository.
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn init_survives_symlink_loops_and_non_utf8_names() {
    let repo = sample_repo();
    std::os::unix::fs::symlink(".", repo.path("loop")).unwrap();
    std::os::unix::fs::symlink("../..", repo.path("tools/deep/up")).unwrap();
    std::os::unix::fs::symlink("src/store.rs", repo.path("store_link.rs")).unwrap();
    let weird = std::ffi::OsStr::from_bytes(b"caf\xe9.py");
    std::fs::write(repo.root().join(weird), "def latin1_named():\n    pass\n").unwrap();

    repo.ok(&["init", "-q"]);
    let status = repo.status_json();
    // Symlinks are not followed (no loop, no duplicate); the non-UTF-8 name is indexed.
    assert_eq!(status["files"], 7, "{status}");
    assert_eq!(
        symbol_paths(&repo, "latin1_named"),
        vec!["caf\u{fffd}.py:1:function"]
    );
    assert_eq!(symbol_paths(&repo, "open"), vec!["src/store.rs:6:method"]);

    // The exact bytes are what the index tracks: deleting that file is seen.
    std::fs::remove_file(repo.root().join(weird)).unwrap();
    assert_eq!(repo.sync_json()["removed"], 1);
}

use std::os::unix::ffi::OsStrExt;

#[test]
fn commands_find_the_index_from_a_subdirectory() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    let sub = repo.path("tools/deep/nested");
    let out = codelens_in(&sub, &["status", "--json"]);
    assert_success(&out, &["status"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["root"], repo.root().to_str().unwrap());

    repo.write("tools/deep/nested/extra.py", "def extra():\n    pass\n");
    let out = codelens_in(&sub, &["sync", "--json"]);
    assert_success(&out, &["sync"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"], 1);

    // `init` from a subdirectory builds at the git worktree top, not in the subdirectory.
    let out = codelens_in(&sub, &["init", "-q"]);
    assert_success(&out, &["init"]);
    assert!(!sub.join(".codelens").exists());
}

#[test]
fn sync_reports_edits_additions_deletions_and_renames() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    let first = repo.sync_json();
    assert_eq!(
        (
            first["added"].as_u64(),
            first["modified"].as_u64(),
            first["removed"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(first["unchanged"], 7);
    for key in ["added", "modified", "removed", "unchanged", "duration_ms"] {
        assert!(first[key].is_u64(), "sync --json lacks {key}: {first}");
    }

    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn close() {{}}\n"),
    );
    repo.write("src/new_module.rs", "pub fn fresh() {}\n");
    repo.remove("README.md");
    std::fs::rename(repo.path("web/render.ts"), repo.path("web/draw.ts")).unwrap();

    let pending = pending_of(&repo.status_json());
    assert_eq!(
        pending,
        vec![
            "added:src/new_module.rs",
            "added:web/draw.ts",
            "deleted:README.md",
            "deleted:web/render.ts",
            "modified:src/store.rs"
        ]
    );

    let report = repo.sync_json();
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(report["modified"], 1, "{report}");
    assert_eq!(report["removed"], 2, "{report}");
    assert_eq!(
        symbol_paths(&repo, "close"),
        vec!["src/store.rs:11:function"]
    );
    assert_eq!(
        symbol_paths(&repo, "render"),
        vec!["web/draw.ts:5:function"]
    );
    assert!(pending_of(&repo.status_json()).is_empty());

    let human = repo.ok(&["sync"]);
    assert!(human.starts_with("up to date"), "{human}");
    assert_eq!(repo.ok(&["sync", "-q"]), "");
}

/// Every symbol of the index, with its file, in one canonical order.
fn all_symbols(repo: &TestRepo) -> Vec<String> {
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT f.path, s.name, s.kind, s.line, s.col, s.end_line, s.container
             FROM symbols s JOIN files f ON f.id = s.file_id",
        )
        .unwrap();
    let mut symbols: Vec<String> = stmt
        .query_map([], |r| {
            let path: Vec<u8> = r.get(0)?;
            let (name, kind): (String, String) = (r.get(1)?, r.get(2)?);
            let place: (u32, u32, u32) = (r.get(3)?, r.get(4)?, r.get(5)?);
            let container: Option<String> = r.get(6)?;
            Ok(format!(
                "{}:{name}:{kind}:{place:?}:{container:?}",
                String::from_utf8_lossy(&path)
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    symbols.sort();
    symbols
}

#[test]
fn a_synced_file_has_the_symbols_a_fresh_index_gives_it() {
    let repo = TestRepo::new();
    let before = "struct A;\nimpl A {\n    fn new() -> A { A }\n    fn keep(&self) {}\n}\n\
                  struct B;\nimpl B {\n    fn new() -> B { B }\n}\nfn gone() {}\nfn moved() {}\n";
    repo.write("src/lib.rs", before);
    repo.write("src/other.rs", "fn untouched() {}\n");
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    // Lines shift, a function is renamed, one removed, one added, and a name that
    // appears twice in different containers gains a third.
    let after = "// a new first line\nstruct A;\nimpl A {\n    fn new() -> A { A }\n    fn kept(&self) {}\n}\n\
                 struct B;\nimpl B {\n    fn new() -> B { B }\n}\nfn moved() {}\nfn added() {}\n\
                 struct C;\nimpl C {\n    fn new() -> C { C }\n}\n";
    repo.write("src/lib.rs", after);
    let report = repo.sync_json();
    assert_eq!(report["modified"], 1, "{report}");
    let synced = all_symbols(&repo);
    assert!(
        synced.iter().any(|s| s.starts_with("src/lib.rs:added:")),
        "{synced:#?}"
    );

    std::fs::remove_dir_all(repo.path(".codelens")).unwrap();
    repo.ok(&["init", "-q"]);
    assert_eq!(synced, all_symbols(&repo));
}

#[test]
fn same_size_edit_with_new_mtime_is_modified_and_touch_is_not() {
    let repo = sample_repo();
    // Outside the racy window, so only the stat comparison can notice the edits.
    age_all_files(&repo);
    repo.ok(&["init", "-q"]);
    assert_eq!(repo.sync_json()["hashed"], 0);
    let path = repo.path("src/store.rs");
    let renamed = RUST_SRC.replace("fn open(", "fn shut(");
    assert_eq!(renamed.len(), RUST_SRC.len());
    std::fs::write(&path, &renamed).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(1800))
        .unwrap();
    drop(file);

    let report = repo.sync_json();
    assert_eq!(report["modified"], 1, "{report}");
    assert_eq!(symbol_paths(&repo, "shut"), vec!["src/store.rs:6:method"]);
    assert!(symbol_paths(&repo, "open").is_empty());

    // A touch changes the stat but not the content: hashed, found equal, not modified.
    let touched = std::fs::File::options()
        .write(true)
        .open(repo.path("server/server.go"))
        .unwrap();
    touched
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    drop(touched);
    assert!(pending_of(&repo.status_json()).is_empty());
    let report = repo.sync_json();
    assert_eq!(report["modified"], 0, "{report}");
    assert_eq!(report["hashed"], 1, "{report}");
}

const SAMPLE_FILES: [&str; 7] = [
    "src/store.rs",
    "web/render.ts",
    "server/server.go",
    "README.md",
    ".gitignore",
    "assets/logo.png",
    "tools/deep/nested/dir/indexer.py",
];

/// Sets every sample file's mtime an hour back, past the racy window.
fn age_all_files(repo: &TestRepo) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    for file in SAMPLE_FILES {
        std::fs::File::options()
            .write(true)
            .open(repo.path(file))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

#[test]
fn unchanged_old_files_are_not_rehashed() {
    let repo = sample_repo();
    age_all_files(&repo);
    repo.ok(&["init", "-q"]);
    let report = repo.sync_json();
    assert_eq!(report["hashed"], 0, "{report}");
    assert_eq!(report["unchanged"], 7, "{report}");
}

#[test]
fn missing_index_is_exit_3() {
    let repo = sample_repo();
    for args in [&["status"][..], &["status", "--json"], &["sync"]] {
        let err = assert_one_line_error(&repo.codelens(args), 3);
        assert!(err.contains("codelens init"), "{err}");
    }
}

#[test]
fn usage_errors_are_exit_2() {
    let repo = sample_repo();
    assert_one_line_error(&repo.codelens(&["sync", "--no-such-flag"]), 2);
    assert_one_line_error(&repo.codelens(&["frobnicate"]), 2);
    assert_one_line_error(&repo.codelens(&[]), 2);
    let missing = repo.codelens(&["status", "/no/such/dir"]);
    assert_one_line_error(&missing, 1);
}

#[test]
fn corrupt_index_is_exit_4_and_init_repairs_it() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    std::fs::write(
        repo.db_path(),
        b"this is not a database, just garbage bytes that fill a page".repeat(100),
    )
    .unwrap();
    for args in [&["status"][..], &["sync"]] {
        let err = assert_one_line_error(&repo.codelens(args), 4);
        assert!(err.contains("corrupt"), "{err}");
    }
    repo.ok(&["init", "-q"]);
    assert_eq!(repo.status_json()["files"], 6);

    // A truncated database is corrupt too.
    let bytes = std::fs::read(repo.db_path()).unwrap();
    std::fs::write(repo.db_path(), &bytes[..bytes.len() / 3]).unwrap();
    let err = assert_one_line_error(&repo.codelens(&["status"]), 4);
    assert!(err.contains("codelens init"), "{err}");

    // An empty file, or an SQLite database that is not ours: not an index either.
    std::fs::write(repo.db_path(), b"").unwrap();
    assert_one_line_error(&repo.codelens(&["status"]), 4);
    std::fs::remove_file(repo.db_path()).unwrap();
    rusqlite::Connection::open(repo.db_path())
        .unwrap()
        .execute_batch("CREATE TABLE notes (x)")
        .unwrap();
    let err = assert_one_line_error(&repo.codelens(&["sync"]), 4);
    assert!(err.contains("meta"), "{err}");
}

#[test]
fn index_from_a_newer_schema_is_exit_4() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = assert_one_line_error(&repo.codelens(&["status", "--json"]), 4);
    assert!(
        err.contains("schema version 99") && err.contains("newer"),
        "{err}"
    );
    assert_one_line_error(&repo.codelens(&["sync"]), 4);
}

#[test]
fn an_index_from_an_older_schema_is_rebuilt_with_a_message() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    // What a version-1 codelens left: its schema version, and symbols without families
    // (the table as it was, so a reader of the old shape would fail).
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    conn.execute_batch(
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';
         DELETE FROM symbols;",
    )
    .unwrap();
    drop(conn);
    let out = repo.codelens(&["sync"]);
    assert_success(&out, &["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("older codelens (schema version 1; this one reads 2): rebuilt it"),
        "{stderr}"
    );
    assert_eq!(repo.status_json()["schema_version"], 2);
    let store = Store::open(&repo.db_path()).expect("the rebuilt index opens");
    let hits = store.symbols_named("Store").unwrap();
    assert!(
        hits.iter()
            .any(|h| h.kind == "struct" && h.family == "struct"),
        "{hits:?}"
    );
    // The filter takes the language's word or the family.
    let (by_word, _) = store
        .search_symbols(
            "",
            codelens::engine::store::NameMatch::Substring,
            Some("fn"),
            None,
            100,
            0,
        )
        .unwrap();
    let (by_family, _) = store
        .search_symbols(
            "",
            codelens::engine::store::NameMatch::Substring,
            Some("method"),
            Some("rust"),
            100,
            0,
        )
        .unwrap();
    assert!(!by_word.is_empty() && by_word.iter().all(|h| h.kind == "fn"));
    assert!(
        !by_family.is_empty()
            && by_family
                .iter()
                .all(|h| h.family == "method" && h.kind == "fn")
    );
    // Rebuilt once: the next sync has nothing to say.
    let again = repo.codelens(&["sync"]);
    assert_success(&again, &["sync"]);
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn processes_started_together_on_an_older_index_rebuild_it_once() {
    // Enough files that the rebuild outlasts the start of the other processes: each of
    // them sees the old index before the first one has swapped the new one in.
    let repo = big_repo(400);
    repo.ok(&["init", "-q"]);
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    conn.execute(
        "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let children: Vec<_> = (0..3)
        .map(|_| {
            codelens_command(&repo.root(), &["sync"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut rebuilt = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_success(&out, &["sync"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        rebuilt += stderr.matches("rebuilt it from scratch").count();
    }
    // The processes that waited for the first one's write lock find the index current.
    assert_eq!(rebuilt, 1, "the old index was rebuilt {rebuilt} times");
    assert_eq!(repo.status_json()["schema_version"], 2);
}

/// Enough files that `init` runs long enough to be killed part-way.
fn big_repo(files: usize) -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..files {
        let body: String = (0..20)
            .map(|f| format!("pub fn function_{i}_{f}(x: u32) -> u32 {{\n    x + {f}\n}}\n\n"))
            .collect();
        repo.write(&format!("src/m{}/file_{i}.rs", i % 50), &body);
    }
    repo
}

#[test]
fn kill_during_init_leaves_the_previous_index_intact() {
    let repo = big_repo(4000);
    repo.ok(&["init", "-q"]);
    let before = repo.status_json();
    assert_eq!(before["files"], 4000);
    repo.write("src/added_later.rs", "pub fn later() {}\n");

    let building = repo.path(".codelens/index.db.building");
    let mut child = codelens_command(&repo.root(), &["init", "-q"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !building.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    child.kill().unwrap(); // SIGKILL
    let exit = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "init finished before the kill"
    );

    // The old index is untouched: same counts, and the new file is still pending.
    let after = repo.status_json();
    assert_eq!(after["files"], 4000);
    assert_eq!(after["symbols"], before["symbols"]);
    assert_eq!(pending_of(&after), vec!["added:src/added_later.rs"]);
    // The next init cleans up and completes.
    repo.ok(&["init", "-q"]);
    assert!(!building.exists());
    assert_eq!(repo.status_json()["files"], 4001);
}

#[test]
fn kill_during_sync_rolls_back_cleanly() {
    let repo = big_repo(3000);
    repo.ok(&["init", "-q"]);
    for i in (0..3000).step_by(2) {
        repo.write(
            &format!("src/m{}/file_{i}.rs", i % 50),
            &format!("pub fn rewritten_{i}() {{}}\n"),
        );
    }
    let wal = repo.path(".codelens/index.db-wal");
    assert!(!wal.exists(), "a clean close removes the WAL");
    let mut child = codelens_command(&repo.root(), &["sync", "-q"])
        .spawn()
        .unwrap();
    // The WAL appears when sync opens its transaction; kill it while it writes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !wal.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "sync finished before the kill"
    );

    // All or nothing: either every rewrite is in the index or none is.
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rewritten: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM symbols WHERE name LIKE 'rewritten_%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        rewritten == 0 || rewritten == 1500,
        "a partial sync is visible: {rewritten} of 1500"
    );
    drop(conn);
    // Either the sync committed whole or not at all; a new sync finishes the job.
    repo.ok(&["sync", "-q"]);
    assert!(pending_of(&repo.status_json()).is_empty());
    assert_eq!(
        symbol_paths(&repo, "rewritten_0"),
        vec!["src/m0/file_0.rs:1:function"]
    );
}

#[test]
fn own_worktree_index_with_init_i() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    repo.git(&["worktree", "add", "-q", "-b", "feature", "wt"]);
    let wt = repo.path("wt");
    std::fs::write(wt.join("src/feature.rs"), "pub fn feature_only() {}\n").unwrap();

    // The main checkout's index does not descend into the nested worktree.
    repo.ok(&["sync", "-q"]);
    assert!(symbol_paths(&repo, "feature_only").is_empty());

    // Before `init -i`, commands in the worktree walk up to the parent's index.
    let parent = codelens_in(&wt, &["status", "--json"]);
    let parent: serde_json::Value = serde_json::from_slice(&parent.stdout).unwrap();
    assert_eq!(parent["index_root"], repo.root().to_str().unwrap());

    assert_success(&codelens_in(&wt, &["init", "-i", "-q"]), &["init", "-i"]);
    let own: serde_json::Value =
        serde_json::from_slice(&codelens_in(&wt, &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        own["index_root"],
        wt.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(own["git"]["branch"], "feature");
    assert_eq!(own["files"], 7); // six sources + the new file (.gitignore counts as text)
    let wt_store = Store::open(&wt.join(".codelens/index.db")).unwrap();
    assert_eq!(wt_store.symbols_named("feature_only").unwrap().len(), 1);

    // Outside git, `init -i` is a clear error.
    let plain = tempfile::tempdir().unwrap();
    assert_one_line_error(&codelens_in(plain.path(), &["init", "-i"]), 1);
}

#[test]
fn init_outside_git_indexes_the_given_directory() {
    let plain = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(plain.path().join("pkg")).unwrap();
    std::fs::write(plain.path().join("pkg/app.py"), PYTHON_SRC).unwrap();
    let out = codelens_in(plain.path(), &["init", "-q", "pkg"]);
    assert_success(&out, &["init"]);
    assert!(plain.path().join("pkg/.codelens/index.db").is_file());
    let status: serde_json::Value = serde_json::from_slice(
        &codelens_in(&plain.path().join("pkg"), &["status", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(status["files"], 1);
    assert!(status["git"]["branch"].is_null());
}

#[test]
fn empty_and_oversized_files_are_recorded_without_symbols() {
    let repo = sample_repo();
    repo.write("src/empty.rs", "");
    let big: String = "fn huge() {}\n".repeat(200_000); // 2.6 MB, over the 2 MiB cap
    repo.write("src/huge.rs", &big);
    repo.ok(&["init", "-q"]);
    let status = repo.status_json();
    assert_eq!(status["files"], 7, "{status}"); // the empty file is a file
    assert_eq!(status["skipped"]["too_large"], 1, "{status}");
    assert!(symbol_paths(&repo, "huge").is_empty());

    // Touching the oversized file is not an edit we can see into: no noise.
    let f = std::fs::File::options()
        .write(true)
        .open(repo.path("src/huge.rs"))
        .unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(30))
        .unwrap();
    drop(f);
    assert_eq!(repo.sync_json()["modified"], 0);
    // Growing it is.
    repo.write("src/huge.rs", &format!("{big}fn more() {{}}\n"));
    assert_eq!(repo.sync_json()["modified"], 1);
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let repo = sample_repo();
    repo.ok(&["init", "-q"]);
    repo.write("src/late.rs", "pub fn late() {}\n");
    // Hold the write lock the way another codelens writer would.
    let lock = std::fs::File::options()
        .write(true)
        .open(repo.path(".codelens/lock"))
        .unwrap();
    lock.lock().unwrap();
    let mut child = codelens_command(&repo.root(), &["sync", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "sync did not wait for the lock"
    );
    assert!(symbol_paths(&repo, "late").is_empty());
    lock.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for another codelens process"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"], 1);
}

#[test]
fn the_wal_stays_small_across_many_short_lived_syncs() {
    // `sync` leaves the WAL in place on exit (checkpointing it each time would cost
    // more than a no-change sync); a writer that finds it large truncates it. Without
    // that, every sync's pages would pile up — and every process opening the index
    // reads the whole WAL first.
    let repo = big_repo(200);
    repo.ok(&["init", "-q"]);
    let wal = repo.path(".codelens/index.db-wal");
    let mut largest = 0;
    for round in 0..40 {
        for i in (round % 10..200).step_by(10) {
            let body = format!("pub fn renamed_{round}_{i}() {{}}\npub fn second_{i}() {{}}\n");
            repo.write(&format!("src/m{}/file_{i}.rs", i % 50), &body);
        }
        repo.ok(&["sync", "-q"]);
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(largest > 0, "sync keeps its WAL on exit");
    assert!(largest < 2 << 20, "the WAL reached {largest} bytes");
    oracle::assert_agrees(&repo.root());
}
