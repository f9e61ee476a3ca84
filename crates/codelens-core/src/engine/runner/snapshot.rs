//! What the engine publishes and accepts: the immutable [`Snapshot`] front ends render,
//! the [`Event`]s they subscribe to and the [`Command`]s they send.

use super::*;

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
            Unverified::WriterBusy => {
                "the engine that keeps this index had not read every edit made before this \
                 question when it was asked: files edited in the last moments may be stale below \
                 without being named"
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

    /// This snapshot for an answer whose settle failed (the engine could not confirm, in
    /// time, that it had read every edit made before the question): a verdict that
    /// vouched for the pending set no longer does.
    pub fn unsettled(&self) -> Snapshot {
        let mut snapshot = self.clone();
        if self.freshness.unverified().is_none() {
            snapshot.freshness = Freshness::Unverified {
                reason: Unverified::WriterBusy,
                pending: self.pending.len(),
            };
        }
        snapshot
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
        /// Asked for (`r`, a follower's request) or after lost events: a rescan.
        rescan: bool,
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
    /// The watcher (a follower's: its writer's) changed mode: native, degraded, disabled.
    WatcherChanged {
        mode: String,
        reason: String,
    },
    Error(String),
    /// A follower asked its writer (another process) to sync, or to rescan.
    WriterAsked {
        rescan: bool,
    },
    /// The writer took a follower's request to sync, or to rescan.
    WriterRequestTaken {
        rescan: bool,
    },
    /// An event of the writer's (another process), as it published it.
    FromWriter {
        at_ns: i64,
        text: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::RoleChanged(Role::Writer) => write!(f, "writer: this engine keeps the index"),
            Event::RoleChanged(Role::Follower) => {
                write!(f, "follower: another engine keeps the index")
            }
            Event::CatchupFinished {
                found,
                duration_ms,
                rescan,
            } => {
                let what = if *rescan { "rescan" } else { "catch-up" };
                let changes = if *found == 1 { "change" } else { "changes" };
                write!(f, "{what}: {found} {changes} found in {duration_ms} ms")
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
            Event::WatcherChanged { mode, reason } => write!(f, "watcher {mode}: {reason}"),
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
            Event::WriterAsked { rescan: false } => {
                write!(f, "asked the writer engine (another process) to sync")
            }
            Event::WriterAsked { rescan: true } => {
                write!(f, "asked the writer engine (another process) to rescan")
            }
            Event::WriterRequestTaken { rescan: false } => {
                write!(f, "sync asked by a follower engine")
            }
            Event::WriterRequestTaken { rescan: true } => {
                write!(f, "rescan asked by a follower engine")
            }
            Event::FromWriter { text, .. } => write!(f, "{text}"),
        }
    }
}
