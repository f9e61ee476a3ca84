//! The follower: reading the writer's published pending set and watcher state, and
//! taking over when the writer's engine lock is released.

use super::*;

impl Worker {
    /// Takes the engine lock if its writer is gone; as the new writer, starts watching
    /// and catches up at once.
    pub(super) fn try_take_over(&mut self) -> bool {
        match self.project.try_lock_engine() {
            Ok(Some(lock)) => {
                let _ = lock.record_owner(&self.engine_id);
                self.engine_lock = Some(lock);
                if let Some(probe) = self.probe.take() {
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

    /// A follower's tick: the writer's pending set, and how the writer keeps up.
    pub(super) fn follow(&mut self) {
        let meta = |key| self.store.meta(key).ok().flatten();
        if let (Some(mode), Some(reason)) = (meta("watcher_mode"), meta("watcher_reason")) {
            let mode = match mode.as_str() {
                "native" => watcher::WatchMode::Native,
                "degraded" => watcher::WatchMode::Degraded,
                _ => watcher::WatchMode::Disabled,
            };
            let debounce_ms = self.debounce_ms();
            let status = WatcherStatus {
                mode,
                reason: format!("the writer engine's watcher: {reason}"),
                unwatched_dirs: meta("watcher_unwatched_dirs")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                // The writer's watches, not this engine's (it holds none).
                strategy: meta("watcher_strategy")
                    .and_then(|s| watcher::WatchStrategy::parse(&s))
                    .unwrap_or(self.options.watch.strategy),
                descriptors: meta("watcher_descriptors")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                ..WatcherStatus::disabled("", debounce_ms)
            };
            if status.mode != self.watcher_status.mode {
                self.shared.emit(Event::WatcherChanged {
                    mode: status.mode_name().into(),
                    reason: status.reason.clone(),
                });
            }
            self.watcher_status = status;
        }
        // What the writer itself does not vouch for (a rescan due, a failed catch-up).
        self.writer_reason = meta("writer_unverified")
            .filter(|r| !r.is_empty())
            .and_then(|r| serde_json::from_str(&r).ok());
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
        self.pending = PendingSet::from_rows(rows);
        self.follow_published();
    }
}
