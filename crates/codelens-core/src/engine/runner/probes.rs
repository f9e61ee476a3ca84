//! Cookies and probes: how the writer proves its pending set includes every file event
//! up to a moment. A cookie is a file the engine writes into the tree and waits to see
//! come back from its own watcher (a settle, the heartbeat); a probe is a file another
//! process (`status`, a follower) writes under `.codelens/` and the writer deletes once
//! it has handled and published every event before it.

use super::*;

impl Worker {
    pub(super) fn settle(&mut self, reply: Sender<()>) {
        let Some(watcher) = &self.watcher else {
            // A follower asks the writer, whose watcher saw the edit, and reads the set
            // it published after it. A writer that does not watch never answers.
            let writer_watches = self.watcher_status.mode != watcher::WatchMode::Disabled;
            if self.role() == Role::Follower && writer_watches {
                if !self.project.probe_writer(FOLLOWER_PROBE_TIMEOUT) {
                    // Not settled: the writer is busy or stopped. Dropping the reply says
                    // so at once, and the answer is marked unverified.
                    return;
                }
                self.follow();
            }
            self.settled.push(reply);
            return;
        };
        let n = self.next_cookie;
        self.next_cookie += 1;
        match watcher.write_cookie(n) {
            Ok(()) => {
                self.cookies.insert(n, reply);
            }
            Err(_) => self.settled.push(reply),
        }
    }

    /// Deletes the probe files seen so far ([`Project::probe_writer`]): called once
    /// every event before them is handled and the pending set is published.
    pub(super) fn answer_probes(&mut self) {
        let dir = self.project.index_dir();
        for name in self.probes.drain(..) {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }

    /// Sends a heartbeat cookie when one is due; when the last one never came back, the
    /// watcher is broken: say so, restart it and reconcile everything.
    pub(super) fn heartbeat(&mut self, now: Instant) {
        if let Some((_, sent)) = self.heartbeat_in_flight
            && now.duration_since(sent) >= HEARTBEAT_GRACE
        {
            if let (Some((n, _)), Some(watcher)) = (self.heartbeat_in_flight, &self.watcher) {
                watcher.remove_cookie(n);
            }
            self.heartbeat_in_flight = None;
            self.error = Some("the file watcher stopped delivering events; it was restarted and the tree re-checked".into());
            self.shared
                .emit(Event::Error(self.error.clone().unwrap_or_default()));
            self.watcher = None;
            self.start_watcher();
            self.schedule_rescan();
            return;
        }
        let Some(watcher) = &self.watcher else {
            return;
        };
        if self.heartbeat_in_flight.is_none() && self.heartbeat_at.is_none_or(|at| at <= now) {
            // A lost watch never stays silent: re-arm a slice of them, and crawl any
            // directory replaced behind the watcher's back (as if it had just appeared).
            let replaced = watcher.rearm_some(CHECK_PER_HEARTBEAT, REARM_PER_HEARTBEAT);
            // The root checked (renamed or deleted: degraded) and the watches counted.
            self.refresh_watcher_status();
            let Some(watcher) = &self.watcher else { return };
            let n = self.next_cookie;
            self.next_cookie += 1;
            if watcher.write_cookie(n).is_ok() {
                self.heartbeat_in_flight = Some((n, now));
            }
            self.heartbeat_at = Some(now + HEARTBEAT_EVERY);
            for dir in replaced {
                tracing::warn!(dir = %dir.to_string_lossy(), "directory watch was lost; re-armed and re-crawled");
                self.apply_fs_change(FsChange::NewDir(dir));
            }
        }
    }

    /// A follower's check on its writer, without waiting: collects the answer to the
    /// probe sent earlier, and sends the next one. Only a writer that watches answers.
    pub(super) fn probe_writer_in_background(&mut self) {
        if let Some(probe) = &self.probe
            && project::probe_answered(probe)
        {
            self.probe = None;
            self.probe_waiting_since = None;
        }
        if self.watcher_status.mode == watcher::WatchMode::Disabled {
            if let Some(probe) = self.probe.take() {
                let _ = std::fs::remove_file(probe);
            }
            self.probe_waiting_since = None;
            return;
        }
        let now = Instant::now();
        let since_sent = |at: Option<Instant>| at.map(|at| now.duration_since(at));
        // A probe this old may never be answered (its writer went, and the one that took
        // over armed its watch after the probe was written): ask again, still counting
        // the wait from the first one.
        if since_sent(self.probe_sent_at) >= Some(FOLLOWER_PROBE_RESEND)
            && let Some(probe) = self.probe.take()
        {
            let _ = std::fs::remove_file(probe);
        }
        if self.probe.is_none()
            && since_sent(self.probe_sent_at).is_none_or(|d| d >= FOLLOWER_PROBE_EVERY)
        {
            // One that cannot be written (a read-only `.codelens/`) counts as unanswered:
            // this follower cannot tell whether its writer keeps up.
            self.probe = self.project.send_probe();
            self.probe_sent_at = Some(now);
            self.probe_waiting_since.get_or_insert(now);
        }
    }
}
