//! The consistency oracle: the index compared with the working tree, byte for byte,
//! by means independent of codelens.
//!
//! - What should be indexed comes from git (`git ls-files --others --cached
//!   --exclude-standard`, regular files only), not from codelens's walker.
//! - Every such file is hashed here (SHA-256 of its bytes, read in the test) and its
//!   index row must hold the same size and hash; a file over 2 MiB must be recorded
//!   `too_large` with its size (codelens neither reads nor hashes those), a file with a
//!   NUL byte in its first 8,000 bytes `binary` (hashed, not parsed), any other file
//!   with no `skipped` reason.
//! - No row may remain for a file that is not in the tree.
//! - The index is read with its own read-only SQLite connection, `files` and `pending`
//!   in one read transaction, so the two are one consistent state.
//!
//! Entry points: [`assert_agrees`] once everything is synced (after `codelens sync`,
//! or once a watching engine has settled: [`wait_until_agrees`]), and
//! [`assert_no_silent_staleness`] while an engine runs: a file may differ from the
//! index, but then it must be pending (which includes "being indexed"). For a test
//! that takes `status --json` itself and checks it (the fault and soak tests):
//! [`silently_stale`] and [`differing`].
//!
//! This is the one independent "tree hashed and compared with the index" of the
//! tests; a test that needs such a check uses it rather than a walker of its own.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

/// codelens's size cap (scan.rs `MAX_FILE_BYTES`) and git's binary sniff length.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
const BINARY_SNIFF_BYTES: usize = 8000;

/// A file of the working tree as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub size: u64,
    /// `None` for files over the cap (codelens does not hash them).
    pub sha256: Option<[u8; 32]>,
    pub skipped: Option<&'static str>,
}

/// A row of the index's `files` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub size: u64,
    pub sha256: Option<Vec<u8>>,
    pub skipped: Option<String>,
}

/// The index as one read transaction saw it.
#[derive(Debug, Default)]
pub struct IndexState {
    pub rows: BTreeMap<Vec<u8>, IndexRow>,
    /// The writer engine's published pending set: path → state.
    pub pending: BTreeMap<Vec<u8>, String>,
}

/// How the index and the tree differ.
#[derive(Debug, Default)]
pub struct Diff {
    /// In the tree, no row.
    pub missing: Vec<Vec<u8>>,
    /// A row, not in the tree.
    pub extra: Vec<Vec<u8>>,
    /// Both, but the row's size, hash or skip reason is wrong; with why.
    pub wrong: Vec<(Vec<u8>, String)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.wrong.is_empty()
    }

    /// Every differing path.
    pub fn paths(&self) -> BTreeSet<Vec<u8>> {
        self.missing
            .iter()
            .chain(&self.extra)
            .chain(self.wrong.iter().map(|(p, _)| p))
            .cloned()
            .collect()
    }

    pub fn describe(&self) -> String {
        let show = |paths: &mut dyn Iterator<Item = String>| {
            let all: Vec<String> = paths.collect();
            let n = all.len();
            let mut shown: Vec<String> = all.into_iter().take(10).collect();
            if n > 10 {
                shown.push(format!("… {} more", n - 10));
            }
            shown.join(", ")
        };
        format!(
            "{} missing [{}]; {} deleted but still indexed [{}]; {} wrong [{}]",
            self.missing.len(),
            show(&mut self.missing.iter().map(|p| lossy(p))),
            self.extra.len(),
            show(&mut self.extra.iter().map(|p| lossy(p))),
            self.wrong.len(),
            show(
                &mut self
                    .wrong
                    .iter()
                    .map(|(p, why)| format!("{} ({why})", lossy(p)))
            ),
        )
    }
}

pub fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Every file git would call part of the working tree (tracked or untracked, not
/// ignored), regular files only, as raw relative paths.
pub fn expected_paths(root: &Path) -> BTreeSet<Vec<u8>> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--others",
            "--cached",
            "--exclude-standard",
        ])
        .current_dir(root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git ls-files runs");
    assert!(
        out.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            // A tracked file deleted from the tree is still listed by --cached.
            full_path(root, p)
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_file())
        })
        .map(|p| p.to_vec())
        .collect()
}

fn full_path(root: &Path, rel: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    root.join(std::ffi::OsStr::from_bytes(rel))
}

/// Reads and hashes one file. `None` when it vanished.
pub fn read_tree_file(root: &Path, rel: &[u8]) -> Option<TreeFile> {
    let content = std::fs::read(full_path(root, rel)).ok()?;
    let size = content.len() as u64;
    if size > MAX_FILE_BYTES {
        return Some(TreeFile {
            size,
            sha256: None,
            skipped: Some("too_large"),
        });
    }
    let binary = content[..content.len().min(BINARY_SNIFF_BYTES)].contains(&0);
    Some(TreeFile {
        size,
        sha256: Some(Sha256::digest(&content).into()),
        skipped: binary.then_some("binary"),
    })
}

/// The whole tree, hashed.
pub fn read_tree(root: &Path) -> BTreeMap<Vec<u8>, TreeFile> {
    expected_paths(root)
        .into_iter()
        .filter_map(|p| read_tree_file(root, &p).map(|f| (p, f)))
        .collect()
}

pub fn db_path(root: &Path) -> PathBuf {
    root.join(".codelens").join("index.db")
}

fn open_read_only(root: &Path) -> Connection {
    let conn = Connection::open_with_flags(db_path(root), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the index opens read-only");
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn
}

/// The index's files and pending set, read in one transaction.
pub fn read_index(root: &Path) -> IndexState {
    let mut conn = open_read_only(root);
    let tx = conn.transaction().expect("read transaction");
    let mut state = IndexState::default();
    {
        let mut stmt = tx
            .prepare("SELECT path, size, sha256, skipped FROM files")
            .expect("files table");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    IndexRow {
                        size: r.get::<_, i64>(1)? as u64,
                        sha256: r.get(2)?,
                        skipped: r.get(3)?,
                    },
                ))
            })
            .unwrap();
        for row in rows {
            let (path, row) = row.unwrap();
            state.rows.insert(path, row);
        }
        let mut stmt = tx.prepare("SELECT path, state FROM pending").unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .unwrap();
        for row in rows {
            let (path, s) = row.unwrap();
            state.pending.insert(path, s);
        }
    }
    tx.commit().unwrap();
    state
}

/// `PRAGMA integrity_check` on the index, `Err` with SQLite's findings.
pub fn integrity(root: &Path) -> Result<(), String> {
    let conn = Connection::open_with_flags(db_path(root), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open: {e}"))?;
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let findings: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| format!("integrity_check failed: {e}"))?;
    if findings == ["ok"] {
        Ok(())
    } else {
        Err(findings.join("; "))
    }
}

pub fn assert_integrity(root: &Path) {
    if let Err(findings) = integrity(root) {
        panic!("corrupt index at {}: {findings}", root.display());
    }
}

/// How the index differs from `tree`.
pub fn diff(tree: &BTreeMap<Vec<u8>, TreeFile>, index: &IndexState) -> Diff {
    let mut diff = Diff::default();
    for (path, file) in tree {
        let Some(row) = index.rows.get(path) else {
            diff.missing.push(path.clone());
            continue;
        };
        let mut why = Vec::new();
        if row.size != file.size {
            why.push(format!(
                "size {} in the index, {} on disk",
                row.size, file.size
            ));
        }
        if row.sha256.as_deref() != file.sha256.as_ref().map(|h| &h[..]) {
            why.push("SHA-256 differs".to_string());
        }
        if row.skipped.as_deref() != file.skipped {
            why.push(format!(
                "skipped {:?} in the index, {:?} expected",
                row.skipped, file.skipped
            ));
        }
        if !why.is_empty() {
            diff.wrong.push((path.clone(), why.join(", ")));
        }
    }
    for path in index.rows.keys() {
        if !tree.contains_key(path) {
            diff.extra.push(path.clone());
        }
    }
    diff
}

/// Whether a writer engine holds `.codelens/engine.lock` right now.
pub fn writer_engine_running(root: &Path) -> bool {
    let Ok(file) = std::fs::File::open(root.join(".codelens/engine.lock")) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// `codelens status --json` (asserting it succeeds, with nothing but JSON on stdout and
/// no SQLite error on stderr).
pub fn status_json(root: &Path) -> serde_json::Value {
    let out = super::codelens_in(root, &["status", "--json"]);
    super::assert_success(&out, &["status", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("locked") && !stderr.contains("busy"),
        "status stderr: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// The index agrees with the tree now, or why not.
pub fn check_agrees(root: &Path) -> Result<(), String> {
    let tree = read_tree(root);
    let index = read_index(root);
    let diff = diff(&tree, &index);
    if !diff.is_empty() {
        return Err(format!(
            "the index differs from the tree: {}",
            diff.describe()
        ));
    }
    if !index.pending.is_empty() {
        let stuck: Vec<String> = index.pending.keys().take(10).map(|p| lossy(p)).collect();
        return Err(format!(
            "the index equals the tree, but {} files are still published as pending: {stuck:?}",
            index.pending.len()
        ));
    }
    let status = status_json(root);
    let pending = status["pending"].as_array().map_or(0, |p| p.len());
    if pending != 0 {
        return Err(format!(
            "status --json reports {pending} pending files on an index equal to the tree: {}",
            status["pending"]
        ));
    }
    let indexed = tree.values().filter(|f| f.skipped.is_none()).count() as u64;
    if status["files"] != indexed {
        return Err(format!(
            "status --json says {} files, the tree has {indexed} text files",
            status["files"]
        ));
    }
    Ok(())
}

/// Every non-ignored file is indexed with its exact size and SHA-256, no deleted file
/// remains, nothing is pending, and `status --json` says the same.
pub fn assert_agrees(root: &Path) {
    assert_integrity(root);
    if let Err(why) = check_agrees(root) {
        panic!("oracle: {why}");
    }
}

/// Waits (polling, up to `deadline`) until the index agrees with the tree — what "the
/// watcher settled" means from outside — then asserts it. Returns the polls it took.
pub fn wait_until_agrees(root: &Path, deadline: Duration) -> u32 {
    let until = Instant::now() + deadline;
    let mut polls = 0;
    loop {
        polls += 1;
        match check_agrees(root) {
            Ok(()) => {
                assert_integrity(root);
                return polls;
            }
            Err(why) if Instant::now() >= until => {
                panic!("oracle: never agreed within {deadline:?} ({polls} polls): {why}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// While a watching engine runs and the tree holds still: every file that differs from
/// the index is listed pending by `status --json` (waiting, indexing, retrying or failed
/// — reported, not silent). No grace period: like the engine's own cookies, the test
/// writes a marker file and waits until `status` shows it (pending or indexed); inotify
/// delivers events in order, so by then the engine has seen every earlier edit, and
/// from then on [`check_status_covers`] must hold. Returns how many files were pending.
pub fn assert_no_silent_staleness(root: &Path) -> usize {
    use std::sync::atomic::{AtomicU64, Ordering};
    static MARKERS: AtomicU64 = AtomicU64::new(0);
    let n = MARKERS.fetch_add(1, Ordering::Relaxed);
    let marker = format!("oracle-marker-{}-{n}.txt", std::process::id());
    for old in std::fs::read_dir(root).unwrap().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with("oracle-marker-") {
            std::fs::remove_file(old.path()).unwrap();
        }
    }
    std::fs::write(root.join(&marker), format!("marker {n}\n")).unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let status = status_json(root);
        let listed = status["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|e| e["path"] == marker.as_str()));
        if listed || read_index(root).rows.contains_key(marker.as_bytes()) {
            break;
        }
        assert!(
            Instant::now() < until,
            "oracle: the engine never reported the marker {marker}: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let tree = read_tree(root);
    match check_status_covers(root, &tree) {
        Ok(status) => status["pending"].as_array().map_or(0, |p| p.len()),
        Err(stale) => {
            let shown: Vec<String> = stale.iter().take(10).map(|p| lossy(p)).collect();
            panic!(
                "oracle: {} files differ from the index and status --json does not list them: {shown:?}",
                stale.len()
            )
        }
    }
}

/// The strict form, through what the user sees, for a tree that holds still (`tree`,
/// read beforehand): `status --json`'s pending list first, the index second. The index
/// only ever moves towards a still tree, so every file differing at the second read
/// already differed at the first, and must be in that list. No grace: `Err` lists the
/// files `status` called fresh although they differ.
pub fn check_status_covers(
    root: &Path,
    tree: &BTreeMap<Vec<u8>, TreeFile>,
) -> Result<serde_json::Value, Vec<Vec<u8>>> {
    let status = status_json(root);
    let stale = unlisted(&status, tree, root);
    if stale.is_empty() {
        Ok(status)
    } else {
        Err(stale.into_iter().map(String::into_bytes).collect())
    }
}

/// How the index differs from the tree now (the tree read first, then the index):
/// nothing else is checked, neither the pending set nor `status`.
pub fn differing(root: &Path) -> Diff {
    let tree = read_tree(root);
    diff(&tree, &read_index(root))
}

/// The files that differ from the index without being in `status_before`'s pending
/// list — silently stale — for a tree that holds still: `status --json` was taken
/// first, the tree and then the index are read now, and what is indexed in between
/// only shrinks the differing set. No grace: the caller asserts the list is empty.
pub fn silently_stale(root: &Path, status_before: &serde_json::Value) -> Vec<String> {
    unlisted(status_before, &read_tree(root), root)
}

/// The files of a still `tree` that differ from the index (read now) and are not in
/// `status`'s pending list (taken before).
pub fn unlisted(
    status: &serde_json::Value,
    tree: &BTreeMap<Vec<u8>, TreeFile>,
    root: &Path,
) -> Vec<String> {
    let listed: BTreeSet<Vec<u8>> = status["pending"]
        .as_array()
        .expect("pending is a list")
        .iter()
        .map(|p| p["path"].as_str().unwrap_or_default().as_bytes().to_vec())
        .collect();
    let index = read_index(root);
    diff(tree, &index)
        .paths()
        .into_iter()
        .filter(|p| !listed.contains(p))
        .map(|p| lossy(&p))
        .collect()
}
