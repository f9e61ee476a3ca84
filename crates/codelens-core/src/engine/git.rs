//! What the index needs to know from git, read with gix (no `git` process spawned).

// Path-based access here is to git's own metadata (.git files and directories), never to the project's content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use super::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// The top of the worktree (what `git rev-parse --show-toplevel` prints).
    pub worktree_root: PathBuf,
    /// The short branch name; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// The commit HEAD points to; `None` in a repository without commits.
    pub head: Option<String>,
    pub kind: CheckoutKind,
    /// This worktree's own git directory (`.git`, or `.git/worktrees/<name>` for a
    /// linked worktree): where `index.lock` appears during a checkout.
    pub git_dir: PathBuf,
    /// For a linked worktree, the work tree of the repository it belongs to (`None`
    /// when that repository is bare); for any other checkout, its own root.
    pub main_checkout_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CheckoutKind {
    /// An ordinary repository's work tree (a nested one included).
    #[default]
    Main,
    /// Made by `git worktree add`.
    LinkedWorktree,
    Submodule,
}

/// The git worktree containing `dir`, if any. A broken `.git` (a gitdir file pointing
/// nowhere, an unreadable HEAD) is an error with a clear message, not "no git".
pub fn discover(dir: &Path) -> Result<Option<GitInfo>> {
    use gix::discover::upwards::Error as Upwards;
    check_nearest_git_file(dir)?;
    let repo = match gix::discover(dir) {
        Ok(repo) => repo,
        Err(error)
            if matches!(
                error.downcast_any_ref::<Upwards>(),
                Some(
                    Upwards::NoGitRepository { .. }
                        | Upwards::NoGitRepositoryWithinCeiling { .. }
                        | Upwards::NoGitRepositoryWithinFs { .. }
                )
            ) =>
        {
            return Ok(None);
        }
        Err(error) => {
            return Err(Error::Git(format!(
                "cannot read the git repository containing {}: {error}",
                dir.display()
            )));
        }
    };
    let Some(workdir) = repo.workdir() else {
        // A bare repository has no working tree to index.
        return Ok(None);
    };
    // gix reports the work tree as it reached it; canonical paths compare reliably.
    let worktree_root = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let branch = repo
        .head_name()
        .ok()
        .flatten()
        .map(|name| name.shorten().to_string());
    let head = repo.head_id().ok().map(|id| id.to_string());
    let kind = match repo.kind() {
        gix::repository::Kind::LinkedWorkTree => CheckoutKind::LinkedWorktree,
        gix::repository::Kind::Submodule => CheckoutKind::Submodule,
        gix::repository::Kind::Common => CheckoutKind::Main,
    };
    let main_checkout_root = match kind {
        CheckoutKind::LinkedWorktree => repo.main_repo().ok().and_then(|main| {
            main.workdir()
                .map(|w| w.canonicalize().unwrap_or_else(|_| w.to_path_buf()))
        }),
        _ => Some(worktree_root.clone()),
    };
    let git_dir = repo
        .git_dir()
        .canonicalize()
        .unwrap_or_else(|_| repo.git_dir().to_path_buf());
    Ok(Some(GitInfo {
        worktree_root,
        branch,
        head,
        kind,
        git_dir,
        main_checkout_root,
    }))
}

/// The git directory a `.git` file names (its `gitdir:` line), as written: relative
/// paths are relative to the file's own directory.
pub fn gitdir_line(dot_git_file: &str) -> Option<&str> {
    dot_git_file
        .lines()
        .find_map(|l| l.strip_prefix("gitdir:"))
        .map(str::trim)
}

/// git refuses to work under a `.git` file whose `gitdir:` is gone (a worktree removed
/// by hand, a moved submodule), while discovery would quietly climb past it to an
/// enclosing repository and answer for the wrong checkout. Say so instead.
fn check_nearest_git_file(dir: &Path) -> Result<()> {
    let Some(dot_git) = dir
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|p| p.symlink_metadata().is_ok())
    else {
        return Ok(());
    };
    if dot_git.is_dir() {
        return Ok(());
    }
    let content = std::fs::read_to_string(&dot_git).unwrap_or_default();
    let Some(target) = gitdir_line(&content) else {
        return Err(Error::Git(format!(
            "{} is not a valid .git file (no `gitdir:` line)",
            dot_git.display()
        )));
    };
    let base = dot_git.parent().unwrap_or(dir);
    if base.join(target).exists() {
        Ok(())
    } else {
        Err(Error::Git(format!(
            "{} points to {target}, which does not exist (a removed worktree? `git worktree prune` cleans up)",
            dot_git.display()
        )))
    }
}

/// The repository's own git directory for the checkout at `root` (for a linked
/// worktree, the main repository's, named by its `commondir`), or `None` outside git.
pub fn common_dir_of(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        // A linked worktree's `.git` file: `gitdir: <path>`.
        let text = std::fs::read_to_string(&dot_git).ok()?;
        root.join(gitdir_line(&text)?)
    };
    Some(match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(common) => git_dir.join(common.trim()),
        Err(_) => git_dir,
    })
}
