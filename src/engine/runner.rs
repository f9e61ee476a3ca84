//! The engine: one thread that owns the index store, keeps the set of files known to
//! differ from the index (the pending set), reconciles the index with the working tree
//! when it starts (catch-up), and publishes immutable [`Snapshot`]s for front ends.
//!
//! One writer per index: the engine that holds `.codelens/engine.lock` reconciles,
//! re-indexes and publishes its pending set in the `pending` table; any other engine on
//! the same index is a follower that reads that table (so both show the same pending
//! files) and takes over when the writer's lock is released, by exit or by death.
//!
//! Front ends never touch SQLite: they read snapshots, wait on them, subscribe to
//! events and send [`Command`]s.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::banner::{self, PendingEntry, PendingState};
use super::freshness::{Basis, Freshness, Unverified};
use super::project::{self, IndexLock, Project};
use super::read::Reader;
use super::reconcile::{self, Change};
use super::scan;
use super::store::{IndexStats, PendingRow, Store};
use super::watcher::{self, DirWatcher, FsChange, WatcherStatus};
use super::worktree::{self, Mismatch};
use super::{Error, RelPath, Result, now_ns};
use crate::telemetry::{self, TelemetryEnv, TelemetryStatus};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long [`Engine::wait_for_catchup`] waits by default (`CODELENS_CATCHUP_TIMEOUT_MS`).
    pub catchup_timeout: Duration,
    /// How long files found changed by catch-up stay pending before the writer
    /// re-indexes them (zero: at once). Files the watcher reports follow `watch.debounce`.
    pub reindex_delay: Duration,
    /// How often the engine looks at the store: a follower for the writer's pending set
    /// and for the writer's lock, a writer for syncs made by other processes; and both
    /// at git, for a worktree mismatch (a branch switch, a worktree added).
    pub poll_interval: Duration,
    /// Where the front end stands (the MCP server's PATH). When the git worktree there
    /// is not the one the index belongs to, every snapshot carries the mismatch.
    pub start_dir: Option<PathBuf>,
    pub watch: WatchOptions,
    /// Where telemetry consent is kept and which switches the environment sets: the
    /// snapshot shows the consent, and [`Command::SetTelemetry`] changes it.
    pub telemetry: TelemetryEnv,
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Whether the writer watches the tree (`CODELENS_NO_WATCH=1` turns it off).
    pub enabled: bool,
    /// Watch even where it would be turned off (`CODELENS_FORCE_WATCH=1`).
    pub force: bool,
    /// Quiet time a directory needs before its changes are re-indexed.
    pub debounce: Duration,
    /// Cap on directory watches; `None`: half the kernel's limit.
    pub max_dir_watches: Option<usize>,
}

impl Default for WatchOptions {
    /// Off: a library user asks for the watcher (front ends do, from the environment).
    fn default() -> Self {
        WatchOptions {
            enabled: false,
            force: false,
            debounce: Duration::from_millis(crate::config::WATCH_DEBOUNCE_DEFAULT_MS),
            max_dir_watches: None,
        }
    }
}

impl EngineOptions {
    /// The options the environment asks for (see `config.rs`), defaults elsewhere.
    pub fn from_config(config: &crate::config::Config) -> EngineOptions {
        EngineOptions {
            catchup_timeout: config.catchup_timeout,
            watch: WatchOptions {
                enabled: !config.no_watch,
                force: config.force_watch,
                debounce: config.watch_debounce,
                max_dir_watches: config.max_dir_watches.map(|n| n as usize),
            },
            telemetry: TelemetryEnv::from_env(),
            ..EngineOptions::default()
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            catchup_timeout: Duration::from_millis(crate::config::CATCHUP_TIMEOUT_DEFAULT_MS),
            reindex_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(500),
            start_dir: None,
            watch: WatchOptions::default(),
            // No home: consent reads as off and cannot be stored (a library user opts
            // in to the real environment with `from_config`).
            telemetry: TelemetryEnv::from_lookup(|_| None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reconciles, re-indexes and publishes the pending set.
    Writer,
    /// Reads what the writer publishes; takes over when it goes.
    Follower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    NotStarted,
    /// Files whose stat changed, hashed so far / in all.
    Running {
        checked: u64,
        total: u64,
    },
    Done {
        found: usize,
        duration_ms: u64,
    },
    Failed(String),
}

/// A directory whose changes wait for its debounce window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryState {
    pub dir: String,
    pub files: usize,
    /// Time since the first change, and the time left before re-indexing.
    pub waited_ms: u64,
    pub reindex_in_ms: u64,
    pub window_ms: u64,
}

/// Everything a front end shows, immutable and cheap to share.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases with every published change.
    pub seq: u64,
    pub root: PathBuf,
    pub role: Role,
    pub stats: IndexStats,
    pub last_sync: Option<String>,
    /// The git branch checked out at the index root when it was last synced.
    pub branch: Option<String>,
    /// Files known to differ from the index, newest edit first.
    pub pending: Vec<PendingEntry>,
    pub catchup: Catchup,
    /// Set while the front end stands in a git worktree that is not the index's own.
    pub worktree_mismatch: Option<Mismatch>,
    /// Whether edits are seen as they happen, and if not, why.
    pub watcher: WatcherStatus,
    /// Directories with changes waiting for their quiet window, oldest first.
    pub directories: Vec<DirectoryState>,
    /// Telemetry consent: on or off, which switch decided, the machine id and buffer.
    pub telemetry: TelemetryStatus,
    /// The last error the engine met (a failed sync …), if it has not recovered since.
    pub error: Option<String>,
    /// Whether the pending set can be trusted right now, and if not, why: the verdict
    /// every front end shows as it is.
    pub freshness: Freshness,
    /// The last sync, in Unix ns (`last_sync` is the same moment in RFC 3339).
    pub last_sync_ns: Option<i64>,
    /// The git commit checked out at the index root when it was last synced.
    pub head: Option<String>,
}

impl Snapshot {
    /// The warning to put above an answer that mentions `referenced` paths: the
    /// staleness banner for those that are pending, and a notice while catch-up has not
    /// finished checking the tree (files it has not reached may be stale unnoticed).
    pub fn banner(&self, referenced: &[&str]) -> Option<String> {
        let wrong_index = self.worktree_mismatch.as_ref().map(Mismatch::warning);
        let stale = banner::banner(&self.pending, referenced, now_ns());
        let unverified = match self.catchup {
            Catchup::NotStarted if self.role == Role::Writer => Some(
                "⚠️ Catch-up has not yet compared the index with the working tree: files edited while codelens \
                 was not running may be stale below without being named."
                    .to_string(),
            ),
            // A follower does not see its writer's progress, only that it is not done.
            Catchup::Running { .. } if self.role == Role::Follower => Some(
                "⚠️ The engine that keeps this index is still comparing it with the working tree: \
                 files edited in the last moments may be stale below without being named."
                    .to_string(),
            ),
            Catchup::Running { checked, total } => Some(format!(
                "⚠️ Catch-up is still comparing the index with the working tree ({checked} of {total} changed-looking files checked): \
                 files edited while codelens was not running may be stale below without being named."
            )),
            _ => None,
        };
        // The worktree warning first: it concerns every line of the answer.
        let parts: Vec<String> = [wrong_index, stale, unverified]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n"))
    }

    /// One line for every answer while edits are not seen as they happen (the watcher
    /// is off or degraded): the index may be behind by more than what the banner names.
    pub fn auto_sync_notice(&self) -> Option<String> {
        // A follower carries its writer's watcher state: it is just as behind.
        if self.watcher.mode == watcher::WatchMode::Native {
            return None;
        }
        let state = if self.watcher.mode == watcher::WatchMode::Disabled {
            "off"
        } else {
            "degraded"
        };
        Some(format!(
            "auto-sync is {state}: {}; run `codelens sync` for an exact index.",
            self.watcher.reason
        ))
    }

    /// One line for every answer while the verdict is unverified for a reason the
    /// catch-up and auto-sync notices do not already give (a writer that does not
    /// answer, a locked index, a rescan, a failed catch-up).
    pub fn freshness_notice(&self) -> Option<String> {
        let reason = self.freshness.unverified()?;
        let consequence = match reason {
            Unverified::CatchingUp { .. }
            | Unverified::WatcherOff
            | Unverified::WatcherDegraded { .. } => return None,
            Unverified::WriterNotResponding { .. } => {
                "the engine that keeps this index (another process) may be stopped: \
                 files edited since are listed from this engine's own scan of the tree"
            }
            Unverified::IndexLocked { .. } => {
                "another process holds the index's write lock: edits wait to be re-indexed"
            }
            Unverified::Rescanning => {
                "events were lost and the tree is being compared with the index again: \
                 files edited in the last moments may be stale below without being named"
            }
            Unverified::CatchUpFailed { .. } => {
                "comparing the index with the working tree failed: files edited while \
                 codelens was not running may be stale below without being named"
            }
        };
        Some(format!(
            "⚠️ Index freshness unverified: {}; {consequence}.",
            reason.describe()
        ))
    }

    /// One line about pending files the answer does not mention.
    pub fn footer(&self, referenced: &[&str]) -> Option<String> {
        banner::footer(&self.pending, referenced, now_ns())
    }

    pub fn catchup_finished(&self) -> bool {
        matches!(self.catchup, Catchup::Done { .. } | Catchup::Failed(_))
            || self.role == Role::Follower
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Re-index every pending file now (the writer only).
    SyncNow,
    /// Compare the whole tree with the index again (the writer only).
    Rescan,
    /// Turn telemetry on or off, stored exactly as `codelens telemetry on|off` stores it
    /// (an environment switch still wins; the snapshot says which decided).
    SetTelemetry(bool),
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    RoleChanged(Role),
    CatchupFinished {
        found: usize,
        duration_ms: u64,
    },
    Synced {
        added: u64,
        modified: u64,
        removed: u64,
        duration_ms: u64,
    },
    PendingChanged {
        count: usize,
    },
    /// The watcher lost events (or ignore rules changed): a full reconcile follows.
    Rescan {
        count: u64,
    },
    LockRetry {
        attempt: u32,
        of: u32,
    },
    TelemetryChanged {
        enabled: bool,
        decided_by: String,
    },
    /// The front end's git worktree started or stopped being another checkout's.
    WorktreeChanged {
        mismatch: bool,
    },
    Error(String),
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::RoleChanged(Role::Writer) => write!(f, "writer: this engine keeps the index"),
            Event::RoleChanged(Role::Follower) => {
                write!(f, "follower: another engine keeps the index")
            }
            Event::CatchupFinished { found, duration_ms } => {
                write!(f, "catch-up: {found} changes found in {duration_ms} ms")
            }
            Event::Synced {
                added,
                modified,
                removed,
                duration_ms,
            } => {
                write!(
                    f,
                    "synced +{added} ~{modified} -{removed} in {duration_ms} ms"
                )
            }
            Event::PendingChanged { count: 1 } => write!(f, "1 file pending"),
            Event::PendingChanged { count } => write!(f, "{count} files pending"),
            Event::Rescan { count } => write!(f, "events lost: full rescan #{count}"),
            Event::LockRetry { attempt, of } => {
                write!(f, "index locked by another process: retry {attempt}/{of}")
            }
            Event::WorktreeChanged { mismatch: true } => {
                write!(f, "worktree changed: reading another checkout's index")
            }
            Event::WorktreeChanged { mismatch: false } => {
                write!(f, "worktree changed: the index matches this checkout again")
            }
            Event::TelemetryChanged {
                enabled,
                decided_by,
            } => write!(
                f,
                "telemetry {} ({decided_by})",
                if *enabled { "on" } else { "off" }
            ),
            Event::Error(message) => write!(f, "error: {message}"),
        }
    }
}

/// How often the index lock is retried, with exponential backoff, before the files
/// are reported as failed (they stay pending).
pub const MAX_LOCK_RETRIES: u32 = 5;
/// Past this many directories due at once (a checkout, a mass rename), one full sync
/// is cheaper than a transaction per directory.
const MAX_DIRS_PER_BATCH: usize = 32;
/// Lost-event rescans this close together are free; later ones back off.
const FREE_RESCANS: u64 = 3;
const MAX_RESCAN_BACKOFF: Duration = Duration::from_secs(10);
/// How often directories the watcher could not watch are re-checked.
const UNWATCHED_RECHECK: Duration = Duration::from_secs(30);
/// The writer checks its own watcher this often (a cookie it must see come back, as
/// watchman does): a watcher that silently stopped must never look healthy.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// How long a heartbeat cookie may take to come back.
const HEARTBEAT_GRACE: Duration = Duration::from_secs(5);
/// Watched directories checked per heartbeat, round robin, so that a watch lost without
/// any event saying so comes back (and its directory is crawled) within a few rounds.
/// A check is one `stat` (a replaced directory has a new inode), ~2 µs; a re-arm
/// outright is two `stat`s, an idempotent `inotify_add_watch` (`IN_MASK_ADD`) and a
/// round trip to notify's thread, 10–20 µs. 2,000 checks and 250 re-arms per 30 s is
/// ≲ 10 ms of CPU per 30 s on the largest trees (measured: the idle figures in the
/// README's watcher benchmark include it).
const CHECK_PER_HEARTBEAT: usize = 2_000;
const REARM_PER_HEARTBEAT: usize = 250;
/// A new directory is crawled again while each crawl finds subdirectories it has just
/// had to watch (files written into them before their watch have no event); a tree
/// still growing past this many rounds is left to its re-index when due.
const MAX_NEW_DIR_CRAWLS: usize = 4;
/// How often the consent files are read again (two small files).
const TELEMETRY_RECHECK: Duration = Duration::from_secs(5);

/// How long a follower's settle waits for the writer to answer its probe; past that it
/// answers from the set as last read (the writer is busy, or not watching).
const FOLLOWER_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The statement-level wait for another connection's SQLite lock, in the engine.
const ENGINE_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// While the verdict is unverified, the engine scans the tree itself this often at
/// most, and never more than a tenth of the time (a scan of 100k files takes ~0.15 s).
const FALLBACK_SCAN_EVERY: Duration = Duration::from_secs(1);
const FALLBACK_SCAN_DUTY: u32 = 10;

/// A follower probes its writer at most this often (at its polls)…
const FOLLOWER_PROBE_EVERY: Duration = Duration::from_millis(500);
/// …and calls it not responding when a probe stays unanswered this long: an idle
/// writer answers within milliseconds, and `status` gives it a quarter of a second.
const WRITER_ANSWER_GRACE: Duration = Duration::from_secs(1);

/// A probe file this old when a writer starts is one nobody waits on any more.
const STALE_PROBE_AGE: Duration = Duration::from_secs(10);

/// What reaches the engine thread.
enum Input {
    Command(Command),
    Fs(notify::Result<notify::Event>),
    /// Reply once every file event before this moment has been applied.
    Settle(Sender<()>),
}

struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    published: Condvar,
    subscribers: Mutex<Vec<Sender<Event>>>,
    /// Catch-up progress, updated by the hashing workers as they go.
    progress: ProgressBar,
}

impl Shared {
    fn emit(&self, event: Event) {
        tracing::debug!(target: "codelens::engine", "{event}");
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// A running engine. Dropping it stops the engine thread and releases its locks.
pub struct Engine {
    shared: Arc<Shared>,
    /// The read API front ends query the index and the project's files with.
    reader: Reader,
    inbox: Sender<Input>,
    thread: Option<JoinHandle<()>>,
    options: EngineOptions,
}

impl Engine {
    /// Opens the project's index (errors such as a corrupt index are returned here)
    /// and starts the engine thread, which decides its role and, as the writer, starts
    /// watching and catching up at once.
    pub fn start(project: Project, options: EngineOptions) -> Result<Engine> {
        Engine::start_subscribed(project, options).map(|(engine, _)| engine)
    }

    /// [`Engine::start`], with a subscription made before the engine thread runs: the
    /// receiver sees every event, the first role and a fast catch-up included.
    pub fn start_subscribed(
        project: Project,
        options: EngineOptions,
    ) -> Result<(Engine, Receiver<Event>)> {
        // Held for the engine's life: `codelens init` must not swap the database file
        // under an open connection (it refuses while an engine runs).
        let reading = project.lock_for_reading()?;
        let store = Store::open(&project.db_path())?;
        let reader = Reader::open(&project)?;
        // Decided before returning, so the first snapshot already tells the truth.
        let engine_lock = project.try_lock_engine()?;
        // Unique per engine, even for two engines one after the other in one process.
        let engine_id = format!("{}:{}", std::process::id(), now_ns());
        if let Some(lock) = &engine_lock {
            // The file is emptied first: a write that fails (a full disk) leaves no id,
            // and `status` keeps checking the tree itself. Only a failing truncation
            // could leave a dead writer's id behind; it is logged.
            if let Err(error) = lock.record_owner(&engine_id) {
                tracing::warn!(target: "codelens::engine", "cannot record the writer's id: {error}");
            }
        }
        // Also known before the first answer: a follower answers at once.
        let mismatch = match &options.start_dir {
            // An unreadable repository is reported by the engine thread's own check.
            Some(start) => worktree::detect_worktree_index_mismatch(start, &project.root)
                .ok()
                .flatten(),
            None => None,
        };
        let debounce_ms = options.watch.debounce.as_millis() as u64;
        // Nothing is vouched for before the first catch-up (a writer) or the first read
        // of the writer's published set (a follower).
        let freshness = Freshness::Unverified {
            reason: Unverified::CatchingUp {
                checked: 0,
                total: 0,
            },
            pending: 0,
        };
        let snapshot = Snapshot {
            seq: 0,
            root: project.root.clone(),
            role: if engine_lock.is_some() {
                Role::Writer
            } else {
                Role::Follower
            },
            stats: store.stats()?,
            last_sync: store.meta("last_sync")?,
            branch: store.meta("git_branch")?,
            pending: Vec::new(),
            catchup: Catchup::NotStarted,
            worktree_mismatch: mismatch.clone(),
            watcher: WatcherStatus::disabled("starting", debounce_ms),
            directories: Vec::new(),
            telemetry: telemetry::status(&options.telemetry),
            error: None,
            freshness: freshness.clone(),
            last_sync_ns: store
                .meta("last_sync_ns")?
                .and_then(|ns| ns.parse::<i64>().ok()),
            head: store.meta("git_head")?,
        };
        let snapshot_telemetry = snapshot.telemetry.clone();
        // The engine retries a locked index itself, and must go on reading file events
        // meanwhile: a statement waits for another connection's lock only briefly.
        store.set_busy_timeout(ENGINE_BUSY_TIMEOUT)?;
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Arc::new(snapshot)),
            published: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            progress: ProgressBar::hidden(),
        });
        let (inbox, receiver) = mpsc::channel();
        let worker = Worker {
            project,
            store,
            shared: Arc::clone(&shared),
            options: options.clone(),
            inbox: inbox.clone(),
            engine_lock,
            engine_id,
            busy: None,
            _reading: reading,
            pending: BTreeMap::new(),
            last_seen_generation: None,
            stats_generation: None,
            catchup: Catchup::NotStarted,
            mismatch,
            error: None,
            watcher: None,
            watches_armed_at_generation: None,
            watcher_status: WatcherStatus::disabled("starting", debounce_ms),
            dirs: BTreeMap::new(),
            cookies: HashMap::new(),
            next_cookie: 0,
            rescans: 0,
            rescans_total: 0,
            last_rescan: None,
            rescan_at: None,
            recheck_at: None,
            pending_dirty: false,
            settled: Vec::new(),
            probes: Vec::new(),
            heartbeat_at: None,
            heartbeat_in_flight: None,
            git_busy_until: None,
            git_dir: None,
            catchup_reindex_at: None,
            telemetry: snapshot_telemetry,
            telemetry_checked: Instant::now(),
            freshness,
            scanned: BTreeMap::new(),
            next_scan_at: None,
            lock_retry: None,
            rescanning: false,
            probe: None,
            probe_sent_at: None,
            writer_set_current: false,
            writer_busy: false,
        };
        let (events_tx, events) = mpsc::channel();
        shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(events_tx);
        let thread = std::thread::Builder::new()
            .name("codelens-engine".into())
            .spawn(move || worker.run(receiver))
            .map_err(|e| Error::io("engine thread", e))?;
        Ok((
            Engine {
                shared,
                reader,
                inbox,
                thread: Some(thread),
                options,
            },
            events,
        ))
    }

    /// Stops the engine, waiting at most `timeout` for its thread to finish what it is
    /// doing (a sync is one transaction: cut short by the process exiting, it rolls
    /// back). True when it ended in time.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.send(Command::Shutdown);
        let deadline = Instant::now() + timeout;
        let Some(thread) = self.thread.take() else {
            return true;
        };
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                // Let the process exit end it; dropping the handle detaches it.
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = thread.join();
        true
    }

    /// The latest snapshot, with live catch-up progress.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let snapshot = Arc::clone(
            &self
                .shared
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if let Catchup::Running { .. } = snapshot.catchup
            && snapshot.role == Role::Writer
        {
            let mut live = (*snapshot).clone();
            let (checked, total) = (
                self.shared.progress.position(),
                self.shared.progress.length().unwrap_or(0),
            );
            live.catchup = Catchup::Running { checked, total };
            if let Freshness::Unverified {
                reason: Unverified::CatchingUp { .. },
                pending,
            } = live.freshness
            {
                live.freshness = Freshness::Unverified {
                    reason: Unverified::CatchingUp { checked, total },
                    pending,
                };
            }
            return Arc::new(live);
        }
        snapshot
    }

    /// The read API: symbols, outlines, definitions, files, text, and the unreported
    /// edits among the paths an answer names. Answers from the index as it is; pair
    /// them with a [`Snapshot`] for their freshness.
    pub fn read(&self) -> &Reader {
        &self.reader
    }

    /// False once the engine thread has ended on its own (it panicked): a front end
    /// must say so instead of showing the last snapshot as live.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Events from now on. The receiver may be dropped at any time.
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    pub fn send(&self, command: Command) {
        // The thread is gone only after Shutdown; nothing left to tell it then.
        let _ = self.inbox.send(Input::Command(command));
    }

    /// Hands the engine a file-system event as if the watcher had delivered it: how
    /// tests and diagnostics exercise paths the kernel rarely takes (a queue overflow).
    pub fn inject_fs_event(&self, event: notify::Event) {
        let _ = self.inbox.send(Input::Fs(Ok(event)));
    }

    /// Makes sure every file event up to now has been applied (a file saved just before
    /// a question is pending in its answer): writes a cookie file and waits, at most
    /// `timeout`, for the watcher to report it. True when settled (or nothing to wait
    /// for: no watcher).
    pub fn settle(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        if self.inbox.send(Input::Settle(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Waits until catch-up has finished, at most the configured timeout, and returns
    /// the snapshot to answer from either way (its banner names what is unverified).
    pub fn wait_for_catchup(&self) -> Arc<Snapshot> {
        self.wait_until(self.options.catchup_timeout, Snapshot::catchup_finished)
            .unwrap_or_else(|| self.snapshot())
    }

    /// Wakes every [`Engine::wait_until`] so it checks its condition again now (a front
    /// end whose condition includes its own stop flag).
    pub fn wake_waiters(&self) {
        let _guard = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.shared.published.notify_all();
    }

    /// Waits until a published snapshot satisfies `ready`, at most `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&Snapshot) -> bool,
    ) -> Option<Arc<Snapshot>> {
        let deadline = Instant::now() + timeout;
        let mut current = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            if ready(&current) {
                return Some(Arc::clone(&current));
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            current = self
                .shared
                .published
                .wait_timeout(current, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the engine knows about one pending file.
#[derive(Debug, Clone)]
struct Pending {
    change: Change,
    first_edit_ns: i64,
    last_edit_ns: i64,
    state: PendingState,
}

/// A directory with changes waiting for quiet.
#[derive(Debug, Clone)]
struct DirWait {
    first: Instant,
    last: Instant,
    /// Re-index the whole subtree (a directory that appeared or went away).
    recursive: bool,
}

impl DirWait {
    /// Trailing debounce with a maximum wait, so a file written continuously is still
    /// indexed.
    fn due_at(&self, debounce: Duration) -> Instant {
        (self.last + debounce).min(self.first + debounce * 5)
    }
}

/// Whether the pending set published in `store` is the running writer engine's view of
/// the tree as it is now: stamped by that engine (its id in `engine.lock`, so not a
/// previous writer's set from before this one's catch-up) and reflecting the latest
/// write to the index (a `codelens sync` by another process clears rows it has seen,
/// and the engine only learns of edits the sync may have missed when it looks again).
/// When false, `status` checks the tree itself and followers say catch-up is running.
pub fn published_set_is_current(project: &Project, store: &Store) -> bool {
    let meta = |key| store.meta(key).ok().flatten();
    let stamped_by_writer = meta("engine_id").is_some_and(|id| Some(id) == project.engine_owner());
    let seen = meta("engine_generation").and_then(|g| g.parse::<u64>().ok());
    stamped_by_writer && seen.is_some() && seen == store.generation().ok()
}

/// The engine thread's state.
struct Worker {
    project: Project,
    store: Store,
    shared: Arc<Shared>,
    options: EngineOptions,
    /// For the watcher's event handler.
    inbox: Sender<Input>,
    /// Held while this engine is the writer.
    engine_lock: Option<IndexLock>,
    /// Held from the start of work during which no file event is read until the events
    /// queued meanwhile are published ([`Project::lock_engine_busy`]).
    busy: Option<IndexLock>,
    /// This engine's id: recorded in `engine.lock` while it is the writer, and stamped
    /// (`meta.engine_id`) on every pending set it publishes from its first catch-up on.
    engine_id: String,
    /// The shared swap lock, held while the database is open.
    _reading: Option<IndexLock>,
    pending: BTreeMap<RelPath, Pending>,
    /// The index's write counter after our own last write: another value means another
    /// process wrote.
    last_seen_generation: Option<u64>,
    /// The write counter the published stats were read at.
    stats_generation: Option<u64>,
    catchup: Catchup,
    mismatch: Option<Mismatch>,
    error: Option<String>,
    watcher: Option<DirWatcher>,
    /// Set when the watcher has just armed every watch: the store's write counter read
    /// before it did. If the catch-up that follows sees the same counter, the
    /// directories it finds unchanged since the cache recorded them are the very ones
    /// just watched, and need no second arming.
    watches_armed_at_generation: Option<u64>,
    watcher_status: WatcherStatus,
    dirs: BTreeMap<RelPath, DirWait>,
    cookies: HashMap<u64, Sender<()>>,
    next_cookie: u64,
    /// Lost-event rescans close together (the backoff's count; reset after a quiet minute).
    rescans: u64,
    /// Every lost-event rescan since start: what `watcher.rescans` reports.
    rescans_total: u64,
    last_rescan: Option<Instant>,
    /// A full reconcile is due then (lost events, changed ignore rules).
    rescan_at: Option<Instant>,
    /// Unwatched directories are re-checked then.
    recheck_at: Option<Instant>,
    /// While git rewrites the tree (its `index.lock` exists), re-indexing waits until then.
    git_busy_until: Option<Instant>,
    /// This worktree's git directory, where `index.lock` appears.
    git_dir: Option<PathBuf>,
    /// Files found by catch-up are re-indexed then (`reindex_delay`).
    catchup_reindex_at: Option<Instant>,
    /// The next heartbeat is due then; the one in flight, with when it was written.
    heartbeat_at: Option<Instant>,
    heartbeat_in_flight: Option<(u64, Instant)>,
    /// The pending set changed since it was last published in the store.
    pending_dirty: bool,
    /// Cookie waiters whose cookie arrived: answered once the snapshot that includes
    /// every event before it is published.
    settled: Vec<Sender<()>>,
    /// Probe files seen (their names), deleted once the events before them are
    /// published.
    probes: Vec<String>,
    telemetry: TelemetryStatus,
    telemetry_checked: Instant,
    /// The verdict as last published.
    freshness: Freshness,
    /// Files the fallback scan found differing and that the pending set does not hold
    /// (shown as `unsynced`): replaced by each scan, cleared once the verdict needs none.
    scanned: BTreeMap<RelPath, Pending>,
    /// The next fallback scan is due then (`None`: as soon as one is needed).
    next_scan_at: Option<Instant>,
    /// Set while another process holds the index's write lock: the retry in progress
    /// (0 between retries, when a publish of the pending set found it locked).
    lock_retry: Option<u32>,
    /// The catch-up running (or due) was caused by lost events, not by a start.
    rescanning: bool,
    /// A follower's probe to its writer, unanswered so far, and when the last probe
    /// was sent.
    probe: Option<(PathBuf, Instant)>,
    probe_sent_at: Option<Instant>,
    /// A follower's last read: whether its writer's published set is current
    /// ([`published_set_is_current`]), and whether the writer was busy.
    writer_set_current: bool,
    writer_busy: bool,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Input>) {
        self.check_worktree();
        match self.role() {
            Role::Writer => self.become_writer(),
            Role::Follower => {
                self.watcher_status = WatcherStatus::disabled(
                    "follower: the writer engine (another process) watches this index",
                    self.debounce_ms(),
                );
                self.follow();
            }
        }
        let mut last_poll = Instant::now();
        'engine: loop {
            // Right after busy work: take what queued up meanwhile without waiting, so
            // it is published (and the busy lock released) at once.
            let timeout = if self.busy.is_some() && !self.pending_dirty {
                Duration::ZERO
            } else {
                self.next_wakeup().saturating_duration_since(Instant::now())
            };
            let first = match inbox.recv_timeout(timeout) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Apply everything already queued before doing slow work or publishing: an
            // event storm costs one publish, not one per event.
            for input in first
                .into_iter()
                .chain(std::iter::from_fn(|| inbox.try_recv().ok()))
            {
                if !self.handle(input) {
                    break 'engine;
                }
            }
            // This engine's front end sees the edits at once, even when publishing them in
            // the store has to wait for another process's lock…
            self.publish();
            // …and other processes (`codelens status`, followers) as soon as it can.
            if self.role() == Role::Writer && self.pending_dirty {
                self.persist_pending();
            }
            if !self.pending_dirty {
                // Every event queued during the busy work is handled and published…
                self.busy = None;
                // …and every event before each probe.
                self.answer_probes();
            }
            self.publish();
            for reply in self.settled.drain(..) {
                let _ = reply.send(());
            }
            // Polls that may start busy work (a catch-up after another process's sync)
            // come after the release above: the events queued during that work are
            // drained first, at the top of the next round.
            if last_poll.elapsed() >= self.options.poll_interval {
                last_poll = Instant::now();
                self.check_worktree();
                // `codelens telemetry on|off` in another process shows here too.
                if self.telemetry_checked.elapsed() >= TELEMETRY_RECHECK {
                    self.telemetry = telemetry::status(&self.options.telemetry);
                    self.telemetry_checked = Instant::now();
                }
                match self.role() {
                    Role::Follower => {
                        if self.try_take_over() {
                            continue;
                        }
                        self.follow();
                    }
                    Role::Writer => self.notice_other_writers(),
                }
            }
            if self.role() == Role::Writer {
                self.run_due_work();
            }
            self.fallback_scan_if_due();
            // What the polls read (a follower) or the due work did (a writer).
            self.publish();
        }
        if let Some((probe, _)) = self.probe.take() {
            let _ = std::fs::remove_file(probe);
        }
        // Leave no cookie behind, and let anyone waiting on one go.
        // The heartbeat's cookie is not in `cookies` (nobody waits on it).
        if let Some(watcher) = &self.watcher {
            let heartbeat = self.heartbeat_in_flight.map(|(n, _)| n);
            for n in self.cookies.keys().copied().chain(heartbeat) {
                watcher.remove_cookie(n);
            }
        }
    }

    fn debounce_ms(&self) -> u64 {
        self.options.watch.debounce.as_millis() as u64
    }

    /// When the loop must wake up at the latest.
    fn next_wakeup(&self) -> Instant {
        let debounce = self.options.watch.debounce;
        let now = Instant::now();
        let mut at = now + self.options.poll_interval;
        // Directories due while git is busy wait for its lock to go, not in a spin.
        let not_before = self.git_busy_until.unwrap_or(now);
        for wait in self.dirs.values() {
            at = at.min(wait.due_at(debounce).max(not_before));
        }
        if let Some(due) = self.catchup_reindex_at {
            at = at.min(due);
        }
        if self.pending_dirty && self.role() == Role::Writer {
            // The last publish of the pending set met a busy lock: try again soon.
            at = at.min(now + Duration::from_millis(100));
        }
        let heartbeat_deadline = self
            .heartbeat_in_flight
            .map(|(_, sent)| sent + HEARTBEAT_GRACE);
        for due in [
            self.rescan_at,
            self.recheck_at,
            self.heartbeat_at,
            heartbeat_deadline,
        ]
        .into_iter()
        .flatten()
        {
            at = at.min(due);
        }
        if self.freshness.unverified().is_some() {
            at = at.min(self.next_scan_at.unwrap_or(now));
        }
        // While files wait, their countdown is on screen: refresh it a few times a second.
        if !self.dirs.is_empty() {
            at = at.min(Instant::now() + Duration::from_millis(250));
        }
        at
    }

    /// Applies one input; false to stop the engine.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Command(Command::Shutdown) => return false,
            Input::Command(Command::SyncNow) if self.role() == Role::Writer => self.reindex(),
            Input::Command(Command::Rescan) if self.role() == Role::Writer => {
                self.rescanning = true;
                self.catch_up();
            }
            Input::Command(Command::SetTelemetry(on)) => {
                match telemetry::set_consent(&self.options.telemetry, on) {
                    Ok(status) => {
                        self.shared.emit(Event::TelemetryChanged {
                            enabled: status.enabled,
                            decided_by: status.decided_by.describe(),
                        });
                        self.telemetry = status;
                    }
                    Err(error) => self
                        .shared
                        .emit(Event::Error(format!("telemetry: {error}"))),
                }
                self.telemetry_checked = Instant::now();
            }
            Input::Command(_) => {}
            Input::Settle(reply) => self.settle(reply),
            Input::Fs(Ok(event)) => {
                let changes = match &mut self.watcher {
                    Some(watcher) => watcher.classify(&event),
                    // A follower has no watcher; an injected event still counts.
                    None if event.need_rescan() => vec![FsChange::Rescan],
                    None => Vec::new(),
                };
                for change in changes {
                    self.apply_fs_change(change);
                }
            }
            // The backend failed to deliver something: what it was is unknown.
            Input::Fs(Err(error)) => {
                self.error = Some(format!("file watcher: {error}"));
                self.schedule_rescan();
            }
        }
        true
    }

    fn settle(&mut self, reply: Sender<()>) {
        let Some(watcher) = &self.watcher else {
            // A follower asks the writer, whose watcher saw the edit, and reads the set
            // it published after it. A writer that does not watch never answers.
            let writer_watches = self.watcher_status.mode != watcher::WatchMode::Disabled;
            if self.role() == Role::Follower
                && writer_watches
                && self.project.probe_writer(FOLLOWER_PROBE_TIMEOUT)
            {
                self.follow();
            }
            self.settled.push(reply);
            return;
        };
        let n = self.next_cookie;
        self.next_cookie += 1;
        match watcher.write_cookie(n) {
            Ok(()) => {
                self.cookies.insert(n, reply);
            }
            Err(_) => self.settled.push(reply),
        }
    }

    fn apply_fs_change(&mut self, change: FsChange) {
        let now = Instant::now();
        let edited = now_ns();
        match change {
            FsChange::File { path, dir } => {
                // Through the tree: below a directory that is a symlink now, nothing is.
                let exists = (self.watcher.as_ref()).is_some_and(|w| w.tree().exists(&path));
                let indexed = self.store.has_file(&path).unwrap_or(true);
                if !exists && !indexed && !self.pending.contains_key(&path) {
                    // Never indexed and not there now (a temporary file already gone, or
                    // a name seen through a watch that raced a symlink swap): nothing to
                    // reconcile, and not a name to show anyone.
                    return;
                }
                let change = if !exists {
                    Change::Deleted
                } else if indexed {
                    Change::Modified
                } else {
                    Change::Added
                };
                self.mark_pending(path, change, edited);
                self.wait_on(dir, false, now);
            }
            FsChange::NewDir(dir) => {
                // Watch first, then crawl: a file written in between has an event, one
                // written before is found by the crawl. Subdirectories the crawl finds
                // get their watch only after it passed them, so a file written into one
                // in between has no event: the crawl runs again once they are watched,
                // until it finds no directory it had not watched (usually twice).
                if let Some(watcher) = &mut self.watcher {
                    watcher.watch_dir(&dir);
                }
                let mut crawled = std::collections::HashSet::new();
                let Some(tree) = self.watcher.as_ref().map(|w| w.tree().clone()) else {
                    return;
                };
                for _ in 0..MAX_NEW_DIR_CRAWLS {
                    let walked = scan::walk_scope(&tree, &dir, true);
                    let mut unwatched = 0;
                    for sub in &walked.dirs {
                        if crawled.insert(sub.clone()) {
                            unwatched += 1;
                            if let Some(watcher) = &mut self.watcher {
                                watcher.watch_dir(sub);
                            }
                        }
                    }
                    for file in walked.files {
                        self.mark_pending(file.path, Change::Added, edited);
                    }
                    if unwatched == 0 || self.watcher.is_none() {
                        break;
                    }
                }
                self.wait_on(dir, true, now);
                self.refresh_watcher_status();
            }
            FsChange::DirGone(dir) => {
                if let Some(watcher) = &mut self.watcher {
                    watcher.forget_dir(&dir);
                }
                let rows: Vec<RelPath> = self
                    .store
                    .file_rows_in(&dir, true)
                    .map(|rows| rows.into_iter().map(|(path, _)| path).collect())
                    .unwrap_or_default();
                for path in rows {
                    self.mark_pending(path, Change::Deleted, edited);
                }
                self.wait_on(dir, true, now);
                self.refresh_watcher_status();
            }
            FsChange::RulesChanged | FsChange::Rescan => self.schedule_rescan(),
            FsChange::Probe(name) => self.probes.push(name),
            FsChange::Cookie(n) => {
                if let Some(reply) = self.cookies.remove(&n) {
                    self.settled.push(reply);
                }
                if self.heartbeat_in_flight.is_some_and(|(beat, _)| beat == n) {
                    self.heartbeat_in_flight = None;
                }
                if let Some(watcher) = &self.watcher {
                    watcher.remove_cookie(n);
                }
            }
        }
    }

    /// Deletes the probe files seen so far ([`Project::probe_writer`]): called once
    /// every event before them is handled and the pending set is published.
    fn answer_probes(&mut self) {
        let dir = self.project.index_dir();
        for name in self.probes.drain(..) {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }

    fn mark_pending(&mut self, path: RelPath, change: Change, edited: i64) {
        self.pending_dirty = true;
        let entry = self.pending.entry(path).or_insert(Pending {
            change,
            first_edit_ns: edited,
            last_edit_ns: edited,
            state: PendingState::Waiting {
                reindex_in_ms: None,
            },
        });
        entry.change = change;
        entry.last_edit_ns = entry.last_edit_ns.max(edited);
        entry.state = PendingState::Waiting {
            reindex_in_ms: None,
        };
    }

    /// Restarts `dir`'s quiet window.
    fn wait_on(&mut self, dir: RelPath, recursive: bool, now: Instant) {
        let wait = self.dirs.entry(dir).or_insert(DirWait {
            first: now,
            last: now,
            recursive,
        });
        wait.last = now;
        wait.recursive |= recursive;
    }

    /// Whether git holds its index lock (a checkout, a rebase, a merge in progress). A
    /// lock older than a minute is a leftover of a crashed git, not work in progress.
    #[allow(clippy::disallowed_methods)] // git's own lock file, not the project's content
    fn git_is_busy(&self) -> bool {
        let Some(git_dir) = &self.git_dir else {
            return false;
        };
        std::fs::metadata(git_dir.join("index.lock"))
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(60))
    }

    /// Sends a heartbeat cookie when one is due; when the last one never came back, the
    /// watcher is broken: say so, restart it and reconcile everything.
    fn heartbeat(&mut self, now: Instant) {
        if let Some((_, sent)) = self.heartbeat_in_flight
            && now.duration_since(sent) >= HEARTBEAT_GRACE
        {
            if let (Some((n, _)), Some(watcher)) = (self.heartbeat_in_flight, &self.watcher) {
                watcher.remove_cookie(n);
            }
            self.heartbeat_in_flight = None;
            self.error = Some("the file watcher stopped delivering events; it was restarted and the tree re-checked".into());
            self.shared
                .emit(Event::Error(self.error.clone().unwrap_or_default()));
            self.watcher = None;
            self.start_watcher();
            self.schedule_rescan();
            return;
        }
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        if self.heartbeat_in_flight.is_none() && self.heartbeat_at.is_none_or(|at| at <= now) {
            // A lost watch never stays silent: re-arm a slice of them, and crawl any
            // directory replaced behind the watcher's back (as if it had just appeared).
            let replaced = watcher.rearm_some(CHECK_PER_HEARTBEAT, REARM_PER_HEARTBEAT);
            let Some(watcher) = &self.watcher else { return };
            let n = self.next_cookie;
            self.next_cookie += 1;
            if watcher.write_cookie(n).is_ok() {
                self.heartbeat_in_flight = Some((n, now));
            }
            self.heartbeat_at = Some(now + HEARTBEAT_EVERY);
            for dir in replaced {
                tracing::warn!(dir = %dir.to_string_lossy(), "directory watch was lost; re-armed and re-crawled");
                self.apply_fs_change(FsChange::NewDir(dir));
            }
        }
    }

    /// Lost events: a full reconcile, at once for the first few, then backing off
    /// (exponentially, up to 10 s) while they keep coming.
    fn schedule_rescan(&mut self) {
        // A follower reconciles nothing: its writer does.
        if self.role() != Role::Writer {
            return;
        }
        let now = Instant::now();
        if self
            .last_rescan
            .is_some_and(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            self.rescans = 0;
        }
        self.rescans += 1;
        self.rescans_total += 1;
        self.last_rescan = Some(now);
        let delay = match self.rescans.checked_sub(FREE_RESCANS + 1) {
            None => Duration::ZERO,
            Some(extra) => (Duration::from_millis(500) * 2u32.saturating_pow(extra.min(16) as u32))
                .min(MAX_RESCAN_BACKOFF),
        };
        let at = now + delay;
        self.rescan_at = Some(self.rescan_at.map_or(at, |current| current.min(at)));
        self.shared.emit(Event::Rescan {
            count: self.rescans_total,
        });
        self.refresh_watcher_status();
        // `codelens status` in another process reports the count too.
        self.pending_dirty = true;
    }

    /// Re-indexes what is due: a full reconcile after lost events, directories whose
    /// quiet window passed, unwatched directories on their schedule.
    fn run_due_work(&mut self) {
        let now = Instant::now();
        self.heartbeat(now);
        if self.rescan_at.is_some_and(|at| at <= now) || self.recheck_at.is_some_and(|at| at <= now)
        {
            // Lost events (not the periodic re-check of unwatched directories, whose verdict
            // stays "degraded") make the verdict "rescanning" until this catch-up ends.
            self.rescanning = self.rescan_at.is_some_and(|at| at <= now);
            self.rescan_at = None;
            if self.recheck_at.is_some_and(|at| at <= now) {
                self.recheck_at = Some(now + UNWATCHED_RECHECK);
            }
            self.dirs.clear();
            self.catch_up();
            return;
        }
        if self.catchup_reindex_at.is_some_and(|at| at <= now) {
            self.catchup_reindex_at = None;
            if !self.pending.is_empty() {
                self.reindex();
                return;
            }
        }
        // A git checkout or rebase is rewriting the tree: let it finish first.
        if self.git_is_busy() {
            self.git_busy_until = Some(now + Duration::from_millis(200));
            return;
        }
        self.git_busy_until = None;
        let debounce = self.options.watch.debounce;
        let due: Vec<RelPath> = self
            .dirs
            .iter()
            .filter(|(_, w)| w.due_at(debounce) <= now)
            .map(|(d, _)| d.clone())
            .collect();
        if due.len() > MAX_DIRS_PER_BATCH {
            self.dirs.clear();
            self.reindex();
            return;
        }
        for dir in due {
            let recursive = self.dirs.remove(&dir).is_some_and(|w| w.recursive);
            self.reindex_dir(&dir, recursive);
        }
    }

    /// Marks the start of work during which events queue unread: until they are
    /// published, `status` checks the tree itself rather than trust the published set.
    fn begin_busy(&mut self) {
        if self.busy.is_none() && self.role() == Role::Writer {
            // Failing only means `status` may read the set meanwhile, as before.
            self.busy = self.project.lock_engine_busy().ok();
        }
    }

    fn reindex_dir(&mut self, dir: &RelPath, recursive: bool) {
        self.begin_busy();
        for (path, pending) in self.pending.iter_mut() {
            if path_in_dir(path, dir, recursive) {
                pending.state = PendingState::Indexing;
            }
        }
        self.publish();
        let (project, scope) = (self.project.clone(), dir.clone());
        let result = self
            .with_write_lock(|store| reconcile::reindex_scope(&project, store, &scope, recursive));
        match result {
            Ok((report, looked_at)) => {
                for path in &looked_at {
                    self.pending.remove(path);
                }
                // Files the walk did not see at all (an ignored file's event) are done too.
                self.pending.retain(|path, p| {
                    !(path_in_dir(path, dir, recursive)
                        && matches!(
                            p.state,
                            PendingState::Indexing | PendingState::Retrying { .. }
                        ))
                });
                self.last_seen_generation = self.store.generation().ok();
                self.error = None;
                self.persist_pending();
                if report.changed() {
                    self.shared.emit(Event::Synced {
                        added: report.added,
                        modified: report.modified,
                        removed: report.removed,
                        duration_ms: report.duration_ms,
                    });
                }
            }
            Err(error) => {
                self.reindex_failed(error);
                // Try the directory again later rather than leave its files failed.
                self.wait_on(
                    dir.clone(),
                    recursive,
                    Instant::now() + Duration::from_secs(2),
                );
            }
        }
        self.publish();
    }

    /// Runs a write with the index lock, retrying up to [`MAX_LOCK_RETRIES`] times with
    /// exponential backoff while another process holds it (or SQLite reports busy).
    fn with_write_lock<T>(&mut self, mut write: impl FnMut(&mut Store) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            let outcome = match self.project.try_lock_for_writing() {
                Ok(Some(_lock)) => match write(&mut self.store) {
                    Err(Error::Sqlite(e))
                        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
                    {
                        None
                    }
                    other => Some(other),
                },
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            };
            if let Some(outcome) = outcome {
                if outcome.is_ok() {
                    self.lock_retry = None;
                }
                return outcome;
            }
            attempt += 1;
            self.lock_retry = Some(attempt);
            if attempt > MAX_LOCK_RETRIES {
                return Err(Error::Io {
                    path: self.project.index_dir(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "the index stayed locked by another process through {MAX_LOCK_RETRIES} retries"
                        ),
                    ),
                });
            }
            for pending in self.pending.values_mut() {
                if matches!(
                    pending.state,
                    PendingState::Indexing | PendingState::Retrying { .. }
                ) {
                    pending.state = PendingState::Retrying {
                        attempt: attempt as u8,
                        of: MAX_LOCK_RETRIES as u8,
                    };
                }
            }
            self.shared.emit(Event::LockRetry {
                attempt,
                of: MAX_LOCK_RETRIES,
            });
            self.publish();
            std::thread::sleep(Duration::from_millis(50) * 2u32.pow(attempt));
        }
    }

    fn reindex_failed(&mut self, error: Error) {
        for pending in self.pending.values_mut() {
            if matches!(
                pending.state,
                PendingState::Indexing | PendingState::Retrying { .. }
            ) {
                pending.state = PendingState::Failed;
            }
        }
        self.persist_pending();
        self.fail(format!("re-indexing failed: {error}"));
    }

    /// Takes the engine lock if its writer is gone; as the new writer, starts watching
    /// and catches up at once.
    fn try_take_over(&mut self) -> bool {
        match self.project.try_lock_engine() {
            Ok(Some(lock)) => {
                let _ = lock.record_owner(&self.engine_id);
                self.engine_lock = Some(lock);
                if let Some((probe, _)) = self.probe.take() {
                    let _ = std::fs::remove_file(probe);
                }
                self.become_writer();
                true
            }
            Ok(None) => false,
            Err(error) => {
                self.fail(error.to_string());
                false
            }
        }
    }

    fn become_writer(&mut self) {
        self.shared.emit(Event::RoleChanged(Role::Writer));
        self.project.remove_stale_probes(STALE_PROBE_AGE);
        // Watch first: an edit made while catch-up runs must not fall between the two.
        self.start_watcher();
        self.catch_up();
    }

    fn start_watcher(&mut self) {
        let debounce_ms = self.debounce_ms();
        let watch = &self.options.watch;
        if !watch.enabled {
            let reason = "watching is off for this engine (CODELENS_NO_WATCH=1, or not requested)";
            self.watcher_status = WatcherStatus::disabled(reason, debounce_ms);
            return;
        }
        if let Some(reason) = watcher::disabled_reason(&self.project.root, false, watch.force) {
            self.watcher_status = WatcherStatus::disabled(reason, debounce_ms);
            return;
        }
        self.git_dir = super::git::discover(&self.project.root)
            .ok()
            .flatten()
            .map(|g| g.git_dir);
        // The directory cache names the tree's directories as of the last walk: watching
        // those needs no walk now. The catch-up that follows arms the watches of the
        // directories it actually finds (and crawls again any it had to add), so a
        // stale entry costs only a failed watch.
        let tree = match self.project.tree() {
            Ok(tree) => tree,
            Err(error) => {
                self.watcher_status = WatcherStatus::disabled(error.to_string(), debounce_ms);
                return;
            }
        };
        let generation = self.store.generation().ok();
        let dirs = match self.store.dir_cache() {
            Ok(cache) if !cache.dirs.is_empty() => cache.watched_dirs(),
            _ => scan::walk(&tree).dirs,
        };
        let cap = watch
            .max_dir_watches
            .unwrap_or_else(watcher::default_max_dir_watches);
        let inbox = self.inbox.clone();
        let handler = move |event| {
            let _ = inbox.send(Input::Fs(event));
        };
        match DirWatcher::start(&tree, &dirs, cap, handler) {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                self.watches_armed_at_generation = generation;
            }
            Err(reason) => self.watcher_status = WatcherStatus::disabled(reason, debounce_ms),
        }
        self.refresh_watcher_status();
    }

    fn refresh_watcher_status(&mut self) {
        if let Some(watcher) = &self.watcher {
            self.watcher_status = watcher.status(self.rescans_total, self.debounce_ms());
            if self.watcher_status.mode == watcher::WatchMode::Degraded && self.recheck_at.is_none()
            {
                self.recheck_at = Some(Instant::now() + UNWATCHED_RECHECK);
            }
        }
    }

    /// Re-checks the git worktree the front end stands in against the index's checkout.
    fn check_worktree(&mut self) {
        let Some(start) = &self.options.start_dir else {
            return;
        };
        match worktree::detect_worktree_index_mismatch(start, &self.project.root) {
            Ok(mismatch) => self.mismatch = mismatch,
            Err(error) => self.error = Some(error.to_string()),
        }
    }

    fn role(&self) -> Role {
        if self.engine_lock.is_some() {
            Role::Writer
        } else {
            Role::Follower
        }
    }

    /// A follower's tick: the writer's pending set, and how the writer keeps up.
    fn follow(&mut self) {
        let meta = |key| self.store.meta(key).ok().flatten();
        if let (Some(mode), Some(reason)) = (meta("watcher_mode"), meta("watcher_reason")) {
            let mode = match mode.as_str() {
                "native" => watcher::WatchMode::Native,
                "degraded" => watcher::WatchMode::Degraded,
                _ => watcher::WatchMode::Disabled,
            };
            let debounce_ms = self.debounce_ms();
            self.watcher_status = WatcherStatus {
                mode,
                reason: format!("the writer engine's watcher: {reason}"),
                unwatched_dirs: meta("watcher_unwatched_dirs")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                ..WatcherStatus::disabled("", debounce_ms)
            };
        }
        self.probe_writer_in_background();
        let rows = match self.store.pending_rows() {
            Ok(rows) => rows,
            Err(error) => return self.fail(error.to_string()),
        };
        // A writer that just started (or took over) has not published what its catch-up
        // finds yet: the set in the table is its predecessor's, and answers say so. Same
        // while the writer is busy (catch-up, re-indexing a burst): it reads no file
        // events then, so an edit saved meanwhile is not in the table yet.
        self.writer_set_current = published_set_is_current(&self.project, &self.store);
        self.writer_busy = self.project.writer_engine_busy();
        if !self.writer_set_current || self.writer_busy {
            self.catchup = Catchup::Running {
                checked: 0,
                total: 0,
            };
        } else if matches!(self.catchup, Catchup::Running { .. }) {
            self.catchup = Catchup::NotStarted;
        }
        self.pending = rows
            .into_iter()
            .map(|row| {
                let pending = Pending {
                    change: change_from_name(&row.change),
                    first_edit_ns: row.first_edit_ns,
                    last_edit_ns: row.last_edit_ns,
                    state: state_from_name(&row.state),
                };
                (row.path, pending)
            })
            .collect();
    }

    /// A writer's tick: a write by another process (`codelens sync`) may have changed
    /// the index and cleared the published pending set: check the tree again.
    fn notice_other_writers(&mut self) {
        match self.store.generation() {
            Ok(generation) if Some(generation) != self.last_seen_generation => {
                self.pending.clear();
                self.dirs.clear();
                self.catch_up();
            }
            Ok(_) => {}
            Err(error) => self.fail(error.to_string()),
        }
    }

    /// Compares the whole tree with the index (stat everything, hash what changed),
    /// publishes what differs as pending, and re-indexes it when no delay applies.
    fn catch_up(&mut self) {
        self.begin_busy();
        let started = Instant::now();
        self.shared.progress.set_position(0);
        self.shared.progress.set_length(0);
        self.catchup = Catchup::Running {
            checked: 0,
            total: 0,
        };
        self.publish();
        // Read before the scan: a write by another process during it must still be
        // noticed (and looked at) afterwards.
        let generation = self.store.generation().ok();
        let scanned = reconcile::check_tree(&self.project, &self.store, &self.shared.progress);
        let armed_at = self.watches_armed_at_generation.take();
        let found = match scanned {
            Ok(checked) => {
                // Events were lost: directories created meanwhile get their watch now,
                // and every other one is armed again (one deleted and recreated meanwhile
                // lost its kernel watch with its old inode). Those newly watched or found
                // replaced are crawled again once quiet: a file written there after the
                // walk above and before its watch has no event. Right after the watcher
                // armed everything, with no write to the index since, a directory the
                // cache found unchanged is the one just watched: not armed twice.
                let nothing_written =
                    armed_at.is_some() && armed_at == self.store.generation().ok();
                let just_armed = if nothing_written {
                    checked.unchanged_dirs
                } else {
                    Vec::new()
                };
                if let Some(watcher) = &mut self.watcher {
                    let renewed = watcher.sync_watches(&checked.dirs, &just_armed);
                    let now = Instant::now();
                    for dir in renewed {
                        self.wait_on(dir, true, now);
                    }
                }
                checked.pending
            }
            Err(error) => {
                self.catchup = Catchup::Failed(error.to_string());
                self.rescanning = false;
                return self.fail(error.to_string());
            }
        };
        let count = found.len();
        let now = now_ns();
        for file in found {
            // A deleted file has no mtime: it was seen gone now.
            let edited = file.edited_at_ns.unwrap_or(now);
            let entry = self.pending.entry(file.path).or_insert(Pending {
                change: file.change,
                first_edit_ns: edited,
                last_edit_ns: edited,
                state: PendingState::Waiting {
                    reindex_in_ms: None,
                },
            });
            entry.change = file.change;
            entry.first_edit_ns = entry.first_edit_ns.min(edited);
            entry.last_edit_ns = entry.last_edit_ns.max(edited);
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        self.catchup = Catchup::Done {
            found: count,
            duration_ms,
        };
        self.rescanning = false;
        self.last_seen_generation = generation;
        self.persist_pending();
        self.shared.emit(Event::CatchupFinished {
            found: count,
            duration_ms,
        });
        self.refresh_watcher_status();
        self.publish();
        if !self.pending.is_empty() {
            if self.options.reindex_delay.is_zero() {
                self.reindex();
            } else {
                self.catchup_reindex_at = Some(Instant::now() + self.options.reindex_delay);
            }
        }
    }

    /// Brings the whole index up to date (which also clears the published pending set).
    fn reindex(&mut self) {
        self.begin_busy();
        for pending in self.pending.values_mut() {
            pending.state = PendingState::Indexing;
        }
        self.publish();
        let project = self.project.clone();
        let result =
            self.with_write_lock(|store| reconcile::sync(&project, store, &ProgressBar::hidden()));
        match result {
            Ok(report) => {
                self.pending.clear();
                self.scanned.clear();
                self.dirs.clear();
                // Publish the (now empty) set stamped with the generation this sync
                // wrote, or status would keep checking the tree itself.
                self.pending_dirty = true;
                self.error = None;
                self.last_seen_generation = self.store.generation().ok();
                self.shared.emit(Event::Synced {
                    added: report.added,
                    modified: report.modified,
                    removed: report.removed,
                    duration_ms: report.duration_ms,
                });
                self.publish();
            }
            Err(error) => {
                self.reindex_failed(error);
                self.rescan_at = Some(Instant::now() + Duration::from_secs(5));
            }
        }
    }

    /// Publishes the pending set in the store for followers and `codelens status`. One
    /// attempt: when another process holds the index lock, the loop tries again shortly
    /// instead of blocking on it.
    fn persist_pending(&mut self) {
        let rows: Vec<PendingRow> = self
            .pending
            .iter()
            .map(|(path, p)| PendingRow {
                path: path.clone(),
                change: change_name(p.change).to_string(),
                first_edit_ns: p.first_edit_ns,
                last_edit_ns: p.last_edit_ns,
                state: state_name(p.state).to_string(),
            })
            .collect();
        let (mode, reason, rescans, unwatched) = (
            self.watcher_status.mode_name(),
            self.watcher_status.reason.clone(),
            self.watcher_status.rescans,
            self.watcher_status.unwatched_dirs,
        );
        let store = &mut self.store;
        let engine_id = &self.engine_id;
        let seen_generation = self
            .last_seen_generation
            .map_or_else(String::new, |g| g.to_string());
        let written = match self.project.try_lock_for_writing() {
            Ok(Some(_lock)) => (|| {
                let batch = store.batch()?;
                batch.replace_pending(&rows)?;
                // For `codelens status` in another process: how this writer keeps up.
                batch.set_meta("watcher_mode", mode)?;
                batch.set_meta("watcher_reason", &reason)?;
                batch.set_meta("watcher_rescans", &rescans.to_string())?;
                batch.set_meta("watcher_unwatched_dirs", &unwatched.to_string())?;
                // This set comes from an engine that has compared the tree with the
                // index (persisting starts at the end of its first catch-up).
                batch.set_meta("engine_id", engine_id)?;
                // …and as of this write of the index: one made later by another process
                // (a CLI sync) makes the set unconfirmed until this engine looks again.
                batch.set_meta("engine_generation", &seen_generation)?;
                batch.commit()
            })()
            .map(|()| true),
            Ok(None) => Ok(false),
            Err(error) => Err(error),
        };
        match written {
            Ok(true) => {
                self.pending_dirty = false;
                self.lock_retry = None;
            }
            // Another process holds the index (our lock, or SQLite's): followers and
            // `status` cannot see these edits until it lets go.
            Ok(false) => {
                self.pending_dirty = true;
                self.lock_retry.get_or_insert(0);
            }
            Err(Error::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                self.pending_dirty = true;
                self.lock_retry.get_or_insert(0);
            }
            Err(error) => {
                self.pending_dirty = false;
                self.fail(format!("cannot publish the pending set: {error}"));
            }
        }
    }

    fn fail(&mut self, message: String) {
        self.error = Some(message.clone());
        self.shared.emit(Event::Error(message));
        self.publish();
    }

    /// A follower's check on its writer, without waiting: collects the answer to the
    /// probe sent earlier, and sends the next one. Only a writer that watches answers.
    fn probe_writer_in_background(&mut self) {
        if let Some((probe, _)) = &self.probe
            && project::probe_answered(probe)
        {
            self.probe = None;
        }
        if self.watcher_status.mode == watcher::WatchMode::Disabled {
            if let Some((probe, _)) = self.probe.take() {
                let _ = std::fs::remove_file(probe);
            }
            return;
        }
        let now = Instant::now();
        if self.probe.is_none()
            && self
                .probe_sent_at
                .is_none_or(|at| now.duration_since(at) >= FOLLOWER_PROBE_EVERY)
        {
            self.probe = self.project.send_probe().map(|probe| (probe, now));
            self.probe_sent_at = Some(now);
        }
    }

    /// Why the pending set cannot be vouched for right now, if it cannot.
    fn unverified_reason(&self) -> Option<Unverified> {
        let watcher = &self.watcher_status;
        if self.role() == Role::Follower {
            // The writer's set is its predecessor's, or from before another process's
            // sync: its catch-up has not published what it found yet.
            if !self.writer_set_current {
                return Some(Unverified::CatchingUp {
                    checked: 0,
                    total: 0,
                });
            }
            if watcher.mode == watcher::WatchMode::Disabled {
                return Some(Unverified::WatcherOff);
            }
            if let Some((_, sent)) = &self.probe {
                let waited = sent.elapsed();
                if waited >= WRITER_ANSWER_GRACE {
                    // A busy writer answers once its work is done: a rescan, most often.
                    return Some(if self.writer_busy {
                        Unverified::Rescanning
                    } else {
                        Unverified::WriterNotResponding {
                            secs: waited.as_secs(),
                        }
                    });
                }
            }
            return (watcher.mode == watcher::WatchMode::Degraded).then_some(
                Unverified::WatcherDegraded {
                    unwatched_dirs: watcher.unwatched_dirs,
                },
            );
        }
        match &self.catchup {
            Catchup::NotStarted | Catchup::Running { .. } if self.rescanning => {
                return Some(Unverified::Rescanning);
            }
            Catchup::NotStarted | Catchup::Running { .. } => {
                return Some(Unverified::CatchingUp {
                    checked: self.shared.progress.position(),
                    total: self.shared.progress.length().unwrap_or(0),
                });
            }
            Catchup::Failed(error) => {
                return Some(Unverified::CatchUpFailed {
                    error: error.clone(),
                });
            }
            Catchup::Done { .. } => {}
        }
        if let Some(retry) = self.lock_retry {
            return Some(Unverified::IndexLocked { retry });
        }
        match watcher.mode {
            watcher::WatchMode::Disabled => return Some(Unverified::WatcherOff),
            watcher::WatchMode::Degraded => {
                return Some(Unverified::WatcherDegraded {
                    unwatched_dirs: watcher.unwatched_dirs,
                });
            }
            watcher::WatchMode::Native => {}
        }
        // Lost events, the full comparison not started yet (backing off).
        self.rescan_at.map(|_| Unverified::Rescanning)
    }

    /// While the verdict is unverified, what `codelens status` would do: a read-only
    /// check of the whole tree against the index, at most once a second (and at most a
    /// tenth of the time), so that the files it lists are never older than that. A
    /// degraded writer re-indexes what it finds in the directories it cannot watch;
    /// otherwise the files are shown as `unsynced`.
    fn fallback_scan_if_due(&mut self) {
        let writer = self.role() == Role::Writer;
        let needed = self
            .unverified_reason()
            .is_some_and(|reason| reason.needs_fallback_scan(writer));
        if !needed {
            self.scanned.clear();
            self.next_scan_at = None;
            return;
        }
        let started = Instant::now();
        if self.next_scan_at.is_some_and(|at| at > started) {
            return;
        }
        let found = reconcile::pending_changes(&self.project, &self.store, &ProgressBar::hidden());
        let took = started.elapsed();
        self.next_scan_at =
            Some(Instant::now() + FALLBACK_SCAN_EVERY.max(took * FALLBACK_SCAN_DUTY));
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(target: "codelens::engine", "fallback scan failed: {error}");
                return;
            }
        };
        let degraded_writer = writer && self.watcher_status.mode == watcher::WatchMode::Degraded;
        let now = now_ns();
        let mut scanned = BTreeMap::new();
        for file in found {
            if self.pending.contains_key(&file.path) {
                continue;
            }
            if degraded_writer {
                let dir = (file.path.parent()).unwrap_or_else(|| RelPath::from_bytes(Vec::new()));
                let edited = file.edited_at_ns.unwrap_or(now);
                self.mark_pending(file.path, file.change, edited);
                self.wait_on(dir, false, started);
                continue;
            }
            // Seen before: keep when it was first seen (a deleted file has no mtime).
            let seen = self.scanned.get(&file.path);
            let edited = file
                .edited_at_ns
                .or(seen.map(|p| p.last_edit_ns))
                .unwrap_or(now);
            scanned.insert(
                file.path,
                Pending {
                    change: file.change,
                    first_edit_ns: seen.map_or(edited, |p| p.first_edit_ns.min(edited)),
                    last_edit_ns: edited,
                    state: PendingState::Unsynced,
                },
            );
        }
        self.scanned = scanned;
    }

    /// Builds and publishes a snapshot when something visible changed.
    fn publish(&mut self) {
        let now = Instant::now();
        let debounce = self.options.watch.debounce;
        let directories: Vec<DirectoryState> = self
            .dirs
            .iter()
            .map(|(dir, wait)| DirectoryState {
                dir: dir.to_string(),
                files: self
                    .pending
                    .keys()
                    .filter(|p| path_in_dir(p, dir, wait.recursive))
                    .count(),
                waited_ms: now.duration_since(wait.first).as_millis() as u64,
                reindex_in_ms: wait
                    .due_at(debounce)
                    .saturating_duration_since(now)
                    .as_millis() as u64,
                window_ms: debounce.as_millis() as u64,
            })
            .collect();
        let scanned_only = self
            .scanned
            .iter()
            .filter(|(path, _)| !self.pending.contains_key(*path));
        let mut pending: Vec<PendingEntry> = self
            .pending
            .iter()
            .chain(scanned_only)
            .map(|(path, p)| {
                let state = match p.state {
                    PendingState::Waiting { .. } => PendingState::Waiting {
                        reindex_in_ms: self
                            .dirs
                            .iter()
                            .find(|(dir, wait)| path_in_dir(path, dir, wait.recursive))
                            .map(|(_, wait)| {
                                wait.due_at(debounce)
                                    .saturating_duration_since(now)
                                    .as_millis() as u64
                            }),
                    },
                    other => other,
                };
                PendingEntry {
                    path: path.to_string(),
                    first_edit_ns: p.first_edit_ns,
                    last_edit_ns: p.last_edit_ns,
                    state,
                    change: p.change,
                }
            })
            .collect();
        pending.sort_by(|a, b| {
            b.last_edit_ns
                .cmp(&a.last_edit_ns)
                .then_with(|| a.path.cmp(&b.path))
        });
        let previous = Arc::clone(
            &self
                .shared
                .snapshot
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        // What a sync writes is read again only after a write to the index.
        let generation = self.store.generation().ok();
        let (stats, last_sync, last_sync_ns, branch, head) =
            if generation == self.stats_generation && previous.seq > 0 {
                (
                    previous.stats.clone(),
                    previous.last_sync.clone(),
                    previous.last_sync_ns,
                    previous.branch.clone(),
                    previous.head.clone(),
                )
            } else {
                self.stats_generation = generation;
                let meta = |key| self.store.meta(key).ok().flatten();
                (
                    (self.store.stats()).unwrap_or_else(|_| previous.stats.clone()),
                    meta("last_sync"),
                    meta("last_sync_ns").and_then(|ns| ns.parse::<i64>().ok()),
                    meta("git_branch"),
                    meta("git_head"),
                )
            };
        self.freshness = match self.unverified_reason() {
            Some(reason) => Freshness::Unverified {
                reason,
                pending: pending.len(),
            },
            None if pending.is_empty() => Freshness::Verified {
                basis: Basis::Watcher,
            },
            None => Freshness::Pending {
                files: pending.len(),
                basis: Basis::Watcher,
            },
        };
        let unchanged = previous.seq > 0
            && previous.freshness == self.freshness
            && previous.last_sync_ns == last_sync_ns
            && previous.head == head
            && previous.role == self.role()
            && previous.pending == pending
            && previous.directories == directories
            && previous.catchup == self.catchup
            && previous.last_sync == last_sync
            && previous.branch == branch
            && previous.stats.files == stats.files
            && previous.stats.symbols == stats.symbols
            && previous.worktree_mismatch == self.mismatch
            && previous.watcher == self.watcher_status
            && previous.telemetry == self.telemetry
            && previous.error == self.error;
        if unchanged {
            return;
        }
        if previous.seq > 0 && previous.worktree_mismatch != self.mismatch {
            self.shared.emit(Event::WorktreeChanged {
                mismatch: self.mismatch.is_some(),
            });
        }
        if previous.pending.len() != pending.len() {
            self.shared.emit(Event::PendingChanged {
                count: pending.len(),
            });
        }
        let snapshot = Snapshot {
            seq: previous.seq + 1,
            root: self.project.root.clone(),
            role: self.role(),
            stats,
            last_sync,
            branch,
            pending,
            catchup: self.catchup.clone(),
            worktree_mismatch: self.mismatch.clone(),
            watcher: self.watcher_status.clone(),
            directories,
            telemetry: self.telemetry.clone(),
            error: self.error.clone(),
            freshness: self.freshness.clone(),
            last_sync_ns,
            head,
        };
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        self.shared.published.notify_all();
    }
}

/// Whether `path` is a file directly in `dir` (or anywhere below it when `recursive`).
fn path_in_dir(path: &RelPath, dir: &RelPath, recursive: bool) -> bool {
    if !path.is_within(dir) || path == dir {
        return false;
    }
    recursive || {
        let start = if dir.as_bytes().is_empty() {
            0
        } else {
            dir.as_bytes().len() + 1
        };
        !path.as_bytes()[start..].contains(&b'/')
    }
}

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Modified => "modified",
        Change::Deleted => "deleted",
    }
}

/// A change as the `pending` table names it ([`change_name`]).
pub fn change_from_name(name: &str) -> Change {
    match name {
        "added" => Change::Added,
        "deleted" => Change::Deleted,
        _ => Change::Modified,
    }
}

pub fn state_name(state: PendingState) -> &'static str {
    match state {
        PendingState::Waiting { .. } => "waiting",
        PendingState::Indexing => "indexing",
        PendingState::Retrying { .. } => "retrying",
        PendingState::Failed => "failed",
        PendingState::Unsynced => "unsynced",
    }
}

fn state_from_name(name: &str) -> PendingState {
    match name {
        "waiting" => PendingState::Waiting {
            reindex_in_ms: None,
        },
        "indexing" => PendingState::Indexing,
        "retrying" => PendingState::Retrying { attempt: 0, of: 0 },
        "failed" => PendingState::Failed,
        _ => PendingState::Unsynced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RelPath {
        RelPath::from_bytes(p.as_bytes().to_vec())
    }

    #[test]
    fn files_in_a_directory() {
        assert!(path_in_dir(&path("a.rs"), &path(""), false));
        assert!(!path_in_dir(&path("src/a.rs"), &path(""), false));
        assert!(path_in_dir(&path("src/a.rs"), &path(""), true));
        assert!(path_in_dir(&path("src/a.rs"), &path("src"), false));
        assert!(!path_in_dir(&path("src/x/a.rs"), &path("src"), false));
        assert!(path_in_dir(&path("src/x/a.rs"), &path("src"), true));
        assert!(!path_in_dir(&path("srcs/a.rs"), &path("src"), true));
        assert!(!path_in_dir(&path("src"), &path("src"), true));
    }

    #[test]
    fn debounce_is_trailing_with_a_maximum_wait() {
        let start = Instant::now();
        let window = Duration::from_secs(2);
        let quiet = DirWait {
            first: start,
            last: start,
            recursive: false,
        };
        assert_eq!(quiet.due_at(window), start + window);
        let busy = DirWait {
            first: start,
            last: start + Duration::from_secs(9),
            recursive: false,
        };
        assert_eq!(
            busy.due_at(window),
            start + window * 5,
            "a continuous writer still gets indexed"
        );
    }
}
