//! The freshness verdict: the one answer to "can this index be trusted right now?",
//! decided by the engine and shown as it is by every front end (the dashboard's header,
//! every MCP answer, `codelens status`).
//!
//! - `verified`: every change up to now has been seen. The writer's watcher is native
//!   and healthy, catch-up is done and the writer answers (for a follower: answers its
//!   probes); or a scan of the whole tree has just been made (`codelens status`).
//! - `pending`: the same, with files known to differ from the index.
//! - `unverified`: the engine cannot vouch for its pending set, and says why. While
//!   its own watcher cannot see every edit (a follower that cannot vouch for its
//!   writer, no watcher, a degraded one, lost events not compared yet, a failed
//!   catch-up) the engine stat-scans the tree itself, at most once a second, so the
//!   pending files it lists are at most that old. A writer publishes its reason in the
//!   index, so no follower and no `codelens status` vouches for what it does not.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the engine knows what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A native watcher that reported every change (the writer's, for a follower).
    Watcher,
    /// A scan of the whole tree, just made.
    Scan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Freshness {
    /// The index matches the working tree as of now.
    Verified { basis: Basis },
    /// `files` files differ from the index; each has its state in `pending`.
    Pending { files: usize, basis: Basis },
    /// The engine cannot vouch for its pending set: `reason` says why. `pending` files
    /// are known to differ (from the engine's events and its fallback scan).
    Unverified {
        #[serde(flatten)]
        reason: Unverified,
        pending: usize,
    },
}

/// Why the verdict is unverified. A writer publishes its own in the index (meta
/// `writer_unverified`), so followers and `codelens status` never vouch for a set its
/// writer does not vouch for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unverified {
    /// The index is being compared with the working tree (start-up, or after a
    /// takeover); files not reached yet may differ unnoticed. A follower does not see
    /// its writer's progress: both counts are 0 then.
    CatchingUp { checked: u64, total: u64 },
    /// The comparison with the working tree failed; edits made while no engine ran may
    /// be missing.
    CatchUpFailed { error: String },
    /// No watcher: edits are seen only by the engine's periodic scan.
    WatcherOff,
    /// Some directories are not watched (the watch limit): edits there are seen only by
    /// the engine's periodic scan.
    WatcherDegraded { unwatched_dirs: usize },
    /// A follower's writer has not answered a probe for `secs` seconds (stopped, or
    /// stuck): what it published may be missing edits.
    WriterNotResponding { secs: u64 },
    /// Another process holds the index's write lock: nothing can be re-indexed or
    /// published. `retry` is the writer's current retry, 0 between retries.
    IndexLocked { retry: u32 },
    /// Events were lost (a kernel queue overflow, a watcher error): the whole tree is
    /// being compared with the index again.
    Rescanning,
    /// The engine that keeps the index is busy (re-indexing, comparing the tree) and had
    /// not confirmed, when asked, that it had read every edit made before the question.
    WriterBusy,
}

impl Freshness {
    pub fn is_verified(&self) -> bool {
        matches!(self, Freshness::Verified { .. })
    }

    /// The reason, when unverified.
    pub fn unverified(&self) -> Option<&Unverified> {
        match self {
            Freshness::Unverified { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// One line for a person: `verified`, `3 files pending`, `unverified: watcher off …`.
    pub fn summary(&self) -> String {
        match self {
            Freshness::Verified { .. } => "verified: the index matches the working tree".into(),
            Freshness::Pending { files: 1, .. } => "1 file pending".into(),
            Freshness::Pending { files, .. } => format!("{files} files pending"),
            Freshness::Unverified { reason, .. } => format!("unverified: {}", reason.describe()),
        }
    }
}

impl Unverified {
    /// A short phrase for a header or a status line.
    pub fn describe(&self) -> String {
        match self {
            Unverified::CatchingUp { total: 0, .. } => "catching up".into(),
            Unverified::CatchingUp { checked, total } => {
                format!("catching up ({checked} of {total} checked)")
            }
            Unverified::CatchUpFailed { .. } => "catch-up failed".into(),
            Unverified::WatcherOff => "watcher off".into(),
            Unverified::WatcherDegraded { unwatched_dirs: 1 } => {
                "watcher degraded (1 directory unwatched)".into()
            }
            Unverified::WatcherDegraded { unwatched_dirs } => {
                format!("watcher degraded ({unwatched_dirs} directories unwatched)")
            }
            Unverified::WriterNotResponding { secs } => {
                format!("writer not responding for {secs} s")
            }
            Unverified::IndexLocked { retry: 0 } => "index locked by another process".into(),
            Unverified::IndexLocked { retry } => {
                format!("index locked by another process (retry {retry})")
            }
            Unverified::Rescanning => "rescanning after lost events".into(),
            Unverified::WriterBusy => "writer busy".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_flat_with_state_and_reason_keys() {
        let verdict = Freshness::Unverified {
            reason: Unverified::WatcherDegraded { unwatched_dirs: 3 },
            pending: 2,
        };
        assert_eq!(
            serde_json::to_value(&verdict).unwrap(),
            serde_json::json!({"state": "unverified", "reason": "watcher_degraded", "unwatched_dirs": 3, "pending": 2})
        );
        assert_eq!(
            serde_json::to_value(Freshness::Pending {
                files: 1,
                basis: Basis::Scan
            })
            .unwrap(),
            serde_json::json!({"state": "pending", "files": 1, "basis": "scan"})
        );
        assert_eq!(
            serde_json::to_value(Freshness::Verified {
                basis: Basis::Watcher
            })
            .unwrap(),
            serde_json::json!({"state": "verified", "basis": "watcher"})
        );
    }

    #[test]
    fn summaries_name_the_reason() {
        let locked = Freshness::Unverified {
            reason: Unverified::IndexLocked { retry: 2 },
            pending: 1,
        };
        assert_eq!(
            locked.summary(),
            "unverified: index locked by another process (retry 2)"
        );
        assert!(!locked.is_verified());
        assert_eq!(
            Freshness::Pending {
                files: 3,
                basis: Basis::Watcher
            }
            .summary(),
            "3 files pending"
        );
    }
}
