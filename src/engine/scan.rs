//! Walking the working tree and reading files: stat, SHA-256, language, lines, symbols.
//!
//! What is indexed: every file the `ignore` crate yields (it honours `.gitignore`,
//! `.ignore`, `.codelensignore`, `.git/info/exclude` and the global git excludes), hidden
//! files included, symlinks not followed. Never entered: `.git`, `.codelens`, and nested
//! repositories or worktrees (a directory with its own `.git`), as git itself does.
//! Files over [`MAX_FILE_BYTES`] and binary files (a NUL byte in the first 8,000 bytes,
//! git's rule) are recorded with their stat and a `skipped` reason but not parsed.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ignore::{WalkBuilder, WalkState};
use sha2::{Digest, Sha256};

use super::lang::Lang;
use super::symbols::{Symbol, SymbolExtractor};
use super::{RelPath, now_ns};

/// Files larger than this are recorded but neither hashed nor parsed.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// How far into a file git (and we) look for a NUL byte to call it binary.
const BINARY_SNIFF_BYTES: usize = 8000;
/// The name of the per-project index directory.
pub const INDEX_DIR_NAME: &str = ".codelens";
/// The per-directory files whose rules the walk honours.
pub const IGNORE_FILE_NAMES: [&str; 3] = [".gitignore", ".ignore", ".codelensignore"];

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

impl IgnoreSource {
    pub fn read(path: PathBuf) -> IgnoreSource {
        let stat = path
            .symlink_metadata()
            .ok()
            .map(|m| FileStat::from_metadata(&m));
        IgnoreSource { path, stat }
    }
}

/// The ignore files present in `dir`.
pub fn probe_ignore_files(dir: &Path) -> impl Iterator<Item = IgnoreSource> {
    IGNORE_FILE_NAMES
        .iter()
        .map(|name| IgnoreSource::read(dir.join(name)))
        .filter(|source| source.stat.is_some())
}

/// What the walk's entry filter records about directories, before they are listed.
#[derive(Default)]
struct DirsSeen {
    listed: Vec<ListedDir>,
    nested: Vec<ListedDir>,
    ignore_files: Vec<IgnoreSource>,
}

/// Whether `dir` holds a `.git` of any kind (directory, file, even a dangling link):
/// below the project root, such a directory is a nested repository or worktree, with
/// its own history (and maybe its own index), which the walk does not enter.
pub fn is_repository_root(dir: &Path) -> bool {
    dir.join(".git").symlink_metadata().is_ok()
}

/// The path an `ignore` error is about, if it names one.
fn error_path(error: &ignore::Error) -> Option<&Path> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

/// Walks the tree under `root` in parallel and stats every file.
pub fn walk(root: &Path) -> WalkResult {
    walk_scope(root, &RelPath::from_bytes(Vec::new()), true)
}

/// Walks `dir` (relative to `root`): all of it, or only its own files when not
/// `recursive`. The ignore rules of `dir`'s parents inside the project apply too.
pub fn walk_scope(root: &Path, dir: &RelPath, recursive: bool) -> WalkResult {
    let top = dir.to_path(root);
    let seen = Arc::new(Mutex::new(DirsSeen::default()));
    if let Ok(meta) = top.symlink_metadata()
        && meta.is_dir()
    {
        let mut seen = lock(&seen);
        seen.listed.push(ListedDir {
            path: dir.clone(),
            stat: FileStat::from_metadata(&meta),
        });
        seen.ignore_files.extend(probe_ignore_files(&top));
    }
    let mut builder = WalkBuilder::new(&top);
    builder
        .hidden(false)
        // A subdirectory needs the rules of the directories above it (up to the
        // project root, or the git root); the root itself needs nothing above it.
        .parents(!dir.as_bytes().is_empty())
        .max_depth((!recursive).then_some(1))
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(".codelensignore")
        .threads(worker_count())
        .filter_entry({
            let (seen, root) = (Arc::clone(&seen), root.to_path_buf());
            move |entry| {
                let name = entry.file_name();
                if name == ".git" || name == INDEX_DIR_NAME {
                    return false;
                }
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                if !is_dir || entry.depth() == 0 {
                    return true;
                }
                // The filter runs before the walker lists the directory: its stat and
                // ignore files are taken now, so a change made while or after it is
                // listed gives it a stat other than the one recorded.
                let stat = entry.path().symlink_metadata();
                // Like git, do not descend into a nested repository or worktree.
                let nested = is_repository_root(entry.path());
                if let (Ok(meta), Some(path)) = (stat, RelPath::from_path(&root, entry.path())) {
                    let dir = ListedDir {
                        path,
                        stat: FileStat::from_metadata(&meta),
                    };
                    if nested {
                        lock(&seen).nested.push(dir);
                    } else if recursive {
                        let ignore_files: Vec<IgnoreSource> =
                            probe_ignore_files(entry.path()).collect();
                        let mut seen = lock(&seen);
                        seen.listed.push(dir);
                        seen.ignore_files.extend(ignore_files);
                    }
                }
                !nested
            }
        });

    let shared = Mutex::new(WalkResult::default());
    if recursive {
        builder.build_parallel().visit(&mut WalkCollectorBuilder {
            root,
            shared: &shared,
        });
    } else {
        // One directory's entries: not worth starting threads for.
        let mut collector = WalkCollector {
            root,
            shared: &shared,
            local: WalkResult::default(),
        };
        for entry in builder.build() {
            ignore::ParallelVisitor::visit(&mut collector, entry);
        }
    }
    let mut result = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    result.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    // The walker (and with it the filter's clone) is gone: this is the last holder.
    let seen = std::mem::take(&mut *lock(&seen));
    result.listed = seen.listed;
    result.nested = seen.nested;
    result.ignore_files = seen.ignore_files;
    result
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct WalkCollectorBuilder<'a> {
    root: &'a Path,
    shared: &'a Mutex<WalkResult>,
}

impl<'s> ignore::ParallelVisitorBuilder<'s> for WalkCollectorBuilder<'s> {
    fn build(&mut self) -> Box<dyn ignore::ParallelVisitor + 's> {
        Box::new(WalkCollector {
            root: self.root,
            shared: self.shared,
            local: WalkResult::default(),
        })
    }
}

/// Collects into a thread-local result and merges it once, when the walker drops it.
struct WalkCollector<'a> {
    root: &'a Path,
    shared: &'a Mutex<WalkResult>,
    local: WalkResult,
}

impl ignore::ParallelVisitor for WalkCollector<'_> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                if let Some(path) =
                    error_path(&error).and_then(|p| RelPath::from_path(self.root, p))
                {
                    self.local.unreadable.push(path);
                }
                self.local.errors.push(error.to_string());
                return WalkState::Continue;
            }
        };
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            if let Some(path) = RelPath::from_path(self.root, entry.path()) {
                self.local.dirs.push(path);
            }
            return WalkState::Continue;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        match entry.path().symlink_metadata() {
            Ok(meta) => {
                if let Some(path) = RelPath::from_path(self.root, entry.path()) {
                    self.local.files.push(WalkedFile {
                        path,
                        stat: FileStat::from_metadata(&meta),
                    });
                }
            }
            // Deleted between readdir and stat: it is simply not there.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                if let Some(path) = RelPath::from_path(self.root, entry.path()) {
                    self.local.unreadable.push(path);
                }
                self.local
                    .errors
                    .push(format!("{}: {error}", entry.path().display()));
            }
        }
        WalkState::Continue
    }
}

impl Drop for WalkCollector<'_> {
    fn drop(&mut self) {
        let mut shared = lock(self.shared);
        shared.files.append(&mut self.local.files);
        shared.errors.append(&mut self.local.errors);
        shared.unreadable.append(&mut self.local.unreadable);
        shared.dirs.append(&mut self.local.dirs);
    }
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

/// Reads and hashes one file. `None` when it vanished since the walk.
pub fn load(root: &Path, walked: &WalkedFile) -> Option<LoadedFile> {
    let full: PathBuf = walked.path.to_path(root);
    let unreadable = |stat| LoadedFile {
        path: walked.path.clone(),
        stat,
        sha256: None,
        skipped: Some(Skip::Unreadable),
        content: Vec::new(),
        indexed_at_ns: now_ns(),
    };
    let mut file = match File::open(&full) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(_) => return Some(unreadable(walked.stat)),
    };
    let Ok(meta) = file.metadata() else {
        return Some(unreadable(walked.stat));
    };
    if !meta.is_file() {
        return None;
    }
    if meta.len() > MAX_FILE_BYTES {
        return Some(LoadedFile {
            path: walked.path.clone(),
            stat: FileStat::from_metadata(&meta),
            sha256: None,
            skipped: Some(Skip::TooLarge),
            content: Vec::new(),
            indexed_at_ns: now_ns(),
        });
    }
    let mut content = Vec::with_capacity(meta.len() as usize + 1);
    // Read at most one byte past the cap: a file growing while we read stays bounded.
    if (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut content)
        .is_err()
    {
        return Some(unreadable(walked.stat));
    }
    let stat = file
        .metadata()
        .map(|m| FileStat::from_metadata(&m))
        .unwrap_or(walked.stat);
    let indexed_at_ns = now_ns();
    if content.len() as u64 > MAX_FILE_BYTES {
        return Some(LoadedFile {
            path: walked.path.clone(),
            stat,
            sha256: None,
            skipped: Some(Skip::TooLarge),
            content: Vec::new(),
            indexed_at_ns,
        });
    }
    let sha256: [u8; 32] = Sha256::digest(&content).into();
    let binary = content[..content.len().min(BINARY_SNIFF_BYTES)].contains(&0);
    Some(LoadedFile {
        path: walked.path.clone(),
        stat,
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
    let language = text.then(|| Lang::detect(loaded.path.file_name()));
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

/// `f` over `items` on all cores, in order; small inputs stay on this thread.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parallel_chunks(items, |part| part.iter().map(&f).collect())
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

/// `lstat`s many files under `root`, given in path order: each directory is opened
/// once (relative to its parent, the walk being depth-first) and its files stat'ed by
/// name, so the kernel resolves one path component per file instead of the whole path
/// (most of a stat's cost in a deep tree).
pub fn stat_files(root: &Path, paths: &[&RelPath]) -> Vec<FileProbe> {
    parallel_chunks(paths, |part| {
        let mut dirs = OpenDirs::default();
        part.iter().map(|path| dirs.stat(root, path)).collect()
    })
}

/// The directories from the root down to the one [`stat_files`] is in, each open.
#[derive(Default)]
struct OpenDirs {
    #[cfg(unix)]
    stack: Vec<(Vec<u8>, std::io::Result<std::os::fd::OwnedFd>)>,
}

impl OpenDirs {
    #[cfg(unix)]
    fn stat(&mut self, root: &Path, path: &RelPath) -> FileProbe {
        use rustix::fs::{AtFlags, FileType, Mode, OFlags};
        let bytes = path.as_bytes();
        let (dir, name) = match bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (&b""[..], bytes),
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
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
            let opened = rustix::fs::open(root, flags, Mode::empty()).map_err(Into::into);
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
                Ok(parent) => {
                    rustix::fs::openat(parent, rest, flags, Mode::empty()).map_err(Into::into)
                }
                Err(error) => Err(std::io::Error::from(error.kind())),
            };
            self.stack.push((dir.to_vec(), opened));
        }
        let fd = match self.stack.last() {
            Some((_, Ok(fd))) => fd,
            Some((_, Err(error))) => return Err(std::io::Error::from(error.kind())),
            None => unreachable!("the root is pushed above"),
        };
        let stat = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        // As `FileStat::from_metadata` computes them, so the two always compare equal.
        let ns = |secs: i64, nsecs: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsecs);
        Ok(Some(FileStat {
            size: stat.st_size as u64,
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
            inode: stat.st_ino as u64,
        }))
    }

    #[cfg(not(unix))]
    fn stat(&mut self, root: &Path, path: &RelPath) -> FileProbe {
        let meta = path.to_path(root).symlink_metadata()?;
        Ok(meta.is_file().then(|| FileStat::from_metadata(&meta)))
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
