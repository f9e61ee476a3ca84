//! Finding a project's root and its index directory.

use std::path::{Path, PathBuf};

use super::scan::INDEX_DIR_NAME;
use super::store::DB_FILE_NAME;
use super::{Error, Result, git};

/// A project with an index: `root/.codelens/index.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    pub fn at(root: PathBuf) -> Project {
        Project { root }
    }

    pub fn index_dir(&self) -> PathBuf {
        self.root.join(INDEX_DIR_NAME)
    }

    pub fn db_path(&self) -> PathBuf {
        self.index_dir().join(DB_FILE_NAME)
    }

    /// The project whose index is the nearest `.codelens/index.db` at or above `start`,
    /// the way git finds `.git`. The marker is the database file, not the directory, so
    /// `~/.codelens` (codelens's per-user home) is never taken for a project index.
    pub fn find(start: &Path) -> Result<Project> {
        let start = canonical_dir(start)?;
        start
            .ancestors()
            .find(|dir| dir.join(INDEX_DIR_NAME).join(DB_FILE_NAME).is_file())
            .map(|dir| Project::at(dir.to_path_buf()))
            .ok_or(Error::NoIndex { start })
    }

    /// Where `codelens init` builds: the top of the git worktree containing `start`, or
    /// `start` itself outside git. `own_worktree` (`init -i`) insists on a git worktree.
    pub fn for_init(start: &Path, own_worktree: bool) -> Result<Project> {
        let start = canonical_dir(start)?;
        match git::discover(&start)? {
            Some(info) => Ok(Project::at(info.worktree_root)),
            None if own_worktree => Err(Error::Git(format!(
                "`init -i` builds a git worktree's own index, but {} is not inside a git worktree",
                start.display()
            ))),
            None => Ok(Project::at(start)),
        }
    }
}

/// `path` made absolute and canonical; it must be an existing directory.
fn canonical_dir(path: &Path) -> Result<PathBuf> {
    let canonical = path.canonicalize().map_err(|e| Error::io(path, e))?;
    if !canonical.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    Ok(canonical)
}

impl Project {
    /// Takes the index's write lock (`.codelens/lock`, an OS file lock released when the
    /// returned file is dropped or the process dies), waiting for another writer if needed.
    pub fn lock_for_writing(&self) -> Result<std::fs::File> {
        let dir = self.index_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Keep the index out of commits, as a virtualenv does.
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# codelens index: local to this checkout\n*\n")
                .map_err(|e| Error::io(&ignore, e))?;
        }
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "codelens: waiting for another codelens process writing {}",
                    dir.display()
                );
                file.lock().map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        Ok(file)
    }
}
