//! The pending set: the files known to differ from the index, with their change, their
//! first and last edit and what is being done about them; and how it is stored in the
//! index's `pending` table for other processes.

use std::collections::BTreeMap;

use super::debounce::path_in_dir;
use crate::engine::RelPath;
use crate::engine::banner::PendingState;
use crate::engine::reconcile::Change;
use crate::engine::store::PendingRow;

/// What the engine knows about one pending file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) change: Change,
    pub(super) first_edit_ns: i64,
    pub(super) last_edit_ns: i64,
    pub(super) state: PendingState,
}

const WAITING: PendingState = PendingState::Waiting {
    reindex_in_ms: None,
};

/// Being re-indexed, or waiting to retry a locked index.
fn in_flight(state: PendingState) -> bool {
    matches!(
        state,
        PendingState::Indexing | PendingState::Retrying { .. }
    )
}

/// The files known to differ from the index, by path. Read through `Deref`; changed
/// only through the methods below, each one rule of how a file's entry evolves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PendingSet {
    files: BTreeMap<RelPath, Pending>,
}

impl std::ops::Deref for PendingSet {
    type Target = BTreeMap<RelPath, Pending>;
    fn deref(&self) -> &Self::Target {
        &self.files
    }
}

impl PendingSet {
    /// An event says the file changed at `edited`: it waits for its directory's quiet
    /// window again, whatever it was doing; its first edit is kept.
    pub(super) fn mark(&mut self, path: RelPath, change: Change, edited: i64) {
        let entry = self.entry(path, change, edited);
        entry.last_edit_ns = entry.last_edit_ns.max(edited);
        entry.state = WAITING;
    }

    /// Catch-up found the file differing, last changed at `edited`: its edit times
    /// widen to include that; an entry already being worked on keeps its state.
    pub(super) fn found(&mut self, path: RelPath, change: Change, edited: i64) {
        let entry = self.entry(path, change, edited);
        entry.first_edit_ns = entry.first_edit_ns.min(edited);
        entry.last_edit_ns = entry.last_edit_ns.max(edited);
    }

    /// `path`'s entry with its latest `change`: a new one waits, first and last edited
    /// at `edited`.
    fn entry(&mut self, path: RelPath, change: Change, edited: i64) -> &mut Pending {
        let entry = self.files.entry(path).or_insert(Pending {
            change,
            first_edit_ns: edited,
            last_edit_ns: edited,
            state: WAITING,
        });
        entry.change = change;
        entry
    }

    /// Every file in `dir` (below it too when `recursive`) is being re-indexed.
    pub(super) fn indexing_in(&mut self, dir: &RelPath, recursive: bool) {
        for (path, pending) in &mut self.files {
            if path_in_dir(path, dir, recursive) {
                pending.state = PendingState::Indexing;
            }
        }
    }

    /// Every file is being re-indexed (a full sync).
    pub(super) fn indexing_all(&mut self) {
        for pending in self.files.values_mut() {
            pending.state = PendingState::Indexing;
        }
    }

    /// The files in flight wait for retry `attempt` of `of` on a locked index.
    pub(super) fn retrying(&mut self, attempt: u8, of: u8) {
        for pending in self.files.values_mut() {
            if in_flight(pending.state) {
                pending.state = PendingState::Retrying { attempt, of };
            }
        }
    }

    /// The write failed: the files in flight stay pending, as failed.
    pub(super) fn fail_in_flight(&mut self) {
        for pending in self.files.values_mut() {
            if in_flight(pending.state) {
                pending.state = PendingState::Failed;
            }
        }
    }

    /// `dir` was re-indexed: the files it looked at are done, and so are the in-flight
    /// ones the walk did not see at all (an ignored file's event). A file edited again
    /// meanwhile is waiting, not in flight, and stays.
    pub(super) fn finish_scope(&mut self, looked_at: &[RelPath], dir: &RelPath, recursive: bool) {
        for path in looked_at {
            if self.files.get(path).is_some_and(|p| in_flight(p.state)) {
                self.files.remove(path);
            }
        }
        self.files
            .retain(|path, p| !(path_in_dir(path, dir, recursive) && in_flight(p.state)));
    }

    pub(super) fn clear(&mut self) {
        self.files.clear();
    }

    /// The set as the `pending` table stores it.
    pub(super) fn rows(&self) -> Vec<PendingRow> {
        (self.files.iter())
            .map(|(path, p)| PendingRow {
                path: path.clone(),
                change: change_name(p.change).to_string(),
                first_edit_ns: p.first_edit_ns,
                last_edit_ns: p.last_edit_ns,
                state: state_name(p.state).to_string(),
            })
            .collect()
    }

    /// The set a writer published (a follower's view of it).
    pub(super) fn from_rows(rows: Vec<PendingRow>) -> PendingSet {
        let files = (rows.into_iter())
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
        PendingSet { files }
    }
}

pub(super) fn change_name(change: Change) -> &'static str {
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

pub(super) fn state_from_name(name: &str) -> PendingState {
    match name {
        "waiting" => WAITING,
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
    fn an_event_restarts_the_wait_and_keeps_the_first_edit() {
        let mut set = PendingSet::default();
        set.mark(path("src/a.rs"), Change::Modified, 10);
        set.indexing_all();
        set.mark(path("src/a.rs"), Change::Deleted, 20);
        let entry = &set[&path("src/a.rs")];
        assert_eq!(
            entry.state, WAITING,
            "edited again while indexing: waits again"
        );
        assert_eq!((entry.first_edit_ns, entry.last_edit_ns), (10, 20));
        assert_eq!(entry.change, Change::Deleted);
        // An event older than the last one never moves the age back.
        set.mark(path("src/a.rs"), Change::Modified, 15);
        assert_eq!(set[&path("src/a.rs")].last_edit_ns, 20);
    }

    #[test]
    fn catch_up_widens_edit_times_and_keeps_work_in_flight() {
        let mut set = PendingSet::default();
        set.mark(path("a.rs"), Change::Modified, 50);
        set.indexing_all();
        set.found(path("a.rs"), Change::Modified, 30);
        set.found(path("b.rs"), Change::Added, 40);
        let a = &set[&path("a.rs")];
        assert_eq!((a.first_edit_ns, a.last_edit_ns), (30, 50));
        assert_eq!(a.state, PendingState::Indexing);
        assert_eq!(set[&path("b.rs")].state, WAITING);
    }

    #[test]
    fn a_finished_scope_drops_only_its_files_in_flight() {
        let mut set = PendingSet::default();
        for (p, at) in [
            ("src/a.rs", 1),
            ("src/x/b.rs", 2),
            ("src/ignored.log", 3),
            ("web/c.ts", 4),
        ] {
            set.mark(path(p), Change::Modified, at);
        }
        set.indexing_in(&path("src"), false);
        assert_eq!(set[&path("src/x/b.rs")].state, WAITING, "not recursive");
        assert_eq!(set[&path("web/c.ts")].state, WAITING);
        // Edited again while its directory was being re-indexed.
        set.mark(path("src/a.rs"), Change::Modified, 9);
        set.finish_scope(&[path("src/a.rs")], &path("src"), false);
        let left: Vec<String> = set.keys().map(|p| p.to_string()).collect();
        // The ignored file (never looked at) is done; the re-edited one stays.
        assert_eq!(left, vec!["src/a.rs", "src/x/b.rs", "web/c.ts"]);
    }

    #[test]
    fn lock_retries_and_failures_touch_only_files_in_flight() {
        let mut set = PendingSet::default();
        set.mark(path("a.rs"), Change::Modified, 1);
        set.mark(path("b.rs"), Change::Modified, 2);
        set.indexing_in(&path(""), false);
        set.mark(path("b.rs"), Change::Modified, 3);
        set.retrying(2, 5);
        assert_eq!(
            set[&path("a.rs")].state,
            PendingState::Retrying { attempt: 2, of: 5 }
        );
        assert_eq!(set[&path("b.rs")].state, WAITING);
        set.fail_in_flight();
        assert_eq!(set[&path("a.rs")].state, PendingState::Failed);
        assert_eq!(set[&path("b.rs")].state, WAITING);
    }

    #[test]
    fn the_published_rows_read_back_as_the_same_set() {
        let mut set = PendingSet::default();
        set.mark(path("a.rs"), Change::Added, 1);
        set.found(path("gone.rs"), Change::Deleted, 2);
        set.mark(path("c.rs"), Change::Modified, 3);
        set.indexing_in(&path(""), false);
        set.fail_in_flight();
        set.mark(path("c.rs"), Change::Modified, 4);
        assert_eq!(PendingSet::from_rows(set.rows()), set);
    }
}
