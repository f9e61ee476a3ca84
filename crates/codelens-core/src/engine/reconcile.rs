//! Bringing the index in line with the working tree: a full build (`init`), an
//! incremental sync, and a read-only check of what differs (for `status`).
//!
//! Change detection follows git: compare the stat key `(size, mtime_ns, ctime_ns,
//! inode)` first and hash only files whose key changed; a file whose content hash is
//! unchanged only gets its new stat recorded. A "racily clean" row — content read
//! within [`RACY_WINDOW_NS`] of its mtime, so a later write could leave the same stat —
//! is re-hashed instead of trusted.

use std::time::Instant;

use serde::Serialize;

use super::contain::Tree;
use super::dircache::{self, DirCache};
use super::progress::{Progress, Stage};
use super::project::Project;
use super::scan::{self, FileStat, LoadedFile, WalkResult, WalkedFile};
use super::store::{self, FileRow, FileRows, Store};
use super::{Error, RelPath, Result, git, now_ns};

/// Covers the coarsest common timestamp granularity (FAT's 2 s) and the lag of the
/// kernel's coarse clock behind the wall clock we read `indexed_at` from.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;
const BUILD_FILE_NAME: &str = "index.db.building";

#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    pub files: u64,
    pub symbols: u64,
    pub skipped: u64,
    pub duration_ms: u64,
    #[serde(skip)]
    pub walk_errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
    pub unchanged: u64,
    /// Files read and hashed: new files, and known files whose stat changed or was racy.
    pub hashed: u64,
    /// Directories listed: all of them on a full walk; with the directory cache, only
    /// those whose entries changed (and new ones).
    pub dirs_listed: u64,
    pub duration_ms: u64,
    #[serde(skip)]
    pub walk_errors: Vec<String>,
}

impl SyncReport {
    pub fn changed(&self) -> bool {
        self.added + self.modified + self.removed > 0
    }
}

/// How a file on disk differs from the index, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFile {
    pub path: RelPath,
    pub change: Change,
    /// The file's mtime; `None` for a deleted file.
    pub edited_at_ns: Option<i64>,
}

/// Builds a fresh index for `project` into a temporary database and swaps it in.
pub fn build(project: &Project, progress: &Progress) -> Result<BuildReport> {
    let started = Instant::now();
    let git = git::discover(&project.root)?;
    progress.set_stage(Stage::Scanning);
    let tree = project.tree()?;
    let dircache::Walked {
        walked, dir_cache, ..
    } = dircache::full_walk(&tree);
    progress.start(walked.files.len() as u64);
    progress.set_stage(Stage::Indexing);

    let building = project.index_dir().join(BUILD_FILE_NAME);
    let mut report = BuildReport {
        walk_errors: walked.errors,
        ..BuildReport::default()
    };
    let built = fill_new_database(
        &building,
        &tree,
        walked.files,
        dir_cache.as_ref(),
        git.as_ref(),
        progress,
        &mut report,
    );
    if let Err(error) = built {
        // A failed build (full disk …) must not leave a large file behind.
        let _ = store::remove_database_files(&building);
        return Err(error);
    }
    let _swap = project.lock_for_swap()?;
    store::replace_database(&building, &project.db_path())?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn fill_new_database(
    building: &std::path::Path,
    tree: &Tree,
    files: Vec<WalkedFile>,
    dir_cache: Option<&DirCache>,
    git: Option<&git::GitInfo>,
    progress: &Progress,
    report: &mut BuildReport,
) -> Result<()> {
    let mut store = Store::create_for_build(building)?;
    {
        let batch = store.batch()?;
        scan::run_parallel(
            files,
            |extractor, file| scan::load(tree, file).map(|loaded| scan::analyze(loaded, extractor)),
            |indexed| {
                progress.inc(1);
                let Some(file) = indexed else { return Ok(()) };
                batch.insert_file(&file)?;
                if file.skipped.is_some() {
                    report.skipped += 1;
                } else {
                    report.files += 1;
                }
                report.symbols += file.symbols.len() as u64;
                Ok::<(), Error>(())
            },
        )?;
        batch.set_meta("schema_version", &store::SCHEMA_VERSION.to_string())?;
        batch.set_meta("root", &tree.root().to_string_lossy())?;
        batch.set_meta("created_at", &rfc3339_now())?;
        batch.set_meta("codelens_version", env!("CARGO_PKG_VERSION"))?;
        if let Some(cache) = dir_cache {
            batch.replace_dir_cache(cache)?;
        }
        write_sync_meta(&batch, git)?;
        batch.commit()?;
    }
    progress.set_stage(Stage::Finishing);
    store.finish_build()
}

/// How [`build_index`] built an index.
pub enum Built {
    /// From a copy of the main checkout's index (`seed`), reconciled with this tree.
    Seeded { seed: Project, report: SyncReport },
    /// From scratch; `seed_error` says why a main checkout's index could not be used.
    Fresh {
        report: BuildReport,
        seed_error: Option<(Project, Error)>,
    },
}

/// `codelens init`'s build, for the CLI and the dashboard alike: from a copy of the
/// main checkout's index when the project is a linked worktree of one that has an index
/// (only files that differ are parsed again), else — or when that copy cannot be
/// used, the seed being only a shortcut — from scratch. The caller holds the write lock.
pub fn build_index(project: &Project, progress: &Progress) -> Result<Built> {
    let mut seed_error = None;
    if let Some(seed) = project.main_checkout_index() {
        match build_seeded(project, &seed, progress) {
            Ok(report) => return Ok(Built::Seeded { seed, report }),
            Err(error) => seed_error = Some((seed, error)),
        }
    }
    Ok(Built::Fresh {
        report: build(project, progress)?,
        seed_error,
    })
}

/// Builds `project`'s index from a copy of `seed`, the index of another checkout of the
/// same repository (a linked worktree's main checkout), reconciled with this tree: every
/// file is stat-ed and hashed, but only files whose content differs between the two
/// checkouts are parsed again. The copy replaces the index only once complete.
pub fn build_seeded(project: &Project, seed: &Project, progress: &Progress) -> Result<SyncReport> {
    let building = project.index_dir().join(BUILD_FILE_NAME);
    let seeded = (|| -> Result<SyncReport> {
        store::copy_database(&seed.db_path(), &building)?;
        let mut store = Store::open(&building)?;
        {
            let batch = store.batch()?;
            batch.set_meta("root", &project.root.to_string_lossy())?;
            batch.set_meta("created_at", &rfc3339_now())?;
            batch.set_meta("seeded_from", &seed.root.to_string_lossy())?;
            // The seed's directories are another tree's: nothing there can be trusted.
            batch.replace_dir_cache(&DirCache::default())?;
            batch.commit()?;
        }
        let report = sync(project, &mut store, progress)?;
        // Closing checkpoints the copy's WAL into it before it is renamed.
        store.close()?;
        Ok(report)
    })();
    if seeded.is_err() {
        let _ = store::remove_database_files(&building);
    }
    let report = seeded?;
    let _swap = project.lock_for_swap()?;
    store::replace_database(&building, &project.db_path())?;
    Ok(report)
}

/// Rebuilds the index from scratch when an older codelens wrote it (an older schema
/// version: its symbols lack what this one stores), so `sync`, `watch` and the MCP
/// server go on instead of refusing. Returns the old version when it rebuilt, for the
/// caller to say so; an index of a newer codelens is left alone (opening it reports
/// that). Refuses, like `init`, while a running engine has the index open.
pub fn rebuild_if_outdated(project: &Project, progress: &Progress) -> Result<Option<i64>> {
    if outdated_schema(project).is_none() {
        return Ok(None);
    }
    project.ensure_no_engine()?;
    let _lock = project.lock_for_writing()?;
    // Asked again under the write lock: two processes started together (two MCP
    // servers, `sync` beside `watch`) both see the old index, and the one that waited
    // must not rebuild what the other has just rebuilt — nor fail swapping it in under
    // the engine the first one has started meanwhile.
    let Some(found) = outdated_schema(project) else {
        return Ok(None);
    };
    build_index(project, progress)?;
    Ok(Some(found))
}

/// The schema version of `project`'s index when an older codelens wrote it.
fn outdated_schema(project: &Project) -> Option<i64> {
    match Store::open_read_only(&project.db_path()) {
        Err(Error::IncompatibleSchema { found, .. }) if found < store::SCHEMA_VERSION => {
            Some(found)
        }
        _ => None,
    }
}

/// The one line that tells a user an old index was rebuilt.
pub fn rebuilt_message(old_version: i64) -> String {
    format!(
        "the index was written by an older codelens (schema version {old_version}; this one reads {}): rebuilt it from scratch",
        store::SCHEMA_VERSION
    )
}

/// `codelens sync`: takes the index's write lock (waiting for a running writer's
/// current write), opens the index and brings it up to date with the tree.
pub fn sync_project(project: &Project, progress: &Progress) -> Result<SyncReport> {
    let _lock = project.lock_for_writing()?;
    let mut store = Store::open(&project.db_path())?;
    sync(project, &mut store, progress)
}

/// Brings `store` up to date with the tree, in one transaction.
pub fn sync(project: &Project, store: &mut Store, progress: &Progress) -> Result<SyncReport> {
    let started = Instant::now();
    progress.set_stage(Stage::Scanning);
    // Reading git's HEAD and branch waits on other files than the walk: overlapped.
    let (git, plan) = std::thread::scope(|scope| {
        let git = scope.spawn(|| git::discover(&project.root));
        let plan = plan_against_tree(project, store);
        (git.join(), plan)
    });
    let git = git.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let mut plan = plan?;
    let dir_cache = plan.dir_cache.take();
    let mut report = apply_plan(project, store, plan, progress, |batch| {
        if let Some(cache) = &dir_cache {
            batch.replace_dir_cache(cache)?;
        }
        write_sync_meta(batch, git.as_ref())
    })?;
    // A large sync pays for its own checkpoint, not the next process to open the index.
    store.truncate_large_wal()?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Re-indexes the files of one directory (all below it when `recursive`) in one
/// transaction: what the watcher does when a directory has been quiet. Returns what
/// changed, and every path it looked at (those leave the pending set).
pub fn reindex_scope(
    project: &Project,
    store: &mut Store,
    dir: &RelPath,
    recursive: bool,
) -> Result<(SyncReport, Vec<RelPath>)> {
    let started = Instant::now();
    let rows = store.file_rows_in(dir, recursive)?;
    // A directory that is gone, is a symlink now (a checkout may turn a tracked
    // directory into one) or became a nested repository holds nothing of ours: the walk
    // gives no file there, so its rows go, and nothing is read through it.
    // Read before the walk lists anything, as for a full walk's cache.
    let listed_at_ns = now_ns();
    let walked = scan::walk_scope(&project.tree()?, dir, recursive);
    // A whole subtree listed completely is recorded in the directory cache, as a sync
    // records the tree: a directory created under the engine is then known at its
    // next start (not crawled again then, as if it had just appeared).
    let recorded = if recursive {
        dircache::cache_of_scope(&walked, listed_at_ns)
    } else {
        None
    };
    let mut looked_at: Vec<RelPath> = rows.iter().map(|(path, _)| path.clone()).collect();
    looked_at.extend(walked.files.iter().map(|f| f.path.clone()));
    let plan = plan(rows, walked);
    let mut report = apply_plan(project, store, plan, &Progress::new(), |batch| {
        match &recorded {
            Some(listed) => batch.record_dir_cache_of(dir, listed)?,
            None => batch.forget_dir_cache_of(dir, recursive)?,
        }
        batch.bump_generation()?;
        // "Synced N s ago" is when the index last caught up with an edit.
        batch.set_meta("last_sync", &rfc3339_now())?;
        batch.set_meta("last_sync_ns", &now_ns().to_string())
    })?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    looked_at.sort();
    looked_at.dedup();
    Ok((report, looked_at))
}

/// Reads, hashes and parses the plan's candidates on all cores and writes the result,
/// with `finish`'s own writes, in one transaction.
fn apply_plan(
    project: &Project,
    store: &mut Store,
    plan: Plan,
    progress: &Progress,
    finish: impl FnOnce(&store::Batch<'_>) -> Result<()>,
) -> Result<SyncReport> {
    let mut report = SyncReport {
        unchanged: plan.unchanged,
        hashed: plan.candidates.len() as u64,
        dirs_listed: plan.dirs_listed,
        walk_errors: plan.walk_errors,
        ..Default::default()
    };
    progress.start(plan.candidates.len() as u64);
    progress.set_stage(Stage::Indexing);

    let batch = store.batch()?;
    let tree = project.tree()?;
    scan::run_parallel(
        plan.candidates,
        |extractor, candidate| {
            examine(&tree, candidate).map(|loaded| scan::analyze(loaded, extractor))
        },
        |applied| {
            progress.inc(1);
            match applied {
                Verdict::Added(file) => {
                    batch.insert_file(&file)?;
                    report.added += 1;
                }
                Verdict::Modified(id, file) => {
                    batch.replace_file(id, &file)?;
                    report.modified += 1;
                }
                Verdict::Same {
                    id,
                    stat,
                    indexed_at_ns,
                } => {
                    batch.refresh_stat(id, &stat, indexed_at_ns)?;
                    report.unchanged += 1;
                }
                Verdict::Vanished(Some(id)) => {
                    batch.remove_file(id)?;
                    report.removed += 1;
                }
                Verdict::Vanished(None) => {}
            }
            Ok::<(), Error>(())
        },
    )?;
    for (_, row) in &plan.removed {
        batch.remove_file(row.id)?;
        report.removed += 1;
    }
    finish(&batch)?;
    batch.commit()?;
    Ok(report)
}

/// What differs between the index and the tree, without writing anything: stat every
/// file, hash only those whose stat changed. Sorted by path.
pub fn pending_changes(
    project: &Project,
    store: &Store,
    progress: &Progress,
) -> Result<Vec<PendingFile>> {
    check_tree(project, store, progress).map(|checked| checked.pending)
}

/// What [`check_tree`] found.
pub struct TreeCheck {
    /// What differs between the index and the tree, sorted by path.
    pub pending: Vec<PendingFile>,
    /// Every directory the walk covered: what a watcher should watch now.
    pub dirs: Vec<RelPath>,
    /// Those the directory cache found unchanged since it recorded them (none after a
    /// full walk): each is the very directory that was there then.
    pub unchanged_dirs: Vec<RelPath>,
}

/// [`pending_changes`], with the directories the walk covered.
pub fn check_tree(project: &Project, store: &Store, progress: &Progress) -> Result<TreeCheck> {
    let mut plan = plan_against_tree(project, store)?;
    let dirs = std::mem::take(&mut plan.dirs);
    let unchanged_dirs = std::mem::take(&mut plan.unchanged_dirs);
    progress.start(plan.candidates.len() as u64);
    let mut pending: Vec<PendingFile> = plan
        .removed
        .into_iter()
        .map(|(path, _)| PendingFile {
            path,
            change: Change::Deleted,
            edited_at_ns: None,
        })
        .collect();
    let tree = project.tree()?;
    scan::run_parallel(
        plan.candidates,
        |_, candidate| match examine(&tree, candidate) {
            Verdict::Added(loaded) => {
                Some((loaded.path, Change::Added, Some(loaded.stat.mtime_ns)))
            }
            Verdict::Modified(_, loaded) => {
                Some((loaded.path, Change::Modified, Some(loaded.stat.mtime_ns)))
            }
            Verdict::Vanished(Some(_)) => {
                Some((candidate.walked.path.clone(), Change::Deleted, None))
            }
            Verdict::Same { .. } | Verdict::Vanished(None) => None,
        },
        |found| {
            progress.inc(1);
            if let Some((path, change, edited_at_ns)) = found {
                pending.push(PendingFile {
                    path,
                    change,
                    edited_at_ns,
                });
            }
            Ok::<(), Error>(())
        },
    )?;
    pending.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(TreeCheck {
        pending,
        dirs,
        unchanged_dirs,
    })
}

fn write_sync_meta(batch: &store::Batch<'_>, git: Option<&git::GitInfo>) -> Result<()> {
    // A completed sync leaves the index equal to the tree as walked: nothing is pending.
    batch.replace_pending(&[])?;
    batch.bump_generation()?;
    batch.set_meta("last_sync", &rfc3339_now())?;
    batch.set_meta("last_sync_ns", &now_ns().to_string())?;
    match git.and_then(|g| g.head.as_deref()) {
        Some(head) => batch.set_meta("git_head", head)?,
        None => batch.delete_meta("git_head")?,
    }
    match git.and_then(|g| g.branch.as_deref()) {
        Some(branch) => batch.set_meta("git_branch", branch)?,
        None => batch.delete_meta("git_branch")?,
    }
    Ok(())
}

pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A file that must be read to know whether it changed.
struct Candidate {
    walked: WalkedFile,
    previous: Option<FileRow>,
}

struct Plan {
    candidates: Vec<Candidate>,
    removed: Vec<(RelPath, FileRow)>,
    unchanged: u64,
    walk_errors: Vec<String>,
    /// The directories walked.
    dirs: Vec<RelPath>,
    dirs_listed: u64,
    /// The directory cache to record with the plan's changes, when it changed.
    dir_cache: Option<DirCache>,
    /// The directories the cache found unchanged since it recorded them.
    unchanged_dirs: Vec<RelPath>,
}

fn is_racy(row: &FileRow) -> bool {
    row.stat.mtime_ns >= row.indexed_at_ns.saturating_sub(RACY_WINDOW_NS)
}

/// Walks the tree — with the directory cache when it holds, else in full — while the
/// index's rows load (the walk waits on the kernel, the load on SQLite: overlapped,
/// they cost the longer of the two), then plans.
fn plan_against_tree(project: &Project, store: &Store) -> Result<Plan> {
    let tree = project.tree()?;
    let cache = store.dir_cache()?;
    let (rows, walk) = std::thread::scope(|scope| {
        let walker = scope.spawn(|| dircache::start(&tree, &cache));
        let rows = store.file_rows();
        (rows, walker.join())
    });
    let rows = rows?;
    let walked = walk
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .finish(&tree, &rows);
    Ok(Plan {
        dirs_listed: walked.dirs_listed,
        dir_cache: walked.dir_cache,
        unchanged_dirs: walked.unchanged_dirs,
        ..plan(rows, walked.walked)
    })
}

/// Splits the walked files into trusted-unchanged and to-be-read, by stat alone: a
/// merge of the rows and the walked files, both sorted by path.
fn plan(rows: FileRows, walked: WalkResult) -> Plan {
    let mut plan = Plan {
        candidates: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        walk_errors: walked.errors,
        dirs_listed: walked.listed.len() as u64,
        dirs: walked.dirs,
        dir_cache: None,
        unchanged_dirs: Vec::new(),
    };
    let mut rows = rows.into_iter().peekable();
    let mut not_walked = Vec::new();
    for file in walked.files {
        while let Some(row) = rows.next_if(|(path, _)| *path < file.path) {
            not_walked.push(row);
        }
        match rows.next_if(|(path, _)| *path == file.path) {
            Some((_, row)) if row.stat == file.stat && !is_racy(&row) => plan.unchanged += 1,
            previous => plan.candidates.push(Candidate {
                walked: file,
                previous: previous.map(|(_, row)| row),
            }),
        }
    }
    for (path, row) in not_walked.into_iter().chain(rows) {
        if walked.unreadable.iter().any(|dir| path.is_within(dir)) {
            // Not seen because it could not be read, not because it is gone.
            plan.unchanged += 1;
        } else {
            plan.removed.push((path, row));
        }
    }
    plan
}

/// What reading a candidate found; `F` is the file as loaded, or as analyzed.
enum Verdict<F> {
    Added(F),
    Modified(i64, F),
    /// Content unchanged; only the stat key moved.
    Same {
        id: i64,
        stat: FileStat,
        indexed_at_ns: i64,
    },
    /// Gone since the walk; the id of its row, if it had one.
    Vanished(Option<i64>),
}

impl<F> Verdict<F> {
    fn map<G>(self, f: impl FnOnce(F) -> G) -> Verdict<G> {
        match self {
            Verdict::Added(file) => Verdict::Added(f(file)),
            Verdict::Modified(id, file) => Verdict::Modified(id, f(file)),
            Verdict::Same {
                id,
                stat,
                indexed_at_ns,
            } => Verdict::Same {
                id,
                stat,
                indexed_at_ns,
            },
            Verdict::Vanished(id) => Verdict::Vanished(id),
        }
    }
}

fn examine(tree: &Tree, candidate: &Candidate) -> Verdict<LoadedFile> {
    let Some(loaded) = scan::load(tree, &candidate.walked) else {
        return Verdict::Vanished(candidate.previous.as_ref().map(|row| row.id));
    };
    let Some(row) = &candidate.previous else {
        return Verdict::Added(loaded);
    };
    let same_content = match (row.sha256, loaded.sha256) {
        (Some(old), Some(new)) => old == new && row.skipped == loaded.skipped,
        // Neither side has content (both unreadable, or both too large to read): only
        // a size change proves an edit; a touch just refreshes the stat.
        (None, None) => {
            row.skipped.is_some()
                && row.skipped == loaded.skipped
                && row.stat.size == loaded.stat.size
        }
        _ => false,
    };
    if same_content {
        Verdict::Same {
            id: row.id,
            stat: loaded.stat,
            indexed_at_ns: loaded.indexed_at_ns,
        }
    } else {
        Verdict::Modified(row.id, loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mtime_ns: i64, indexed_at_ns: i64) -> FileRow {
        FileRow {
            id: 1,
            stat: FileStat {
                size: 10,
                mtime_ns,
                ctime_ns: mtime_ns,
                inode: 7,
            },
            sha256: Some([0; 32]),
            indexed_at_ns,
            skipped: None,
        }
    }

    fn plan_one(row: FileRow, stat: FileStat) -> Plan {
        let path = RelPath::from_bytes(b"a.rs".to_vec());
        let rows = vec![(path.clone(), row)];
        plan(
            rows,
            WalkResult {
                files: vec![WalkedFile { path, stat }],
                ..WalkResult::default()
            },
        )
    }

    #[test]
    fn identical_stat_well_before_indexing_is_trusted() {
        let old = row(1_000_000_000_000, 1_000_000_000_000 + 3 * RACY_WINDOW_NS);
        let plan = plan_one(old.clone(), old.stat);
        assert_eq!((plan.unchanged, plan.candidates.len()), (1, 0));
    }

    #[test]
    fn identical_stat_inside_the_racy_window_is_rehashed() {
        // Read 1 ms after its mtime: a same-size write in the same clock tick would leave
        // an identical stat, so the stat cannot vouch for the content.
        let racy = row(1_000_000_000_000, 1_000_001_000_000);
        let plan = plan_one(racy.clone(), racy.stat);
        assert_eq!((plan.unchanged, plan.candidates.len()), (0, 1));
    }

    #[test]
    fn any_stat_key_change_is_a_candidate() {
        let old = row(1_000_000_000_000, 1_000_000_000_000 + 3 * RACY_WINDOW_NS);
        for changed in [
            FileStat {
                size: 11,
                ..old.stat
            },
            FileStat {
                mtime_ns: old.stat.mtime_ns + 1,
                ..old.stat
            },
            FileStat {
                ctime_ns: old.stat.ctime_ns + 1,
                ..old.stat
            },
            FileStat {
                inode: 8,
                ..old.stat
            },
        ] {
            let plan = plan_one(old.clone(), changed);
            assert_eq!(plan.candidates.len(), 1, "{changed:?}");
        }
    }

    #[test]
    fn rows_and_walked_files_are_merged_by_path() {
        let path = |p: &str| RelPath::from_bytes(p.as_bytes().to_vec());
        let old = row(1_000_000_000_000, 1_000_000_000_000 + 3 * RACY_WINDOW_NS);
        let changed = FileStat {
            size: 99,
            ..old.stat
        };
        // Byte order: "a-b" < "a/b" < "a0" ('-' < '/' < '0').
        let rows = ["a-b", "a/b", "a/c", "z"].map(|p| (path(p), old.clone()));
        let walked = [
            ("a/b", old.stat),
            ("a/bb", old.stat),
            ("a0", old.stat),
            ("z", changed),
        ];
        let plan = plan(
            rows.into(),
            WalkResult {
                files: walked
                    .map(|(p, stat)| WalkedFile {
                        path: path(p),
                        stat,
                    })
                    .into(),
                ..WalkResult::default()
            },
        );
        assert_eq!(plan.unchanged, 1);
        let candidates: Vec<(String, bool)> = plan
            .candidates
            .iter()
            .map(|c| (c.walked.path.to_string(), c.previous.is_some()))
            .collect();
        let expected = [("a/bb", false), ("a0", false), ("z", true)];
        assert_eq!(
            candidates,
            expected.map(|(p, known)| (p.to_string(), known))
        );
        let removed: Vec<String> = plan.removed.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(removed, ["a-b", "a/c"]);
    }

    #[test]
    fn rows_not_walked_are_removed() {
        let rows = vec![(RelPath::from_bytes(b"gone.rs".to_vec()), row(1, 2))];
        let plan = plan(rows, WalkResult::default());
        assert_eq!(plan.removed.len(), 1);
    }

    #[test]
    fn rows_under_an_unreadable_directory_are_kept() {
        let path = |p: &str| RelPath::from_bytes(p.as_bytes().to_vec());
        let rows = vec![
            (path("locked/a.rs"), row(1, 2)),
            (path("locked/deep/b.rs"), row(1, 2)),
            (path("lockedness.rs"), row(1, 2)),
        ];
        let walked = WalkResult {
            unreadable: vec![path("locked")],
            ..WalkResult::default()
        };
        let plan = plan(rows, walked);
        assert_eq!(plan.unchanged, 2);
        let removed: Vec<String> = plan.removed.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(removed, vec!["lockedness.rs"]);
    }
}
