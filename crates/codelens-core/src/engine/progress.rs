//! Progress of long work (a build, a sync, catch-up), as counters the work updates and
//! any front end reads when it draws: the CLI's progress bar, the dashboard's build
//! gauge, a snapshot's catch-up figures. The engine knows no progress-bar library.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// What the work is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Starting,
    Scanning,
    Indexing,
    Finishing,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Starting => "",
            Stage::Scanning => "scanning",
            Stage::Indexing => "indexing",
            Stage::Finishing => "finishing",
        }
    }
}

/// Shared counters: cloning shares them. Updates are relaxed atomics (a reader may see
/// a position from just before a length change, never a torn value).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    position: AtomicU64,
    length: AtomicU64,
    stage: AtomicU8,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    pub fn set_stage(&self, stage: Stage) {
        self.counters.stage.store(stage as u8, Ordering::Relaxed);
    }

    pub fn stage(&self) -> Stage {
        match self.counters.stage.load(Ordering::Relaxed) {
            1 => Stage::Scanning,
            2 => Stage::Indexing,
            3 => Stage::Finishing,
            _ => Stage::Starting,
        }
    }

    /// Starts counting `length` items from zero.
    pub fn start(&self, length: u64) {
        self.counters.position.store(0, Ordering::Relaxed);
        self.counters.length.store(length, Ordering::Relaxed);
    }

    pub fn inc(&self, n: u64) {
        self.counters.position.fetch_add(n, Ordering::Relaxed);
    }

    pub fn position(&self) -> u64 {
        self.counters.position.load(Ordering::Relaxed)
    }

    pub fn length(&self) -> u64 {
        self.counters.length.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_counters_across_threads() {
        let progress = Progress::new();
        assert_eq!(progress.stage(), Stage::Starting);
        progress.set_stage(Stage::Indexing);
        progress.start(1000);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let mine = progress.clone();
                scope.spawn(move || {
                    for _ in 0..250 {
                        mine.inc(1);
                    }
                });
            }
        });
        assert_eq!((progress.position(), progress.length()), (1000, 1000));
        assert_eq!(progress.stage().label(), "indexing");
        progress.start(5);
        assert_eq!((progress.position(), progress.length()), (0, 5));
    }
}
