//! What the index needs to know from git, read with gix (no `git` process spawned).

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
}

/// The git worktree containing `dir`, if any. A broken `.git` (a gitdir file pointing
/// nowhere, an unreadable HEAD) is an error with a clear message, not "no git".
pub fn discover(dir: &Path) -> Result<Option<GitInfo>> {
    use gix::discover::upwards::Error as Upwards;
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
    Ok(Some(GitInfo {
        worktree_root,
        branch,
        head,
    }))
}
