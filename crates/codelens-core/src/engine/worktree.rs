//! Git worktree mismatch: the index found by walking up from where a command stands
//! belongs to another checkout than the git worktree it stands in.
//!
//! The typical case is a linked worktree (`git worktree add wt`) created inside the main
//! checkout: walking up from `wt/` lands on the main checkout's `.codelens/`, an index of
//! another branch, which would silently answer for the wrong code. The same holds for a
//! submodule or a nested repository under an indexed project (the enclosing index never
//! even enters them). The fix is an index of their own: `codelens init -i`.
//!
//! Directories are compared by identity (device and inode), not by spelling, so a
//! symlinked path or a different letter case on a case-insensitive file system is never
//! taken for another checkout.

// Path-based access here is to comparing git worktree roots, never to the project's content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Result;
use super::git::{self, CheckoutKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The top of the git worktree the command stands in.
    pub worktree_root: PathBuf,
    /// The checkout the index belongs to (the main checkout of a linked worktree, the
    /// superproject of a submodule …); the index root itself when that is not in git.
    pub main_checkout_root: PathBuf,
    /// Where the index that walk-up found lives.
    pub index_root: PathBuf,
    pub worktree_branch: Option<String>,
    /// The branch checked out where the index lives, now.
    pub index_branch: Option<String>,
    /// `linked worktree`, `submodule` or `nested repository`.
    pub worktree_kind: &'static str,
}

impl Mismatch {
    /// The `worktree_mismatch` object of `status --json`, MCP answers and
    /// `index_status`: the three roots, both branches, and the fix.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "worktree_root": self.worktree_root.to_string_lossy(),
            "main_checkout_root": self.main_checkout_root.to_string_lossy(),
            "index_root": self.index_root.to_string_lossy(),
            "worktree_branch": self.worktree_branch,
            "index_branch": self.index_branch,
            "worktree_kind": self.worktree_kind,
            "fix": format!("codelens init -i {}", self.worktree_root.display()),
        })
    }

    /// The warning every answer built from the wrong index starts with.
    pub fn warning(&self) -> String {
        let branch = |b: &Option<String>| {
            b.as_deref()
                .map_or_else(|| "detached HEAD".to_string(), |b| format!("branch {b}"))
        };
        format!(
            "⚠️ This {} ({}, {}) is reading the index of {} ({}), built at {}.\n   \
             Answers may describe the other checkout. Fix: run `codelens init -i` in {}.",
            self.worktree_kind,
            self.worktree_root.display(),
            branch(&self.worktree_branch),
            self.main_checkout_root.display(),
            branch(&self.index_branch),
            self.index_root.display(),
            self.worktree_root.display(),
        )
    }
}

/// The top of the git worktree containing `dir` (what `git rev-parse --show-toplevel`
/// prints), read with gix; `None` outside git.
pub fn git_worktree_root(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(git::discover(dir)?.map(|info| info.worktree_root))
}

/// Whether the index at `index_root`, found by walking up from `start`, belongs to
/// another checkout than the git worktree containing `start`: it does when it lies
/// strictly above that worktree's top.
pub fn detect_worktree_index_mismatch(start: &Path, index_root: &Path) -> Result<Option<Mismatch>> {
    let Some(here) = git::discover(start)? else {
        return Ok(None);
    };
    let above = here
        .worktree_root
        .ancestors()
        .skip(1)
        .any(|ancestor| same_directory(ancestor, index_root));
    if !above {
        // The index is this worktree's own (or one of a project inside it).
        return Ok(None);
    }
    // A broken enclosing repository only costs us its branch name.
    let owner = git::discover(index_root).ok().flatten();
    let main_checkout_root = match (&here.kind, &here.main_checkout_root, &owner) {
        (CheckoutKind::LinkedWorktree, Some(main), _) => main.clone(),
        (_, _, Some(owner)) => owner.worktree_root.clone(),
        _ => index_root.to_path_buf(),
    };
    Ok(Some(Mismatch {
        worktree_root: here.worktree_root,
        main_checkout_root,
        index_root: index_root.to_path_buf(),
        worktree_branch: here.branch,
        index_branch: owner.and_then(|o| o.branch),
        worktree_kind: match here.kind {
            CheckoutKind::LinkedWorktree => "linked worktree",
            CheckoutKind::Submodule => "submodule",
            CheckoutKind::Main => "nested repository",
        },
    }))
}

/// The same directory, however it is spelled.
fn same_directory(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => a == b,
        }
    }
    #[cfg(not(unix))]
    {
        match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        }
    }
}
