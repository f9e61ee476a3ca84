//! Native file-system notifications, through `notify` (inotify on Linux, FSEvents on
//! macOS, ReadDirectoryChangesW on Windows), turned into the engine's few kinds of
//! change.
//!
//! Two strategies ([`WatchStrategy`], chosen at run time on every platform):
//! - `per-directory`: one watch per directory that the index covers, never per file and
//!   never in ignored trees (`node_modules/`, `target/` …), `.git/` or `.codelens/`
//!   (but for a watch on `.codelens/` itself, for the cookie files the engine writes
//!   there to know it has seen every event up to a moment, and the probe files other
//!   processes write there to ask the same).
//! - `recursive`: one recursive watch on the project root. Each event is mapped to its
//!   directory exactly as above, so the per-directory debounce is the same; events below
//!   `.git/`, ignored trees and nested repositories are dropped by a path-prefix test
//!   before any `stat`. The directories the index covers are still recorded (with
//!   their inodes), for the same bookkeeping, but need no watch of their own.
//!
//! Lost events are never dropped: a kernel queue overflow arrives from notify as an
//! event with the Rescan flag and no paths ([`FsChange::Rescan`]: a full reconcile);
//! FSEvents' `MustScanSubDirs` (with `UserDropped`/`KernelDropped`) names the subtree
//! to scan again ([`FsChange::RescanDir`]). A project root renamed or deleted under the
//! watcher is a failure ([`FsChange::RootLost`]), reported as `degraded` with the reason.
//!
//! Platform specifics stay in [`backend`], the thin edge: everything else is the same
//! code on every platform, so Linux's tests exercise both strategies.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{CreateKind, EventKind, RemoveKind};
use notify::{RecursiveMode, Watcher};

pub use crate::config::WatchStrategy;

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
    /// The backend lost events below this directory (FSEvents' `MustScanSubDirs`): its
    /// subtree is compared with the index again.
    RescanDir(RelPath),
    /// The project root was renamed or deleted: no event under its name will come. The
    /// watcher reports itself degraded with this reason.
    RootLost(String),
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
    /// Reconciliations forced by lost events: of the whole tree, or of a subtree.
    pub rescans: u64,
    pub debounce_ms: u64,
    /// How the watches are armed.
    pub strategy: WatchStrategy,
    /// The watches or handles the backend holds for this engine. Per-directory: the
    /// watches armed (inotify watches, paths of the FSEvents stream, directory handles).
    /// Recursive: inotify watches as the kernel counts them (`/proc/self/fdinfo`) on
    /// Linux, the one stream or handle elsewhere. 0 when off.
    pub descriptors: usize,
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
            strategy: WatchStrategy::platform_default(),
            descriptors: 0,
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
    strategy: WatchStrategy,
    /// Recursive: directories known to be outside the index (ignored, nested
    /// repositories). Events below one are dropped by prefix, before any `stat`.
    outside: HashSet<RelPath>,
    /// Recursive: events were lost since the watches were last made to match the tree
    /// (some backends then lack the watches of directories created meanwhile).
    lost_events: bool,
    /// Recursive: why the backend could not cover the whole tree (the kernel's limit).
    incomplete: Option<String>,
    /// Why the project root is no longer watched (renamed or deleted), once noticed.
    root_lost: Option<String>,
    /// The `.codelens/` directory's inode: how the backend's own count of watches is
    /// found (see [`backend::kernel_watches`]).
    index_dir_inode: Option<u64>,
    /// Recursive: the backend's watches as last counted. Counting reads a kernel list
    /// as long as the tree has directories: it is done at start, after the watch is
    /// armed again, and at a heartbeat after directories may have come or gone — never
    /// while idle, never per event.
    descriptors: usize,
    /// Recursive: directories may have been created, removed or renamed since the count.
    recount: bool,
    /// Recursive: watches of directories outside the index were removed from the backend
    /// ([`backend::PRUNES_OUTSIDE_WATCHES`]); a change of the ignore rules then needs the
    /// root armed again, for what the index enters now.
    pruned: bool,
    /// Recursive: the root's watch is to be armed again at the next sync.
    rearm_root: bool,
    /// Recursive: the watches were rebuilt outside an event's classification (events
    /// in between are lost): see [`DirWatcher::take_rescan_owed`].
    rescan_owed: bool,
}

impl DirWatcher {
    /// Per-directory: watches `.codelens/` (for cookies) and each of `dirs`, shallowest
    /// first, up to `cap`. Recursive: one watch on the root (`cap` does not apply), and
    /// `dirs` recorded as the directories the index covers.
    pub fn start(
        tree: &Tree,
        dirs: &[RelPath],
        cap: usize,
        strategy: WatchStrategy,
        handler: impl notify::EventHandler,
    ) -> Result<DirWatcher, String> {
        let root = tree.root();
        let inner = backend::new_watcher(handler)
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
            strategy,
            outside: HashSet::new(),
            lost_events: false,
            incomplete: None,
            root_lost: None,
            index_dir_inode: tree
                .dir_stat(&RelPath::from_bytes(INDEX_DIR_NAME.as_bytes().to_vec()))
                .map(|stat| stat.inode),
            descriptors: 0,
            recount: false,
            pruned: false,
            rearm_root: false,
            rescan_owed: false,
        };
        if strategy == WatchStrategy::Recursive {
            match watcher.inner.watch(root, RecursiveMode::Recursive) {
                Ok(()) => {}
                Err(error) if is_watch_limit(&error) => {
                    watcher.incomplete = Some(RECURSIVE_LIMIT.into());
                }
                Err(error) => {
                    return Err(format!(
                        "cannot watch {} recursively: {error}",
                        root.display()
                    ));
                }
            }
            for dir in dirs {
                watcher.watch_dir(dir);
            }
            watcher.watch_dir(&RelPath::from_bytes(Vec::new()));
            watcher.prune_git_dir();
            watcher.count_descriptors();
            return Ok(watcher);
        }
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
    ///
    /// Recursive: the root's watch covers `dir` already; it is only recorded (with its
    /// inode) as a directory of the index. Never capped.
    pub fn watch_dir(&mut self, dir: &RelPath) -> bool {
        if self.strategy == WatchStrategy::Recursive {
            self.outside.remove(dir);
            return match self.inode_of(dir) {
                Some(inode) => {
                    self.watched.insert(dir.clone(), inode);
                    true
                }
                None => {
                    self.watched.remove(dir);
                    false
                }
            };
        }
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
                self.watched.remove(dir);
                if is_watch_limit(&error) {
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

    /// A directory new to the index, from its event, before the engine crawls it.
    /// Per-directory: [`DirWatcher::watch_dir`]. Recursive, where the backend arms new
    /// directories itself ([`backend::ARMS_NEW_DIRS_BY_PATH`]): it does so only after
    /// it has handed over every event it has read, so the engine's crawl could pass
    /// before the arming and a file written between the two would have no event. The
    /// directory is armed here, answered once the backend did (its thread takes the
    /// request after its pending events): watch first, then crawl. True when it is
    /// watched.
    pub fn arm_new_dir(&mut self, dir: &RelPath) -> bool {
        if self.strategy == WatchStrategy::PerDirectory
            || !backend::ARMS_NEW_DIRS_BY_PATH
            || self.watched.contains_key(dir)
        {
            return self.watch_dir(dir);
        }
        let Some(before) = self.inode_of(dir) else {
            if self.is_symlink(dir) {
                // Swapped for a symlink since its event: the backend, arming it from
                // that event, may have followed the link.
                self.rebuild_watches();
                self.rescan_owed = true;
            }
            return false;
        };
        let armed = self
            .inner
            .watch(&dir.to_path(&self.root), RecursiveMode::Recursive);
        if self.inode_of(dir) != Some(before) {
            // Swapped (for a symlink) while armed: the backend may have followed it.
            self.rebuild_watches();
            self.rescan_owed = true;
            return false;
        }
        if let Err(error) = armed
            && is_watch_limit(&error)
        {
            self.incomplete = Some(RECURSIVE_LIMIT.into());
        }
        self.recount = true;
        self.watch_dir(dir)
    }

    /// Whether `dir` is a symlink (through the tree).
    fn is_symlink(&self, dir: &RelPath) -> bool {
        (self.rules.tree.lstat(dir)).is_ok_and(|(kind, _)| kind == EntryKind::Symlink)
    }

    /// Whether events were lost to a rebuild of the watches since asked last: the
    /// engine then reconciles the whole tree.
    pub fn take_rescan_owed(&mut self) -> bool {
        std::mem::take(&mut self.rescan_owed)
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
    ///
    /// Recursive: no watch per directory to arm. After lost events the root's watch is
    /// armed again where the backend needs it ([`backend::REARM_RECURSIVE_AFTER_LOSS`]);
    /// the directories returned are those new to the index or found replaced.
    pub fn sync_watches(&mut self, dirs: &[RelPath], just_armed: &[RelPath]) -> Vec<RelPath> {
        if self.strategy == WatchStrategy::Recursive {
            return self.sync_recursive(dirs, just_armed);
        }
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

    fn sync_recursive(&mut self, dirs: &[RelPath], just_armed: &[RelPath]) -> Vec<RelPath> {
        let just_armed: HashSet<&RelPath> = just_armed.iter().collect();
        let wanted: HashSet<&RelPath> = dirs.iter().collect();
        // A directory the index enters now may lie in a tree pruned as outside it, with
        // no event to say it changed (a nested repository's `.git` removed: nothing
        // below the pruned tree reports it). Its watches are gone: armed again.
        let entered_pruned = self.pruned && dirs.iter().any(|d| !self.watched.contains_key(d));
        self.watched.retain(|dir, _| wanted.contains(dir));
        // Ignore rules or nested repositories may have changed: judged again as met.
        self.outside.clear();
        let lost = std::mem::take(&mut self.lost_events) && backend::REARM_RECURSIVE_AFTER_LOSS;
        if lost || std::mem::take(&mut self.rearm_root) || entered_pruned {
            // Arming the root again walks the tree and adds the watches the backend
            // missed or that were pruned (existing ones are kept as they are).
            self.arm_root();
        }
        // Judged again as met, but `.git/` is known: never left watched.
        self.prune_git_dir();
        let mut renewed = Vec::new();
        for dir in dirs {
            if just_armed.contains(dir) && self.watched.contains_key(dir) {
                continue;
            }
            let before = self.watched.get(dir).copied();
            if self.watch_dir(dir) && before != self.watched.get(dir).copied() {
                renewed.push(dir.clone());
            }
        }
        self.count_descriptors();
        renewed
    }

    /// Recursive: arms the root's watch again (the backend walks the tree, without
    /// following symlinks, and adds what it lacks).
    fn arm_root(&mut self) {
        match self.inner.watch(&self.root, RecursiveMode::Recursive) {
            Ok(()) => self.incomplete = None,
            Err(error) if is_watch_limit(&error) => {
                self.incomplete = Some(RECURSIVE_LIMIT.into());
            }
            Err(error) => self.incomplete = Some(format!("re-arming the watch failed: {error}")),
        }
        self.pruned = false;
    }

    /// Recursive: drops every backend watch and arms the root afresh — the one way to
    /// take back watches the backend added through a symlink (they are not ours to
    /// name one by one). Events in between are lost: the caller reconciles.
    fn rebuild_watches(&mut self) {
        let _ = self.inner.unwatch(&self.root);
        self.outside.clear();
        self.arm_root();
        self.prune_git_dir();
        self.recount = true;
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
    ///
    /// Both strategies first check that the project root is still where it was; the
    /// recursive one has no per-directory watch to re-arm, only inodes to check.
    pub fn rearm_some(&mut self, max_checked: usize, max_rearmed: usize) -> Vec<RelPath> {
        self.check_root();
        let mut replaced = Vec::new();
        let queues: &[Queue] = match self.strategy {
            WatchStrategy::PerDirectory => &[Queue::Check, Queue::Rearm],
            WatchStrategy::Recursive => &[Queue::Check],
        };
        for &queue in queues {
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
        if self.recount {
            self.count_descriptors();
        }
        replaced
    }

    /// Notes whether the project root is still the directory that was watched; one
    /// renamed back clears the failure (the backend's watch followed it).
    fn check_root(&mut self) -> Option<String> {
        self.root_lost = self.rules.tree.root_displaced();
        self.root_lost.clone()
    }

    /// Recursive: removes the backend's watches of `dir` and everything below it, where
    /// the backend holds one per directory ([`backend::PRUNES_OUTSIDE_WATCHES`]): `dir`
    /// is outside the index, and its events (opens and reads included) would only be
    /// dropped. Best effort: a watch already gone is no error.
    fn prune(&mut self, dir: &RelPath) {
        if self.strategy == WatchStrategy::Recursive && backend::PRUNES_OUTSIDE_WATCHES {
            let _ = self.inner.unwatch(&dir.to_path(&self.root));
            self.pruned = true;
            self.recount = true;
        }
    }

    /// Recursive: prunes `.git/` (the engine itself reads it every half second to follow
    /// the branch), when it is a directory, and remembers it as outside.
    fn prune_git_dir(&mut self) {
        let git = RelPath::from_bytes(b".git".to_vec());
        if self.rules.tree.dir_stat(&git).is_some() {
            self.prune(&git);
            self.outside.insert(git);
        }
    }

    /// Recursive: counts the backend's watches again (see [`WatcherStatus::descriptors`]):
    /// the kernel's count where it can be read, else the one handle.
    fn count_descriptors(&mut self) {
        self.recount = false;
        if self.strategy == WatchStrategy::Recursive {
            self.descriptors = (self.index_dir_inode)
                .and_then(backend::kernel_watches)
                .unwrap_or(backend::RECURSIVE_HANDLES);
        }
    }

    /// The watches or handles held: per-directory, each armed watch is one (and one on
    /// `.codelens/`); recursive, as last counted.
    fn descriptors(&self) -> usize {
        match self.strategy {
            WatchStrategy::PerDirectory => self.watched.len() + 1,
            WatchStrategy::Recursive => self.descriptors,
        }
    }

    /// An error the backend reported (the event stream goes on). Recursive: one about
    /// the kernel's limit means directories created since are not watched.
    pub fn note_error(&mut self, error: &notify::Error) {
        self.lost_events = true;
        if self.strategy == WatchStrategy::Recursive && is_watch_limit(error) {
            self.incomplete = Some(RECURSIVE_LIMIT.into());
        }
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
            if self.strategy == WatchStrategy::PerDirectory {
                let _ = self.inner.unwatch(&d.to_path(&self.root));
            }
            self.watched.remove(&d);
        }
        self.outside.retain(|d| !d.is_within(dir));
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
        // The whole tree is unwatched when the root is lost; the part the recursive
        // watch lacks is unknown: every directory is checked by the scans.
        let whole_tree = (self.root_lost.as_ref().or(self.incomplete.as_ref()))
            .map(|why| (why, self.watched.len().max(1)));
        if let Some((why, unwatched)) = whole_tree {
            return WatcherStatus {
                mode: WatchMode::Degraded,
                reason: format!(
                    "{why}: edits are found by a scan of the tree instead ({} watcher)",
                    self.strategy.name()
                ),
                watched_dirs: self.watched.len(),
                unwatched_dirs: unwatched,
                rescans,
                debounce_ms,
                strategy: self.strategy,
                descriptors: self.descriptors(),
            };
        }
        let (mode, reason) = match &self.limit_reason {
            Some(reason) => (
                WatchMode::Degraded,
                format!(
                    "{reason}: {} directories are checked by a scan of the tree instead",
                    self.unwatched.len()
                ),
            ),
            None => (
                WatchMode::Native,
                format!("{} ({})", backend::NAME, self.strategy.name()),
            ),
        };
        WatcherStatus {
            mode,
            reason,
            watched_dirs: self.watched.len(),
            unwatched_dirs: self.unwatched.len(),
            rescans,
            debounce_ms,
            strategy: self.strategy,
            descriptors: self.descriptors(),
        }
    }

    /// What this process's cookie files are named with (then their number).
    pub fn cookie_prefix(&self) -> &str {
        &self.cookie_prefix
    }

    /// What one notification means for the index.
    pub fn classify(&mut self, event: &notify::Event) -> Vec<FsChange> {
        if event.need_rescan() {
            self.lost_events = true;
            return self.rescans_for(&event.paths);
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return Vec::new();
        }
        // A directory may have come, gone or moved: the backend's watches with it.
        self.recount |= matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder)
                | EventKind::Remove(RemoveKind::Folder)
                | EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
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

    /// What a lost-events notice asks for: a full reconcile when it names no path (an
    /// inotify queue overflow) or the root, else a rescan of each subtree it names
    /// (FSEvents' `MustScanSubDirs`) that the index covers. Lost events under
    /// `.codelens/` may be cookies: a full reconcile, which answers their waiters too.
    fn rescans_for(&mut self, paths: &[PathBuf]) -> Vec<FsChange> {
        let mut changes = Vec::new();
        for path in paths {
            let Some(rel) = RelPath::from_path(&self.root, path) else {
                continue;
            };
            let first = rel.as_bytes().split(|&b| b == b'/').next();
            if rel.as_bytes().is_empty() || first == Some(INDEX_DIR_NAME.as_bytes()) {
                return vec![FsChange::Rescan];
            }
            if first == Some(b".git".as_slice()) || self.is_outside_index(&rel) {
                continue;
            }
            let change = FsChange::RescanDir(rel);
            if !changes.contains(&change) {
                changes.push(change);
            }
        }
        if paths.is_empty() {
            changes.push(FsChange::Rescan);
        }
        changes
    }

    /// Recursive: whether `rel` lies below a directory the index does not enter, by a
    /// prefix test against what is known. An ancestor the index does not cover is
    /// judged (its ignore rules, whether it holds a `.git`) until found outside; then it
    /// is remembered, and every later event below it is dropped without touching the
    /// disk. Per-directory: nothing outside the index is watched.
    fn is_outside_index(&mut self, rel: &RelPath) -> bool {
        if self.strategy != WatchStrategy::Recursive {
            return false;
        }
        let bytes = rel.as_bytes();
        for end in (0..bytes.len()).filter(|&i| bytes[i] == b'/') {
            let ancestor = RelPath::from_bytes(bytes[..end].to_vec());
            if self.outside.contains(&ancestor) {
                return true;
            }
            if self.watched.contains_key(&ancestor) {
                continue;
            }
            // Not covered: a directory new to the index (its own event makes it
            // covered), or one the walk does not enter.
            if self.rules.is_ignored(&ancestor, true)
                || self.rules.tree.is_repository_root(&ancestor)
            {
                self.prune(&ancestor);
                self.outside.insert(ancestor);
                return true;
            }
        }
        false
    }

    fn classify_path(&mut self, path: &Path, kind: &EventKind) -> Option<FsChange> {
        let rel = RelPath::from_path(&self.root, path)?;
        let bytes = rel.as_bytes();
        if bytes.is_empty() {
            // The root itself: renamed or deleted is the end of every event under it.
            let was_lost = self.root_lost.is_some();
            return self
                .check_root()
                .filter(|_| !was_lost)
                .map(FsChange::RootLost);
        }
        let first = bytes.split(|&b| b == b'/').next().unwrap_or_default();
        if first == b".git" {
            // Armed by the backend (recreated, or the root armed again): pruned again.
            if self.strategy == WatchStrategy::Recursive
                && !self
                    .outside
                    .contains(&RelPath::from_bytes(b".git".to_vec()))
            {
                self.prune_git_dir();
            }
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
        if is_editor_temp(name) || self.is_outside_index(&rel) {
            return None;
        }
        if IGNORE_FILE_NAMES.iter().any(|f| f.as_bytes() == name) {
            if let Some(dir) = rel.parent() {
                self.rules.forget(&dir);
            }
            // What is outside the index may be inside now: judged again, and what was
            // pruned from the backend armed again at the sync that follows.
            self.outside.clear();
            self.rearm_root |= self.pruned;
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
            if matches!(kind, EventKind::Create(CreateKind::Folder))
                && metadata == Some(EntryKind::Symlink)
                && self.strategy == WatchStrategy::Recursive
                && backend::ARMS_NEW_DIRS_BY_PATH
            {
                // Replaced by a symlink before the backend read the creation: it may
                // have armed the link's target, outside the project.
                self.rebuild_watches();
                return Some(FsChange::Rescan);
            }
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

/// What the recursive strategy reports when the kernel refused some of its watches.
const RECURSIVE_LIMIT: &str = "the kernel's inotify watch limit (fs.inotify.max_user_watches) reached while watching the tree recursively";

/// Whether notify refused a watch for the kernel's limit.
fn is_watch_limit(error: &notify::Error) -> bool {
    matches!(error.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&error.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(28))
}

/// The thin platform edge: everything that differs between notify's backends, and the
/// only place in the watcher with `cfg`. Only the Linux side is compiled and tested on
/// the machines this was written on (see the README's "Watch strategies").
mod backend {
    /// The backend's name, for the status line.
    pub const NAME: &str = if cfg!(target_os = "linux") {
        "inotify"
    } else if cfg!(target_os = "macos") {
        "FSEvents"
    } else if cfg!(target_os = "windows") {
        "ReadDirectoryChangesW"
    } else {
        "native"
    };

    /// What one recursive watch holds where the kernel's count cannot be read: one
    /// FSEvents stream (macOS), one directory handle (Windows).
    pub const RECURSIVE_HANDLES: usize = 1;

    /// notify's inotify backend arms a recursive watch as one kernel watch per
    /// directory, and adds the watches of directories created later from their
    /// `Create` events — which an overflow may have lost. FSEvents and
    /// `ReadDirectoryChangesW` watch the tree as a whole.
    pub const REARM_RECURSIVE_AFTER_LOSS: bool = cfg!(target_os = "linux");

    /// notify's inotify backend also watches `.git/` and ignored trees, for opens and
    /// reads too: the engine's own polling of `.git/` alone made it wake hundreds of
    /// times a second at 100k files (idle CPU 13× the per-directory strategy's). There,
    /// unwatching such a directory removes its kernel watches and those below it. One
    /// FSEvents stream or `ReadDirectoryChangesW` handle has nothing to remove, and
    /// reports no reads.
    pub const PRUNES_OUTSIDE_WATCHES: bool = cfg!(target_os = "linux");

    /// notify's inotify backend arms a directory created (or moved in) under a recursive
    /// watch from its event, by path, and a symlink at that path is followed: a
    /// directory swapped for a symlink before the event is read gets the link's target
    /// watched. FSEvents and `ReadDirectoryChangesW` arm nothing per directory.
    pub const ARMS_NEW_DIRS_BY_PATH: bool = cfg!(target_os = "linux");

    /// The watcher, never following symlinks: a recursive watch must not leave the
    /// project through a symlinked directory.
    pub fn new_watcher(
        handler: impl notify::EventHandler,
    ) -> notify::Result<notify::RecommendedWatcher> {
        use notify::Watcher;
        notify::RecommendedWatcher::new(
            handler,
            notify::Config::default().with_follow_symlinks(false),
        )
    }

    /// The kernel watches of the inotify instance that watches the directory with inode
    /// `index_dir_inode` (`.codelens/`, watched under both strategies), from
    /// `/proc/self/fdinfo`: one `inotify wd:` line per watch.
    #[cfg(target_os = "linux")]
    #[allow(clippy::disallowed_methods)] // kernel files under /proc
    pub fn kernel_watches(index_dir_inode: u64) -> Option<usize> {
        let needle = format!(" ino:{index_dir_inode:x} ");
        std::fs::read_dir("/proc/self/fdinfo")
            .ok()?
            .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
            .filter(|info| info.contains(&needle))
            .map(|info| {
                info.lines()
                    .filter(|line| line.starts_with("inotify wd:"))
                    .count()
            })
            .max()
    }

    #[cfg(not(target_os = "linux"))]
    pub fn kernel_watches(_index_dir_inode: u64) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRATEGIES: [WatchStrategy; 2] = [WatchStrategy::PerDirectory, WatchStrategy::Recursive];

    fn rel(path: &str) -> RelPath {
        RelPath::from_bytes(path.as_bytes().to_vec())
    }

    /// A watcher whose events go nowhere (the tests classify events they build).
    fn quiet_watcher(tree: &Tree, dirs: &[RelPath], strategy: WatchStrategy) -> DirWatcher {
        DirWatcher::start(
            tree,
            dirs,
            100,
            strategy,
            |_: notify::Result<notify::Event>| {},
        )
        .expect("watcher")
    }

    #[test]
    fn a_directory_replaced_behind_the_watchers_back_is_found_by_the_heartbeat_check() {
        for strategy in STRATEGIES {
            a_directory_replaced_behind_the_watchers_back(strategy);
        }
    }

    fn a_directory_replaced_behind_the_watchers_back(strategy: WatchStrategy) {
        let root = tempfile::tempdir().expect("temp dir");
        let root = root.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join(INDEX_DIR_NAME)).unwrap();
        for dir in ["kept", "replaced"] {
            std::fs::create_dir(root.join(dir)).unwrap();
        }
        let dirs = [rel("kept"), rel("replaced")];
        // Events are ignored: this is what the check must catch without them.
        let tree = Tree::open(&root).unwrap();
        let mut watcher = quiet_watcher(&tree, &dirs, strategy);
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

    /// A project: `.git/objects/`, `.codelens/`, `src/`, an ignored `node_modules/` and
    /// a nested repository `vendor/nested/`, with the directories the walk covers.
    fn project() -> (tempfile::TempDir, Tree, Vec<RelPath>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        for sub in [
            ".git/objects",
            INDEX_DIR_NAME,
            "src",
            "node_modules/dep",
            "vendor/nested/.git",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join(".gitignore"), "node_modules/\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub fn lib() {}\n").unwrap();
        let tree = Tree::open(&root).unwrap();
        let dirs = super::super::scan::walk(&tree).dirs;
        (dir, tree, dirs)
    }

    fn created(path: &Path) -> notify::Event {
        notify::Event::new(EventKind::Create(CreateKind::File)).add_path(path.to_path_buf())
    }

    #[test]
    fn recursive_drops_events_outside_the_index_by_prefix_once_judged() {
        let (_dir, tree, dirs) = project();
        let root = tree.root().to_path_buf();
        assert!(dirs.contains(&rel("vendor")) && !dirs.contains(&rel("vendor/nested")));
        let mut watcher = quiet_watcher(&tree, &dirs, WatchStrategy::Recursive);
        // On Linux, notify arms one kernel watch per directory; `.git/`'s are pruned at
        // once, those of a tree found outside the index when it is met.
        let kernel_watches = |watcher: &mut DirWatcher| {
            watcher.count_descriptors();
            watcher.status(0, 0).descriptors
        };
        let linux = cfg!(target_os = "linux");
        if linux {
            // The root, .codelens, src, node_modules(/dep), vendor(/nested(/.git)).
            assert_eq!(kernel_watches(&mut watcher), 8);
        }
        for noise in [
            "node_modules/dep/index.ts",
            "vendor/nested/lib.rs",
            ".git/objects/ab/cdef",
        ] {
            assert_eq!(
                watcher.classify(&created(&root.join(noise))),
                vec![],
                "{noise}"
            );
        }
        assert!(watcher.outside.contains(&rel("node_modules")));
        assert!(watcher.outside.contains(&rel("vendor/nested")));
        if linux {
            assert_eq!(kernel_watches(&mut watcher), 4, "two trees pruned");
        }
        // Judged once: the nested repository's `.git` gone (no event says so), events
        // below it are still dropped by the prefix alone, without a look at the disk.
        std::fs::remove_dir(root.join("vendor/nested/.git")).unwrap();
        std::fs::write(root.join("vendor/nested/lib.rs"), "").unwrap();
        assert_eq!(
            watcher.classify(&created(&root.join("vendor/nested/lib.rs"))),
            vec![]
        );
        // The index's own files are classified as before.
        assert_eq!(
            watcher.classify(&created(&root.join("src/lib.rs"))),
            vec![FsChange::File {
                path: rel("src/lib.rs"),
                dir: rel("src")
            }]
        );
        // An ignore file changed: what is outside is judged again.
        std::fs::write(root.join(".gitignore"), "").unwrap();
        let modified = notify::Event::new(EventKind::Modify(notify::event::ModifyKind::Any))
            .add_path(root.join(".gitignore"));
        assert_eq!(watcher.classify(&modified), vec![FsChange::RulesChanged]);
        assert!(watcher.outside.is_empty());
        // …and what was pruned is armed again by the reconcile's sync that follows.
        assert!(watcher.sync_watches(&dirs, &dirs).is_empty());
        if linux {
            // As at the start, less the nested `.git/` removed above.
            assert_eq!(kernel_watches(&mut watcher), 7);
        }
    }

    #[test]
    fn a_pruned_nested_repository_that_joins_the_index_is_watched_again() {
        let (_dir, tree, dirs) = project();
        let root = tree.root().to_path_buf();
        let (sender, events) = std::sync::mpsc::channel();
        let mut watcher = DirWatcher::start(&tree, &dirs, 100, WatchStrategy::Recursive, sender)
            .expect("watcher");
        // Met once: judged outside (a nested repository) and pruned.
        assert_eq!(
            watcher.classify(&created(&root.join("vendor/nested/lib.rs"))),
            vec![]
        );
        // Its `.git` removed: no event can say so (the tree's watches are gone). The
        // next reconcile's walk enters it, and the sync that follows must watch it.
        std::fs::remove_dir(root.join("vendor/nested/.git")).unwrap();
        let now = super::super::scan::walk(&tree).dirs;
        assert!(now.contains(&rel("vendor/nested")));
        assert_eq!(watcher.sync_watches(&now, &[]), vec![rel("vendor/nested")]);
        while events.try_recv().is_ok() {}
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let wanted = FsChange::File {
            path: rel("vendor/nested/lib.rs"),
            dir: rel("vendor/nested"),
        };
        let mut seen = Vec::new();
        // Written until its event comes (or the deadline: no watch there).
        while !seen.contains(&wanted) {
            assert!(std::time::Instant::now() < deadline, "no event: {seen:?}");
            std::fs::write(root.join("vendor/nested/lib.rs"), "pub fn n() {}\n").unwrap();
            while let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(100)) {
                seen.extend(watcher.classify(&event.expect("event")));
            }
        }
    }

    /// notify's inotify backend arms a directory created inside a recursive watch from
    /// its event, by path and following a symlink at that path: a directory replaced by
    /// a symlink before the backend read its event gets the link's target watched,
    /// outside the project. Returns a recursive watcher in that state (`src/swapped`
    /// links to a tree with `a/b`), with the count of its watches before.
    #[cfg(target_os = "linux")]
    fn armed_through_a_symlink() -> (tempfile::TempDir, tempfile::TempDir, DirWatcher, usize) {
        let (dir, tree, dirs) = project();
        let root = tree.root().to_path_buf();
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(outside.path().join("a/b")).unwrap();
        let mut watcher = quiet_watcher(&tree, &dirs, WatchStrategy::Recursive);
        watcher.count_descriptors();
        let before = watcher.status(0, 0).descriptors;
        std::os::unix::fs::symlink(outside.path(), root.join("src/swapped")).unwrap();
        // What the backend does on the directory's event, after the swap.
        watcher
            .inner
            .watch(&root.join("src/swapped"), RecursiveMode::Recursive)
            .unwrap();
        watcher.count_descriptors();
        assert_eq!(watcher.status(0, 0).descriptors, before + 2, "a, a/b");
        (dir, outside, watcher, before)
    }

    /// Swapped before the watcher read the creation: seen from the event.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_directory_swapped_for_a_symlink_before_its_event_leaves_no_watch_outside() {
        let (_dir, _outside, mut watcher, before) = armed_through_a_symlink();
        let event = notify::Event::new(EventKind::Create(CreateKind::Folder))
            .add_path(watcher.root.join("src/swapped"));
        // Events may have been missed while the watches were armed again.
        assert_eq!(watcher.classify(&event), vec![FsChange::Rescan]);
        watcher.count_descriptors();
        assert_eq!(watcher.status(0, 0).descriptors, before, "none outside");
    }

    /// notify's inotify backend hands over a new directory's event before it arms the
    /// directory (after the rest of what it read). Arming it on the engine's request
    /// waits for that, so a file written after the crawl that follows has its event.
    #[test]
    fn a_new_directory_is_armed_before_the_crawl_under_the_recursive_watch() {
        let (_dir, tree, dirs) = project();
        let root = tree.root().to_path_buf();
        let (sender, events) = std::sync::mpsc::channel();
        let new_dir = root.join("src/new");
        let slow_after = new_dir.clone();
        // A backend busy reading a burst of events after the directory's own.
        let handler = move |event: notify::Result<notify::Event>| {
            let is_new_dir = matches!(&event, Ok(e) if e.paths.contains(&slow_after)
                && matches!(e.kind, EventKind::Create(CreateKind::Folder)));
            let _ = sender.send(event);
            if is_new_dir {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        };
        let mut watcher = DirWatcher::start(&tree, &dirs, 100, WatchStrategy::Recursive, handler)
            .expect("watcher");
        std::fs::create_dir(&new_dir).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Vec::new();
        while !seen.contains(&FsChange::NewDir(rel("src/new"))) {
            assert!(std::time::Instant::now() < deadline, "no event: {seen:?}");
            if let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(100)) {
                seen.extend(watcher.classify(&event.expect("event")));
            }
        }
        // What the engine does on `NewDir`: watch, then crawl (empty), then an edit.
        assert!(watcher.arm_new_dir(&rel("src/new")));
        std::fs::write(new_dir.join("f.rs"), "pub fn f() {}\n").unwrap();
        let wanted = FsChange::File {
            path: rel("src/new/f.rs"),
            dir: rel("src/new"),
        };
        while !seen.contains(&wanted) {
            assert!(std::time::Instant::now() < deadline, "no event: {seen:?}");
            if let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(100)) {
                seen.extend(watcher.classify(&event.expect("event")));
            }
        }
    }

    /// Swapped after the watcher read the directory's event (a directory then) but
    /// before the backend armed it: found when the engine asks for its watch.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_new_directory_swapped_for_a_symlink_before_it_is_armed_leaves_no_watch_outside() {
        let (_dir, _outside, mut watcher, before) = armed_through_a_symlink();
        assert!(!watcher.arm_new_dir(&rel("src/swapped")));
        assert!(
            watcher.take_rescan_owed(),
            "events may be lost: a full reconcile"
        );
        watcher.count_descriptors();
        assert_eq!(watcher.status(0, 0).descriptors, before, "none outside");
    }

    #[test]
    fn lost_events_rescan_the_subtree_named_or_everything() {
        for strategy in STRATEGIES {
            let (_dir, tree, dirs) = project();
            let root = tree.root().to_path_buf();
            let mut watcher = quiet_watcher(&tree, &dirs, strategy);
            let lost = |paths: &[&str]| {
                paths.iter().fold(
                    notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan),
                    |event, p| event.add_path(root.join(p)),
                )
            };
            // inotify's overflow: no path.
            assert_eq!(watcher.classify(&lost(&[])), vec![FsChange::Rescan]);
            // FSEvents' MustScanSubDirs: the subtree, once.
            assert_eq!(
                watcher.classify(&lost(&["src", "src"])),
                vec![FsChange::RescanDir(rel("src"))]
            );
            // The root, or `.codelens/` (cookies may be lost): everything.
            assert_eq!(watcher.classify(&lost(&[""])), vec![FsChange::Rescan]);
            assert_eq!(
                watcher.classify(&lost(&[".codelens"])),
                vec![FsChange::Rescan]
            );
            // Nothing of the index below `.git/`.
            assert_eq!(watcher.classify(&lost(&[".git/objects"])), vec![]);
            // Outside the index: recursive knows it by prefix; per-directory has no
            // watch there, so such a notice cannot come, and a rescan is harmless.
            let ignored = watcher.classify(&lost(&["node_modules/dep"]));
            match strategy {
                WatchStrategy::Recursive => assert_eq!(ignored, vec![]),
                WatchStrategy::PerDirectory => {
                    assert_eq!(ignored, vec![FsChange::RescanDir(rel("node_modules/dep"))])
                }
            }
        }
    }

    #[test]
    fn a_directory_created_inside_the_recursive_watch_needs_no_new_watch() {
        let (_dir, tree, dirs) = project();
        let root = tree.root().to_path_buf();
        let (sender, events) = std::sync::mpsc::channel();
        let mut watcher = DirWatcher::start(&tree, &dirs, 100, WatchStrategy::Recursive, sender)
            .expect("watcher");
        let before = watcher.status(0, 0).descriptors;
        std::fs::create_dir_all(root.join("src/new/deeper")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Vec::new();
        // Written until its event comes: the backend arms the new directories from
        // their own events (no `watch_dir` here), a moment after they appear.
        while !seen.iter().any(
            |c| matches!(c, FsChange::File { path, .. } if *path == rel("src/new/deeper/f.rs")),
        ) {
            assert!(std::time::Instant::now() < deadline, "no event: {seen:?}");
            std::fs::write(root.join("src/new/deeper/f.rs"), "pub fn f() {}\n").unwrap();
            while let Ok(event) = events.recv_timeout(std::time::Duration::from_millis(100)) {
                seen.extend(watcher.classify(&event.expect("event")));
            }
        }
        assert!(seen.contains(&FsChange::NewDir(rel("src/new"))), "{seen:?}");
        assert!(
            !watcher.is_watched(&rel("src/new")),
            "no watch was asked for"
        );
        watcher.count_descriptors();
        if cfg!(target_os = "linux") {
            // notify's inotify backend holds one kernel watch per directory.
            assert_eq!(watcher.status(0, 0).descriptors, before + 2);
        }
    }

    #[test]
    fn a_deleted_or_renamed_root_is_a_degraded_watcher_with_the_reason() {
        for strategy in STRATEGIES {
            for deleted in [true, false] {
                let (dir, tree, dirs) = project();
                let root = tree.root().to_path_buf();
                let mut watcher = quiet_watcher(&tree, &dirs, strategy);
                assert_eq!(watcher.status(0, 0).mode, WatchMode::Native);
                let moved = dir.path().with_extension("moved");
                if deleted {
                    std::fs::remove_dir_all(&root).unwrap();
                } else {
                    std::fs::rename(&root, &moved).unwrap();
                }
                let root_event = notify::Event::new(EventKind::Remove(RemoveKind::Folder))
                    .add_path(root.clone());
                let changes = watcher.classify(&root_event);
                let [FsChange::RootLost(why)] = changes.as_slice() else {
                    panic!("{strategy:?}, deleted {deleted}: {changes:?}");
                };
                assert!(
                    why.contains(if deleted { "deleted" } else { "renamed" }),
                    "{why}"
                );
                // Reported once; the status stays degraded with the reason.
                assert_eq!(watcher.classify(&root_event), vec![]);
                let status = watcher.status(0, 0);
                assert_eq!(status.mode, WatchMode::Degraded, "{status:?}");
                assert!(status.reason.starts_with(why.as_str()), "{status:?}");
                assert!(status.unwatched_dirs > 0);
                if !deleted {
                    // Renamed back: the heartbeat's check clears it.
                    std::fs::rename(&moved, &root).unwrap();
                    watcher.rearm_some(0, 0);
                    assert_eq!(watcher.status(0, 0).mode, WatchMode::Native);
                }
            }
        }
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
