//! Containment: the one way into the project's files.
//!
//! Every file the engine reads, every directory it lists and every stat it takes under
//! the project root goes through a [`Tree`]: paths are resolved *beneath the root's
//! directory descriptor*, refusing every symlink on the way, and the descriptor that was
//! checked is the one that is read. A tracked directory turned into a symlink by a
//! checkout (`docs -> ~/.ssh`), a parent swapped for one in a race, `..`, a symlink to
//! `/` or a loop: each makes the open fail, so nothing outside the project is ever
//! indexed, read or served.
//!
//! On Linux ≥ 5.6 this is one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` call;
//! elsewhere (and where `openat2` is missing or filtered) it is a walk of
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, one component at a time, from the root's
//! descriptor. Both refuse the same paths, with `ELOOP` or `ENOTDIR` for a symlink.
//!
//! Path-based `std::fs` calls that follow links are disallowed in the engine by
//! `clippy.toml`; the few places that read outside the project (git's own files, the
//! index under `.codelens/`, per-user state) say so where they opt out.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::RelPath;
use super::scan::FileStat;

/// The project root, held open: every path below it is resolved from this descriptor.
#[derive(Debug, Clone)]
pub struct Tree {
    root: PathBuf,
    fd: Arc<OwnedFd>,
}

/// What a path below the root is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// A regular file read through the tree, with the stat of the very descriptor read.
#[derive(Debug)]
pub struct ReadFile {
    pub stat: FileStat,
    /// `None` when the file is larger than the cap it was read with.
    pub content: Option<Vec<u8>>,
}

impl Tree {
    /// Opens the project root. The root itself is trusted (it was canonicalised when the
    /// project was found); everything below it is not.
    pub fn open(root: &Path) -> io::Result<Tree> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree {
            root: root.to_path_buf(),
            fd: Arc::new(fd),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root's own descriptor.
    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the directory `rel` (the root for the empty path) for listing.
    pub fn open_dir(&self, rel: &RelPath) -> io::Result<OwnedFd> {
        open_beneath(self.root_fd(), rel.as_bytes(), DIR_FLAGS)
    }

    /// Opens the regular file `rel` for reading. A symlink, a directory, a FIFO or a
    /// device is refused (a FIFO is opened non-blocking so that refusing it never hangs).
    pub fn open_file(&self, rel: &RelPath) -> io::Result<(File, FileStat)> {
        let fd = open_beneath(self.root_fd(), rel.as_bytes(), FILE_FLAGS)?;
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_regular_file());
        }
        // Reads of a regular file never block; clearing O_NONBLOCK keeps `read` plain.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok((File::from(fd), FileStat::from_stat(&stat)))
    }

    /// Reads the regular file `rel`, at most `max_bytes` of it (a larger file gives no
    /// content, and is never read past the cap even while it grows).
    pub fn read_file(&self, rel: &RelPath, max_bytes: u64) -> io::Result<ReadFile> {
        let (file, stat) = self.open_file(rel)?;
        read_open_file(file, stat, max_bytes)
    }

    /// What `rel` is, not following a symlink in its last component (nor anywhere before
    /// it: a path through a symlinked directory is `ELOOP`/`ENOTDIR`, as if absent).
    pub fn lstat(&self, rel: &RelPath) -> io::Result<(EntryKind, FileStat)> {
        let (dir, name) = split_parent(rel.as_bytes());
        if name.is_empty() {
            let stat = rustix::fs::fstat(self.root_fd())?;
            return Ok((EntryKind::Dir, FileStat::from_stat(&stat)));
        }
        let parent = open_beneath(self.root_fd(), dir, PATH_DIR_FLAGS)?;
        lstat_at(parent.as_fd(), name)
    }

    /// The stat of the regular file `rel`: `Ok(None)` when it is there but not a regular
    /// file (a directory, a symlink …).
    pub fn file_stat(&self, rel: &RelPath) -> io::Result<Option<FileStat>> {
        let (kind, stat) = self.lstat(rel)?;
        Ok((kind == EntryKind::File).then_some(stat))
    }

    /// The stat of the directory `rel`, when it is one (reached without a symlink).
    pub fn dir_stat(&self, rel: &RelPath) -> Option<FileStat> {
        let fd = open_beneath(self.root_fd(), rel.as_bytes(), PATH_DIR_FLAGS).ok()?;
        rustix::fs::fstat(&fd).ok().map(|s| FileStat::from_stat(&s))
    }

    /// Whether anything (a file, a directory, a symlink) is at `rel`.
    pub fn exists(&self, rel: &RelPath) -> bool {
        self.lstat(rel).is_ok()
    }

    /// Whether the directory `rel` holds a `.git` of any kind: a nested repository or
    /// worktree (below the root), which the index does not enter.
    pub fn is_repository_root(&self, rel: &RelPath) -> bool {
        open_beneath(self.root_fd(), rel.as_bytes(), PATH_DIR_FLAGS)
            .is_ok_and(|dir| has_dot_git(dir.as_fd()))
    }

    /// Why the root is no longer the directory this tree was opened on, if it is not:
    /// deleted (the directory held open has no link left), or renamed or replaced (its
    /// path names another directory, or nothing). The path is looked up by name on
    /// purpose: the name is what a watcher's events and every front end rely on.
    pub fn root_displaced(&self) -> Option<String> {
        let held = rustix::fs::fstat(self.root_fd()).ok()?;
        let root = self.root.display();
        if held.st_nlink == 0 {
            return Some(format!("the project root {root} was deleted"));
        }
        match rustix::fs::stat(&self.root) {
            Ok(now) if now.st_dev == held.st_dev && now.st_ino == held.st_ino => None,
            Ok(_) => Some(format!(
                "the project root {root} was renamed or replaced: another directory has its name now"
            )),
            Err(_) => Some(format!(
                "the project root {root} was renamed or deleted: nothing has its name now"
            )),
        }
    }

    /// The absolute path of `rel`, for messages and ignore-rule matching only: never
    /// for opening.
    pub fn display_path(&self, rel: &RelPath) -> PathBuf {
        rel.to_path(&self.root)
    }

    /// `path` (absolute) as a path below the root, or `None` when it is not below it.
    pub fn relative(&self, path: &Path) -> Option<RelPath> {
        RelPath::from_path(&self.root, path)
    }
}

/// Reads an open regular file up to `max_bytes`, taking its stat again after reading so
/// that stat and content describe the same version as closely as the OS allows.
pub fn read_open_file(mut file: File, stat: FileStat, max_bytes: u64) -> io::Result<ReadFile> {
    if stat.size > max_bytes {
        return Ok(ReadFile {
            stat,
            content: None,
        });
    }
    let mut content = Vec::with_capacity(stat.size as usize + 1);
    // Read at most one byte past the cap: a file growing while we read stays bounded.
    (&mut file).take(max_bytes + 1).read_to_end(&mut content)?;
    let stat = rustix::fs::fstat(&file).map_or(stat, |s| FileStat::from_stat(&s));
    let content = (content.len() as u64 <= max_bytes).then_some(content);
    Ok(ReadFile { stat, content })
}

/// The directory flags for listing: readable, never a symlink.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// A directory opened only to resolve names under it or to stat it.
#[cfg(target_os = "linux")]
const PATH_DIR_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
#[cfg(not(target_os = "linux"))]
const PATH_DIR_FLAGS: OFlags = DIR_FLAGS;
/// A file to read: never a symlink, and never blocking on a FIFO swapped in.
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

fn not_a_regular_file() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Whether an error means "there is no such entry here, reached without a symlink": the
/// entry is gone, or a component is a symlink or not a directory. Callers treat all of
/// these as absent — a symlink is never followed, so what lies behind it is not ours.
pub fn is_absent(error: &io::Error) -> bool {
    use rustix::io::Errno;
    if error.kind() == io::ErrorKind::NotFound {
        return true;
    }
    let errno = error.raw_os_error().map(Errno::from_raw_os_error);
    matches!(errno, Some(Errno::LOOP | Errno::NOTDIR | Errno::XDEV))
}

/// The directory part and the last component of a relative path.
fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b""[..], path),
    }
}

/// `lstat` of one name in an open directory.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<(EntryKind, FileStat)> {
    let stat = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Ok((kind, FileStat::from_stat(&stat)))
}

/// Whether the open directory holds a `.git` of any kind (even a dangling link).
pub fn has_dot_git(dir: BorrowedFd<'_>) -> bool {
    rustix::fs::statat(dir, ".git", AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// Opens one name inside an open directory, never following a symlink there.
pub fn open_child(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    if !is_plain_name(name) {
        return Err(invalid_path());
    }
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn is_plain_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

fn invalid_path() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a plain relative path (empty component, `.` or `..`)",
    )
}

/// Opens `rel` (relative, `/`-separated; empty for `base` itself) beneath `base`,
/// refusing `..`, `.`, empty components and every symlink on the way.
pub fn open_beneath(base: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    if rel.is_empty() {
        return Ok(rustix::fs::openat(
            base,
            ".",
            flags & !OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
    }
    if !rel.split(|&b| b == b'/').all(is_plain_name) {
        return Err(invalid_path());
    }
    #[cfg(target_os = "linux")]
    if let Some(result) = openat2_beneath(base, rel, flags) {
        return result;
    }
    walk_beneath(base, rel, flags)
}

/// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or `None` where the kernel
/// lacks it (ENOSYS before 5.6, EPERM under some seccomp filters): then the caller
/// walks. Whether it works is learned once per process.
#[cfg(target_os = "linux")]
fn openat2_beneath(base: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> Option<io::Result<OwnedFd>> {
    use rustix::fs::ResolveFlags;
    use rustix::io::Errno;
    use std::sync::atomic::{AtomicU8, Ordering};
    const UNKNOWN: u8 = 0;
    const WORKS: u8 = 1;
    const MISSING: u8 = 2;
    static OPENAT2: AtomicU8 = AtomicU8::new(UNKNOWN);
    if OPENAT2.load(Ordering::Relaxed) == MISSING || force_walk() {
        return None;
    }
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: a rename somewhere on the file system raced the lookup; try again.
    for _ in 0..8 {
        match rustix::fs::openat2(
            base,
            OsStr::from_bytes(rel),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        ) {
            Err(Errno::AGAIN) => continue,
            Err(Errno::NOSYS | Errno::PERM) if OPENAT2.load(Ordering::Relaxed) == UNKNOWN => {
                OPENAT2.store(MISSING, Ordering::Relaxed);
                return None;
            }
            result => {
                OPENAT2.store(WORKS, Ordering::Relaxed);
                return Some(result.map_err(Into::into));
            }
        }
    }
    // Still racing renames: the component walk is immune to that.
    None
}

/// Tests force the component walk to check it against `openat2` on the same trees.
#[cfg(target_os = "linux")]
fn force_walk() -> bool {
    #[cfg(test)]
    {
        FORCE_WALK.with(|f| f.get())
    }
    #[cfg(not(test))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
thread_local! {
    static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The portable way: one `openat(O_NOFOLLOW)` per component, each a directory.
fn walk_beneath(base: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let (dirs, name) = split_parent(rel);
    let mut current: Option<OwnedFd> = None;
    if !dirs.is_empty() {
        for component in dirs.split(|&b| b == b'/') {
            let at = current.as_ref().map_or(base, |fd| fd.as_fd());
            current = Some(open_child(at, component, PATH_DIR_FLAGS)?);
        }
    }
    let at = current.as_ref().map_or(base, |fd| fd.as_fd());
    open_child(at, name, flags)
}

impl FileStat {
    /// From a raw `stat`, computed exactly as [`FileStat::from_metadata`] does, so the
    /// two always compare equal.
    pub fn from_stat(stat: &rustix::fs::Stat) -> FileStat {
        let ns = |secs: i64, nsecs: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsecs);
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        FileStat {
            size: stat.st_size as u64,
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
            inode: stat.st_ino as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rel(path: &str) -> RelPath {
        RelPath::from_bytes(path.as_bytes().to_vec())
    }

    /// A project `root/` beside an `outside/` holding a secret, with symlinks of every
    /// kind into it.
    fn fixture() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "PRIVATE KEY").unwrap();
        std::fs::write(root.join("a/b/c/inside.txt"), "inside").unwrap();
        symlink(&outside, root.join("linked")).unwrap();
        symlink(outside.join("secret.txt"), root.join("a/file-link")).unwrap();
        symlink("/", root.join("slash")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("../../outside", root.join("a/relative")).unwrap();
        symlink("not-yet", root.join("dangling")).unwrap();
        let tree = Tree::open(&root).unwrap();
        (dir, tree)
    }

    fn each_resolver(test: impl Fn()) {
        test();
        #[cfg(target_os = "linux")]
        {
            FORCE_WALK.with(|f| f.set(true));
            test();
            FORCE_WALK.with(|f| f.set(false));
        }
    }

    #[test]
    fn files_inside_are_read_and_nothing_through_a_symlink_is() {
        let (dir, tree) = fixture();
        each_resolver(|| {
            let read = tree.read_file(&rel("a/b/c/inside.txt"), 100).unwrap();
            assert_eq!(read.content.as_deref(), Some(&b"inside"[..]));
            for path in [
                "linked/secret.txt",
                "a/file-link",
                "slash/etc/hostname",
                "loop",
                "loop/x",
                "a/relative/secret.txt",
                "dangling",
                "../outside/secret.txt",
                "a/../../outside/secret.txt",
                "a/./b/c/inside.txt",
                "a//b/c/inside.txt",
                "/etc/hostname",
            ] {
                let error = tree.read_file(&rel(path), 100).unwrap_err();
                assert!(
                    is_absent(&error) || error.kind() == io::ErrorKind::InvalidInput,
                    "{path}: {error}"
                );
                assert!(
                    tree.file_stat(&rel(path)).map_or(true, |s| s.is_none()),
                    "{path}"
                );
            }
            assert!(tree.open_dir(&rel("linked")).is_err());
            assert!(tree.dir_stat(&rel("slash")).is_none());
            assert!(tree.dir_stat(&rel("a/b")).is_some());
        });
        // The dangling link's target appears: still a symlink, still refused.
        std::fs::write(dir.path().join("root/not-yet"), "now").unwrap();
        each_resolver(|| assert!(tree.read_file(&rel("dangling"), 100).is_err()));
    }

    #[test]
    fn a_parent_swapped_for_a_symlink_at_any_depth_is_refused() {
        let (dir, tree) = fixture();
        let root = dir.path().join("root");
        for swapped in ["a", "a/b", "a/b/c"] {
            let real = root.join(swapped);
            let aside = root.join("aside");
            std::fs::rename(&real, &aside).unwrap();
            std::fs::create_dir_all(dir.path().join("outside/c")).unwrap();
            std::fs::write(dir.path().join("outside/c/inside.txt"), "OUTSIDE").unwrap();
            std::fs::write(dir.path().join("outside/b/c/inside.txt"), "OUTSIDE")
                .or_else(|_| {
                    std::fs::create_dir_all(dir.path().join("outside/b/c"))?;
                    std::fs::write(dir.path().join("outside/b/c/inside.txt"), "OUTSIDE")
                })
                .unwrap();
            symlink(dir.path().join("outside"), &real).unwrap();
            each_resolver(|| {
                let read = tree.read_file(&rel("a/b/c/inside.txt"), 100);
                assert!(read.is_err(), "{swapped} swapped: {read:?}");
                assert!(tree.lstat(&rel("a/b/c/inside.txt")).is_err(), "{swapped}");
            });
            std::fs::remove_file(&real).unwrap();
            std::fs::rename(&aside, &real).unwrap();
        }
    }

    #[test]
    fn hard_links_and_fifos() {
        let (dir, tree) = fixture();
        let root = dir.path().join("root");
        std::fs::hard_link(root.join("a/b/c/inside.txt"), root.join("hard.txt")).unwrap();
        assert_eq!(
            tree.read_file(&rel("hard.txt"), 100)
                .unwrap()
                .content
                .as_deref(),
            Some(&b"inside"[..])
        );
        let fifo = root.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Refused at once, never blocking on a writer that never comes.
        assert!(tree.read_file(&rel("fifo"), 100).is_err());
        assert_eq!(tree.lstat(&rel("fifo")).unwrap().0, EntryKind::Other);
        assert_eq!(tree.lstat(&rel("slash")).unwrap().0, EntryKind::Symlink);
    }

    #[test]
    fn the_size_cap_holds() {
        let (dir, tree) = fixture();
        std::fs::write(dir.path().join("root/big"), vec![b'x'; 50]).unwrap();
        let read = tree.read_file(&rel("big"), 10).unwrap();
        assert!(read.content.is_none());
        assert_eq!(read.stat.size, 50);
    }
}
