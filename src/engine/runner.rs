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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::banner::{self, PendingEntry, PendingState};
use super::project::{IndexLock, Project};
use super::reconcile::{self, Change};
use super::store::{IndexStats, PendingRow, Store};
use super::worktree::{self, Mismatch};
use super::{RelPath, Result, now_ns};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long [`Engine::wait_for_catchup`] waits by default (`CODELENS_CATCHUP_TIMEOUT_MS`).
    pub catchup_timeout: Duration,
    /// How long a changed file stays pending before the writer re-indexes it. Zero: at
    /// once (catch-up today); the watcher's debounce will set it.
    pub reindex_delay: Duration,
    /// How often the engine looks at the store: a follower for the writer's pending set
    /// and for the writer's lock, a writer for syncs made by other processes; and both
    /// at git, for a worktree mismatch (a branch switch, a worktree added).
    pub poll_interval: Duration,
    /// Where the front end stands (the MCP server's PATH). When the git worktree there
    /// is not the one the index belongs to, every snapshot carries the mismatch.
    pub start_dir: Option<PathBuf>,
}

impl EngineOptions {
    /// The options the environment asks for (see `config.rs`), defaults elsewhere.
    pub fn from_config(config: &crate::config::Config) -> EngineOptions {
        EngineOptions {
            catchup_timeout: config.catchup_timeout,
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

/// Everything a front end shows, immutable and cheap to share.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases with every published change.
    pub seq: u64,
    pub root: PathBuf,
    pub role: Role,
    pub stats: IndexStats,
    pub last_sync: Option<String>,
    /// Files known to differ from the index, newest edit first.
    pub pending: Vec<PendingEntry>,
    pub catchup: Catchup,
    /// Set while the front end stands in a git worktree that is not the index's own.
    pub worktree_mismatch: Option<Mismatch>,
    /// Why the index is not kept in sync while files change (until the watcher exists).
    pub watcher: &'static str,
    pub telemetry_enabled: bool,
    /// The last error the engine met (a failed sync …), if it has not recovered since.
    pub error: Option<String>,
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
    Error(String),
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
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// A running engine. Dropping it stops the engine thread and releases its locks.
pub struct Engine {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    options: EngineOptions,
}

impl Engine {
    /// Opens the project's index (errors such as a corrupt index are returned here)
    /// and starts the engine thread, which decides its role and, as the writer, starts
    /// catching up at once.
    pub fn start(project: Project, options: EngineOptions) -> Result<Engine> {
        let store = Store::open(&project.db_path())?;
        // Decided before returning, so the first snapshot already tells the truth.
        let engine_lock = project.try_lock_engine()?;
        // Also known before the first answer: a follower answers at once.
        let mismatch = match &options.start_dir {
            // An unreadable repository is reported by the engine thread's own check.
            Some(start) => worktree::detect_worktree_index_mismatch(start, &project.root)
                .ok()
                .flatten(),
            None => None,
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
            pending: Vec::new(),
            catchup: Catchup::NotStarted,
            worktree_mismatch: mismatch.clone(),
            watcher: "none: this build has no file watcher; edits are found by catch-up and `codelens sync`",
            telemetry_enabled: false,
            error: None,
        };
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Arc::new(snapshot)),
            published: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            progress: ProgressBar::hidden(),
        });
        let (commands, inbox) = mpsc::channel();
        let worker = Worker {
            project,
            store,
            shared: Arc::clone(&shared),
            options: options.clone(),
            engine_lock,
            pending: BTreeMap::new(),
            last_seen_sync_ns: None,
            catchup: Catchup::NotStarted,
            mismatch,
            error: None,
        };
        let thread = std::thread::Builder::new()
            .name("codelens-engine".into())
            .spawn(move || worker.run(inbox))
            .map_err(|e| super::Error::io("engine thread", e))?;
        Ok(Engine {
            shared,
            commands,
            thread: Some(thread),
            options,
        })
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
        if let Catchup::Running { .. } = snapshot.catchup {
            let mut live = (*snapshot).clone();
            live.catchup = Catchup::Running {
                checked: self.shared.progress.position(),
                total: self.shared.progress.length().unwrap_or(0),
            };
            return Arc::new(live);
        }
        snapshot
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
        let _ = self.commands.send(command);
    }

    /// Waits until catch-up has finished, at most the configured timeout, and returns
    /// the snapshot to answer from either way (its banner names what is unverified).
    pub fn wait_for_catchup(&self) -> Arc<Snapshot> {
        self.wait_until(self.options.catchup_timeout, Snapshot::catchup_finished)
            .unwrap_or_else(|| self.snapshot())
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

/// The engine thread's state.
struct Worker {
    project: Project,
    store: Store,
    shared: Arc<Shared>,
    options: EngineOptions,
    /// Held while this engine is the writer.
    engine_lock: Option<IndexLock>,
    pending: BTreeMap<RelPath, Pending>,
    /// The index's `last_sync_ns` as of our last look: a change we did not make means
    /// another process synced the index.
    last_seen_sync_ns: Option<i64>,
    catchup: Catchup,
    mismatch: Option<Mismatch>,
    error: Option<String>,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Command>) {
        self.check_worktree();
        match self.role() {
            Role::Writer => {
                self.shared.emit(Event::RoleChanged(Role::Writer));
                self.catch_up();
            }
            Role::Follower => self.follow(),
        }
        loop {
            match inbox.recv_timeout(self.options.poll_interval) {
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Command::SyncNow) if self.role() == Role::Writer => self.reindex(),
                Ok(Command::Rescan) if self.role() == Role::Writer => self.catch_up(),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
            self.check_worktree();
            match self.role() {
                Role::Follower => {
                    if !self.try_become_writer() {
                        self.follow();
                    }
                }
                Role::Writer => self.tend(),
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
        self.publish();
    }

    fn role(&self) -> Role {
        if self.engine_lock.is_some() {
            Role::Writer
        } else {
            Role::Follower
        }
    }

    /// Takes the engine lock if it is free; as the new writer, catches up at once.
    fn try_become_writer(&mut self) -> bool {
        match self.project.try_lock_engine() {
            Ok(Some(lock)) => {
                self.engine_lock = Some(lock);
                self.shared.emit(Event::RoleChanged(Role::Writer));
                self.catch_up();
                true
            }
            Ok(None) => false,
            Err(error) => {
                self.fail(error.to_string());
                false
            }
        }
    }

    /// A follower's tick: the writer's pending set and, after a sync, the index stats.
    fn follow(&mut self) {
        let rows = match self.store.pending_rows() {
            Ok(rows) => rows,
            Err(error) => return self.fail(error.to_string()),
        };
        self.pending = rows
            .into_iter()
            .map(|row| {
                let pending = Pending {
                    change: match row.change.as_str() {
                        "added" => Change::Added,
                        "deleted" => Change::Deleted,
                        _ => Change::Modified,
                    },
                    first_edit_ns: row.first_edit_ns,
                    last_edit_ns: row.last_edit_ns,
                    state: state_from_name(&row.state),
                };
                (row.path, pending)
            })
            .collect();
        self.publish();
    }

    /// A writer's tick: notice syncs by other processes, re-index what is due.
    fn tend(&mut self) {
        let synced_elsewhere = match self.store.last_sync_ns() {
            Ok(seen) => seen != self.last_seen_sync_ns,
            Err(error) => return self.fail(error.to_string()),
        };
        if synced_elsewhere {
            // `codelens sync` (or another tool) rewrote the index and cleared the
            // published pending set: what we hold may be stale either way.
            self.pending.clear();
            self.catch_up();
            return;
        }
        let delay = self.options.reindex_delay.as_nanos() as i64;
        let now = now_ns();
        let due = self.pending.values().any(|p| {
            p.state != PendingState::Failed && p.last_edit_ns.saturating_add(delay) <= now
        });
        if due {
            self.reindex();
        }
    }

    /// Compares the whole tree with the index (stat everything, hash what changed),
    /// publishes what differs as pending, and re-indexes it when no delay applies.
    fn catch_up(&mut self) {
        let started = Instant::now();
        self.shared.progress.set_position(0);
        self.shared.progress.set_length(0);
        self.catchup = Catchup::Running {
            checked: 0,
            total: 0,
        };
        self.publish();
        let found =
            match reconcile::pending_changes(&self.project, &self.store, &self.shared.progress) {
                Ok(found) => found,
                Err(error) => {
                    self.catchup = Catchup::Failed(error.to_string());
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
        self.last_seen_sync_ns = self.store.last_sync_ns().ok().flatten();
        self.persist_pending();
        self.shared.emit(Event::CatchupFinished {
            found: count,
            duration_ms,
        });
        self.publish();
        if !self.pending.is_empty() && self.options.reindex_delay.is_zero() {
            self.reindex();
        }
    }

    /// Brings the index up to date (which also clears the published pending set).
    fn reindex(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        for pending in self.pending.values_mut() {
            pending.state = PendingState::Indexing;
        }
        self.publish();
        let result = self.project.lock_for_writing().and_then(|_lock| {
            reconcile::sync(&self.project, &mut self.store, &ProgressBar::hidden())
        });
        match result {
            Ok(report) => {
                self.pending.clear();
                self.error = None;
                self.last_seen_sync_ns = self.store.last_sync_ns().ok().flatten();
                self.shared.emit(Event::Synced {
                    added: report.added,
                    modified: report.modified,
                    removed: report.removed,
                    duration_ms: report.duration_ms,
                });
                self.publish();
            }
            Err(error) => {
                for pending in self.pending.values_mut() {
                    pending.state = PendingState::Failed;
                }
                self.persist_pending();
                self.fail(format!("re-indexing failed: {error}"));
            }
        }
    }

    /// Publishes the pending set in the store for followers and `codelens status`.
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
        let written = self.project.lock_for_writing().and_then(|_lock| {
            let batch = self.store.batch()?;
            batch.replace_pending(&rows)?;
            batch.commit()
        });
        if let Err(error) = written {
            self.fail(format!("cannot publish the pending set: {error}"));
        }
    }

    fn fail(&mut self, message: String) {
        self.error = Some(message.clone());
        self.shared.emit(Event::Error(message));
        self.publish();
    }

    /// Builds and publishes a snapshot when something visible changed.
    fn publish(&mut self) {
        let mut pending: Vec<PendingEntry> = self
            .pending
            .iter()
            .map(|(path, p)| PendingEntry {
                path: path.to_string(),
                first_edit_ns: p.first_edit_ns,
                last_edit_ns: p.last_edit_ns,
                state: p.state,
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
        let last_sync = self.store.meta("last_sync").ok().flatten();
        let stats = if last_sync == previous.last_sync && previous.seq > 0 {
            previous.stats.clone()
        } else {
            self.store
                .stats()
                .unwrap_or_else(|_| previous.stats.clone())
        };
        let unchanged = previous.seq > 0
            && previous.role == self.role()
            && previous.pending == pending
            && previous.catchup == self.catchup
            && previous.last_sync == last_sync
            && previous.worktree_mismatch == self.mismatch
            && previous.error == self.error;
        if unchanged {
            return;
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
            pending,
            catchup: self.catchup.clone(),
            worktree_mismatch: self.mismatch.clone(),
            watcher: previous.watcher,
            telemetry_enabled: false,
            error: self.error.clone(),
        };
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        self.shared.published.notify_all();
    }
}

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Modified => "modified",
        Change::Deleted => "deleted",
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
