//! How the engine decides its freshness verdict (see `engine/freshness.rs`): pure
//! functions of what the writer or the follower knows, so each reason is tested alone.

use std::time::Duration;

use super::snapshot::Catchup;
use crate::engine::freshness::Unverified;
use crate::engine::watcher::{WatchMode, WatcherStatus};

/// A follower calls its writer not responding when a probe stays unanswered this long:
/// an idle writer answers within milliseconds, and `status` gives it a quarter of a
/// second.
pub(super) const WRITER_ANSWER_GRACE: Duration = Duration::from_secs(1);

/// What a writer knows about itself.
pub(super) struct WriterView<'a> {
    pub(super) catchup: &'a Catchup,
    /// The catch-up running (or due) was caused by lost events.
    pub(super) rescanning: bool,
    /// Catch-up progress: files checked, in all.
    pub(super) progress: (u64, u64),
    /// Another process holds the index: the retry in progress, 0 between retries.
    pub(super) lock_retry: Option<u32>,
    pub(super) watcher: &'a WatcherStatus,
    /// A rescan after lost events is scheduled but not started (backing off).
    pub(super) rescan_due: bool,
}

/// What a follower knows about its writer.
pub(super) struct FollowerView<'a> {
    /// The writer's published set is its own, after its catch-up, and as of the
    /// index's latest write.
    pub(super) set_current: bool,
    /// The writer's watcher, as it published it.
    pub(super) watcher: &'a WatcherStatus,
    /// How long the follower's probe has waited for the writer's answer, if one waits.
    pub(super) probe_waited: Option<Duration>,
    /// The writer holds its busy lock (catch-up, re-indexing).
    pub(super) writer_busy: bool,
    /// The writer's own reason not to vouch, as it published it (meta
    /// `writer_unverified`).
    pub(super) writer_reason: Option<Unverified>,
}

/// The writer's reason not to vouch for its pending set, if it has one. In order: its
/// comparison of the tree is not done, the index is locked, its watcher is off or
/// degraded, a rescan is due.
pub(super) fn writer(view: &WriterView<'_>) -> Option<Unverified> {
    match view.catchup {
        Catchup::NotStarted | Catchup::Running { .. } if view.rescanning => {
            return Some(Unverified::Rescanning);
        }
        Catchup::NotStarted | Catchup::Running { .. } => {
            let (checked, total) = view.progress;
            return Some(Unverified::CatchingUp { checked, total });
        }
        Catchup::Failed(error) => {
            return Some(Unverified::CatchUpFailed {
                error: error.clone(),
            });
        }
        Catchup::Done { .. } => {}
    }
    if let Some(retry) = view.lock_retry {
        return Some(Unverified::IndexLocked { retry });
    }
    match view.watcher.mode {
        WatchMode::Disabled => return Some(Unverified::WatcherOff),
        WatchMode::Degraded => {
            return Some(Unverified::WatcherDegraded {
                unwatched_dirs: view.watcher.unwatched_dirs,
            });
        }
        WatchMode::Native => {}
    }
    view.rescan_due.then_some(Unverified::Rescanning)
}

/// The follower's reason not to vouch for the writer's set, if it has one. In order:
/// the set is not current, the writer itself does not vouch for it, the writer does not
/// watch, the writer does not answer (a busy one: it is busy), the writer's watcher is
/// degraded.
pub(super) fn follower(view: &FollowerView<'_>) -> Option<Unverified> {
    if !view.set_current {
        // Its writer's catch-up has not published what it found yet; the follower
        // does not see its progress.
        return Some(Unverified::CatchingUp {
            checked: 0,
            total: 0,
        });
    }
    if let Some(reason) = &view.writer_reason {
        return Some(reason.clone());
    }
    if view.watcher.mode == WatchMode::Disabled {
        return Some(Unverified::WatcherOff);
    }
    if let Some(waited) = view.probe_waited.filter(|w| *w >= WRITER_ANSWER_GRACE) {
        return Some(if view.writer_busy {
            Unverified::WriterBusy
        } else {
            Unverified::WriterNotResponding {
                secs: waited.as_secs(),
            }
        });
    }
    (view.watcher.mode == WatchMode::Degraded).then_some(Unverified::WatcherDegraded {
        unwatched_dirs: view.watcher.unwatched_dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(mode: WatchMode, unwatched_dirs: usize) -> WatcherStatus {
        WatcherStatus {
            mode,
            unwatched_dirs,
            ..WatcherStatus::disabled("test", 2000)
        }
    }

    const DONE: Catchup = Catchup::Done {
        found: 0,
        duration_ms: 1,
    };

    fn healthy_writer<'a>(catchup: &'a Catchup, watcher: &'a WatcherStatus) -> WriterView<'a> {
        WriterView {
            catchup,
            rescanning: false,
            progress: (3, 10),
            lock_retry: None,
            watcher,
            rescan_due: false,
        }
    }

    #[test]
    fn a_writer_vouches_only_when_caught_up_unlocked_and_watching_natively() {
        let native = watcher(WatchMode::Native, 0);
        assert_eq!(writer(&healthy_writer(&DONE, &native)), None);

        let running = Catchup::Running {
            checked: 0,
            total: 0,
        };
        assert_eq!(
            writer(&healthy_writer(&running, &native)),
            Some(Unverified::CatchingUp {
                checked: 3,
                total: 10
            })
        );
        assert_eq!(
            writer(&healthy_writer(&Catchup::NotStarted, &native)),
            Some(Unverified::CatchingUp {
                checked: 3,
                total: 10
            })
        );
        assert_eq!(
            writer(&WriterView {
                rescanning: true,
                ..healthy_writer(&running, &native)
            }),
            Some(Unverified::Rescanning)
        );
        let failed = Catchup::Failed("disk".into());
        assert_eq!(
            writer(&healthy_writer(&failed, &native)),
            Some(Unverified::CatchUpFailed {
                error: "disk".into()
            })
        );
        assert_eq!(
            writer(&WriterView {
                lock_retry: Some(2),
                ..healthy_writer(&DONE, &native)
            }),
            Some(Unverified::IndexLocked { retry: 2 })
        );
        let off = watcher(WatchMode::Disabled, 0);
        assert_eq!(
            writer(&healthy_writer(&DONE, &off)),
            Some(Unverified::WatcherOff)
        );
        let degraded = watcher(WatchMode::Degraded, 7);
        assert_eq!(
            writer(&healthy_writer(&DONE, &degraded)),
            Some(Unverified::WatcherDegraded { unwatched_dirs: 7 })
        );
        assert_eq!(
            writer(&WriterView {
                rescan_due: true,
                ..healthy_writer(&DONE, &native)
            }),
            Some(Unverified::Rescanning)
        );
    }

    #[test]
    fn a_locked_index_outranks_the_watcher_and_catch_up_outranks_both() {
        let off = watcher(WatchMode::Disabled, 0);
        let locked = WriterView {
            lock_retry: Some(0),
            ..healthy_writer(&DONE, &off)
        };
        assert_eq!(writer(&locked), Some(Unverified::IndexLocked { retry: 0 }));
        let running = Catchup::Running {
            checked: 0,
            total: 0,
        };
        let catching_up = WriterView {
            catchup: &running,
            ..locked
        };
        assert!(matches!(
            writer(&catching_up),
            Some(Unverified::CatchingUp { .. })
        ));
    }

    fn healthy_follower(watcher: &WatcherStatus) -> FollowerView<'_> {
        FollowerView {
            set_current: true,
            watcher,
            probe_waited: None,
            writer_busy: false,
            writer_reason: None,
        }
    }

    #[test]
    fn a_follower_vouches_only_for_a_current_set_from_a_watching_answering_writer() {
        let native = watcher(WatchMode::Native, 0);
        assert_eq!(follower(&healthy_follower(&native)), None);
        assert_eq!(
            follower(&FollowerView {
                probe_waited: Some(WRITER_ANSWER_GRACE / 2),
                ..healthy_follower(&native)
            }),
            None,
            "a probe in flight, not late yet"
        );
        assert_eq!(
            follower(&FollowerView {
                set_current: false,
                ..healthy_follower(&native)
            }),
            Some(Unverified::CatchingUp {
                checked: 0,
                total: 0
            })
        );
        assert_eq!(
            follower(&FollowerView {
                probe_waited: Some(Duration::from_millis(3500)),
                ..healthy_follower(&native)
            }),
            Some(Unverified::WriterNotResponding { secs: 3 })
        );
        assert_eq!(
            follower(&FollowerView {
                probe_waited: Some(Duration::from_secs(5)),
                writer_busy: true,
                ..healthy_follower(&native)
            }),
            Some(Unverified::WriterBusy)
        );
        assert_eq!(
            follower(&FollowerView {
                writer_reason: Some(Unverified::Rescanning),
                ..healthy_follower(&native)
            }),
            Some(Unverified::Rescanning),
            "what the writer does not vouch for, no follower does"
        );
        let off = watcher(WatchMode::Disabled, 0);
        assert_eq!(
            follower(&healthy_follower(&off)),
            Some(Unverified::WatcherOff)
        );
        let degraded = watcher(WatchMode::Degraded, 4);
        assert_eq!(
            follower(&healthy_follower(&degraded)),
            Some(Unverified::WatcherDegraded { unwatched_dirs: 4 })
        );
    }
}
