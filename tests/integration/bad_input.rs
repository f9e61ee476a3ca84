//! Bad input, as users' machines produce it: indexes that are corrupt or from the future,
//! a `.codelens` that is read-only or another user's, unreadable files, files vanishing
//! mid-sync, a 2 GB sparse file, binary files, non-UTF-8 names, symlink loops and a full
//! disk. Each ends the same way: exit 0, or one `codelens: ` line with the documented exit
//! code; never a panic; never a half-written index (the previous one still opens and
//! passes `PRAGMA integrity_check`).
//!
//! Tests run as root here, which bypasses permission checks: the permission cases run the
//! binary as `nobody` (uid 65534) and skip, saying why, only when that is impossible.

use crate::common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use serde_json::Value;

const NOBODY: u32 = 65534;

/// `sync` and `init`, run as `nobody`, cannot write: each fails in one clear line
/// (exit 1) that says why.
fn assert_writes_refused_to_nobody(repo: &TestRepo, home: &Path) {
    for args in [&["sync"][..], &["init", "-q"]] {
        let out = as_nobody(repo, home, args).unwrap();
        let err = assert_one_line_error(&out, 1);
        assert!(
            err.to_lowercase().contains("permission denied") || err.contains("read-only"),
            "{args:?}: {err}"
        );
    }
}

/// The index opens with SQLite and passes its own integrity check; returns its file count.
fn assert_index_intact(db: &Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the index still opens");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .unwrap()
}

/// Exit 0, or the documented one-line error; never a panic.
fn assert_clean_outcome(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: {stderr}"
    );
    if !out.status.success() {
        assert_one_line_error(out, out.status.code().unwrap_or(-1));
        assert!(
            matches!(out.status.code(), Some(1..=4)),
            "{what}: exit {:?}",
            out.status.code()
        );
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `codelens ARGS` as the unprivileged user `nobody`, with a home of its own; `None`
/// (with the reason printed) when this machine cannot drop privileges.
fn as_nobody(repo: &TestRepo, home: &Path, args: &[&str]) -> Option<Output> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: not root, so permissions already apply; running as this user");
        return Some(repo.codelens(args));
    }
    let out = codelens_command(&repo.root(), args)
        .uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", home)
        .env("CODELENS_HOME", home)
        .env("CODELENS_TELEMETRY", "0")
        .output();
    match out {
        Ok(out) => Some(out),
        Err(error) => {
            eprintln!("SKIP: cannot run as uid {NOBODY}: {error}");
            None
        }
    }
}

/// A home directory `nobody` can write, and the repository opened up for it to read.
fn open_up_for_nobody(repo: &TestRepo) -> tempfile::TempDir {
    chmod(&repo.root(), 0o755);
    let home = tempfile::tempdir().unwrap();
    chmod(home.path(), 0o777);
    home
}

#[test]
fn a_codelens_dir_of_another_user_is_read_but_never_written() {
    let repo = indexed_sources_repo();
    let home = open_up_for_nobody(&repo);
    repo.write("src/store.rs", &format!("{RUST_SRC}\nfn edited() {{}}\n"));
    let before = std::fs::read(repo.db_path()).unwrap();

    // status only reads: it works (or says in one line why it cannot).
    let Some(status) = as_nobody(&repo, home.path(), &["status", "--json"]) else {
        return;
    };
    assert_clean_outcome(&status, "status");
    if status.status.success() {
        let json: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(pending_of(&json), vec!["modified:src/store.rs"]);
    }
    // sync and init need to write: one clear line, exit 1, the index untouched.
    assert_writes_refused_to_nobody(&repo, home.path());
    assert_eq!(std::fs::read(repo.db_path()).unwrap(), before);
    assert_eq!(assert_index_intact(&repo.db_path()), 3);
    // Its owner can still use it.
    assert_eq!(repo.sync_json()["modified"], 1);
}

#[test]
fn a_read_only_codelens_dir_fails_sync_in_one_line_and_keeps_the_index() {
    let repo = indexed_sources_repo();
    let home = open_up_for_nobody(&repo);
    chown_tree(&repo.root(), NOBODY);
    repo.write(
        "web/render.ts",
        &format!("{TS_SRC}\nexport const edited = 1;\n"),
    );
    chown_tree(&repo.root(), NOBODY);
    let dir = repo.path(".codelens");
    for entry in std::fs::read_dir(&dir).unwrap() {
        chmod(&entry.unwrap().path(), 0o444);
    }
    chmod(&dir, 0o555);
    let before = std::fs::read(repo.db_path()).unwrap();

    let Some(status) = as_nobody(&repo, home.path(), &["status", "--json"]) else {
        return;
    };
    assert_clean_outcome(&status, "status");
    assert_writes_refused_to_nobody(&repo, home.path());
    // The engine cannot write either: `watch` says so and ends, it does not spin.
    let out = as_nobody(&repo, home.path(), &["watch"]).unwrap();
    assert_clean_outcome(&out, "watch");
    assert!(!out.status.success(), "watch on a read-only index");

    assert_eq!(std::fs::read(repo.db_path()).unwrap(), before);
    chmod(&dir, 0o755);
    assert_eq!(assert_index_intact(&repo.db_path()), 3);
}

#[test]
fn an_unreadable_file_is_recorded_and_retried_once_readable() {
    let repo = indexed_sources_repo();
    let home = open_up_for_nobody(&repo);
    repo.write("src/secret.rs", "pub fn hidden_fn() {}\n");
    chown_tree(&repo.root(), NOBODY);
    chmod(&repo.path("src/secret.rs"), 0o000);

    let Some(out) = as_nobody(&repo, home.path(), &["sync", "--json"]) else {
        return;
    };
    assert_success(&out, &["sync", "--json"]);
    let status = as_nobody(&repo, home.path(), &["status", "--json"]).unwrap();
    assert_success(&status, &["status", "--json"]);
    let json: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["skipped"]["unreadable"], 1, "{json}");
    // Nothing pending: the index knows the file and that it could not read it.
    assert_eq!(pending_of(&json), Vec::<String>::new(), "{json}");

    chmod(&repo.path("src/secret.rs"), 0o644);
    let out = as_nobody(&repo, home.path(), &["sync", "--json"]).unwrap();
    assert_success(&out, &["sync", "--json"]);
    let status = as_nobody(&repo, home.path(), &["status", "--json"]).unwrap();
    let json: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(json["skipped"].get("unreadable").is_none(), "{json}");
    assert_eq!(json["files"], 4, "{json}");
}

#[test]
fn files_vanishing_and_reappearing_during_sync_never_break_it() {
    let repo = indexed_sources_repo();
    for n in 0..200 {
        repo.write(
            &format!("churn/f{n}.rs"),
            &format!("pub fn churn_{n}() {{}}\n"),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dir = repo.path("churn");
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for n in 0..200 {
                    let path = dir.join(format!("f{n}.rs"));
                    if (n + round).is_multiple_of(2) {
                        let _ = std::fs::remove_file(&path);
                    } else {
                        let _ = std::fs::write(&path, format!("pub fn churn_{n}_{round}() {{}}\n"));
                    }
                }
                round += 1;
            }
            round
        })
    };
    for _ in 0..15 {
        let out = repo.codelens(&["sync", "--json"]);
        assert_clean_outcome(&out, "sync under churn");
        assert_success(&out, &["sync", "--json"]);
        let out = repo.codelens(&["status", "--json"]);
        assert_success(&out, &["status", "--json"]);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 0);
    // Once the tree holds still, one sync makes the index equal to it.
    repo.sync_json();
    let status = repo.status_json();
    assert_eq!(pending_of(&status), Vec::<String>::new(), "{status}");
    let on_disk = std::fs::read_dir(repo.path("churn")).unwrap().count() as i64;
    assert_eq!(assert_index_intact(&repo.db_path()), 3 + on_disk);
    eprintln!("vanishing files: 15 syncs during {rounds} delete/recreate rounds of 200 files");
}

#[test]
fn sparse_binary_non_utf8_and_symlink_loops_are_recorded_not_fatal() {
    let repo = indexed_sources_repo();
    // A 2 GB sparse file: recorded as too large by its stat, never read.
    let sparse = std::fs::File::create(repo.path("big.dat")).unwrap();
    sparse.set_len(2 << 30).unwrap();
    drop(sparse);
    repo.write_bytes("assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0");
    repo.write_bytes(
        "lib/blob.bin",
        &(0..=255u8).cycle().take(100_000).collect::<Vec<_>>(),
    );
    let weird = repo
        .root()
        .join(std::ffi::OsStr::from_bytes(b"src/\xff\xfe-name.rs"));
    std::fs::write(&weird, "pub fn weird_named() {}\n").unwrap();
    std::os::unix::fs::symlink("self", repo.path("self")).unwrap();
    std::os::unix::fs::symlink("b", repo.path("a")).unwrap();
    std::os::unix::fs::symlink("a", repo.path("b")).unwrap();
    std::os::unix::fs::symlink("..", repo.path("src/parent")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", repo.path("zero")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", repo.path("dangling")).unwrap();

    let sync = repo.sync_json();
    assert_eq!(sync["added"], 4, "{sync}");
    let status = repo.status_json();
    assert_eq!(status["skipped"]["too_large"], 1, "{status}");
    assert_eq!(status["skipped"]["binary"], 2, "{status}");
    assert_eq!(pending_of(&status), Vec::<String>::new(), "{status}");

    // An edit of the non-UTF-8 file is pending under its (lossy) name, then synced.
    std::fs::write(&weird, "pub fn weird_named_again() {}\n").unwrap();
    let status = repo.status_json();
    assert_eq!(
        pending_of(&status),
        vec!["modified:src/\u{fffd}\u{fffd}-name.rs"]
    );
    assert_eq!(repo.sync_json()["modified"], 1);
    // The sparse file grows; its stat changes, it is still not read.
    std::fs::OpenOptions::new()
        .write(true)
        .open(repo.path("big.dat"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    assert_eq!(repo.sync_json()["modified"], 1);
    assert_eq!(assert_index_intact(&repo.db_path()), 7);
    repo.ok(&["init", "-q"]);
    assert_eq!(assert_index_intact(&repo.db_path()), 7);
}

#[test]
fn every_command_refuses_a_corrupt_or_future_index_without_touching_it() {
    let repo = indexed_sources_repo();
    let db = repo.db_path();
    let good = std::fs::read(&db).unwrap();
    let garbage = b"definitely not SQLite, but long enough to be a page or two..".repeat(200);
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "garbage",
            Box::new(|| std::fs::write(&db, &garbage).unwrap()),
        ),
        (
            "truncated",
            Box::new(|| std::fs::write(&db, &good[..good.len() / 2]).unwrap()),
        ),
        (
            "a foreign SQLite database",
            Box::new(|| {
                let _ = std::fs::remove_file(&db);
                rusqlite::Connection::open(&db)
                    .unwrap()
                    .execute_batch("CREATE TABLE files (x); CREATE TABLE other (y)")
                    .unwrap();
            }),
        ),
        (
            "a future schema",
            Box::new(|| {
                std::fs::write(&db, &good).unwrap();
                rusqlite::Connection::open(&db)
                    .unwrap()
                    .execute(
                        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
                        [],
                    )
                    .unwrap();
            }),
        ),
    ];
    for (what, damage) in &cases {
        damage();
        let _ = std::fs::remove_file(repo.path(".codelens/index.db-wal"));
        let damaged = std::fs::read(&db).unwrap();
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["sync"],
            &["sync", "--json"],
            &["watch"],
        ] {
            let out = repo.codelens(args);
            let err = assert_one_line_error(&out, 4);
            assert!(err.contains("codelens init"), "{what} {args:?}: {err}");
            assert!(out.stdout.is_empty(), "{what} {args:?}: stdout");
        }
        assert_eq!(std::fs::read(&db).unwrap(), damaged, "{what}: changed");
    }
    // init replaces whatever is there with a good index.
    repo.ok(&["init", "-q"]);
    assert_eq!(assert_index_intact(&db), 3);
}

/// Mounts a small tmpfs at `dir`; false (with the reason printed) when not permitted.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output();
    match out {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "SKIP: cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(error) => {
            eprintln!("SKIP: no mount command: {error}");
            false
        }
    }
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a filler file until the file system is full.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    // Small writes too, so not even a page is left.
    while file.write_all(&block[..64]).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_during_sync_is_one_line_and_the_index_survives() {
    // A full disk needs a file system of our own: a 4 MB tmpfs (root in a container
    // may mount one; a user namespace is the fallback).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: mounting a tmpfs needs root");
        return;
    }
    let outer = tempfile::tempdir().unwrap();
    let mount = outer.path().join("disk");
    std::fs::create_dir(&mount).unwrap();
    if !mount_tmpfs(&mount, "4m") {
        return;
    }
    let _unmount = Unmount(mount.clone());
    let root = mount.join("repo");
    std::fs::create_dir(&root).unwrap();
    git_in(&root, &["init", "-q", "-b", "main"]);
    for n in 0..20 {
        std::fs::write(
            root.join(format!("f{n}.rs")),
            format!("pub fn f{n}() {{}}\n"),
        )
        .unwrap();
    }
    assert_success(&codelens_in(&root, &["init", "-q"]), &["init"]);
    let db = root.join(".codelens/index.db");
    assert_eq!(assert_index_intact(&db), 20);

    // New sources with many symbols, then not a byte left.
    for n in 0..40 {
        let body: String = (0..200)
            .map(|k| format!("pub fn g{n}_{k}() {{}}\n"))
            .collect();
        std::fs::write(root.join(format!("g{n}.rs")), body).unwrap();
    }
    fill_disk(&mount.join("filler"));

    for args in [&["sync"][..], &["init", "-q"]] {
        let out = codelens_in(&root, args);
        let err = assert_one_line_error(&out, 1);
        assert!(
            err.contains("full") || err.contains("No space"),
            "{args:?}: {err}"
        );
        // The previous index is still there, whole.
        assert_eq!(assert_index_intact(&db), 20, "{args:?}");
        assert!(
            !root.join(".codelens/index.db.building").exists(),
            "{args:?}: a partial build was left behind"
        );
    }
    let status = codelens_in(&root, &["status", "--json"]);
    assert_clean_outcome(&status, "status on a full disk");

    // Space again: sync catches up.
    std::fs::remove_file(mount.join("filler")).unwrap();
    let out = codelens_in(&root, &["sync", "--json"]);
    assert_success(&out, &["sync", "--json"]);
    let sync: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sync["added"], 40, "{sync}");
    assert_eq!(assert_index_intact(&db), 60);
}

#[test]
fn a_watch_strategy_that_is_no_strategy_is_one_warning_line_and_the_default() {
    let repo = TestRepo::new();
    repo.write("src/lib.rs", RUST_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    let home = tempfile::tempdir().unwrap();
    for bad in [
        "fsevents",
        "Recursive!",
        "per_directory",
        " ",
        "\u{1b}[31mred",
    ] {
        let mut watch = common::procs::Proc::spawn(
            common::procs::watch_command(&repo.root(), home.path(), bad),
            "watch",
        );
        common::procs::wait_for_engine(&repo.root(), &mut watch);
        let status = common::oracle::status_json(&repo.root());
        // The engine runs, watching, as if the variable were unset.
        let default = codelens::config::WatchStrategy::platform_default().name();
        assert_eq!(status["watcher"]["strategy"], default, "{bad:?}: {status}");
        watch.terminate();
        let stderr = watch.stderr();
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("CODELENS_WATCH_STRATEGY"))
            .collect();
        assert_eq!(lines.len(), 1, "{bad:?}: {stderr}");
        assert!(
            lines[0].starts_with("codelens: warning: CODELENS_WATCH_STRATEGY=")
                && lines[0].contains("`recursive` or `per-directory`"),
            "{bad:?}: {}",
            lines[0]
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Source that parses badly, through the real `init`: a 2 MB minified file, Python in a
/// `.rs` file, 10,000 levels of nesting, invalid UTF-8. Each file is indexed (with
/// what parses), nothing panics, and the well-formed files beside them keep every
/// symbol. Detection by content rides along: a script known only by its `#!` line
/// and a C++ header named `.h`.
#[test]
fn hostile_sources_are_indexed_with_what_parses() {
    let repo = TestRepo::new();
    let minified = "function f(){return 1};".repeat(2_000_000 / 23);
    repo.write("web/bundle.min.js", &minified);
    repo.write(
        "src/not_rust.rs",
        "import os\n\nclass Repo:\n    def sync(self):\n        pass\n",
    );
    let depth = 10_000;
    repo.write(
        "deep/nested.c",
        &format!("int before(void) {{ return 0; }}\nint x = {}1{};\nint after(void) {{ {}{} return 0; }}\n", "(".repeat(depth), ")".repeat(depth), "{".repeat(depth), "}".repeat(depth)),
    );
    repo.write_bytes(
        "lib/latin1.rb",
        b"# caf\xe9\nclass Caf\xe9\nend\ndef valid_after; end\n",
    );
    repo.write(
        "bin/deploy",
        "#!/usr/bin/env bash\nset -e\ndeploy_all() {\n  echo go\n}\n",
    );
    repo.write(
        "include/shape.h",
        "#pragma once\nnamespace geo {\nclass Shape {\npublic:\n  double area() const;\n};\n}\n",
    );
    repo.commit_all("hostile");
    let out = repo.codelens(&["init", "-q"]);
    assert_success(&out, &["init"]);
    let status = repo.status_json();
    assert_eq!(status["files"], 6, "{status}");
    for (language, count) in [
        ("javascript", 1),
        ("rust", 1),
        ("c", 1),
        ("ruby", 1),
        ("shell", 1),
        ("cpp", 1),
    ] {
        assert_eq!(status["languages"][language], count, "{language}: {status}");
    }
    let store = codelens::engine::store::Store::open(&repo.db_path()).unwrap();
    let count = |name: &str| store.symbols_named(name).unwrap().len();
    assert_eq!(
        count("f"),
        2_000_000 / 23,
        "every function of the minified file"
    );
    assert_eq!(count("before"), 1);
    assert_eq!(count("after"), 1);
    assert_eq!(count("valid_after"), 1);
    assert_eq!(count("deploy_all"), 1);
    let area = store.symbols_named("area").unwrap();
    assert_eq!(area.len(), 1, "{area:?}");
    assert_eq!(
        (area[0].family.as_str(), area[0].container.as_deref()),
        ("method", Some("Shape"))
    );
    // Python in a `.rs` file: parsed as Rust; whatever that finds, no Python class.
    assert_eq!(count("Repo"), 0);
}
