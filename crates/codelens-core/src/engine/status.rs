//! The status report: one typed document, built here, that `codelens status --json`
//! prints and the MCP server's `index_status` returns (without the machine id and the
//! home paths). Both front ends only render it; a test holds them to the same keys.
//!
//! Two builders share every field's meaning:
//! - [`StatusReport::from_snapshot`]: a running engine's view (the MCP server, the TUI);
//! - [`StatusReport::from_index`]: a process with no engine (`codelens status`). It
//!   trusts a running writer's published pending set only when that writer vouches for
//!   it (a native watcher, a current set, an answered probe), and otherwise checks the
//!   tree itself: then the verdict rests on that scan.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::progress::Progress;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::banner::PendingState;
use super::freshness::{Basis, Freshness, Unverified};
use super::project::Project;
use super::reconcile::{self, Change};
use super::runner::{self, Catchup, Role, Snapshot, published_set_is_current, state_name};
use super::store::{IndexStats, SCHEMA_VERSION, Store};
use super::worktree::{self, Mismatch};
use super::{Result, now_ns};
use crate::telemetry::{self, TelemetryEnv, TelemetryStatus};

/// Who reads the report: a person may see the telemetry machine id and the buffer's
/// path; an agent's transcript must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Person,
    Agent,
}

/// `codelens status --json` and `index_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusReport {
    /// The worktree the caller stands in (differs from `index_root` on a mismatch).
    pub root: String,
    pub index_root: String,
    pub index_dir: String,
    pub schema_version: i64,
    pub files: u64,
    /// Files recorded but not parsed, by reason: binary, too_large, unreadable.
    pub skipped: BTreeMap<String, u64>,
    pub symbols: u64,
    /// Language → indexed files.
    pub languages: BTreeMap<String, u64>,
    /// RFC 3339 UTC.
    pub last_sync: Option<String>,
    pub last_sync_secs_ago: Option<u64>,
    pub db_bytes: u64,
    pub git: StatusGit,
    /// Files that differ from the index, newest edit first.
    pub pending: Vec<StatusPending>,
    /// `engine`: a running engine's pending set; `scan`: this report's own check of the
    /// tree (no engine vouched for its set), or an engine's fallback scan while its
    /// verdict is unverified.
    pub pending_source: String,
    /// The verdict: `verified`, `pending` or `unverified` with its `reason`.
    pub freshness: Freshness,
    pub watcher: StatusWatcher,
    /// Null, or the three roots, both branches and the fix.
    pub worktree_mismatch: Option<Value>,
    /// As `codelens telemetry status --json` (for an agent, without the machine id and
    /// the buffer's path).
    pub telemetry: Value,
    /// `writer` or `follower`: the engine this report comes from (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `{state: not_started | running | done | failed, …}` (absent without an engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catchup: Option<Value>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusGit {
    pub branch: Option<String>,
    pub head: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusPending {
    pub path: String,
    /// Null for a deleted file.
    pub edited_secs_ago: Option<u64>,
    /// waiting, indexing, retrying, failed or unsynced.
    pub state: String,
    /// added, modified or deleted.
    pub change: Change,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusWatcher {
    /// native, degraded or disabled; `none` when no engine runs.
    pub mode: String,
    pub reason: String,
    /// `running` or `stopped`: whether a writer engine runs on this index.
    pub engine: String,
    /// Full reconciles forced by lost events since the writer started.
    pub rescans: u64,
    /// The following are known only to a running engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watched_dirs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwatched_dirs: Option<usize>,
    /// `recursive` (one watch on the root) or `per-directory`: how the running writer
    /// arms its watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The watches or handles the running writer's backend holds (inotify watches on
    /// Linux, as the kernel counts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptors: Option<usize>,
}

/// How long `status` waits for the writer engine to answer its probe before it checks
/// the tree itself (an idle writer answers in about a millisecond).
const STATUS_PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// What a report is built from, whichever builder gathered it.
struct Parts<'a> {
    project: &'a Project,
    mismatch: Option<&'a Mismatch>,
    stats: &'a IndexStats,
    last_sync: Option<String>,
    last_sync_ns: Option<i64>,
    branch: Option<String>,
    head: Option<String>,
    pending: Vec<StatusPending>,
    from_engine: bool,
    freshness: Freshness,
    watcher: StatusWatcher,
    telemetry: &'a TelemetryStatus,
    audience: Audience,
}

fn secs_ago(now: i64, at_ns: i64) -> u64 {
    (now.saturating_sub(at_ns) / 1_000_000_000).max(0) as u64
}

impl StatusReport {
    fn build(parts: Parts<'_>, now: i64) -> StatusReport {
        let Parts {
            project,
            mismatch,
            stats,
            mut pending,
            ..
        } = parts;
        // Newest edit first; deleted files (no edit time) last, by path.
        pending.sort_by(|a, b| {
            (a.edited_secs_ago.unwrap_or(u64::MAX))
                .cmp(&b.edited_secs_ago.unwrap_or(u64::MAX))
                .then_with(|| a.path.cmp(&b.path))
        });
        StatusReport {
            // Lossy: a JSON string cannot hold a non-UTF-8 path.
            root: mismatch
                .map_or(&project.root, |m| &m.worktree_root)
                .to_string_lossy()
                .into_owned(),
            index_root: project.root.to_string_lossy().into_owned(),
            index_dir: project.index_dir().to_string_lossy().into_owned(),
            schema_version: SCHEMA_VERSION,
            files: stats.files,
            skipped: (stats.skipped.iter())
                .map(|(why, n)| (why.to_string(), *n))
                .collect(),
            symbols: stats.symbols,
            languages: stats.languages.clone(),
            last_sync: parts.last_sync,
            last_sync_secs_ago: parts.last_sync_ns.map(|at| secs_ago(now, at)),
            db_bytes: stats.db_bytes,
            git: StatusGit {
                branch: parts.branch,
                head: parts.head,
            },
            pending,
            pending_source: if parts.from_engine { "engine" } else { "scan" }.into(),
            freshness: parts.freshness,
            watcher: parts.watcher,
            worktree_mismatch: mismatch.map(Mismatch::to_json),
            telemetry: match parts.audience {
                Audience::Person => parts.telemetry.to_json(),
                Audience::Agent => parts.telemetry.to_agent_json(),
            },
            role: None,
            catchup: None,
        }
    }

    /// A running engine's report, from its snapshot (never waits).
    pub fn from_snapshot(
        project: &Project,
        snapshot: &Snapshot,
        audience: Audience,
        now: i64,
    ) -> StatusReport {
        // The list comes from the engine's own scan of the tree whenever the engine
        // cannot vouch for its watcher-fed set for a reason a scan stands in for.
        let scanned = match snapshot.freshness.unverified() {
            None => false,
            Some(Unverified::CatchingUp { .. } | Unverified::Rescanning)
                if snapshot.role == Role::Writer =>
            {
                false
            }
            Some(Unverified::IndexLocked { .. }) if snapshot.role == Role::Writer => false,
            // An answer that could not settle: the set is the engine's, only unconfirmed.
            Some(Unverified::WriterBusy) if snapshot.role == Role::Writer => false,
            Some(_) => true,
        };
        let pending = (snapshot.pending.iter())
            .map(|p| StatusPending {
                path: p.path.clone(),
                edited_secs_ago: (p.change != Change::Deleted)
                    .then(|| secs_ago(now, p.last_edit_ns)),
                state: state_name(p.state).to_string(),
                change: p.change,
            })
            .collect();
        let watcher = &snapshot.watcher;
        let mut report = StatusReport::build(
            Parts {
                project,
                mismatch: snapshot.worktree_mismatch.as_ref(),
                stats: &snapshot.stats,
                last_sync: snapshot.last_sync.clone(),
                last_sync_ns: snapshot.last_sync_ns,
                branch: snapshot.branch.clone(),
                head: snapshot.head.clone(),
                pending,
                from_engine: !scanned,
                freshness: snapshot.freshness.clone(),
                watcher: StatusWatcher {
                    mode: watcher.mode_name().into(),
                    reason: watcher.reason.clone(),
                    engine: "running".into(),
                    rescans: watcher.rescans,
                    debounce_ms: Some(watcher.debounce_ms),
                    watched_dirs: Some(watcher.watched_dirs),
                    unwatched_dirs: Some(watcher.unwatched_dirs),
                    strategy: Some(watcher.strategy.name().into()),
                    descriptors: Some(watcher.descriptors),
                },
                telemetry: &snapshot.telemetry,
                audience,
            },
            now,
        );
        report.role = Some(
            match snapshot.role {
                Role::Writer => "writer",
                Role::Follower => "follower",
            }
            .into(),
        );
        report.catchup = Some(match &snapshot.catchup {
            Catchup::NotStarted => serde_json::json!({"state": "not_started"}),
            Catchup::Running { checked, total } => {
                serde_json::json!({"state": "running", "checked": checked, "total": total})
            }
            Catchup::Done { found, duration_ms } => {
                serde_json::json!({"state": "done", "found": found, "duration_ms": duration_ms})
            }
            Catchup::Failed(why) => serde_json::json!({"state": "failed", "error": why}),
        });
        report
    }

    /// The report of a process that runs no engine (`codelens status`): the running
    /// writer's pending set when it vouches for it, else a read-only check of the tree.
    /// Also returns the worktree mismatch, for the warning above the text form; a
    /// mismatch that cannot be checked is a warning, not an error.
    pub fn from_index(
        project: &Project,
        start: &Path,
        telemetry_env: &TelemetryEnv,
    ) -> Result<(StatusReport, Option<Mismatch>, Vec<String>)> {
        let mut warnings = Vec::new();
        let mismatch = match worktree::detect_worktree_index_mismatch(start, &project.root) {
            Ok(mismatch) => mismatch,
            Err(error) => {
                warnings.push(error.to_string());
                None
            }
        };
        let _reading = project.lock_for_reading()?;
        let store = Store::open_read_only(&project.db_path())?;
        let stats = store.stats()?;
        let engine_running = project.writer_engine_running();
        let (pending, from_engine) = pending_files(project, &store)?;
        let basis = if from_engine {
            Basis::Watcher
        } else {
            Basis::Scan
        };
        let freshness = match pending.len() {
            0 => Freshness::Verified { basis },
            files => Freshness::Pending { files, basis },
        };
        let meta = |key| store.meta(key).ok().flatten();
        let watcher = match (engine_running, meta("watcher_mode")) {
            (true, Some(mode)) => StatusWatcher {
                mode,
                reason: meta("watcher_reason").unwrap_or_default(),
                engine: "running".into(),
                rescans: (meta("watcher_rescans").and_then(|n| n.parse().ok())).unwrap_or(0),
                debounce_ms: None,
                watched_dirs: None,
                unwatched_dirs: (meta("watcher_unwatched_dirs")).and_then(|n| n.parse().ok()),
                strategy: meta("watcher_strategy"),
                descriptors: (meta("watcher_descriptors")).and_then(|n| n.parse().ok()),
            },
            _ => StatusWatcher {
                mode: "none".into(),
                reason:
                    "no engine is running (`codelens watch`, the TUI or the MCP server run one); \
                         run `codelens sync` after edits"
                        .into(),
                engine: "stopped".into(),
                rescans: 0,
                debounce_ms: None,
                watched_dirs: None,
                unwatched_dirs: None,
                strategy: None,
                descriptors: None,
            },
        };
        let telemetry_status = telemetry::status(telemetry_env);
        let report = StatusReport::build(
            Parts {
                project,
                mismatch: mismatch.as_ref(),
                stats: &stats,
                last_sync: meta("last_sync"),
                last_sync_ns: meta("last_sync_ns").and_then(|ns| ns.parse().ok()),
                branch: meta("git_branch"),
                head: meta("git_head"),
                pending,
                from_engine,
                freshness,
                watcher,
                telemetry: &telemetry_status,
                audience: Audience::Person,
            },
            now_ns(),
        );
        Ok((report, mismatch, warnings))
    }
}

/// The files that differ from the index, and whether a running writer engine said so
/// (its published set) or, with none vouching, a read-only check of the tree did.
fn pending_files(project: &Project, store: &Store) -> Result<(Vec<StatusPending>, bool)> {
    // Only a writer that watches the tree knows every edit; without its watcher it
    // knows what it found at catch-up, and status checks the tree itself instead.
    let watching = store
        .meta("watcher_mode")?
        .is_some_and(|mode| mode == "native");
    // And only while that set is current (see `published_set_is_current`): a new
    // writer's before its catch-up, or any writer's just after a sync by another process,
    // would call files fresh that it has not looked at yet.
    // Nor while the writer is busy (catch-up, re-indexing): events queue unread then,
    // so an edit saved meanwhile would be missing from its set.
    // Nor while the writer itself does not vouch for it (a rescan due, a failed
    // catch-up: `writer_unverified`).
    let writer_vouches =
        || (store.meta("writer_unverified").ok().flatten()).is_none_or(|reason| reason.is_empty());
    let vouched = || {
        watching
            && writer_vouches()
            && project.writer_engine_running()
            && !project.writer_engine_busy()
            && published_set_is_current(project, store)
    };
    let now = now_ns();
    // An edit saved just before this command may not have reached the writer yet: its
    // answer to a probe says it has (and the set is still current after it).
    if vouched() && project.probe_writer(STATUS_PROBE_TIMEOUT) && vouched() {
        let lines = store
            .pending_rows()?
            .into_iter()
            .map(|row| {
                let change = runner::change_from_name(&row.change);
                StatusPending {
                    path: row.path.to_string_lossy().into_owned(),
                    edited_secs_ago: (change != Change::Deleted)
                        .then(|| secs_ago(now, row.last_edit_ns)),
                    state: row.state,
                    change,
                }
            })
            .collect();
        return Ok((lines, true));
    }
    let lines = reconcile::pending_changes(project, store, &Progress::new())?
        .into_iter()
        .map(|file| StatusPending {
            path: file.path.to_string_lossy().into_owned(),
            edited_secs_ago: file.edited_at_ns.map(|at| secs_ago(now, at)),
            state: state_name(PendingState::Unsynced).into(),
            change: file.change,
        })
        .collect();
    Ok((lines, false))
}
