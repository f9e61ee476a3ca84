//! The directory cache: git's "untracked cache" idea, applied to the whole walk.
//!
//! A directory's mtime changes whenever an entry is created, removed or renamed in it.
//! So a directory whose stat is still the one recorded when it was last listed — and
//! whose mtime was not within [`RACY_WINDOW_NS`] of that listing, where the clock's
//! granularity could hide a later change — still holds the same names and need not be
//! listed again: its files are the index's rows for it, each still stat'ed to see
//! whether its content changed. Only directories whose stat moved are listed again, and
//! new subdirectories walked. The ignore rules must not have changed either: every
//! ignore file met is recorded with its stat, beside git's `info/exclude` and the global
//! excludes file; any difference, or a new ignore file in a listed directory, falls back
//! to the full walk — as does a cache that is missing or inconsistent, or that finds
//! more than a few directories changed (listing many one by one costs more than a walk).
//!
//! Either way the result is the [`WalkResult`] a full walk would have produced, so what
//! follows (planning, hashing, the watcher's directory list) does not know which ran.

use std::collections::HashMap;

use super::contain::Tree;
use super::reconcile::RACY_WINDOW_NS;
use super::rules::global_source_paths;
use super::scan::{self, FileStat, IgnoreSource, ListedDir, WalkResult, WalkedFile};
use super::store::FileRows;
use super::{RelPath, now_ns};

/// A directory as it was when last listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDir {
    pub path: RelPath,
    pub stat: FileStat,
    /// The wall clock read before the listing began.
    pub listed_at_ns: i64,
    /// A nested repository or worktree: not entered, only watched for its `.git`
    /// going away.
    pub nested: bool,
}

impl CachedDir {
    fn new(dir: &ListedDir, listed_at_ns: i64, nested: bool) -> CachedDir {
        CachedDir {
            path: dir.path.clone(),
            stat: dir.stat,
            listed_at_ns,
            nested,
        }
    }

    /// Whether `now` (its stat this time) proves its entries unchanged.
    fn unchanged(&self, now: Option<&FileStat>) -> bool {
        now == Some(&self.stat) && self.stat.mtime_ns < self.listed_at_ns - RACY_WINDOW_NS
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirCache {
    /// Every directory of the tree, sorted by path: a parent comes before its children.
    pub dirs: Vec<CachedDir>,
    /// The files the ignore rules come from, with their stats.
    pub sources: Vec<IgnoreSource>,
}

impl DirCache {
    /// The directories a full walk enters (nested repositories excluded).
    pub fn watched_dirs(self) -> Vec<RelPath> {
        let dirs = self.dirs.into_iter().filter(|d| !d.nested);
        dirs.map(|d| d.path).collect()
    }
}

/// How a walk of the tree went, and the cache to record for the next one.
pub struct Walked {
    pub walked: WalkResult,
    /// `None` when the cache recorded is still right; `Some` (maybe empty: nothing to
    /// trust next time) when it must be replaced.
    pub dir_cache: Option<DirCache>,
    /// How many directories were listed.
    pub dirs_listed: u64,
    /// The directories found holding the same names as when the cache recorded them
    /// (none after a full walk): the very directories that were there then.
    pub unchanged_dirs: Vec<RelPath>,
}

/// Walks the whole tree and records the cache the walk gives.
pub fn full_walk(tree: &Tree) -> Walked {
    // Read before the walk reads them: a later edit shows as a different stat.
    let listed_at_ns = now_ns();
    let globals: Vec<IgnoreSource> = global_source_paths(tree.root())
        .into_iter()
        .map(|path| IgnoreSource::read(tree, path))
        .collect();
    let walked = scan::walk(tree);
    let cache = cache_of_full_walk(&walked, listed_at_ns, globals).unwrap_or_default();
    Walked {
        dirs_listed: walked.listed.len() as u64,
        walked,
        dir_cache: Some(cache),
        unchanged_dirs: Vec::new(),
    }
}

/// The cache a walk of the whole tree gives; `None` when the walk could not read
/// everything (what it did not read cannot be vouched for).
fn cache_of_full_walk(
    walked: &WalkResult,
    listed_at_ns: i64,
    mut sources: Vec<IgnoreSource>,
) -> Option<DirCache> {
    let complete = walked.errors.is_empty()
        && walked.unreadable.is_empty()
        && walked.listed.len() == walked.dirs.len();
    if !complete {
        return None;
    }
    let mut dirs: Vec<CachedDir> = walked
        .listed
        .iter()
        .map(|d| CachedDir::new(d, listed_at_ns, false))
        .chain(
            walked
                .nested
                .iter()
                .map(|d| CachedDir::new(d, listed_at_ns, true)),
        )
        .collect();
    dirs.sort_by(|a, b| a.path.cmp(&b.path));
    sources.extend(walked.ignore_files.iter().cloned());
    Some(DirCache { dirs, sources })
}

/// The entries a complete walk of one subtree (`scan::walk_scope`, recursive) gives,
/// for [`crate::engine::store::Batch::record_dir_cache_of`]; `None` when the walk
/// could not read everything, or met an ignore file (the cache records every ignore
/// source with the walk of the whole tree: one found here is left for the next full
/// walk to record, with the directories around it).
pub fn cache_of_scope(walked: &WalkResult, listed_at_ns: i64) -> Option<Vec<CachedDir>> {
    let complete = walked.errors.is_empty()
        && walked.unreadable.is_empty()
        && walked.listed.len() == walked.dirs.len()
        && walked.ignore_files.is_empty();
    if !complete {
        return None;
    }
    let listed = (walked.listed.iter()).map(|d| CachedDir::new(d, listed_at_ns, false));
    let nested = (walked.nested.iter()).map(|d| CachedDir::new(d, listed_at_ns, true));
    let mut dirs: Vec<CachedDir> = listed.chain(nested).collect();
    dirs.sort_by(|a, b| a.path.cmp(&b.path));
    Some(dirs)
}

/// A walk begun before the index's rows are loaded.
pub enum Started {
    /// The cache holds: the rows will tell the files of the unchanged directories.
    Checked(Checked),
    /// The cache could not be used: the tree was walked in full.
    Walked(Walked),
}

/// Checks the cache against the tree, or walks the tree in full when it cannot be used.
pub fn start(tree: &Tree, cache: &DirCache) -> Started {
    match check(tree, cache) {
        Some(checked) => Started::Checked(checked),
        None => Started::Walked(full_walk(tree)),
    }
}

impl Started {
    /// The walk's result, given the index's rows.
    pub fn finish(self, tree: &Tree, rows: &FileRows) -> Walked {
        match self {
            Started::Checked(checked) => checked
                .finish(tree, rows)
                .unwrap_or_else(|| full_walk(tree)),
            Started::Walked(walked) => walked,
        }
    }
}

/// Where a cached directory stands this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirState {
    /// Same names as when listed: its files are its rows, stat'ed one by one.
    Clean,
    /// Listed again (or walked for the first time): its files come from the listing.
    Listed,
    /// Gone, or now a nested repository: none of its rows stand.
    Gone,
}

/// What checking the cache against the tree found, before the index's rows are known.
pub struct Checked {
    /// By directory path: where each directory of the tree, old or new, stands.
    states: HashMap<Vec<u8>, DirState>,
    /// The files of the directories listed.
    listed_files: Vec<WalkedFile>,
    /// The tree's directories, as a full walk lists them.
    dirs: Vec<RelPath>,
    cache: DirCache,
    changed: bool,
    dirs_listed: u64,
}

/// Checks `cache` against the tree: stats every directory and ignore file, lists the
/// directories that changed, walks new ones. `None` when the cache cannot be used.
fn check(tree: &Tree, cache: &DirCache) -> Option<Checked> {
    if cache.dirs.first()?.path.as_bytes() != b"" {
        return None;
    }
    let root = tree.root();
    let sources_unchanged = global_source_paths(root)
        .iter()
        .all(|path| cache.sources.iter().any(|s| &s.path == path))
        && cache
            .sources
            .iter()
            .all(|s| IgnoreSource::read(tree, s.path.clone()) == *s);
    if !sources_unchanged {
        return None;
    }
    let paths: Vec<&RelPath> = cache.dirs.iter().map(|d| &d.path).collect();
    let stats = scan::stat_dirs(tree, &paths);
    let mut checker = Checker {
        tree,
        cached: &cache.dirs,
        known: &cache.sources,
        limit: 64.max(cache.dirs.len() / 8),
        checked: Checked {
            states: HashMap::with_capacity(cache.dirs.len()),
            listed_files: Vec::new(),
            dirs: Vec::with_capacity(cache.dirs.len()),
            cache: DirCache {
                dirs: Vec::with_capacity(cache.dirs.len()),
                sources: Vec::new(),
            },
            changed: false,
            dirs_listed: 0,
        },
        children: HashMap::new(),
    };
    for (dir, stat) in cache.dirs.iter().zip(&stats) {
        checker.visit(dir, stat.as_ref())?;
    }
    let Checker { mut checked, .. } = checker;
    // Ignore files of directories that are gone go with them.
    let states = &checked.states;
    let kept_sources = cache.sources.iter().filter(|source| {
        let dir = RelPath::from_path(root, source.path.parent().unwrap_or(root));
        dir.is_none_or(|dir| states.get(dir.as_bytes()) != Some(&DirState::Gone))
    });
    let mut sources: Vec<IgnoreSource> = kept_sources.cloned().collect();
    sources.append(&mut checked.cache.sources);
    checked.cache.sources = sources;
    checked.cache.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    Some(checked)
}

struct Checker<'a> {
    tree: &'a Tree,
    /// The cache being checked, sorted by path.
    cached: &'a [CachedDir],
    /// The ignore files recorded: a listed directory may hold no other.
    known: &'a [IgnoreSource],
    /// More directories to list than this, and one walk is cheaper.
    limit: usize,
    checked: Checked,
    /// What the listings found in the directories listed: path → a nested repository?
    children: HashMap<RelPath, bool>,
}

impl Checker<'_> {
    /// Settles one cached directory; its parent, sorted before it, is settled already.
    fn visit(&mut self, dir: &CachedDir, stat: Option<&FileStat>) -> Option<()> {
        let found_as = match dir.path.parent() {
            None => stat.map(|_| false),
            Some(parent) => match self.checked.states.get(parent.as_bytes())? {
                DirState::Gone => None,
                DirState::Clean => stat.map(|_| dir.nested),
                DirState::Listed => self.children.get(&dir.path).copied(),
            },
        };
        let Some(found_nested) = found_as else {
            self.checked.changed = true;
            self.checked
                .states
                .insert(dir.path.as_bytes().to_vec(), DirState::Gone);
            return Some(());
        };
        if dir.unchanged(stat) && found_nested == dir.nested {
            self.checked.cache.dirs.push(dir.clone());
            let state = if dir.nested {
                DirState::Gone
            } else {
                self.checked.dirs.push(dir.path.clone());
                DirState::Clean
            };
            self.checked
                .states
                .insert(dir.path.as_bytes().to_vec(), state);
            return Some(());
        }
        self.checked.changed = true;
        if dir.nested && !self.tree.is_repository_root(&dir.path) {
            // No longer a repository of its own: all of it is new to the index.
            self.checked
                .states
                .insert(dir.path.as_bytes().to_vec(), DirState::Gone);
            return self.walk_new(&dir.path);
        }
        if dir.nested
            || (!dir.path.as_bytes().is_empty() && self.tree.is_repository_root(&dir.path))
        {
            let listed_at_ns = now_ns();
            let stat = self.tree.dir_stat(&dir.path)?;
            self.checked.cache.dirs.push(CachedDir {
                path: dir.path.clone(),
                stat,
                listed_at_ns,
                nested: true,
            });
            self.checked
                .states
                .insert(dir.path.as_bytes().to_vec(), DirState::Gone);
            return Some(());
        }
        self.list(&dir.path)
    }

    /// Lists one directory again.
    fn list(&mut self, path: &RelPath) -> Option<()> {
        self.count_listing(1)?;
        let listed_at_ns = now_ns();
        let listing = scan::walk_scope(self.tree, path, false);
        if !listing.errors.is_empty() || !listing.unreadable.is_empty() {
            return None;
        }
        let [top] = listing.listed.as_slice() else {
            return None;
        };
        // A new ignore file changes what is ignored below it: walk it all again.
        if !listing.ignore_files.iter().all(|f| self.known.contains(f)) {
            return None;
        }
        self.checked
            .cache
            .dirs
            .push(CachedDir::new(top, listed_at_ns, false));
        self.checked
            .states
            .insert(path.as_bytes().to_vec(), DirState::Listed);
        self.checked.dirs.push(path.clone());
        self.checked.listed_files.extend(listing.files);
        // What the cache holds is settled when its turn comes (after this directory,
        // its parent); what it does not hold is new.
        for nested in listing.nested {
            if self.is_cached(&nested.path) {
                self.children.insert(nested.path, true);
            } else {
                self.checked
                    .cache
                    .dirs
                    .push(CachedDir::new(&nested, listed_at_ns, true));
                let path = nested.path.as_bytes().to_vec();
                self.checked.states.insert(path, DirState::Gone);
            }
        }
        let subdirs = listing.dirs.into_iter().filter(|d| d != path);
        for subdir in subdirs {
            if self.is_cached(&subdir) {
                self.children.insert(subdir, false);
            } else {
                self.walk_new(&subdir)?;
            }
        }
        Some(())
    }

    fn is_cached(&self, path: &RelPath) -> bool {
        self.cached.binary_search_by(|d| d.path.cmp(path)).is_ok()
    }

    /// Walks a directory the cache never saw, all of it.
    fn walk_new(&mut self, path: &RelPath) -> Option<()> {
        let listed_at_ns = now_ns();
        let walked = scan::walk_scope(self.tree, path, true);
        if !walked.errors.is_empty() || !walked.unreadable.is_empty() {
            return None;
        }
        self.count_listing(walked.listed.len())?;
        let checked = &mut self.checked;
        let listed = walked.listed.iter().map(|dir| (dir, false));
        for (dir, nested) in listed.chain(walked.nested.iter().map(|dir| (dir, true))) {
            // A nested repository's files are not ours: as good as gone.
            let state = if nested {
                DirState::Gone
            } else {
                DirState::Listed
            };
            let path = dir.path.as_bytes().to_vec();
            checked.states.insert(path, state);
            let cached = CachedDir::new(dir, listed_at_ns, nested);
            checked.cache.dirs.push(cached);
        }
        checked.dirs.extend(walked.dirs);
        checked.listed_files.extend(walked.files);
        checked.cache.sources.extend(walked.ignore_files);
        Some(())
    }

    fn count_listing(&mut self, dirs: usize) -> Option<()> {
        self.checked.dirs_listed += dirs as u64;
        (self.checked.dirs_listed <= self.limit as u64).then_some(())
    }
}

impl Checked {
    /// Completes the walk with the index's rows: a row in an unchanged directory is
    /// stat'ed where it is; the rest come from the listings. `None` when a row lies in
    /// a directory the cache does not know (the cache and the index disagree).
    fn finish(mut self, tree: &Tree, rows: &FileRows) -> Option<Walked> {
        let mut in_clean_dirs = Vec::new();
        // Rows come in path order: a directory's files mostly follow one another.
        let mut last: Option<(&[u8], DirState)> = None;
        for (path, _) in rows {
            let parent = parent_bytes(path.as_bytes());
            let state = match last {
                Some((dir, state)) if dir == parent => state,
                _ => *self.states.get(parent)?,
            };
            last = Some((parent, state));
            if state == DirState::Clean {
                in_clean_dirs.push(path);
            }
        }
        let probes = scan::stat_files(tree, &in_clean_dirs);
        let mut walked = WalkResult {
            files: Vec::with_capacity(in_clean_dirs.len() + self.listed_files.len()),
            dirs: std::mem::take(&mut self.dirs),
            ..WalkResult::default()
        };
        for (path, probe) in in_clean_dirs.into_iter().zip(probes) {
            match probe {
                Ok(Some(stat)) => walked.files.push(WalkedFile {
                    path: path.clone(),
                    stat,
                }),
                Ok(None) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    walked.unreadable.push(path.clone());
                    walked
                        .errors
                        .push(format!("{}: {error}", tree.display_path(path).display()));
                }
            }
        }
        let unchanged_dirs = (self.states.iter())
            .filter(|(_, state)| **state == DirState::Clean)
            .map(|(path, _)| RelPath::from_bytes(path.clone()))
            .collect();
        // Two sorted runs (the rows' files, the listings'): a stable sort merges them.
        self.listed_files
            .sort_unstable_by(|a, b| a.path.cmp(&b.path));
        walked.files.append(&mut self.listed_files);
        walked.files.sort_by(|a, b| a.path.cmp(&b.path));
        Some(Walked {
            walked,
            dir_cache: self.changed.then_some(self.cache),
            dirs_listed: self.dirs_listed,
            unchanged_dirs,
        })
    }
}

/// The directory part of a relative path (empty for a top-level entry).
fn parent_bytes(path: &[u8]) -> &[u8] {
    &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)]
}
