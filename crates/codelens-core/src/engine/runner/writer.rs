//! The writer's work: applying changes found by catch-up and events, re-indexing
//! directories when their debounce window ends, the full catch-up and rescan, lock
//! retries, publishing the pending set for other processes, and the fallback scan
//! while the verdict is unverified.

use super::*;

impl Worker {
    /// Whether git holds its index lock (a checkout, a rebase, a merge in progress). A
    /// lock older than a minute is a leftover of a crashed git, not work in progress.
    #[allow(clippy::disallowed_methods)] // git's own lock file, not the project's content
    pub(super) fn git_is_busy(&self) -> bool {
        let Some(git_dir) = &self.git_dir else {
            return false;
        };
        std::fs::metadata(git_dir.join("index.lock"))
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(60))
    }

    /// Lost events: a full reconcile, at once for the first few, then backing off
    /// (exponentially, up to 10 s) while they keep coming.
    pub(super) fn schedule_rescan(&mut self) {
        // A follower reconciles nothing: its writer does.
        if self.role() != Role::Writer {
            return;
        }
        let now = Instant::now();
        if self
            .last_rescan
            .is_some_and(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            self.rescans = 0;
        }
        self.rescans += 1;
        self.rescans_total += 1;
        self.last_rescan = Some(now);
        let delay = match self.rescans.checked_sub(FREE_RESCANS + 1) {
            None => Duration::ZERO,
            Some(extra) => (Duration::from_millis(500) * 2u32.saturating_pow(extra.min(16) as u32))
                .min(MAX_RESCAN_BACKOFF),
        };
        let at = now + delay;
        self.rescan_at = Some(self.rescan_at.map_or(at, |current| current.min(at)));
        self.shared.emit(Event::Rescan {
            count: self.rescans_total,
        });
        self.refresh_watcher_status();
        // `codelens status` in another process reports the count too.
        self.pending_dirty = true;
    }

    /// Re-indexes what is due: a full reconcile after lost events, directories whose
    /// quiet window passed, unwatched directories on their schedule.
    pub(super) fn run_due_work(&mut self) {
        let now = Instant::now();
        self.heartbeat(now);
        if self.rescan_at.is_some_and(|at| at <= now) || self.recheck_at.is_some_and(|at| at <= now)
        {
            // Lost events (not the periodic re-check of unwatched directories, whose verdict
            // stays "degraded") make the verdict "rescanning" until this catch-up ends.
            self.rescanning = self.rescan_at.is_some_and(|at| at <= now);
            self.rescan_at = None;
            if self.recheck_at.is_some_and(|at| at <= now) {
                self.recheck_at = Some(now + UNWATCHED_RECHECK);
            }
            self.dirs.clear();
            self.catch_up();
            return;
        }
        if self.catchup_reindex_at.is_some_and(|at| at <= now) {
            self.catchup_reindex_at = None;
            if !self.pending.is_empty() {
                self.reindex();
                return;
            }
        }
        // A git checkout or rebase is rewriting the tree: let it finish first.
        if self.git_is_busy() {
            self.git_busy_until = Some(now + Duration::from_millis(200));
            return;
        }
        self.git_busy_until = None;
        let debounce = self.options.watch.debounce;
        let due = self.dirs.due(now, debounce);
        if due.len() > MAX_DIRS_PER_BATCH {
            self.dirs.clear();
            self.reindex();
            return;
        }
        for dir in due {
            let recursive = self.dirs.take(&dir).unwrap_or(false);
            self.reindex_dir(&dir, recursive);
        }
    }

    /// Marks the start of work during which events queue unread: until they are
    /// published, `status` checks the tree itself rather than trust the published set.
    pub(super) fn begin_busy(&mut self) {
        if self.busy.is_none() && self.role() == Role::Writer {
            // Failing only means `status` may read the set meanwhile, as before.
            self.busy = self.project.lock_engine_busy().ok();
        }
    }

    pub(super) fn reindex_dir(&mut self, dir: &RelPath, recursive: bool) {
        self.begin_busy();
        self.pending.indexing_in(dir, recursive);
        self.publish();
        let (project, scope) = (self.project.clone(), dir.clone());
        let result = self
            .with_write_lock(|store| reconcile::reindex_scope(&project, store, &scope, recursive));
        match result {
            Ok((report, looked_at)) => {
                self.pending.finish_scope(&looked_at, dir, recursive);
                self.last_seen_generation = self.store.generation().ok();
                self.error = None;
                self.persist_pending();
                if report.changed() {
                    self.shared.emit(Event::Synced {
                        added: report.added,
                        modified: report.modified,
                        removed: report.removed,
                        duration_ms: report.duration_ms,
                    });
                }
            }
            Err(error) => {
                self.reindex_failed(error);
                // Try the directory again later rather than leave its files failed.
                self.dirs.wait_on(
                    dir.clone(),
                    recursive,
                    Instant::now() + Duration::from_secs(2),
                );
            }
        }
        self.publish();
    }

    /// Runs a write with the index lock, retrying up to [`MAX_LOCK_RETRIES`] times with
    /// exponential backoff while another process holds it (or SQLite reports busy).
    pub(super) fn with_write_lock<T>(
        &mut self,
        mut write: impl FnMut(&mut Store) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let outcome = match self.project.try_lock_for_writing() {
                Ok(Some(_lock)) => match write(&mut self.store) {
                    Err(Error::Sqlite(e))
                        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
                    {
                        None
                    }
                    other => Some(other),
                },
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            };
            if let Some(outcome) = outcome {
                // Done, or failed for another reason than the lock.
                self.lock_retry = None;
                return outcome;
            }
            attempt += 1;
            if attempt > MAX_LOCK_RETRIES {
                // Still locked, between retries: the files stay pending (failed) and
                // are tried again later.
                self.lock_retry = Some(0);
                return Err(Error::Io {
                    path: self.project.index_dir(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "the index stayed locked by another process through {MAX_LOCK_RETRIES} retries"
                        ),
                    ),
                });
            }
            self.lock_retry = Some(attempt);
            self.pending.retrying(attempt as u8, MAX_LOCK_RETRIES as u8);
            self.shared.emit(Event::LockRetry {
                attempt,
                of: MAX_LOCK_RETRIES,
            });
            self.publish();
            std::thread::sleep(Duration::from_millis(50) * 2u32.pow(attempt));
        }
    }

    pub(super) fn reindex_failed(&mut self, error: Error) {
        self.pending.fail_in_flight();
        self.persist_pending();
        self.fail(format!("re-indexing failed: {error}"));
    }

    pub(super) fn become_writer(&mut self) {
        self.shared.emit(Event::RoleChanged(Role::Writer));
        self.project.remove_stale_probes(STALE_PROBE_AGE);
        // Watch first: an edit made while catch-up runs must not fall between the two.
        self.start_watcher();
        self.catch_up();
    }

    pub(super) fn start_watcher(&mut self) {
        let debounce_ms = self.debounce_ms();
        let watch = &self.options.watch;
        let strategy = watch.strategy;
        // Off, the status still names the strategy the engine was asked for.
        let disabled = |reason: String| WatcherStatus {
            strategy,
            ..WatcherStatus::disabled(reason, debounce_ms)
        };
        if !watch.enabled {
            let reason = "watching is off for this engine (CODELENS_NO_WATCH=1, or not requested)";
            self.watcher_status = disabled(reason.into());
            return;
        }
        if let Some(reason) = watcher::disabled_reason(&self.project.root, false, watch.force) {
            self.watcher_status = disabled(reason);
            return;
        }
        self.git_dir = crate::engine::git::discover(&self.project.root)
            .ok()
            .flatten()
            .map(|g| g.git_dir);
        // The directory cache names the tree's directories as of the last walk: watching
        // those needs no walk now. The catch-up that follows arms the watches of the
        // directories it actually finds (and crawls again any it had to add), so a
        // stale entry costs only a failed watch.
        let tree = match self.project.tree() {
            Ok(tree) => tree,
            Err(error) => {
                self.watcher_status = disabled(error.to_string());
                return;
            }
        };
        let generation = self.store.generation().ok();
        let dirs = match self.store.dir_cache() {
            Ok(cache) if !cache.dirs.is_empty() => cache.watched_dirs(),
            _ => scan::walk(&tree).dirs,
        };
        let cap = watch
            .max_dir_watches
            .unwrap_or_else(watcher::default_max_dir_watches);
        let inbox = self.inbox.clone();
        let sink = move |message| {
            let _ = inbox.send(Input::Watch(message));
        };
        match WatcherHandle::start(&tree, dirs, cap, strategy, sink) {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                self.watches_armed_at_generation = generation;
            }
            Err(reason) => self.watcher_status = disabled(reason),
        }
        self.refresh_watcher_status();
    }

    pub(super) fn refresh_watcher_status(&mut self) {
        if let Some(watcher) = &self.watcher {
            let status = watcher.status(self.rescans_total, self.debounce_ms());
            // Followers and `status` judge by the published mode: a change is published.
            let published = |s: &WatcherStatus| (s.mode, s.unwatched_dirs, s.descriptors);
            if published(&status) != published(&self.watcher_status) {
                self.pending_dirty = true;
            }
            if status.mode != self.watcher_status.mode {
                self.shared.emit(Event::WatcherChanged {
                    mode: status.mode_name().into(),
                    reason: status.reason.clone(),
                });
            }
            self.watcher_status = status;
            if self.watcher_status.mode == watcher::WatchMode::Degraded && self.recheck_at.is_none()
            {
                self.recheck_at = Some(Instant::now() + UNWATCHED_RECHECK);
            }
        }
    }

    /// A writer's tick: a write by another process (`codelens sync`) may have changed
    /// the index and cleared the published pending set: check the tree again.
    pub(super) fn notice_other_writers(&mut self) {
        match self.store.generation() {
            Ok(generation) if Some(generation) != self.last_seen_generation => {
                self.pending.clear();
                self.dirs.clear();
                self.catch_up();
            }
            Ok(_) => {}
            Err(error) => self.fail(error.to_string()),
        }
    }

    /// Compares the whole tree with the index (stat everything, hash what changed),
    /// publishes what differs as pending, and re-indexes it when no delay applies.
    pub(super) fn catch_up(&mut self) {
        self.begin_busy();
        let started = Instant::now();
        self.shared.progress.start(0);
        self.catchup = Catchup::Running {
            checked: 0,
            total: 0,
        };
        self.publish();
        // Read before the scan: a write by another process during it must still be
        // noticed (and looked at) afterwards.
        let generation = self.store.generation().ok();
        let scanned = reconcile::check_tree(&self.project, &self.store, &self.shared.progress);
        let armed_at = self.watches_armed_at_generation.take();
        let found = match scanned {
            Ok(checked) => {
                // Events were lost: directories created meanwhile get their watch now,
                // and every other one is armed again (one deleted and recreated meanwhile
                // lost its kernel watch with its old inode). Those newly watched or found
                // replaced are crawled again once quiet: a file written there after the
                // walk above and before its watch has no event. Right after the watcher
                // armed everything, with no write to the index since, a directory the
                // cache found unchanged is the one just watched: not armed twice.
                let nothing_written =
                    armed_at.is_some() && armed_at == self.store.generation().ok();
                let just_armed = if nothing_written {
                    checked.unchanged_dirs
                } else {
                    Vec::new()
                };
                if let Some(watcher) = &self.watcher {
                    let renewed = watcher.sync_watches(&checked.dirs, &just_armed);
                    let now = Instant::now();
                    for dir in renewed {
                        self.dirs.wait_on(dir, true, now);
                    }
                }
                checked.pending
            }
            Err(error) => {
                self.catchup = Catchup::Failed(error.to_string());
                self.rescanning = false;
                // Tried again (a busy index, a directory that vanished mid-walk …); until
                // then the verdict says it failed and the fallback scan lists edits.
                self.rescan_at = Some(Instant::now() + CATCHUP_RETRY);
                return self.fail(error.to_string());
            }
        };
        let count = found.len();
        let now = now_ns();
        for file in found {
            // A deleted file has no mtime: it was seen gone now.
            let edited = file.edited_at_ns.unwrap_or(now);
            self.pending.found(file.path, file.change, edited);
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        self.catchup = Catchup::Done {
            found: count,
            duration_ms,
        };
        let rescan = self.rescanning;
        self.rescanning = false;
        self.last_seen_generation = generation;
        self.persist_pending();
        self.shared.emit(Event::CatchupFinished {
            found: count,
            duration_ms,
            rescan,
        });
        self.refresh_watcher_status();
        self.publish();
        if !self.pending.is_empty() {
            if self.options.reindex_delay.is_zero() {
                self.reindex();
            } else {
                self.catchup_reindex_at = Some(Instant::now() + self.options.reindex_delay);
            }
        }
    }

    /// Brings the whole index up to date (which also clears the published pending set).
    pub(super) fn reindex(&mut self) {
        self.begin_busy();
        self.pending.indexing_all();
        self.publish();
        let project = self.project.clone();
        let result =
            self.with_write_lock(|store| reconcile::sync(&project, store, &Progress::new()));
        match result {
            Ok(report) => {
                self.pending.clear();
                self.scanned.clear();
                self.dirs.clear();
                // Publish the (now empty) set stamped with the generation this sync
                // wrote, or status would keep checking the tree itself.
                self.pending_dirty = true;
                self.error = None;
                self.last_seen_generation = self.store.generation().ok();
                self.shared.emit(Event::Synced {
                    added: report.added,
                    modified: report.modified,
                    removed: report.removed,
                    duration_ms: report.duration_ms,
                });
                self.publish();
            }
            Err(error) => {
                self.reindex_failed(error);
                self.rescan_at = Some(Instant::now() + Duration::from_secs(5));
            }
        }
    }

    /// Publishes the pending set in the store for followers and `codelens status`. One
    /// attempt: when another process holds the index lock, the loop tries again shortly
    /// instead of blocking on it.
    pub(super) fn persist_pending(&mut self) {
        let rows = self.pending.rows();
        let (mode, reason, rescans, unwatched) = (
            self.watcher_status.mode_name(),
            self.watcher_status.reason.clone(),
            self.watcher_status.rescans,
            self.watcher_status.unwatched_dirs,
        );
        let (strategy, descriptors) = (
            self.watcher_status.strategy.name(),
            self.watcher_status.descriptors,
        );
        // What this writer does not vouch for (a rescan due, a failed catch-up …):
        // followers and `status` must not vouch for it either.
        let own_reason = self.reason_to_publish();
        let own_reason = own_reason
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok())
            .unwrap_or_default();
        // The debounce windows and latest events, for followers to show.
        let (windows, events, log_seq) = self.published_rows();
        let store = &mut self.store;
        let engine_id = &self.engine_id;
        let seen_generation = self
            .last_seen_generation
            .map_or_else(String::new, |g| g.to_string());
        let written = match self.project.try_lock_for_writing() {
            Ok(Some(_lock)) => (|| {
                let batch = store.batch()?;
                batch.replace_pending(&rows)?;
                batch.set_meta("writer_unverified", &own_reason)?;
                batch.set_meta(published::DEBOUNCE_KEY, &windows)?;
                batch.set_meta(published::EVENTS_KEY, &events)?;
                // For `codelens status` in another process: how this writer keeps up.
                batch.set_meta("watcher_mode", mode)?;
                batch.set_meta("watcher_reason", &reason)?;
                batch.set_meta("watcher_rescans", &rescans.to_string())?;
                batch.set_meta("watcher_unwatched_dirs", &unwatched.to_string())?;
                batch.set_meta("watcher_strategy", strategy)?;
                batch.set_meta("watcher_descriptors", &descriptors.to_string())?;
                // This set comes from an engine that has compared the tree with the
                // index (persisting starts at the end of its first catch-up).
                batch.set_meta("engine_id", engine_id)?;
                // …and as of this write of the index: one made later by another process
                // (a CLI sync) makes the set unconfirmed until this engine looks again.
                batch.set_meta("engine_generation", &seen_generation)?;
                batch.commit()
            })()
            .map(|()| true),
            Ok(None) => Ok(false),
            Err(error) => Err(error),
        };
        match written {
            Ok(true) => {
                self.pending_dirty = false;
                self.published_log_seq = log_seq;
                self.lock_retry = None;
                self.persist_retry_at = None;
                self.published_reason = self.reason_to_publish();
            }
            // Another process holds the index (our lock, or SQLite's): followers and
            // `status` cannot see these edits until it lets go.
            Ok(false) => {
                self.pending_dirty = true;
                self.lock_retry.get_or_insert(0);
            }
            Err(Error::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                self.pending_dirty = true;
                self.lock_retry.get_or_insert(0);
            }
            // Not a lock (a full disk …): the set stays unpublished, so no probe is
            // answered and `status` checks the tree itself; tried again in a while.
            Err(error) => {
                self.pending_dirty = true;
                self.lock_retry = None;
                self.persist_retry_at = Some(Instant::now() + PERSIST_RETRY);
                self.fail(format!("cannot publish the pending set: {error}"));
            }
        }
    }

    /// Whether the engine must check the tree itself: a follower whenever it cannot
    /// vouch for its writer's set; a writer whose watcher does not see every edit (off or
    /// degraded), whose comparison of the tree failed, or that lost events and has not
    /// compared the tree again yet — but not while it is comparing it (catch-up), nor
    /// when only the index lock is in its way (its watcher still sees every edit).
    pub(super) fn fallback_scan_needed(&self) -> bool {
        if self.role() == Role::Follower {
            return self.unverified_reason().is_some();
        }
        match self.catchup {
            Catchup::NotStarted | Catchup::Running { .. } => false,
            Catchup::Failed(_) => true,
            Catchup::Done { .. } => {
                self.watcher_status.mode != watcher::WatchMode::Native || self.rescan_at.is_some()
            }
        }
    }

    /// The writer's reason not to vouch, as it publishes it for followers and `status`:
    /// its verdict without the index lock (publishing means the lock is free), and
    /// without catch-up progress (which changes too often to publish).
    pub(super) fn reason_to_publish(&self) -> Option<Unverified> {
        let view = verdict::WriterView {
            lock_retry: None,
            progress: (0, 0),
            ..self.writer_view()
        };
        verdict::writer(&view)
    }

    /// While the verdict is unverified, what `codelens status` would do: a read-only
    /// check of the whole tree against the index, at most once a second (and at most a
    /// tenth of the time), so that the files it lists are never older than that. A
    /// degraded writer re-indexes what it finds in the directories it cannot watch;
    /// otherwise the files are shown as `unsynced`.
    pub(super) fn fallback_scan_if_due(&mut self) {
        let writer = self.role() == Role::Writer;
        if !self.fallback_scan_needed() {
            self.scanned.clear();
            self.next_scan_at = None;
            return;
        }
        let started = Instant::now();
        if self.next_scan_at.is_some_and(|at| at > started) {
            return;
        }
        let found = reconcile::pending_changes(&self.project, &self.store, &Progress::new());
        let took = started.elapsed();
        self.next_scan_at =
            Some(Instant::now() + FALLBACK_SCAN_EVERY.max(took * FALLBACK_SCAN_DUTY));
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(target: "codelens::engine", "fallback scan failed: {error}");
                return;
            }
        };
        let degraded_writer = writer && self.watcher_status.mode == watcher::WatchMode::Degraded;
        let now = now_ns();
        let mut scanned = BTreeMap::new();
        for file in found {
            if self.pending.contains_key(&file.path) {
                continue;
            }
            if degraded_writer {
                let dir = (file.path.parent()).unwrap_or_else(|| RelPath::from_bytes(Vec::new()));
                let edited = file.edited_at_ns.unwrap_or(now);
                self.mark_pending(file.path, file.change, edited);
                self.dirs.wait_on(dir, false, started);
                continue;
            }
            // Seen before: keep when it was first seen (a deleted file has no mtime).
            let seen = self.scanned.get(&file.path);
            let edited = file
                .edited_at_ns
                .or(seen.map(|p| p.last_edit_ns))
                .unwrap_or(now);
            scanned.insert(
                file.path,
                Pending {
                    change: file.change,
                    first_edit_ns: seen.map_or(edited, |p| p.first_edit_ns.min(edited)),
                    last_edit_ns: edited,
                    state: PendingState::Unsynced,
                },
            );
        }
        self.scanned = scanned;
    }
}
