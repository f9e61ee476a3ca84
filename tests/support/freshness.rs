//! A minimal freshness checker for the fault and soak tests: which files of the working
//! tree differ from the index (hashed here, independently of codelens), so a test can
//! assert that every one of them is in `status --json`'s pending list — a file may be
//! stale, never silently. Walks everything but `.git/` and `.codelens/`, never follows
//! symlinks; meant for trees without ignore rules.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Relative path (as `status --json` spells it, lossy UTF-8) → SHA-256, for every file.
pub fn tree_hashes(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if dir == root && (name == ".git" || name == ".codelens") {
            continue;
        }
        if kind.is_dir() {
            walk(root, &path, out);
        } else if kind.is_file() {
            // A file deleted between the listing and the read is simply not there.
            if let Ok(content) = std::fs::read(&path) {
                let relative = path.strip_prefix(root).unwrap();
                let key = String::from_utf8_lossy(relative.as_os_str().as_bytes()).into_owned();
                out.insert(key, Sha256::digest(&content).to_vec());
            }
        }
    }
}

/// Path → SHA-256 as the index holds them (NULL hashes as empty).
pub fn index_hashes(db: &Path) -> BTreeMap<String, Vec<u8>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("index opens");
    let mut statement = conn.prepare("SELECT path, sha256 FROM files").unwrap();
    statement
        .query_map([], |row| {
            let path: Vec<u8> = row.get(0)?;
            let sha: Option<Vec<u8>> = row.get(1)?;
            Ok((
                String::from_utf8_lossy(&path).into_owned(),
                sha.unwrap_or_default(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every path whose content in the tree differs from the index: added, modified, deleted.
pub fn differing(root: &Path, db: &Path) -> BTreeSet<String> {
    let tree = tree_hashes(root);
    let index = index_hashes(db);
    let mut out = BTreeSet::new();
    for (path, sha) in &tree {
        if index.get(path) != Some(sha) {
            out.insert(path.clone());
        }
    }
    for path in index.keys() {
        if !tree.contains_key(path) {
            out.insert(path.clone());
        }
    }
    out
}

/// The paths of `status --json`'s pending list.
pub fn pending_paths(status: &serde_json::Value) -> BTreeSet<String> {
    status["pending"]
        .as_array()
        .expect("pending is a list")
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

/// Files that differ from the index without being pending, given a status taken first
/// (whatever is indexed in between only shrinks the differing set).
pub fn silently_stale(root: &Path, db: &Path, status_before: &serde_json::Value) -> Vec<String> {
    let pending = pending_paths(status_before);
    differing(root, db)
        .into_iter()
        .filter(|p| !pending.contains(p))
        .collect()
}
