//! Finding a project's root and its index directory.

// Path-based access here is to the index's own files under .codelens/, and finding the project root, never to the project's content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::contain::Tree;
use super::scan::INDEX_DIR_NAME;
use super::store::DB_FILE_NAME;
use super::{Error, Result, git};

/// Names of the probe files [`Project::probe_writer`] writes under `.codelens/`.
pub const PROBE_PREFIX: &str = "probe-";

/// A project with an index: `root/.codelens/index.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    pub fn at(root: PathBuf) -> Project {
        Project { root }
    }

    /// The project's files, held open at the root: the one way to read them (see
    /// [`contain`](super::contain)).
    pub fn tree(&self) -> Result<Tree> {
        Tree::open(&self.root).map_err(|e| Error::io(&self.root, e))
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

    /// The index of the main checkout, when this project is a linked git worktree of
    /// it: a copy of it, reconciled, is a much faster start than parsing everything.
    pub fn main_checkout_index(&self) -> Option<Project> {
        let info = git::discover(&self.root).ok().flatten()?;
        if info.kind != git::CheckoutKind::LinkedWorktree {
            return None;
        }
        let main = Project::at(info.main_checkout_root?);
        (main.root != self.root && main.db_path().is_file()).then_some(main)
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

/// A held OS file lock (`flock`); released when dropped or when the process dies, so a
/// `kill -9` never leaves a stale lock behind.
#[derive(Debug)]
pub struct IndexLock(std::fs::File);

impl IndexLock {
    /// Writes who holds this lock into the lock file. The writer engine records its id
    /// in `engine.lock`, and stamps the same id on the pending set it publishes only
    /// once its catch-up has looked at the tree: until both match, the published set is
    /// a dead or previous writer's, and `status` must not trust it.
    pub fn record_owner(&self, id: &str) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        let mut file = &self.0;
        file.set_len(0)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(id.as_bytes())
    }
}

impl Project {
    /// Takes the index's write lock (`.codelens/lock`), waiting for another writer if
    /// needed: `init` and `sync` never interleave. Creates `.codelens/` when missing.
    pub fn lock_for_writing(&self) -> Result<IndexLock> {
        let dir = self.index_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Keep the index out of commits, as a virtualenv does.
        // Written whole or not at all (a `kill -9` mid-write once left it empty, and git
        // then showed the index's files), and written again if it is not whole.
        const IGNORE_ALL: &[u8] = b"# codelens index: local to this checkout\n*\n";
        let ignore = dir.join(".gitignore");
        if !std::fs::read(&ignore).is_ok_and(|content| content.ends_with(b"\n*\n")) {
            crate::fsutil::write_atomically(&ignore, IGNORE_ALL, 0o644)
                .map_err(|e| Error::io(&ignore, e))?;
        }
        self.lock("lock", true, "writing")
    }

    /// Taken exclusively by `init` only while it swaps the new database in: readers hold
    /// it shared ([`Project::lock_for_reading`]) while they have the database open, so
    /// no one reads a file that is being replaced. A `status` holds it for a moment; a
    /// running engine holds it for its life, so after a few seconds this gives up with a
    /// clear error rather than wait for the engine to end.
    pub fn lock_for_swap(&self) -> Result<IndexLock> {
        let (file, path) = self.lock_file("swap.lock")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(IndexLock(file)),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(index_in_use(&self.index_dir()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }

    /// Refuses to rebuild an index a running engine has open (it would keep writing to
    /// the replaced file): checked before a long build, so nobody waits for nothing.
    pub fn ensure_no_engine(&self) -> Result<()> {
        if self.writer_engine_running() {
            return Err(index_in_use(&self.index_dir()));
        }
        Ok(())
    }

    /// Held shared while a reader has the database open. `None` when `.codelens/` is
    /// read-only and has no lock file yet (then no `init` can swap it either).
    pub fn lock_for_reading(&self) -> Result<Option<IndexLock>> {
        match self.lock("swap.lock", false, "rebuilding") {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The write lock if it is free right now (`None` while another writer holds it):
    /// the engine retries with backoff instead of blocking its event loop.
    pub fn try_lock_for_writing(&self) -> Result<Option<IndexLock>> {
        self.try_lock_exclusive("lock")
    }

    /// The engine lock: held by the one writer engine of this index for its lifetime.
    /// `None` when another engine holds it (this one is then a follower).
    pub fn try_lock_engine(&self) -> Result<Option<IndexLock>> {
        self.try_lock_exclusive("engine.lock")
    }

    /// `.codelens/NAME`, opened (created if missing) for locking.
    fn lock_file(&self, name: &str) -> Result<(std::fs::File, PathBuf)> {
        let path = self.index_dir().join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((file, path))
    }

    fn try_lock_exclusive(&self, name: &str) -> Result<Option<IndexLock>> {
        let (file, path) = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(IndexLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Taken (exclusively, waiting at most for a `status` probing it) by the writer
    /// engine before work during which it reads no file events — catch-up, re-indexing
    /// — and released once it has handled and published the events queued meanwhile.
    /// While it is held the writer's published pending set may miss a recent edit.
    pub fn lock_engine_busy(&self) -> Result<IndexLock> {
        let (file, path) = self.lock_file("busy.lock")?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(IndexLock(file))
    }

    /// Whether the writer engine holds the busy lock right now
    /// ([`Project::lock_engine_busy`]).
    pub fn writer_engine_busy(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.index_dir().join("busy.lock")) else {
            return false;
        };
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// The id the writer engine recorded in `.codelens/engine.lock` when it took it
    /// ([`IndexLock::record_owner`]); left behind by a writer that is gone, so only
    /// meaningful while [`Project::writer_engine_running`].
    pub fn engine_owner(&self) -> Option<String> {
        std::fs::read_to_string(self.index_dir().join("engine.lock"))
            .ok()
            .filter(|id| !id.is_empty())
    }

    /// Whether a writer engine is running on this index right now.
    pub fn writer_engine_running(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.index_dir().join("engine.lock")) else {
            return false;
        };
        // A shared lock is refused only while some engine holds it exclusively.
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// Asks the writer engine whether its published pending set includes every file
    /// event up to now (an edit saved just before `status` ran, whose event may still be
    /// on its way to the engine): writes a probe file under `.codelens/`, which the
    /// writer's watcher reports after every earlier event (one kernel queue, in order)
    /// and which the writer deletes once it has handled and published them. True when
    /// the probe went within `timeout`; false when it did not, or the writer turned busy
    /// meanwhile, or there is no writer, or no probe could be written (a read-only index
    /// directory): the caller then checks the tree itself. Only a writer whose watcher
    /// runs can answer: callers ask only then.
    pub fn probe_writer(&self, timeout: Duration) -> bool {
        let Some(path) = self.send_probe() else {
            return false;
        };
        let deadline = Instant::now() + timeout;
        // An idle writer answers in about a millisecond: poll fast, then back off.
        let mut pause = Duration::from_micros(200);
        loop {
            if probe_answered(&path) {
                return true;
            }
            if Instant::now() >= deadline
                || self.writer_engine_busy()
                || !self.writer_engine_running()
            {
                let _ = std::fs::remove_file(&path);
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Writes a probe file for the writer engine to answer (by deleting it) once it has
    /// handled and published every file event before it: [`Project::probe_writer`]
    /// waits for the answer; a follower engine checks on it at each poll
    /// ([`probe_answered`]). `None` when no writer runs or no probe can be written.
    pub fn send_probe(&self) -> Option<PathBuf> {
        static NEXT_PROBE: AtomicU64 = AtomicU64::new(0);
        let n = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PROBE_PREFIX}{}-{n}", std::process::id());
        let path = self.index_dir().join(name);
        if !self.writer_engine_running() || std::fs::File::create_new(&path).is_err() {
            return None;
        }
        Some(path)
    }

    /// Deletes probe files older than `age`: left by a `status` killed while it waited,
    /// or written while no writer watched. Whoever wrote them has stopped waiting
    /// ([`Project::probe_writer`] gives up within a second), and nothing else would
    /// ever remove them.
    pub fn remove_stale_probes(&self, age: Duration) {
        let Ok(entries) = std::fs::read_dir(self.index_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .file_name()
                .to_string_lossy()
                .starts_with(PROBE_PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|elapsed| elapsed > age));
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn lock(&self, name: &str, exclusive: bool, other_is: &str) -> Result<IndexLock> {
        let (file, path) = self.lock_file(name)?;
        let attempt = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match attempt {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "codelens: waiting for another codelens process {other_is} {}",
                    self.index_dir().display()
                );
                let locked = if exclusive {
                    file.lock()
                } else {
                    file.lock_shared()
                };
                locked.map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        Ok(IndexLock(file))
    }
}

fn index_in_use(index_dir: &Path) -> Error {
    Error::io(
        index_dir,
        std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            "a running codelens engine (watch, TUI or MCP server) has this index open; stop it before rebuilding, or run `codelens sync`",
        ),
    )
}

/// Whether the writer has answered the probe at `path` ([`Project::send_probe`]).
pub fn probe_answered(path: &Path) -> bool {
    matches!(path.symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe protocol on a real `.codelens/`: no probe without a running writer; a
    /// probe waits until its file is deleted (the writer's answer); stale ones go.
    #[test]
    fn probes_need_a_writer_and_are_answered_by_their_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::at(dir.path().to_path_buf());
        std::fs::create_dir(project.index_dir()).unwrap();
        assert!(project.send_probe().is_none(), "no writer, no probe");
        assert!(!project.probe_writer(Duration::from_millis(10)));

        let _writer = project.try_lock_engine().unwrap().expect("the engine lock");
        assert!(project.writer_engine_running());
        let first = project.send_probe().expect("a probe");
        let second = project.send_probe().expect("another");
        assert_ne!(first, second, "each probe has a name of its own");
        assert!(!probe_answered(&first));
        std::fs::remove_file(&first).unwrap();
        assert!(probe_answered(&first));
        // Unanswered: `probe_writer` gives up at its deadline and takes its probe back.
        assert!(!project.probe_writer(Duration::from_millis(20)));
        let left: Vec<_> = std::fs::read_dir(project.index_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(PROBE_PREFIX))
            .collect();
        assert_eq!(left.len(), 1, "only the unanswered second probe is left");
        project.remove_stale_probes(Duration::ZERO);
        assert!(probe_answered(&second), "a stale probe is removed");
    }
}
