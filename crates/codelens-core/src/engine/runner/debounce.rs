//! The per-directory debounce queue: a directory's changes are re-indexed once it has
//! been quiet for the debounce window, or after five windows of continuous writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::snapshot::DirectoryState;
use crate::engine::RelPath;

/// A directory written to without a pause is re-indexed after this many windows.
pub const MAX_WAIT_WINDOWS: u32 = 5;

/// A directory with changes waiting for quiet.
#[derive(Debug, Clone)]
pub(super) struct DirWait {
    pub(super) first: Instant,
    pub(super) last: Instant,
    /// Re-index the whole subtree (a directory that appeared or went away).
    pub(super) recursive: bool,
}

impl DirWait {
    /// Trailing debounce with a maximum wait, so a file written continuously is still
    /// indexed.
    pub(super) fn due_at(&self, debounce: Duration) -> Instant {
        (self.last + debounce).min(self.first + debounce * MAX_WAIT_WINDOWS)
    }
}

/// The directories with changes waiting for their quiet window, by path.
#[derive(Debug, Default)]
pub(super) struct DebounceQueue {
    dirs: BTreeMap<RelPath, DirWait>,
}

impl DebounceQueue {
    /// A change in `dir` at `now`: its quiet window starts again (`recursive`: the
    /// whole subtree is re-indexed when it ends, as for a directory that appeared).
    pub(super) fn wait_on(&mut self, dir: RelPath, recursive: bool, now: Instant) {
        let wait = self.dirs.entry(dir).or_insert(DirWait {
            first: now,
            last: now,
            recursive,
        });
        wait.last = now;
        wait.recursive |= recursive;
    }

    /// The directories whose window has ended by `now`, in path order.
    pub(super) fn due(&self, now: Instant, debounce: Duration) -> Vec<RelPath> {
        (self.dirs.iter())
            .filter(|(_, w)| w.due_at(debounce) <= now)
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Takes `dir` off the queue (to re-index it): whether its subtree must be re-indexed.
    pub(super) fn take(&mut self, dir: &RelPath) -> Option<bool> {
        self.dirs.remove(dir).map(|w| w.recursive)
    }

    /// When the next window ends (never before `not_before`).
    pub(super) fn next_due(&self, debounce: Duration, not_before: Instant) -> Option<Instant> {
        (self.dirs.values())
            .map(|w| w.due_at(debounce).max(not_before))
            .min()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.dirs.clear();
    }

    /// Milliseconds left before `path`'s directory is re-indexed, if it waits.
    pub(super) fn reindex_in_ms(
        &self,
        path: &RelPath,
        now: Instant,
        debounce: Duration,
    ) -> Option<u64> {
        (self.dirs.iter())
            .find(|(dir, wait)| path_in_dir(path, dir, wait.recursive))
            .map(|(_, wait)| {
                wait.due_at(debounce)
                    .saturating_duration_since(now)
                    .as_millis() as u64
            })
    }

    /// The queue as a front end shows it, in path order, with the number of `pending`
    /// files each directory will re-index.
    pub(super) fn states<'a>(
        &self,
        now: Instant,
        debounce: Duration,
        pending: impl Iterator<Item = &'a RelPath> + Clone,
    ) -> Vec<DirectoryState> {
        (self.published(now, debounce, pending).into_iter())
            .map(|(state, _)| state)
            .collect()
    }

    /// [`DebounceQueue::states`], each with whether its whole subtree waits (what a
    /// follower needs to give each pending file its countdown).
    pub(super) fn published<'a>(
        &self,
        now: Instant,
        debounce: Duration,
        pending: impl Iterator<Item = &'a RelPath> + Clone,
    ) -> Vec<(DirectoryState, bool)> {
        (self.dirs.iter())
            .map(|(dir, wait)| {
                let state = DirectoryState {
                    dir: dir.to_string(),
                    files: (pending.clone())
                        .filter(|p| path_in_dir(p, dir, wait.recursive))
                        .count(),
                    waited_ms: now.duration_since(wait.first).as_millis() as u64,
                    reindex_in_ms: wait
                        .due_at(debounce)
                        .saturating_duration_since(now)
                        .as_millis() as u64,
                    window_ms: debounce.as_millis() as u64,
                };
                (state, wait.recursive)
            })
            .collect()
    }
}

/// Whether `path` is a file directly in `dir` (or anywhere below it when `recursive`).
pub(super) fn path_in_dir(path: &RelPath, dir: &RelPath, recursive: bool) -> bool {
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

    #[test]
    fn directories_come_due_when_quiet_and_say_what_they_hold() {
        let start = Instant::now();
        let window = Duration::from_secs(2);
        let mut queue = DebounceQueue::default();
        queue.wait_on(path("src"), false, start);
        queue.wait_on(path("web"), false, start + Duration::from_secs(1));
        assert_eq!(queue.next_due(window, start), Some(start + window));
        assert!(
            queue
                .due(start + Duration::from_millis(1999), window)
                .is_empty()
        );
        assert_eq!(queue.due(start + window, window), vec![path("src")]);
        // A new change restarts the window; the queue never makes it due earlier.
        queue.wait_on(path("src"), true, start + Duration::from_secs(3));
        assert_eq!(
            queue.due(start + Duration::from_secs(4), window),
            vec![path("web")]
        );
        let pending = [path("src/a.rs"), path("src/x/b.rs"), path("web/c.ts")];
        let states = queue.states(start + Duration::from_secs(4), window, pending.iter());
        let files: Vec<(String, usize)> = states.iter().map(|s| (s.dir.clone(), s.files)).collect();
        // src became recursive with its second change: it holds src/x/b.rs too.
        assert_eq!(files, vec![("src".into(), 2), ("web".into(), 1)]);
        assert_eq!(
            queue.reindex_in_ms(&path("src/x/b.rs"), start + Duration::from_secs(4), window),
            Some(1000)
        );
        assert_eq!(queue.take(&path("src")), Some(true));
        assert_eq!(queue.take(&path("src")), None);
        assert!(!queue.is_empty());
        queue.clear();
        assert_eq!(queue.next_due(window, start), None);
    }
}
