//! Walking the working tree and reading files: stat, SHA-256, language, lines, symbols.
//!
//! What is indexed: every regular file of the tree that the ignore rules (see
//! [`rules`](super::rules): `.gitignore`, `.ignore`, `.codelensignore`,
//! `.git/info/exclude` and the global git excludes) keep, hidden files included,
//! symlinks not followed. Every directory is listed and every file read through the
//! [`Tree`]: nothing outside the project, not even through a symlinked directory. Never entered: `.git`, `.codelens`, and nested
//! repositories or worktrees (a directory with its own `.git`), as git itself does.
//! Files over [`MAX_FILE_BYTES`] and binary files (a NUL byte in the first 8,000 bytes,
//! git's rule) are recorded with their stat and a `skipped` reason but not parsed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{FileType, OFlags};
use sha2::{Digest, Sha256};

use super::contain::{self, EntryKind, Tree};
use super::lang::Lang;
use super::rules::{DirRules, GlobalRules, RuleChain};
use super::symbols::{Symbol, SymbolExtractor};
use super::{RelPath, now_ns};

/// Files larger than this are recorded but neither hashed nor parsed.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// How far into a file git (and we) look for a NUL byte to call it binary.
const BINARY_SNIFF_BYTES: usize = 8000;
/// The name of the per-project index directory.
pub const INDEX_DIR_NAME: &str = ".codelens";

/// The part of `stat(2)` that tells whether a file may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

impl FileStat {
    pub fn from_metadata(meta: &std::fs::Metadata) -> FileStat {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileStat {
                size: meta.len(),
                // Saturating: a timestamp past 2262 must not overflow.
                mtime_ns: meta
                    .mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(meta.mtime_nsec()),
                ctime_ns: meta
                    .ctime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(meta.ctime_nsec()),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64);
            FileStat {
                size: meta.len(),
                mtime_ns,
                ctime_ns: mtime_ns,
                inode: 0,
            }
        }
    }
}

/// Why a file is recorded without content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Binary,
    TooLarge,
    Unreadable,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::Binary => "binary",
            Skip::TooLarge => "too_large",
            Skip::Unreadable => "unreadable",
        }
    }

    pub fn from_name(name: &str) -> Option<Skip> {
        [Skip::Binary, Skip::TooLarge, Skip::Unreadable]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

#[derive(Debug, Clone)]
pub struct WalkedFile {
    pub path: RelPath,
    pub stat: FileStat,
}

#[derive(Debug, Default)]
pub struct WalkResult {
    pub files: Vec<WalkedFile>,
    /// Directories or entries that could not be read (permission denied …), with why.
    pub errors: Vec<String>,
    /// The paths of those: rows at or under them must be kept as they are, since their
    /// absence from this walk proves nothing about the files.
    pub unreadable: Vec<RelPath>,
    /// Every directory walked (the root is the empty path): what the watcher watches.
    pub dirs: Vec<RelPath>,
    /// The directories listed — the top of the walk, and all below it when recursive —
    /// each with its stat taken *before* it was listed, so that any later change to its
    /// entries shows as a different stat (what the directory cache relies on).
    pub listed: Vec<ListedDir>,
    /// Nested repositories or worktrees met and not entered, with their stats.
    pub nested: Vec<ListedDir>,
    /// The ignore files present in the listed directories, stat'ed before the walk
    /// read them.
    pub ignore_files: Vec<IgnoreSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDir {
    pub path: RelPath,
    pub stat: FileStat,
}

/// A file whose content decides what is ignored, and its stat (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreSource {
    pub path: PathBuf,
    pub stat: Option<FileStat>,
}

/// A directory still to list.
struct DirJob {
    path: RelPath,
    /// The rules of the directories above it.
    rules: Arc<RuleChain>,
}

/// What the walk shares between its threads.
struct Walk<'a> {
    tree: &'a Tree,
    globals: GlobalRules,
    recursive: bool,
    /// The directories still to list, and how many threads are listing one now.
    queue: Mutex<(Vec<DirJob>, usize)>,
    wake: std::sync::Condvar,
    result: Mutex<WalkResult>,
}

/// Walks the whole tree in parallel and stats every file.
pub fn walk(tree: &Tree) -> WalkResult {
    walk_scope(tree, &RelPath::from_bytes(Vec::new()), true)
}

/// Walks `dir`: all of it, or only its own files (and its subdirectories' names) when
/// not `recursive`. The ignore rules of `dir`'s parents inside the project apply too.
///
/// Every directory is opened through the [`Tree`] and listed from that descriptor, and
/// every file stat'ed relative to it: a directory that is (or becomes, mid-walk) a
/// symlink is not entered. A `dir` that is gone, is no longer a directory or is a
/// symlink now gives an empty result: nothing of the index's stands there. A `dir` that
/// became a nested repository gives only itself, under `nested`.
pub fn walk_scope(tree: &Tree, dir: &RelPath, recursive: bool) -> WalkResult {
    let mut parents = RuleChain::root();
    let mut above = dir.parent();
    let mut ancestors = Vec::new();
    while let Some(parent) = above {
        above = parent.parent();
        ancestors.push(parent);
    }
    for ancestor in ancestors.iter().rev() {
        parents = RuleChain::push(&parents, DirRules::read_in(tree, ancestor));
    }
    let walk = Walk {
        tree,
        globals: GlobalRules::load(tree.root()),
        recursive,
        queue: Mutex::new((Vec::new(), 0)),
        wake: std::sync::Condvar::new(),
        result: Mutex::new(WalkResult::default()),
    };
    let top = DirJob {
        path: dir.clone(),
        rules: parents,
    };
    let mut local = WalkResult::default();
    let below = walk.list(top, &mut local);
    walk.merge(local);
    if !below.is_empty() {
        lock(&walk.queue).0.extend(below);
        let threads = worker_count();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| walk.work());
            }
        });
    }
    let mut result = walk.result.into_inner().unwrap_or_else(|e| e.into_inner());
    result.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    result
}

impl Walk<'_> {
    /// One thread's share: directories from the queue until none is left and no other
    /// thread can add one.
    fn work(&self) {
        let mut local = WalkResult::default();
        loop {
            let job = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(job) = queue.0.pop() {
                        queue.1 += 1;
                        break Some(job);
                    }
                    if queue.1 == 0 {
                        break None;
                    }
                    queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(job) = job else {
                self.wake.notify_all();
                break;
            };
            let below = self.list(job, &mut local);
            let mut queue = lock(&self.queue);
            queue.1 -= 1;
            let added = below.len();
            queue.0.extend(below);
            let done = queue.1 == 0 && queue.0.is_empty();
            drop(queue);
            if done || added > 1 {
                self.wake.notify_all();
            } else if added == 1 {
                self.wake.notify_one();
            }
        }
        self.merge(local);
    }

    fn merge(&self, mut local: WalkResult) {
        let mut shared = lock(&self.result);
        shared.files.append(&mut local.files);
        shared.errors.append(&mut local.errors);
        shared.unreadable.append(&mut local.unreadable);
        shared.dirs.append(&mut local.dirs);
        shared.listed.append(&mut local.listed);
        shared.nested.append(&mut local.nested);
        shared.ignore_files.append(&mut local.ignore_files);
    }

    fn unreadable(&self, out: &mut WalkResult, path: &RelPath, error: &std::io::Error) {
        out.unreadable.push(path.clone());
        let shown = self.tree.display_path(path);
        out.errors.push(format!("{}: {error}", shown.display()));
    }

    /// Lists one directory: its files into `out`, its subdirectories returned to be
    /// walked (when recursive) or recorded (when not).
    fn list(&self, job: DirJob, out: &mut WalkResult) -> Vec<DirJob> {
        let fd = match self.tree.open_dir(&job.path) {
            Ok(fd) => fd,
            // Gone, or a symlink now: it holds nothing of ours.
            Err(error) if contain::is_absent(&error) => return Vec::new(),
            Err(error) => {
                self.unreadable(out, &job.path, &error);
                return Vec::new();
            }
        };
        // Its stat is taken before it is listed, so a change made while or after it is
        // listed gives it a stat other than the one recorded.
        let stat = match rustix::fs::fstat(&fd) {
            Ok(stat) => FileStat::from_stat(&stat),
            Err(error) => {
                self.unreadable(out, &job.path, &error.into());
                return Vec::new();
            }
        };
        let here = ListedDir {
            path: job.path.clone(),
            stat,
        };
        // Like git, do not enter a nested repository or worktree.
        if !job.path.as_bytes().is_empty() && contain::has_dot_git(fd.as_fd()) {
            out.nested.push(here);
            return Vec::new();
        }
        let (rules, sources) = DirRules::read(fd.as_fd(), &self.tree.display_path(&job.path));
        out.ignore_files.extend(sources);
        out.dirs.push(job.path.clone());
        out.listed.push(here);
        let rules = RuleChain::push(&job.rules, rules);
        let entries = match read_names(fd) {
            Ok(entries) => entries,
            Err(error) => {
                self.unreadable(out, &job.path, &error);
                return Vec::new();
            }
        };
        let (dir, names) = entries;
        let fd = dir.fd().map_err(std::io::Error::from);
        let fd = match fd {
            Ok(fd) => fd,
            Err(error) => {
                self.unreadable(out, &job.path, &error);
                return Vec::new();
            }
        };
        let mut below = Vec::new();
        let mut full = self
            .tree
            .display_path(&job.path)
            .into_os_string()
            .into_vec();
        let base_len = full.len();
        for (name, file_type) in names {
            if name == b".git" || name == INDEX_DIR_NAME.as_bytes() {
                continue;
            }
            let path = join(&job.path, &name);
            full.truncate(base_len);
            full.push(b'/');
            full.extend_from_slice(&name);
            let full_path = Path::new(std::ffi::OsStr::from_bytes(&full));
            let (is_dir, known) = match file_type {
                FileType::Directory => (true, None),
                FileType::RegularFile => (false, None),
                FileType::Unknown => match contain::lstat_at(fd.as_fd(), &name) {
                    Ok((EntryKind::Dir, _)) => (true, None),
                    Ok((EntryKind::File, stat)) => (false, Some(stat)),
                    _ => continue,
                },
                // Symlinks are not followed; FIFOs, sockets and devices are not files.
                _ => continue,
            };
            if rules.is_ignored(&self.globals, full_path, is_dir) {
                continue;
            }
            if is_dir {
                if self.recursive {
                    below.push(DirJob {
                        path,
                        rules: Arc::clone(&rules),
                    });
                } else {
                    self.record_subdir(fd.as_fd(), &name, path, out);
                }
                continue;
            }
            let stat = match known {
                Some(stat) => Ok((EntryKind::File, stat)),
                None => contain::lstat_at(fd.as_fd(), &name),
            };
            match stat {
                Ok((EntryKind::File, stat)) => out.files.push(WalkedFile { path, stat }),
                Ok(_) => {}
                // Deleted between the listing and the stat: it is simply not there.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => self.unreadable(out, &path, &error),
            }
        }
        below
    }

    /// A subdirectory met by a one-directory listing: its name, or it as a nested
    /// repository with its stat.
    fn record_subdir(&self, dir: BorrowedFd<'_>, name: &[u8], path: RelPath, out: &mut WalkResult) {
        let Ok(child) = contain::open_child(dir, name, OFlags::DIRECTORY | PATH_ONLY) else {
            return;
        };
        if contain::has_dot_git(child.as_fd()) {
            if let Ok(stat) = rustix::fs::fstat(&child) {
                out.nested.push(ListedDir {
                    path,
                    stat: FileStat::from_stat(&stat),
                });
            }
        } else {
            out.dirs.push(path);
        }
    }
}

/// Opened only to look inside, never to read.
#[cfg(target_os = "linux")]
const PATH_ONLY: OFlags = OFlags::PATH;
#[cfg(not(target_os = "linux"))]
const PATH_ONLY: OFlags = OFlags::RDONLY;

/// The names in an open directory (without `.` and `..`) with their types as the
/// directory entry gives them; the directory comes back for stats relative to it.
#[allow(clippy::type_complexity)]
fn read_names(fd: OwnedFd) -> std::io::Result<(rustix::fs::Dir, Vec<(Vec<u8>, FileType)>)> {
    let mut dir = rustix::fs::Dir::new(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push((name.to_vec(), entry.file_type()));
    }
    Ok((dir, names))
}

/// `name` below `dir`.
fn join(dir: &RelPath, name: &[u8]) -> RelPath {
    let parent = dir.as_bytes();
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        path.extend_from_slice(parent);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    RelPath::from_bytes(path)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
/// A file as read from disk: its stat taken from the open descriptor after reading,
/// so stat and content describe the same version as closely as the OS allows.
#[derive(Debug)]
pub struct LoadedFile {
    pub path: RelPath,
    pub stat: FileStat,
    pub sha256: Option<[u8; 32]>,
    pub skipped: Option<Skip>,
    pub content: Vec<u8>,
    pub indexed_at_ns: i64,
}

/// Reads and hashes one file, through the tree. `None` when it vanished since the walk
/// or is no longer a regular file reached without a symlink.
pub fn load(tree: &Tree, walked: &WalkedFile) -> Option<LoadedFile> {
    let unreadable = |stat| LoadedFile {
        path: walked.path.clone(),
        stat,
        sha256: None,
        skipped: Some(Skip::Unreadable),
        content: Vec::new(),
        indexed_at_ns: now_ns(),
    };
    let read = match tree.read_file(&walked.path, MAX_FILE_BYTES) {
        Ok(read) => read,
        Err(error) if contain::is_absent(&error) => return None,
        // A FIFO, socket or device swapped in since the walk: not a file of ours.
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => return None,
        Err(_) => return Some(unreadable(walked.stat)),
    };
    let indexed_at_ns = now_ns();
    let Some(content) = read.content else {
        return Some(LoadedFile {
            path: walked.path.clone(),
            stat: read.stat,
            sha256: None,
            skipped: Some(Skip::TooLarge),
            content: Vec::new(),
            indexed_at_ns,
        });
    };
    let sha256: [u8; 32] = Sha256::digest(&content).into();
    let binary = content[..content.len().min(BINARY_SNIFF_BYTES)].contains(&0);
    Some(LoadedFile {
        path: walked.path.clone(),
        stat: read.stat,
        sha256: Some(sha256),
        skipped: binary.then_some(Skip::Binary),
        content: if binary { Vec::new() } else { content },
        indexed_at_ns,
    })
}

/// Everything the index stores about one file.
#[derive(Debug)]
pub struct IndexedFile {
    pub path: RelPath,
    pub stat: FileStat,
    pub sha256: Option<[u8; 32]>,
    pub language: Option<Lang>,
    pub lines: u32,
    pub symbols: Vec<Symbol>,
    pub skipped: Option<Skip>,
    pub indexed_at_ns: i64,
}

/// Detects the language, counts lines and extracts symbols of a loaded file.
pub fn analyze(loaded: LoadedFile, extractor: &mut SymbolExtractor) -> IndexedFile {
    let text = loaded.skipped.is_none();
    let language =
        text.then(|| Lang::detect_with_content(loaded.path.file_name(), &loaded.content));
    let content = &loaded.content;
    let lines = if content.is_empty() {
        0
    } else {
        content.iter().filter(|&&b| b == b'\n').count() as u32
            + u32::from(content.last() != Some(&b'\n'))
    };
    let symbols = match language {
        Some(lang) if lang.has_symbols() => extractor.extract(lang, content),
        _ => Vec::new(),
    };
    IndexedFile {
        path: loaded.path,
        stat: loaded.stat,
        sha256: loaded.sha256,
        language,
        lines,
        symbols,
        skipped: loaded.skipped,
        indexed_at_ns: loaded.indexed_at_ns,
    }
}

/// `f` over consecutive parts of `items` on all cores, the results in order.
fn parallel_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let threads = worker_count().min(items.len() / 256 + 1);
    if threads <= 1 {
        return f(items);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// What `lstat` says of a path the walk knew as a file: `Ok(None)` when it is there but
/// no longer a regular file.
pub type FileProbe = std::io::Result<Option<FileStat>>;

/// `lstat`s many files under the tree, given in path order: each directory is opened
/// once (through the tree, relative to its parent, the walk being depth-first) and its
/// files stat'ed by name, so the kernel resolves one path component per file instead of
/// the whole path (most of a stat's cost in a deep tree).
pub fn stat_files(tree: &Tree, paths: &[&RelPath]) -> Vec<FileProbe> {
    parallel_chunks(paths, |part| {
        let mut dirs = OpenDirs::default();
        let probe = |path: &&RelPath| match dirs.lstat(tree, path)? {
            (EntryKind::File, stat) => Ok(Some(stat)),
            _ => Ok(None),
        };
        part.iter().map(probe).collect()
    })
}

/// The stats of many directories, given in path order (the root, the empty path, is
/// one), as [`stat_files`] takes them: `None` for one that is gone or is no longer a
/// directory reached without a symlink.
pub fn stat_dirs(tree: &Tree, paths: &[&RelPath]) -> Vec<Option<FileStat>> {
    parallel_chunks(paths, |part| {
        let mut dirs = OpenDirs::default();
        let probe = |path: &&RelPath| match dirs.lstat(tree, path) {
            Ok((EntryKind::Dir, stat)) => Some(stat),
            _ => None,
        };
        part.iter().map(probe).collect()
    })
}

/// The directories from the root down to the one [`stat_files`] is in, each open.
#[derive(Default)]
struct OpenDirs {
    stack: Vec<(Vec<u8>, std::io::Result<OwnedFd>)>,
}

impl OpenDirs {
    fn lstat(&mut self, tree: &Tree, path: &RelPath) -> std::io::Result<(EntryKind, FileStat)> {
        let bytes = path.as_bytes();
        if bytes.is_empty() {
            let stat = rustix::fs::fstat(tree.root_fd())?;
            return Ok((EntryKind::Dir, FileStat::from_stat(&stat)));
        }
        let (dir, name) = match bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (&b""[..], bytes),
        };
        // Leave the directories that do not hold this one.
        while let Some((open, _)) = self.stack.last() {
            let holds = open.is_empty()
                || dir == open.as_slice()
                || (dir.starts_with(open) && dir.get(open.len()) == Some(&b'/'));
            if holds {
                break;
            }
            self.stack.pop();
        }
        if self.stack.is_empty() {
            let opened = contain::open_beneath(tree.root_fd(), b"", PATH_ONLY | OFlags::DIRECTORY);
            self.stack.push((Vec::new(), opened));
        }
        if let Some((open, parent)) = self.stack.last()
            && open.as_slice() != dir
        {
            let rest = if open.is_empty() {
                dir
            } else {
                &dir[open.len() + 1..]
            };
            let opened = match parent {
                Ok(parent) => contain::open_beneath(
                    parent.as_fd(),
                    rest,
                    PATH_ONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                ),
                Err(error) => Err(std::io::Error::from(error.kind())),
            };
            self.stack.push((dir.to_vec(), opened));
        }
        let fd = match self.stack.last() {
            Some((_, Ok(fd))) => fd,
            Some((_, Err(error))) => {
                return Err(match error.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::from(error.kind()),
                });
            }
            None => unreachable!("the root is pushed above"),
        };
        contain::lstat_at(fd.as_fd(), name)
    }
}

pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `work` over `jobs` on all cores, each worker with its own [`SymbolExtractor`],
/// and hands every output to `sink` on the calling thread (where the single SQLite
/// writer lives) as soon as it is ready. Returns the first error of `sink`, after which
/// the remaining jobs are abandoned.
pub fn run_parallel<J, O, E>(
    jobs: Vec<J>,
    work: impl Fn(&mut SymbolExtractor, &J) -> O + Sync,
    mut sink: impl FnMut(O) -> Result<(), E>,
) -> Result<(), E>
where
    J: Sync,
    O: Send,
{
    // Outputs travel in small batches: one wake-up of the sink per file would cost a
    // context switch per file (with two cores, the sink shares one with a worker).
    const BATCH: usize = 16;
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<O>>(256 / BATCH);
    std::thread::scope(|scope| {
        for _ in 0..worker_count().min(jobs.len().max(1)) {
            let tx = tx.clone();
            let (jobs, work, next, stop) = (&jobs, &work, &next, &stop);
            scope.spawn(move || {
                let mut extractor = SymbolExtractor::new();
                let mut batch = Vec::with_capacity(BATCH);
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    batch.push(work(&mut extractor, job));
                    if batch.len() == BATCH
                        && tx
                            .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                            .is_err()
                    {
                        return;
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
            });
        }
        drop(tx);
        let mut outcome = Ok(());
        for output in rx.iter().flatten() {
            if outcome.is_ok() {
                outcome = sink(output);
                if outcome.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_parallel_delivers_every_output_once() {
        let jobs: Vec<u32> = (0..1000).collect();
        let mut seen = Vec::new();
        run_parallel(
            jobs,
            |_, j| *j * 2,
            |o| -> Result<(), ()> {
                seen.push(o);
                Ok(())
            },
        )
        .unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).map(|j| j * 2).collect::<Vec<_>>());
    }

    #[test]
    fn run_parallel_stops_on_sink_error() {
        let jobs: Vec<u32> = (0..10_000).collect();
        let mut taken = 0;
        let result = run_parallel(
            jobs,
            |_, j| *j,
            |_| {
                taken += 1;
                if taken == 3 { Err("full disk") } else { Ok(()) }
            },
        );
        assert_eq!(result, Err("full disk"));
    }
}
