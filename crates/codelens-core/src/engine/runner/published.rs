//! What the writer shows its followers besides the pending set: its debounce windows
//! and its recent events (meta rows `writer_debounce` and `writer_events`, written with
//! the pending set), and how a follower asks it to act (meta row `writer_request`,
//! which the writer reads at its polls and deletes once it has taken it).
//!
//! Deadlines are wall-clock Unix ns: a follower counts down from them itself, between
//! two reads, as the writer would.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::debounce::path_in_dir;
use super::*;
use crate::engine::store;

/// Meta keys.
pub(super) const DEBOUNCE_KEY: &str = "writer_debounce";
pub(super) const EVENTS_KEY: &str = "writer_events";
pub(super) const REQUEST_KEY: &str = "writer_request";

/// How many of its latest events the writer keeps published.
const PUBLISHED_EVENTS: usize = 20;

/// A request older than this is dropped unanswered: the follower that wrote it has long
/// stopped waiting (it may be gone), and a writer started later must not rescan for it.
/// Generous, because a writer busy with a long catch-up does not poll meanwhile.
const REQUEST_MAX_AGE_NS: i64 = 10 * 60 * 1_000_000_000;

/// One debounce window as the writer publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PublishedWindow {
    pub dir: String,
    pub files: usize,
    /// The first change it waits on, and when its files are re-indexed.
    pub first_ns: i64,
    pub due_ns: i64,
    pub window_ms: u64,
    /// The whole subtree is re-indexed (a directory that appeared or went away).
    pub recursive: bool,
}

impl PublishedWindow {
    /// The window as a front end shows it, at `now_ns`.
    pub(super) fn state(&self, now_ns: i64) -> DirectoryState {
        DirectoryState {
            dir: self.dir.clone(),
            files: self.files,
            waited_ms: (now_ns.saturating_sub(self.first_ns).max(0) / 1_000_000) as u64,
            reindex_in_ms: self.reindex_in_ms(now_ns),
            window_ms: self.window_ms,
        }
    }

    fn reindex_in_ms(&self, now_ns: i64) -> u64 {
        (self.due_ns.saturating_sub(now_ns).max(0) / 1_000_000) as u64
    }
}

/// The windows a follower read, each with its directory as a path (made once per
/// read, not once per pending file and window at every publish).
pub(super) fn with_paths(windows: Vec<PublishedWindow>) -> Vec<(RelPath, PublishedWindow)> {
    (windows.into_iter())
        .map(|w| (RelPath::from_bytes(w.dir.as_bytes().to_vec()), w))
        .collect()
}

/// The countdown of the published window `path` waits in, if any.
pub(super) fn reindex_in_ms(
    windows: &[(RelPath, PublishedWindow)],
    path: &RelPath,
    now_ns: i64,
) -> Option<u64> {
    windows
        .iter()
        .find(|(dir, w)| path_in_dir(path, dir, w.recursive))
        .map(|(_, w)| w.reindex_in_ms(now_ns))
}

/// An event of the writer's, as followers read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PublishedEvent {
    pub seq: u64,
    pub at_ns: i64,
    pub text: String,
}

/// The writer's latest events, with the engine they come from (a new writer counts
/// from the start again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PublishedLog {
    pub engine: String,
    pub events: VecDeque<PublishedEvent>,
}

impl PublishedLog {
    /// Keeps `event` when followers would want to see it: what the writer did, not
    /// what only concerns its own front ends.
    pub(super) fn record(&mut self, event: &Event, at_ns: i64) -> bool {
        let shown = matches!(
            event,
            Event::Synced { .. }
                | Event::CatchupFinished { .. }
                | Event::Rescan { .. }
                | Event::LockRetry { .. }
                | Event::WriterRequestTaken { .. }
                | Event::Error(_)
        );
        if !shown {
            return false;
        }
        let seq = self.events.back().map_or(1, |e| e.seq + 1);
        self.events.push_back(PublishedEvent {
            seq,
            at_ns,
            text: event.to_string(),
        });
        while self.events.len() > PUBLISHED_EVENTS {
            self.events.pop_front();
        }
        true
    }

    pub(super) fn last_seq(&self) -> u64 {
        self.events.back().map_or(0, |e| e.seq)
    }
}

/// What a follower asks its writer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterRequest {
    Sync,
    Rescan,
}

impl WriterRequest {
    fn name(self) -> &'static str {
        match self {
            WriterRequest::Sync => "sync",
            WriterRequest::Rescan => "rescan",
        }
    }

    /// `sync` or `rescan`, the first word of the request row.
    fn parse(row: &str) -> Option<WriterRequest> {
        match row.split_whitespace().next()? {
            "sync" => Some(WriterRequest::Sync),
            "rescan" => Some(WriterRequest::Rescan),
            _ => None,
        }
    }

    /// The request in `row` (`sync|rescan <engine id> <ns>`) if it is still worth
    /// acting on at `now_ns`: written less than [`REQUEST_MAX_AGE_NS`] ago (or ahead of
    /// this clock by less than that).
    fn parse_current(row: &str, now_ns: i64) -> Option<WriterRequest> {
        let written_ns: i64 = row.split_whitespace().nth(2)?.parse().ok()?;
        if now_ns.abs_diff(written_ns) > REQUEST_MAX_AGE_NS.unsigned_abs() {
            return None;
        }
        WriterRequest::parse(row)
    }
}

impl Worker {
    /// A follower's request to its writer: written into the index (a request already
    /// waiting there is kept when it asks for more: a rescan includes a sync). When the
    /// index is locked, tried again at the next poll.
    pub(super) fn request_writer(&mut self, request: WriterRequest) {
        self.request_to_send = Some(match (self.request_to_send, request) {
            (Some(WriterRequest::Rescan), _) => WriterRequest::Rescan,
            _ => request,
        });
        self.send_request();
    }

    pub(super) fn send_request(&mut self) {
        let Some(request) = self.request_to_send else {
            return;
        };
        let waiting = self.store.meta(REQUEST_KEY).ok().flatten();
        let request = match waiting.as_deref().and_then(WriterRequest::parse) {
            Some(WriterRequest::Rescan) => WriterRequest::Rescan,
            _ => request,
        };
        let row = format!("{} {} {}", request.name(), self.engine_id, now_ns());
        if self.write_meta_now(|batch| batch.set_meta(REQUEST_KEY, &row)) {
            self.request_to_send = None;
            self.shared.emit(Event::WriterAsked {
                rescan: request == WriterRequest::Rescan,
            });
        }
    }

    /// One small write of meta rows, if the index lock is free now (no wait): whether
    /// it was written.
    fn write_meta_now(&mut self, write: impl FnOnce(&store::Batch<'_>) -> Result<()>) -> bool {
        let Ok(Some(_lock)) = self.project.try_lock_for_writing() else {
            return false;
        };
        let written = (|| {
            let batch = self.store.batch()?;
            write(&batch)?;
            batch.commit()
        })();
        written.is_ok()
    }

    /// A writer's poll: takes a follower's request (deleting exactly the row it read, so
    /// one written meanwhile stays for the next poll) and acts on it.
    pub(super) fn take_writer_request(&mut self) {
        let Some(row) = self.store.meta(REQUEST_KEY).ok().flatten() else {
            return;
        };
        if !self.write_meta_now(|batch| batch.delete_meta_if(REQUEST_KEY, &row)) {
            return;
        }
        let Some(request) = WriterRequest::parse_current(&row, now_ns()) else {
            tracing::debug!(target: "codelens::engine", "dropped a stale or unreadable writer request: {row:?}");
            return;
        };
        let rescan = request == WriterRequest::Rescan;
        self.shared.emit(Event::WriterRequestTaken { rescan });
        if rescan {
            self.rescanning = true;
            self.catch_up();
        } else {
            self.reindex();
        }
    }

    /// A follower's poll: the writer's debounce windows, and its events not seen yet
    /// (emitted here, as this engine's own). Windows published by a writer that is gone
    /// (the rows outlive it until its successor publishes) are not shown: their
    /// deadlines passed with no one to keep them.
    pub(super) fn follow_published(&mut self) {
        let meta = |key| self.store.meta(key).ok().flatten();
        let from_running_writer =
            meta("engine_id").is_some_and(|id| Some(id) == self.project.engine_owner());
        self.writer_windows = if from_running_writer {
            with_paths(
                meta(DEBOUNCE_KEY)
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default(),
            )
        } else {
            Vec::new()
        };
        let Some(log) =
            meta(EVENTS_KEY).and_then(|json| serde_json::from_str::<PublishedLog>(&json).ok())
        else {
            return;
        };
        let seen = match &self.writer_log_seen {
            Some((engine, seq)) if *engine == log.engine => *seq,
            _ => 0,
        };
        for event in log.events.iter().filter(|e| e.seq > seen) {
            self.shared.emit(Event::FromWriter {
                at_ns: event.at_ns,
                text: event.text.clone(),
            });
        }
        self.writer_log_seen = Some((log.engine.clone(), log.last_seq()));
    }

    /// The rows [`Worker::persist_pending`] writes besides the pending set, and the
    /// sequence number of the last event in them.
    pub(super) fn published_rows(&self) -> (String, String, u64) {
        let now = Instant::now();
        let now_wall = now_ns();
        let debounce = self.options.watch.debounce;
        let windows: Vec<PublishedWindow> = self
            .dirs
            .published(now, debounce, self.pending.keys())
            .into_iter()
            .map(|(state, recursive)| PublishedWindow {
                first_ns: now_wall - state.waited_ms as i64 * 1_000_000,
                due_ns: now_wall + state.reindex_in_ms as i64 * 1_000_000,
                window_ms: state.window_ms,
                dir: state.dir,
                files: state.files,
                recursive,
            })
            .collect();
        let log = {
            let mut log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
            log.engine.clone_from(&self.engine_id);
            (
                serde_json::to_string(&*log).unwrap_or_default(),
                log.last_seq(),
            )
        };
        (
            serde_json::to_string(&windows).unwrap_or_default(),
            log.0,
            log.1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_what_followers_show_and_the_latest_only() {
        let mut log = PublishedLog::default();
        assert!(!log.record(&Event::PendingChanged { count: 3 }, 1));
        for i in 0..25 {
            let synced = Event::Synced {
                added: i,
                modified: 0,
                removed: 0,
                duration_ms: 1,
            };
            assert!(log.record(&synced, i as i64));
        }
        assert_eq!(log.events.len(), PUBLISHED_EVENTS);
        assert_eq!(log.last_seq(), 25);
        assert_eq!(log.events[0].seq, 6);
        assert_eq!(log.events[0].text, "synced +5 ~0 -0 in 1 ms");
        let json = serde_json::to_string(&log).unwrap();
        assert_eq!(serde_json::from_str::<PublishedLog>(&json).unwrap(), log);
    }

    #[test]
    fn a_window_counts_down_from_its_wall_clock_deadline() {
        let window = PublishedWindow {
            dir: "src".into(),
            files: 2,
            first_ns: 1_000_000_000,
            due_ns: 3_000_000_000,
            window_ms: 2000,
            recursive: false,
        };
        let state = window.state(1_500_000_000);
        assert_eq!((state.waited_ms, state.reindex_in_ms), (500, 1500));
        assert_eq!(
            window.state(9_000_000_000).reindex_in_ms,
            0,
            "never negative"
        );
        let windows = with_paths(vec![window]);
        let file = RelPath::from_bytes(b"src/a.rs".to_vec());
        let deeper = RelPath::from_bytes(b"src/x/a.rs".to_vec());
        assert_eq!(reindex_in_ms(&windows, &file, 2_000_000_000), Some(1000));
        assert_eq!(reindex_in_ms(&windows, &deeper, 2_000_000_000), None);
        assert_eq!(
            WriterRequest::parse("rescan 12:34 99"),
            Some(WriterRequest::Rescan)
        );
        assert_eq!(
            WriterRequest::parse("sync 12:34 99"),
            Some(WriterRequest::Sync)
        );
        assert_eq!(WriterRequest::parse("drop table"), None);
        assert_eq!(WriterRequest::parse(""), None);
    }

    #[test]
    fn a_stale_or_unreadable_request_is_not_acted_on() {
        let now = 1_000 * REQUEST_MAX_AGE_NS;
        let row = |ns: i64| format!("rescan 12:34 {ns}");
        let current = |row: &str| WriterRequest::parse_current(row, now);
        assert_eq!(
            current(&row(now - 1_000_000_000)),
            Some(WriterRequest::Rescan)
        );
        assert_eq!(
            current(&row(now + 1_000_000_000)),
            Some(WriterRequest::Rescan)
        );
        // A follower that asked and went away long ago.
        assert_eq!(current(&row(now - REQUEST_MAX_AGE_NS - 1)), None);
        assert_eq!(current(&row(i64::MIN)), None);
        assert_eq!(current(&row(i64::MAX)), None);
        assert_eq!(current("rescan 12:34"), None, "no time");
        assert_eq!(current("rescan 12:34 soon"), None);
        assert_eq!(current(&format!("reboot 12:34 {now}")), None);
    }
}
