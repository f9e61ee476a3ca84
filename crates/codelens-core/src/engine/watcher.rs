//! Native file-system notifications, through `notify` (inotify on Linux, FSEvents on
//! macOS, ReadDirectoryChangesW on Windows), turned into the engine's few kinds of
//! change.
//!
//! One watch per directory that the index covers, never per file and never in ignored
//! trees (`node_modules/`, `target/` …), `.git/` or `.codelens/` (except the cookie
//! files the engine writes there to know it has seen every event up to a moment, and
//! the probe files other processes write there to ask the same). A kernel queue
//! overflow arrives from notify as an event with the Rescan flag and no paths: it is
//! passed on as [`FsChange::Rescan`], never dropped.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{CreateKind, EventKind, RemoveKind};
use notify::{RecursiveMode, Watcher};

use super::RelPath;
use super::contain::{EntryKind, Tree};
use super::project::PROBE_PREFIX;
#[cfg(doc)]
use super::project::Project;
use super::rules::{self, DirRules, GlobalRules, IGNORE_FILE_NAMES};
use super::scan::INDEX_DIR_NAME;

/// What the engine needs to know about one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsChange {
    /// A file in a watched directory was created, written, renamed or removed.
    File { path: RelPath, dir: RelPath },
    /// A directory appeared (created, or renamed into the tree): watch it and crawl it,
    /// since files may have been written before its watch existed.
    NewDir(RelPath),
    /// A watched directory went away (deleted, or renamed out of the tree).
    DirGone(RelPath),
    /// An ignore file changed: which files are indexed may differ anywhere.
    RulesChanged,
    /// The backend lost events (kernel queue overflow …): only a full reconcile is safe.
    Rescan,
    /// The engine's own cookie file number `n` was seen.
    Cookie(u64),
    /// Another process's probe file (named so) appeared under `.codelens/`: it waits for
    /// the writer to publish every event before it ([`Project::probe_writer`]).
    Probe(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Every covered directory is watched.
    Native,
    /// Some directories could not be watched (the watch limit); they are re-checked by
    /// periodic reconciliation.
    Degraded,
    /// No watcher: edits are found by catch-up, `codelens sync` or git hooks.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherStatus {
    pub mode: WatchMode,
    /// Why the watcher is off or degraded; what it is when native.
    pub reason: String,
    pub watched_dirs: usize,
    pub unwatched_dirs: usize,
    /// Full reconciliations forced by lost events.
    pub rescans: u64,
    pub debounce_ms: u64,
}

impl WatcherStatus {
    pub fn disabled(reason: impl Into<String>, debounce_ms: u64) -> WatcherStatus {
        WatcherStatus {
            mode: WatchMode::Disabled,
            reason: reason.into(),
            watched_dirs: 0,
            unwatched_dirs: 0,
            rescans: 0,
            debounce_ms,
        }
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            WatchMode::Native => "native",
            WatchMode::Degraded => "degraded",
            WatchMode::Disabled => "disabled",
        }
    }
}

/// Why the watcher should stay off for `root`, if it should: `CODELENS_NO_WATCH=1`, or
/// (unless `CODELENS_FORCE_WATCH=1`) a file system that delivers no reliable events.
pub fn disabled_reason(root: &Path, no_watch: bool, force_watch: bool) -> Option<String> {
    if no_watch {
        return Some("CODELENS_NO_WATCH=1".into());
    }
    if force_watch {
        return None;
    }
    let hooks = "run `codelens sync` after edits, or `codelens hooks install`";
    if is_wsl() && root.starts_with("/mnt/") {
        return Some(format!(
            "WSL2 Windows drive ({}): drvfs delivers no inotify events; {hooks} (CODELENS_FORCE_WATCH=1 to try anyway)",
            root.display()
        ));
    }
    if let Some(fs) = unreliable_file_system(root) {
        return Some(format!(
            "{fs} file system delivers no reliable change events; {hooks} (CODELENS_FORCE_WATCH=1 to try anyway)"
        ));
    }
    None
}

#[allow(clippy::disallowed_methods)] // a kernel file under /proc
fn is_wsl() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.to_ascii_lowercase().contains("microsoft"))
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
fn unreliable_file_system(root: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(root.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed out-parameter of the right type.
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    // Magic numbers from linux/magic.h (and FUSE's and CIFS's own headers).
    match stat.f_type as u64 {
        0x0102_1997 => Some("9p (WSL2 drvfs or a VM share)"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x517B => Some("SMB"),
        0x6969 => Some("NFS"),
        0x6573_5546 => Some("FUSE"),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn unreliable_file_system(_root: &Path) -> Option<&'static str> {
    None
}

/// The default cap on directory watches: half the kernel's per-user limit, leaving the
/// rest to editors and other tools.
#[allow(clippy::disallowed_methods)] // a kernel file under /proc
pub fn default_max_dir_watches() -> usize {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map_or(100_000, |limit| (limit / 2).max(1))
}

/// Files editors write and delete around a save; never content: vim's `4913` probe and
/// swap files, `*~` backups, emacs's `.#lock` and `#autosave#`, JetBrains's atomic-save
/// `___jb_tmp___` / `___jb_old___`.
fn is_editor_temp(name: &[u8]) -> bool {
    name == b"4913"
        || name.ends_with(b"~")
        || name.ends_with(b"___jb_tmp___")
        || name.ends_with(b"___jb_old___")
        || (name.len() > 1 && name.starts_with(b"#") && name.ends_with(b"#"))
        || name.ends_with(b".swp")
        || name.ends_with(b".swx")
        || name.ends_with(b".swo")
        || name.starts_with(b".#")
}

/// The ignore rules that decide whether an event's path is indexed: the walk's own
/// ([`rules`](super::rules)), each directory's read through the tree once and kept
/// until one of its ignore files changes.
struct IgnoreRules {
    tree: Tree,
    per_dir: HashMap<RelPath, Option<Arc<DirRules>>>,
    globals: GlobalRules,
}

impl IgnoreRules {
    fn new(tree: Tree) -> IgnoreRules {
        let globals = GlobalRules::load(tree.root());
        IgnoreRules {
            tree,
            per_dir: HashMap::new(),
            globals,
        }
    }

    fn forget(&mut self, dir: &RelPath) {
        self.per_dir.remove(dir);
    }

    fn rules_for(&mut self, dir: &RelPath) -> Option<Arc<DirRules>> {
        let tree = &self.tree;
        self.per_dir
            .entry(dir.clone())
            .or_insert_with(|| DirRules::read_in(tree, dir).map(Arc::new))
            .clone()
    }

    fn is_ignored(&mut self, rel: &RelPath, is_dir: bool) -> bool {
        let chain: Vec<Arc<DirRules>> = std::iter::successors(rel.parent(), RelPath::parent)
            .filter_map(|dir| self.rules_for(&dir))
            .collect();
        let path = self.tree.display_path(rel);
        rules::is_ignored(
            chain.iter().map(|r| r.as_ref()),
            &self.globals,
            &path,
            is_dir,
        )
    }
}

/// The watches of one project.
pub(crate) struct DirWatcher {
    inner: notify::RecommendedWatcher,
    root: PathBuf,
    /// Each watched directory with the inode it had when its watch was (re)armed: another
    /// inode under the same name means the kernel watch went with the old one.
    watched: HashMap<RelPath, u64>,
    /// Directories still to re-arm in the current round of [`DirWatcher::rearm_some`].
    rearm_queue: Vec<RelPath>,
    /// Directories left to stat in the current round of [`DirWatcher::rearm_some`].
    check_queue: Vec<RelPath>,
    cap: usize,
    /// Directories the cap or the kernel's limit kept unwatched.
    unwatched: HashSet<RelPath>,
    limit_reason: Option<String>,
    rules: IgnoreRules,
    cookie_prefix: String,
}

impl DirWatcher {
    /// Watches `.codelens/` (for cookies) and each of `dirs`, shallowest first, up to `cap`.
    pub fn start(
        tree: &Tree,
        dirs: &[RelPath],
        cap: usize,
        handler: impl notify::EventHandler,
    ) -> Result<DirWatcher, String> {
        let root = tree.root();
        let inner = notify::recommended_watcher(handler)
            .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        let mut watcher = DirWatcher {
            inner,
            root: root.to_path_buf(),
            watched: HashMap::new(),
            rearm_queue: Vec::new(),
            check_queue: Vec::new(),
            cap,
            unwatched: HashSet::new(),
            limit_reason: None,
            rules: IgnoreRules::new(tree.clone()),
            cookie_prefix: format!("cookie-{}-", std::process::id()),
        };
        watcher
            .inner
            .watch(&root.join(INDEX_DIR_NAME), RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", root.join(INDEX_DIR_NAME).display()))?;
        let mut ordered: Vec<&RelPath> = dirs.iter().collect();
        ordered.sort_by_key(|d| {
            (
                d.as_bytes().iter().filter(|&&b| b == b'/').count(),
                d.as_bytes().len(),
            )
        });
        for dir in ordered {
            watcher.watch_dir(dir);
        }
        Ok(watcher)
    }

    /// Adds (or renews) the watch on `dir`; false when the cap or the kernel's limit
    /// prevents it. Renewing matters: a directory deleted and recreated under the same
    /// name lost its kernel watch, though the path was watched a moment ago.
    pub fn watch_dir(&mut self, dir: &RelPath) -> bool {
        if !self.watched.contains_key(dir) && self.watched.len() >= self.cap {
            self.unwatched.insert(dir.clone());
            self.limit_reason = Some(format!("CODELENS_MAX_DIR_WATCHES ({}) reached", self.cap));
            return false;
        }
        let path = dir.to_path(&self.root);
        // The inode before the watch, taken through the tree: if the directory is
        // replaced in between, the next re-arm sees a different one and crawls it again
        // (never the other way round). One that is gone, or is a symlink now, is not
        // armed: the kernel would follow the link out of the project.
        let Some(inode) = self.inode_of(dir) else {
            self.watched.remove(dir);
            return false;
        };
        match self.inner.watch(&path, RecursiveMode::NonRecursive) {
            // Swapped for a symlink while the watch was armed: take it back. (Its events
            // would name only paths that are not files of the tree, which are dropped,
            // but a watch outside the project is not ours to hold.)
            Ok(()) if self.inode_of(dir).is_none() => {
                let _ = self.inner.unwatch(&path);
                self.watched.remove(dir);
                false
            }
            Ok(()) => {
                self.watched.insert(dir.clone(), inode);
                self.unwatched.remove(dir);
                if self.unwatched.is_empty() {
                    self.limit_reason = None;
                }
                true
            }
            Err(error) => {
                let limit = matches!(error.kind, notify::ErrorKind::MaxFilesWatch)
                    || matches!(&error.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(28));
                self.watched.remove(dir);
                if limit {
                    self.unwatched.insert(dir.clone());
                    self.limit_reason = Some(
                        "the kernel's inotify watch limit (fs.inotify.max_user_watches) reached"
                            .into(),
                    );
                }
                false
            }
        }
    }

    /// Makes the watch set match `dirs` (every directory the index covers now) after a
    /// full reconcile: the ones gone lose their watch, and every wanted one is armed
    /// again — not only those never watched. Events were lost (that is why a full
    /// reconcile runs): a directory deleted and recreated meanwhile is still in
    /// `watched` while its kernel watch went with the old inode. Returns the
    /// directories newly watched or found replaced, which the caller crawls again
    /// (files written there between the reconcile's walk and the new watch have no
    /// event).
    ///
    /// Cost: one `stat` and one `inotify_add_watch` (`IN_MASK_ADD` on an inode already
    /// watched: idempotent, no new watch) per directory — small beside the reconcile's
    /// walk and stat of every file that precedes it — except for `just_armed`: watched
    /// directories the caller knows to be the very ones whose watches were just armed
    /// (each arming is a round trip to notify's event-loop thread).
    pub fn sync_watches(&mut self, dirs: &[RelPath], just_armed: &[RelPath]) -> Vec<RelPath> {
        let just_armed: HashSet<&RelPath> = just_armed.iter().collect();
        let wanted: HashSet<&RelPath> = dirs.iter().collect();
        let stale: Vec<RelPath> = self
            .watched
            .keys()
            .filter(|d| !wanted.contains(d))
            .cloned()
            .collect();
        for dir in stale {
            let _ = self.inner.unwatch(&dir.to_path(&self.root));
            self.watched.remove(&dir);
        }
        self.unwatched.retain(|d| wanted.contains(d));
        let mut renewed = Vec::new();
        for dir in dirs {
            if just_armed.contains(dir) && self.watched.contains_key(dir) {
                continue;
            }
            if self.rearm(dir) {
                renewed.push(dir.clone());
            }
        }
        if self.unwatched.is_empty() {
            self.limit_reason = None;
        }
        renewed
    }

    /// Arms `dir`'s watch again; true when it was not watched, or was watched on an
    /// inode that is no longer the directory's (replaced: its old watch is gone).
    fn rearm(&mut self, dir: &RelPath) -> bool {
        let before = self.watched.get(dir).copied();
        let now = self.inode_of(dir);
        if now.is_none() && before.is_some() {
            // Gone: its own event (or the next reconcile) forgets it.
            return false;
        }
        let watched = self.watch_dir(dir);
        watched && (before.is_none() || before != now)
    }

    /// The safety net behind every event-driven watch change: re-arms up to `max`
    /// watched directories, continuing where the previous call stopped, so that a
    /// watch lost in a way no event reported (the backend dropping a watch by path in
    /// a burst of renames and re-creations) comes back within a few rounds. Returns the
    /// directories found replaced since their watch was armed: their files may have
    /// changed unseen and must be crawled.
    ///
    /// Two paces, since the costs differ tenfold: up to `max_checked` directories are
    /// stat'ed (a replaced directory shows a new inode: re-armed and reported), and up
    /// to `max_rearmed` are re-armed outright (a watch dropped on an unchanged inode).
    pub fn rearm_some(&mut self, max_checked: usize, max_rearmed: usize) -> Vec<RelPath> {
        let mut replaced = Vec::new();
        for queue in [Queue::Check, Queue::Rearm] {
            let (list, max) = match queue {
                Queue::Check => (&mut self.check_queue, max_checked),
                Queue::Rearm => (&mut self.rearm_queue, max_rearmed),
            };
            if list.is_empty() {
                *list = self.watched.keys().cloned().collect();
            }
            let take = max.min(list.len());
            let batch: Vec<RelPath> = list.split_off(list.len() - take);
            for dir in batch {
                let Some(&armed_on) = self.watched.get(&dir) else {
                    continue;
                };
                let found = match queue {
                    Queue::Check => {
                        let now = self.inode_of(&dir);
                        now.is_some_and(|ino| ino != armed_on) && self.watch_dir(&dir)
                    }
                    Queue::Rearm => self.rearm(&dir),
                };
                if found && !replaced.contains(&dir) {
                    replaced.push(dir);
                }
            }
        }
        replaced
    }

    /// Forgets the watches of `dir` and everything below it (the kernel already dropped
    /// them when the directory went away).
    pub fn forget_dir(&mut self, dir: &RelPath) {
        let gone: Vec<RelPath> = self
            .watched
            .keys()
            .filter(|d| d.is_within(dir))
            .cloned()
            .collect();
        for d in gone {
            let _ = self.inner.unwatch(&d.to_path(&self.root));
            self.watched.remove(&d);
        }
    }

    /// The directory's inode, through the tree; `None` when it is gone or is not a
    /// directory reached without a symlink.
    fn inode_of(&self, dir: &RelPath) -> Option<u64> {
        self.rules.tree.dir_stat(dir).map(|stat| stat.inode)
    }

    #[cfg(test)]
    pub fn is_watched(&self, dir: &RelPath) -> bool {
        self.watched.contains_key(dir)
    }

    pub fn status(&self, rescans: u64, debounce_ms: u64) -> WatcherStatus {
        let (mode, reason) = match &self.limit_reason {
            Some(reason) => (
                WatchMode::Degraded,
                format!(
                    "{reason}: {} directories are checked by a scan of the tree instead",
                    self.unwatched.len()
                ),
            ),
            None => (WatchMode::Native, native_backend().to_string()),
        };
        WatcherStatus {
            mode,
            reason,
            watched_dirs: self.watched.len(),
            unwatched_dirs: self.unwatched.len(),
            rescans,
            debounce_ms,
        }
    }

    /// What this process's cookie files are named with (then their number).
    pub fn cookie_prefix(&self) -> &str {
        &self.cookie_prefix
    }

    /// What one notification means for the index.
    pub fn classify(&mut self, event: &notify::Event) -> Vec<FsChange> {
        if event.need_rescan() {
            return vec![FsChange::Rescan];
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for path in &event.paths {
            if let Some(change) = self.classify_path(path, &event.kind)
                && !changes.contains(&change)
            {
                changes.push(change);
            }
        }
        changes
    }

    fn classify_path(&mut self, path: &Path, kind: &EventKind) -> Option<FsChange> {
        let rel = RelPath::from_path(&self.root, path)?;
        let bytes = rel.as_bytes();
        let first = bytes.split(|&b| b == b'/').next().unwrap_or_default();
        if first == b".git" {
            return None;
        }
        let name = rel.file_name();
        if first == INDEX_DIR_NAME.as_bytes() {
            let name = std::str::from_utf8(name).ok()?;
            // Its creation is the question; later events on it (its deletion) are not.
            if name.starts_with(PROBE_PREFIX) && matches!(kind, EventKind::Create(_)) {
                return Some(FsChange::Probe(name.to_string()));
            }
            return name
                .strip_prefix(&self.cookie_prefix)?
                .parse()
                .ok()
                .map(FsChange::Cookie);
        }
        if is_editor_temp(name) {
            return None;
        }
        if IGNORE_FILE_NAMES.iter().any(|f| f.as_bytes() == name) {
            if let Some(dir) = rel.parent() {
                self.rules.forget(&dir);
            }
            return Some(FsChange::RulesChanged);
        }
        // Through the tree: below a directory that is a symlink now, nothing is there.
        let metadata = self.rules.tree.lstat(&rel).ok().map(|(kind, _)| kind);
        // A watched directory that is no longer one — gone, or replaced by a symlink or
        // a file before this event was read — is gone for the index: its rows go.
        if self.watched.contains_key(&rel) && metadata.is_some_and(|k| k != EntryKind::Dir) {
            return Some(FsChange::DirGone(rel));
        }
        let is_dir = match kind {
            EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => true,
            _ => {
                metadata == Some(EntryKind::Dir)
                    || (metadata.is_none() && self.watched.contains_key(&rel))
            }
        };
        if is_dir {
            if metadata.is_none() {
                return self
                    .watched
                    .contains_key(&rel)
                    .then_some(FsChange::DirGone(rel));
            }
            // A nested repository is not ours, like in the walk.
            if metadata != Some(EntryKind::Dir)
                || self.rules.is_ignored(&rel, true)
                || self.rules.tree.is_repository_root(&rel)
            {
                return None;
            }
            return Some(FsChange::NewDir(rel));
        }
        if self.rules.is_ignored(&rel, false) {
            return None;
        }
        let dir = rel.parent()?;
        Some(FsChange::File { path: rel, dir })
    }
}

/// The two rounds of [`DirWatcher::rearm_some`].
#[derive(Clone, Copy)]
enum Queue {
    Check,
    Rearm,
}

fn native_backend() -> &'static str {
    if cfg!(target_os = "linux") {
        "inotify"
    } else if cfg!(target_os = "macos") {
        "FSEvents"
    } else if cfg!(target_os = "windows") {
        "ReadDirectoryChangesW"
    } else {
        "native"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_replaced_behind_the_watchers_back_is_found_by_the_heartbeat_check() {
        let root = tempfile::tempdir().expect("temp dir");
        let root = root.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join(INDEX_DIR_NAME)).unwrap();
        for dir in ["kept", "replaced"] {
            std::fs::create_dir(root.join(dir)).unwrap();
        }
        let dirs = [
            RelPath::from_bytes(b"kept".to_vec()),
            RelPath::from_bytes(b"replaced".to_vec()),
        ];
        // Events are ignored: this is what the check must catch without them.
        let tree = Tree::open(&root).unwrap();
        let mut watcher =
            DirWatcher::start(&tree, &dirs, 100, |_: notify::Result<notify::Event>| {})
                .expect("watcher");
        assert!(watcher.rearm_some(10, 0).is_empty(), "nothing replaced yet");
        std::fs::remove_dir(root.join("replaced")).unwrap();
        // Keep the old inode number from being reused at once by the new directory.
        std::fs::create_dir(root.join("placeholder")).unwrap();
        std::fs::create_dir(root.join("replaced")).unwrap();
        assert_eq!(watcher.rearm_some(10, 0), vec![dirs[1].clone()]);
        assert!(watcher.is_watched(&dirs[1]));
        // Re-armed on the new inode: the next check finds nothing.
        assert!(watcher.rearm_some(10, 10).is_empty());
    }

    #[test]
    fn editor_temp_files_are_recognised() {
        for name in [
            "4913",
            "main.rs~",
            ".main.rs.swp",
            ".x.swx",
            ".#lock",
            "#main.rs#",
            "a.ts___jb_tmp___",
        ] {
            assert!(is_editor_temp(name.as_bytes()), "{name}");
        }
        for name in ["main.rs", "swap.rs", "notes.md"] {
            assert!(!is_editor_temp(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn ignore_rules_follow_nested_gitignores_and_negations() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
        std::fs::create_dir_all(root.join("app/keep")).unwrap();
        std::fs::write(root.join("app/.gitignore"), "!important.log\n*.tmp\n").unwrap();
        let mut rules = IgnoreRules::new(Tree::open(root).unwrap());
        let rel = |p: &str| RelPath::from_bytes(p.as_bytes().to_vec());
        assert!(rules.is_ignored(&rel("debug.log"), false));
        assert!(rules.is_ignored(&rel("build"), true));
        assert!(!rules.is_ignored(&rel("src.rs"), false));
        assert!(rules.is_ignored(&rel("app/x.tmp"), false));
        assert!(!rules.is_ignored(&rel("app/important.log"), false));
        assert!(rules.is_ignored(&rel("app/keep/other.log"), false));
        // A symlinked directory's rules are not read: `.gitignore` behind it is not ours.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join(".gitignore"), "*.rs\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("linked")).unwrap();
        assert!(!rules.is_ignored(&rel("linked/x.rs"), false));
    }

    #[test]
    fn no_watch_wins_and_force_watch_overrides_detection() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            disabled_reason(dir.path(), true, true).as_deref(),
            Some("CODELENS_NO_WATCH=1")
        );
        assert_eq!(disabled_reason(dir.path(), false, true), None);
        // A local temp directory is a file system with events.
        assert_eq!(disabled_reason(dir.path(), false, false), None);
    }
}
