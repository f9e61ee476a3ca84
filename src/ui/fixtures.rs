//! Hand-built engine snapshots for the dashboard's rendering tests and its benchmark:
//! every state the dashboard must show, without a file system or an engine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::banner::{PendingEntry, PendingState};
use crate::engine::freshness::{Basis, Freshness, Unverified};
use crate::engine::reconcile::Change;
use crate::engine::runner::DirectoryState;
use crate::engine::store::IndexStats;
use crate::engine::watcher::{WatchMode, WatcherStatus};
use crate::engine::worktree::Mismatch;
use crate::engine::{Catchup, Role, Snapshot};

/// The wall clock the fixtures are built around (2026-11-25T10:42:00Z).
pub const NOW_NS: i64 = 1_795_603_320_000_000_000;
const SECOND: i64 = 1_000_000_000;

pub fn snapshot_in_sync() -> Snapshot {
    Snapshot {
        seq: 7,
        root: PathBuf::from("/home/dev/src/app"),
        role: Role::Writer,
        stats: IndexStats {
            files: 12_408,
            skipped: BTreeMap::new(),
            symbols: 98_211,
            languages: BTreeMap::from([("rust".into(), 1204), ("python".into(), 800)]),
            db_bytes: 12_400_000,
        },
        last_sync: Some("2026-11-25T10:41:57Z".into()),
        branch: Some("main".into()),
        pending: Vec::new(),
        catchup: Catchup::Done {
            found: 0,
            duration_ms: 41,
        },
        worktree_mismatch: None,
        watcher: WatcherStatus {
            mode: WatchMode::Native,
            reason: "inotify (per-directory)".into(),
            watched_dirs: 310,
            unwatched_dirs: 0,
            rescans: 0,
            debounce_ms: 2000,
            strategy: crate::engine::watcher::WatchStrategy::PerDirectory,
            descriptors: 311,
        },
        directories: Vec::new(),
        telemetry: crate::telemetry::status(&crate::telemetry::TelemetryEnv::from_lookup(|_| None)),
        error: None,
        freshness: Freshness::Verified {
            basis: Basis::Watcher,
        },
        last_sync_ns: Some(NOW_NS - 3 * SECOND),
        head: Some("4f2c9a1e0b7d".into()),
    }
}

/// Three pending files in two directories, in each state the engine reports, edited
/// 3 s, 72 s and 2 h before `now_ns`: one modified, one added, one deleted.
pub fn snapshot_pending(now_ns: i64) -> Snapshot {
    let entry = |path: &str, ago: i64, state, change| PendingEntry {
        path: path.into(),
        first_edit_ns: now_ns - ago * SECOND,
        last_edit_ns: now_ns - ago * SECOND,
        state,
        change,
    };
    Snapshot {
        seq: 8,
        pending: vec![
            entry(
                "src/engine/runner.rs",
                3,
                PendingState::Waiting {
                    reindex_in_ms: Some(1600),
                },
                Change::Modified,
            ),
            entry(
                "web/app.ts",
                72,
                PendingState::Retrying { attempt: 2, of: 5 },
                Change::Added,
            ),
            entry("go/main.go", 7200, PendingState::Failed, Change::Deleted),
        ],
        directories: vec![
            DirectoryState {
                dir: "src/engine".into(),
                files: 1,
                waited_ms: 400,
                reindex_in_ms: 1600,
                window_ms: 2000,
            },
            DirectoryState {
                dir: "web".into(),
                files: 1,
                waited_ms: 1500,
                reindex_in_ms: 500,
                window_ms: 2000,
            },
        ],
        freshness: Freshness::Pending {
            files: 3,
            basis: Basis::Watcher,
        },
        ..snapshot_in_sync()
    }
}

/// `count` pending files, for the render benchmark.
pub fn snapshot_many_pending(now_ns: i64, count: usize) -> Snapshot {
    let pending = (0..count)
        .map(|i| PendingEntry {
            path: format!("src/module_{:03}/file_{i:05}.rs", i % 400),
            first_edit_ns: now_ns - i as i64 * SECOND,
            last_edit_ns: now_ns - i as i64 * SECOND,
            state: PendingState::Waiting {
                reindex_in_ms: Some(900),
            },
            change: Change::Modified,
        })
        .collect();
    let directories = (0..400)
        .map(|i| DirectoryState {
            dir: format!("src/module_{i:03}"),
            files: count / 400,
            waited_ms: 1100,
            reindex_in_ms: 900,
            window_ms: 2000,
        })
        .collect();
    Snapshot {
        pending,
        directories,
        freshness: Freshness::Pending {
            files: count,
            basis: Basis::Watcher,
        },
        ..snapshot_pending(now_ns)
    }
}

pub fn mismatch() -> Mismatch {
    Mismatch {
        worktree_root: PathBuf::from("/home/dev/src/app/wt/feature"),
        main_checkout_root: PathBuf::from("/home/dev/src/app"),
        index_root: PathBuf::from("/home/dev/src/app"),
        worktree_branch: Some("feature".into()),
        index_branch: Some("main".into()),
        worktree_kind: "linked worktree",
    }
}

pub fn snapshot_mismatch(now_ns: i64) -> Snapshot {
    Snapshot {
        worktree_mismatch: Some(mismatch()),
        ..snapshot_pending(now_ns)
    }
}

/// Unverified for `reason`, with the one pending file the engine's own scan found.
pub fn snapshot_unverified(now_ns: i64, reason: Unverified) -> Snapshot {
    let mut snapshot = snapshot_pending(now_ns);
    snapshot.pending.truncate(1);
    snapshot.pending[0].state = PendingState::Unsynced;
    snapshot.directories.clear();
    if reason == Unverified::WatcherOff {
        snapshot.watcher.mode = WatchMode::Disabled;
        snapshot.watcher.reason = "CODELENS_NO_WATCH=1".into();
    }
    snapshot.freshness = Freshness::Unverified { reason, pending: 1 };
    snapshot
}

/// Every reason the engine gives for an unverified verdict.
pub fn unverified_reasons() -> Vec<Unverified> {
    vec![
        Unverified::CatchingUp {
            checked: 0,
            total: 0,
        },
        Unverified::CatchingUp {
            checked: 120,
            total: 4_000,
        },
        Unverified::CatchUpFailed {
            error: "permission denied".into(),
        },
        Unverified::WatcherOff,
        Unverified::WatcherDegraded { unwatched_dirs: 12 },
        Unverified::WriterNotResponding { secs: 14 },
        Unverified::IndexLocked { retry: 2 },
        Unverified::Rescanning,
        Unverified::WriterBusy,
    ]
}

/// A follower showing its writer's debounce windows (published through the index) and
/// the countdown of each file waiting in them.
pub fn snapshot_follower_debounce(now_ns: i64) -> Snapshot {
    let mut snapshot = snapshot_pending(now_ns);
    snapshot.role = Role::Follower;
    snapshot.catchup = Catchup::NotStarted;
    snapshot.watcher.reason = "the writer engine's watcher: inotify".into();
    snapshot.pending[1].state = PendingState::Waiting {
        reindex_in_ms: Some(500),
    };
    snapshot.pending.truncate(2);
    snapshot.freshness = Freshness::Pending {
        files: 2,
        basis: Basis::Watcher,
    };
    snapshot
}
