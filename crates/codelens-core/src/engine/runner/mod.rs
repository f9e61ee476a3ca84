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

use crate::engine::progress::Progress;

use super::banner::{self, PendingEntry, PendingState};
use super::freshness::{Basis, Freshness, Unverified};
use super::project::{self, IndexLock, Project};
use super::read::Reader;
use super::reconcile::{self, Change};
use super::scan;
use super::store::{IndexStats, Store};
use super::watch_actor::{WatchMessage, WatcherHandle};
use super::watcher::{self, FsChange, WatcherStatus};
use super::worktree::{self, Mismatch};
use super::{Error, RelPath, Result, now_ns};
use crate::telemetry::{self, TelemetryEnv, TelemetryStatus};

mod debounce;
mod follower;
mod pending;
mod probes;
mod published;
mod snapshot;
mod verdict;
mod writer;

use debounce::DebounceQueue;
pub use debounce::MAX_WAIT_WINDOWS;
use pending::{Pending, PendingSet};
pub use pending::{change_from_name, state_name};
pub use published::WriterRequest;
use published::{PublishedLog, PublishedWindow};
pub use snapshot::{Catchup, Command, DirectoryState, Event, Role, Snapshot};

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
    /// Cap on directory watches; `None`: half the kernel's limit. Per-directory only.
    pub max_dir_watches: Option<usize>,
    /// One recursive watch on the root, or one watch per directory
    /// (`CODELENS_WATCH_STRATEGY`; the default depends on the platform).
    pub strategy: watcher::WatchStrategy,
}

impl Default for WatchOptions {
    /// Off: a library user asks for the watcher (front ends do, from the environment).
    fn default() -> Self {
        WatchOptions {
            enabled: false,
            force: false,
            debounce: Duration::from_millis(crate::config::WATCH_DEBOUNCE_DEFAULT_MS),
            max_dir_watches: None,
            strategy: watcher::WatchStrategy::platform_default(),
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
                strategy: config.watch_strategy,
            },
            telemetry: config.telemetry.clone(),
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

/// A catch-up that failed is tried again after this long.
const CATCHUP_RETRY: Duration = Duration::from_secs(5);

/// After a failed publish of the pending set that was not a lock (a full disk …).
const PERSIST_RETRY: Duration = Duration::from_secs(2);

/// The statement-level wait for another connection's SQLite lock, in the engine.
const ENGINE_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// While the verdict is unverified, the engine scans the tree itself this often at
/// most, and never more than a tenth of the time (a scan of 100k files takes ~0.15 s).
const FALLBACK_SCAN_EVERY: Duration = Duration::from_secs(1);
const FALLBACK_SCAN_DUTY: u32 = 10;

/// A follower probes its writer at most this often (at its polls)…
const FOLLOWER_PROBE_EVERY: Duration = Duration::from_millis(500);
/// …and writes a new probe in place of one unanswered this long.
const FOLLOWER_PROBE_RESEND: Duration = Duration::from_secs(5);

/// A probe file this old when a writer starts is one nobody waits on any more.
const STALE_PROBE_AGE: Duration = Duration::from_secs(10);

/// What reaches the engine thread.
enum Input {
    Command(Command),
    /// From the watcher thread: what its events mean, in the order they came.
    Watch(WatchMessage),
    /// Reply once every file event before this moment has been applied.
    Settle(Sender<()>),
}

struct Shared {
    snapshot: Mutex<Arc<Snapshot>>,
    published: Condvar,
    subscribers: Mutex<Vec<Sender<Event>>>,
    /// Catch-up progress, updated by the hashing workers as they go.
    progress: Progress,
    /// The events a writer publishes for its followers.
    log: Mutex<PublishedLog>,
}

impl Shared {
    /// The sequence number of the last event followers can be given.
    fn log_seq(&self) -> u64 {
        (self.log.lock().unwrap_or_else(|e| e.into_inner())).last_seq()
    }

    fn emit(&self, event: Event) {
        tracing::debug!(target: "codelens::engine", "{event}");
        (self.log.lock().unwrap_or_else(|e| e.into_inner())).record(&event, now_ns());
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
            progress: Progress::new(),
            log: Mutex::new(PublishedLog::default()),
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
            pending: PendingSet::default(),
            last_seen_generation: None,
            stats_generation: None,
            catchup: Catchup::NotStarted,
            mismatch,
            error: None,
            watcher: None,
            watches_armed_at_generation: None,
            watcher_status: WatcherStatus::disabled("starting", debounce_ms),
            dirs: DebounceQueue::default(),
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
            probe_waiting_since: None,
            writer_reason: None,
            published_reason: None,
            persist_retry_at: None,
            writer_set_current: false,
            writer_busy: false,
            writer_windows: Vec::new(),
            writer_log_seen: None,
            request_to_send: None,
            published_log_seq: 0,
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
                self.shared.progress.length(),
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

    /// Tells the engine its watcher lost events, exactly as notify reports a kernel
    /// queue overflow (the `Rescan` flag, no paths): how tests and diagnostics exercise
    /// a path the kernel rarely takes. `notify`'s types stay out of this API.
    pub fn inject_lost_events(&self) {
        let overflow = WatchMessage::Changes(vec![FsChange::Rescan]);
        let _ = self.inbox.send(Input::Watch(overflow));
    }

    /// Tells the engine its watcher lost events below `dir` (relative to the root), as
    /// FSEvents' `MustScanSubDirs` reports them: that subtree is compared with the
    /// index again. For tests on machines without FSEvents.
    pub fn inject_lost_events_in(&self, dir: &str) {
        let lost = FsChange::RescanDir(RelPath::from_bytes(dir.as_bytes().to_vec()));
        let _ = self
            .inbox
            .send(Input::Watch(WatchMessage::Changes(vec![lost])));
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
        self.wait_for_catchup_reporting(self.options.catchup_timeout, |_| {})
    }

    /// [`Engine::wait_for_catchup`], calling `report` with the live snapshot at once and
    /// then every `every` while catch-up runs: how a front end shows its progress.
    pub fn wait_for_catchup_reporting(
        &self,
        every: Duration,
        mut report: impl FnMut(&Snapshot),
    ) -> Arc<Snapshot> {
        let deadline = Instant::now() + self.options.catchup_timeout;
        loop {
            let now = self.snapshot();
            if now.catchup_finished() {
                return now;
            }
            report(&now);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.snapshot();
            }
            if let Some(done) = self.wait_until(every.min(left), Snapshot::catchup_finished) {
                return done;
            }
        }
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
    pending: PendingSet,
    /// The index's write counter after our own last write: another value means another
    /// process wrote.
    last_seen_generation: Option<u64>,
    /// The write counter the published stats were read at.
    stats_generation: Option<u64>,
    catchup: Catchup,
    mismatch: Option<Mismatch>,
    error: Option<String>,
    /// The watcher thread (see `watch_actor.rs`), while this engine watches.
    watcher: Option<WatcherHandle>,
    /// Set when the watcher has just armed every watch: the store's write counter read
    /// before it did. If the catch-up that follows sees the same counter, the
    /// directories it finds unchanged since the cache recorded them are the very ones
    /// just watched, and need no second arming.
    watches_armed_at_generation: Option<u64>,
    watcher_status: WatcherStatus,
    dirs: DebounceQueue,
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
    probe: Option<PathBuf>,
    probe_sent_at: Option<Instant>,
    /// Since when the follower's probes have gone unanswered (or could not be written).
    probe_waiting_since: Option<Instant>,
    /// The writer's own reason not to vouch for its set, as it published it.
    writer_reason: Option<Unverified>,
    /// The writer's own reason as last published (see `reason_to_publish`).
    published_reason: Option<Unverified>,
    /// A failed publish of the pending set (not a lock) is retried then, not sooner.
    persist_retry_at: Option<Instant>,
    /// A follower's last read: whether its writer's published set is current
    /// ([`published_set_is_current`]), and whether the writer was busy.
    writer_set_current: bool,
    writer_busy: bool,
    /// A follower's copy of its writer's debounce windows.
    writer_windows: Vec<(RelPath, PublishedWindow)>,
    /// A follower's place in its writer's published events: the writer, the last seen.
    writer_log_seen: Option<(String, u64)>,
    /// A follower's request its writer has not been given yet (the index was locked).
    request_to_send: Option<WriterRequest>,
    /// A writer's last event its followers can read.
    published_log_seq: u64,
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
            // An event followers have not been given (a catch-up's result is emitted
            // after its set was written; a request taken with nothing to sync) is
            // published with the set. Events are few (syncs, catch-ups, errors): a storm
            // still costs one write per round, not one per event.
            if self.role() == Role::Writer
                && matches!(self.catchup, Catchup::Done { .. } | Catchup::Failed(_))
                && self.published_log_seq != self.shared.log_seq()
            {
                self.pending_dirty = true;
            }
            // …and other processes (`codelens status`, followers) as soon as it can.
            if self.role() == Role::Writer
                && self.pending_dirty
                && self.persist_retry_at.is_none_or(|at| at <= Instant::now())
            {
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
                        self.send_request();
                    }
                    Role::Writer => {
                        self.notice_other_writers();
                        self.take_writer_request();
                    }
                }
            }
            if self.role() == Role::Writer {
                self.run_due_work();
            }
            self.fallback_scan_if_due();
            // What the polls read (a follower) or the due work did (a writer).
            self.publish();
        }
        if let Some(probe) = self.probe.take() {
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
        if let Some(due) = self.dirs.next_due(debounce, not_before) {
            at = at.min(due);
        }
        if let Some(due) = self.catchup_reindex_at {
            at = at.min(due);
        }
        if self.pending_dirty && self.role() == Role::Writer {
            // The last publish of the pending set met a busy lock: try again soon (or,
            // after another error, when its retry is due).
            let retry =
                (now + Duration::from_millis(100)).max(self.persist_retry_at.unwrap_or(now));
            at = at.min(retry);
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
        if self.fallback_scan_needed() {
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
            // A follower asks its writer, through the index.
            Input::Command(Command::SyncNow) => self.request_writer(WriterRequest::Sync),
            Input::Command(Command::Rescan) => self.request_writer(WriterRequest::Rescan),
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
            Input::Settle(reply) => self.settle(reply),
            Input::Watch(WatchMessage::Changes(changes)) => {
                for change in changes {
                    self.apply_fs_change(change);
                }
            }
            // The backend failed to deliver something: what it was is unknown.
            // No event is seen any more: say so, start a new watcher, compare everything.
            Input::Watch(WatchMessage::Stopped(why)) => {
                self.error = Some(why.clone());
                self.shared.emit(Event::Error(why));
                if self.role() == Role::Writer {
                    self.watcher = None;
                    self.start_watcher();
                    self.schedule_rescan();
                }
            }
            Input::Watch(WatchMessage::Failed(error)) => {
                self.error = Some(format!("file watcher: {error}"));
                self.schedule_rescan();
            }
        }
        true
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
                self.dirs.wait_on(dir, false, now);
            }
            FsChange::NewDir(dir) => {
                // Watch first, then crawl: a file written in between has an event, one
                // written before is found by the crawl. Subdirectories the crawl finds
                // get their watch only after it passed them, so a file written into one
                // in between has no event: the crawl runs again once they are watched,
                // until it finds no directory it had not watched (usually twice).
                // Recursive: the directory's subtree is armed (where the backend arms
                // per directory) before this returns; one crawl finds what was written
                // before.
                if let Some(watcher) = &self.watcher {
                    watcher.arm_new_dir(&dir);
                }
                let mut crawled = std::collections::HashSet::new();
                let Some((tree, strategy)) =
                    (self.watcher.as_ref()).map(|w| (w.tree().clone(), w.strategy()))
                else {
                    return;
                };
                for _ in 0..MAX_NEW_DIR_CRAWLS {
                    let walked = scan::walk_scope(&tree, &dir, true);
                    let mut unwatched = 0;
                    for sub in &walked.dirs {
                        if crawled.insert(sub.clone()) {
                            unwatched += 1;
                            if let Some(watcher) = &self.watcher {
                                watcher.watch_dir(sub);
                            }
                        }
                    }
                    for file in walked.files {
                        self.mark_pending(file.path, Change::Added, edited);
                    }
                    if unwatched == 0
                        || self.watcher.is_none()
                        || strategy == watcher::WatchStrategy::Recursive
                    {
                        break;
                    }
                }
                self.dirs.wait_on(dir, true, now);
                self.refresh_watcher_status();
            }
            FsChange::DirGone(dir) => {
                if let Some(watcher) = &self.watcher {
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
                self.dirs.wait_on(dir, true, now);
                self.refresh_watcher_status();
            }
            FsChange::RescanDir(dir) => self.rescan_subtree(dir, edited, now),
            FsChange::RootLost(why) => {
                tracing::warn!(target: "codelens::engine", "{why}");
                self.error = Some(format!("file watcher: {why}"));
                self.shared
                    .emit(Event::Error(format!("file watcher: {why}")));
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

    /// Lost events below `dir` (FSEvents' `MustScanSubDirs`): every file there that is
    /// not in the index, or whose stat differs from the index's, and every indexed one
    /// that is gone, is pending; the subtree is re-indexed once quiet (which compares
    /// contents). Counted with the full rescans. A `dir` that is not a directory (any
    /// more) stands for its parent.
    fn rescan_subtree(&mut self, dir: RelPath, edited: i64, now: Instant) {
        let Some(tree) = self.watcher.as_ref().map(|w| w.tree().clone()) else {
            return self.schedule_rescan();
        };
        let Some(dir) =
            std::iter::successors(Some(dir), RelPath::parent).find(|d| tree.dir_stat(d).is_some())
        else {
            return self.schedule_rescan();
        };
        self.rescans_total += 1;
        self.shared.emit(Event::Rescan {
            count: self.rescans_total,
        });
        let mut indexed: HashMap<RelPath, scan::FileStat> =
            match self.store.file_rows_in(&dir, true) {
                Ok(rows) => rows
                    .into_iter()
                    .map(|(path, row)| (path, row.stat))
                    .collect(),
                Err(_) => return self.schedule_rescan(),
            };
        let walked = scan::walk_scope(&tree, &dir, true);
        if !walked.errors.is_empty() {
            // Part of it could not be listed: only a full reconcile knows what to keep.
            return self.schedule_rescan();
        }
        for file in walked.files {
            let change = match indexed.remove(&file.path) {
                None => Some(Change::Added),
                Some(seen) if seen != file.stat => Some(Change::Modified),
                Some(_) => None,
            };
            if let Some(change) = change {
                self.mark_pending(file.path, change, edited);
            }
        }
        for (path, _) in indexed {
            self.mark_pending(path, Change::Deleted, edited);
        }
        self.dirs.wait_on(dir, true, now);
        self.refresh_watcher_status();
        self.pending_dirty = true;
    }

    fn mark_pending(&mut self, path: RelPath, change: Change, edited: i64) {
        self.pending_dirty = true;
        self.pending.mark(path, change, edited);
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

    fn fail(&mut self, message: String) {
        self.error = Some(message.clone());
        self.shared.emit(Event::Error(message));
        self.publish();
    }

    /// Why the pending set cannot be vouched for right now, if it cannot.
    fn unverified_reason(&self) -> Option<Unverified> {
        match self.role() {
            Role::Follower => verdict::follower(&verdict::FollowerView {
                set_current: self.writer_set_current,
                watcher: &self.watcher_status,
                probe_waited: self.probe_waiting_since.map(|since| since.elapsed()),
                writer_busy: self.writer_busy,
                writer_reason: self.writer_reason.clone(),
            }),
            Role::Writer => verdict::writer(&self.writer_view()),
        }
    }

    /// What the writer knows about itself, for its verdict.
    fn writer_view(&self) -> verdict::WriterView<'_> {
        verdict::WriterView {
            catchup: &self.catchup,
            rescanning: self.rescanning,
            progress: (
                self.shared.progress.position(),
                self.shared.progress.length(),
            ),
            lock_retry: self.lock_retry,
            watcher: &self.watcher_status,
            rescan_due: self.rescan_at.is_some(),
        }
    }

    /// Builds and publishes a snapshot when something visible changed.
    fn publish(&mut self) {
        let now = Instant::now();
        let debounce = self.options.watch.debounce;
        let now_wall = now_ns();
        let follower = self.role() == Role::Follower;
        let directories = if follower {
            (self.writer_windows.iter())
                .map(|(_, w)| w.state(now_wall))
                .collect()
        } else {
            self.dirs.states(now, debounce, self.pending.keys())
        };
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
                    PendingState::Waiting { .. } if follower => PendingState::Waiting {
                        reindex_in_ms: published::reindex_in_ms(
                            &self.writer_windows,
                            path,
                            now_wall,
                        ),
                    },
                    PendingState::Waiting { .. } => PendingState::Waiting {
                        reindex_in_ms: self.dirs.reindex_in_ms(path, now, debounce),
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
        // A change in what the writer vouches for is published for the others too.
        if self.role() == Role::Writer
            && !matches!(self.catchup, Catchup::NotStarted)
            && self.reason_to_publish() != self.published_reason
        {
            self.pending_dirty = true;
        }
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
