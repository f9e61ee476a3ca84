//! The watcher as a small actor, in the shape of rust-analyzer's `vfs-notify`: one
//! thread owns the notify backend and the watch table ([`DirWatcher`]); the engine
//! talks to it only through messages. The backend's events go to that thread, which
//! classifies them (through the [`Tree`] and the ignore rules) and sends the engine
//! [`WatchMessage`]s in the order the kernel reported them — the order cookies and
//! probes rely on. The engine's requests (watch a directory, forget one, re-arm,
//! report status) are answered on reply channels; the actor never waits on the engine,
//! so neither can block the other for good. notify's types never leave this module and
//! `watcher.rs`.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::RelPath;
use super::contain::Tree;
use super::watcher::{DirWatcher, FsChange, WatchStrategy, WatcherStatus};

/// What the watcher tells the engine.
#[derive(Debug)]
pub enum WatchMessage {
    /// What one notification means for the index (possibly several changes).
    Changes(Vec<FsChange>),
    /// The backend failed to deliver something: what it was is unknown.
    Failed(String),
    /// The watcher thread ended without being asked to (a panic): no event is seen
    /// from now on. The engine restarts the watcher and compares the tree again.
    Stopped(String),
}

/// A request from the engine, with where to answer.
enum Request {
    WatchDir(RelPath, Sender<bool>),
    ArmNewDir(RelPath, Sender<bool>),
    ForgetDir(RelPath),
    SyncWatches {
        dirs: Vec<RelPath>,
        just_armed: Vec<RelPath>,
        reply: Sender<Vec<RelPath>>,
    },
    RearmSome {
        max_checked: usize,
        max_rearmed: usize,
        reply: Sender<Vec<RelPath>>,
    },
    Status {
        rescans: u64,
        debounce_ms: u64,
        reply: Sender<WatcherStatus>,
    },
}

enum Input {
    Request(Request),
    Event(notify::Result<notify::Event>),
    Stop,
}

/// The engine's handle on the watcher thread. Dropping it stops the thread and with it
/// every watch.
pub struct WatcherHandle {
    inbox: Sender<Input>,
    thread: Option<JoinHandle<()>>,
    tree: Tree,
    cookies: Cookies,
    strategy: WatchStrategy,
}

/// Cookie files: written and removed by the engine itself (no round trip), named so
/// the watcher recognises them.
struct Cookies {
    dir: std::path::PathBuf,
    prefix: String,
}

impl WatcherHandle {
    /// Starts the watcher thread, which arms its watches the `strategy`'s way (see
    /// [`DirWatcher::start`]) before this returns; `sink` receives every message from
    /// then on.
    pub fn start(
        tree: &Tree,
        dirs: Vec<RelPath>,
        cap: usize,
        strategy: WatchStrategy,
        sink: impl Fn(WatchMessage) + Send + 'static,
    ) -> Result<WatcherHandle, String> {
        let (inbox, receiver) = mpsc::channel::<Input>();
        let events = inbox.clone();
        let (started, outcome) = mpsc::channel();
        let actor_tree = tree.clone();
        let thread = std::thread::Builder::new()
            .name("codelens-watcher".into())
            .spawn(move || {
                let handler = move |event| {
                    let _ = events.send(Input::Event(event));
                };
                match DirWatcher::start(&actor_tree, &dirs, cap, strategy, handler) {
                    Ok(watcher) => {
                        let _ = started.send(Ok(watcher.cookie_prefix().to_string()));
                        run(watcher, receiver, sink);
                    }
                    Err(reason) => {
                        let _ = started.send(Err(reason));
                    }
                }
            })
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        let prefix = outcome
            .recv()
            .map_err(|_| "the watcher thread ended while starting".to_string())??;
        Ok(WatcherHandle {
            inbox,
            thread: Some(thread),
            tree: tree.clone(),
            cookies: Cookies {
                dir: tree.root().join(super::scan::INDEX_DIR_NAME),
                prefix,
            },
            strategy,
        })
    }

    /// Whether every directory needs a watch of its own (per-directory), or the root's
    /// covers them all (recursive).
    pub fn strategy(&self) -> WatchStrategy {
        self.strategy
    }

    /// Sends `request` and waits for its answer (`None`: the thread is gone).
    fn ask<T>(&self, request: impl FnOnce(Sender<T>) -> Request) -> Option<T> {
        let (reply, answer) = mpsc::channel();
        self.inbox.send(Input::Request(request(reply))).ok()?;
        answer.recv().ok()
    }

    /// Adds (or renews) the watch on `dir`, answered once it is armed: false when the
    /// cap or the kernel's limit prevents it (see [`DirWatcher::watch_dir`]).
    pub fn watch_dir(&self, dir: &RelPath) -> bool {
        self.ask(|reply| Request::WatchDir(dir.clone(), reply))
            .unwrap_or(false)
    }

    /// A directory new to the index, answered once it is watched, so that a crawl
    /// after this misses no file (see [`DirWatcher::arm_new_dir`]).
    pub fn arm_new_dir(&self, dir: &RelPath) -> bool {
        self.ask(|reply| Request::ArmNewDir(dir.clone(), reply))
            .unwrap_or(false)
    }

    pub fn forget_dir(&self, dir: &RelPath) {
        let _ = self
            .inbox
            .send(Input::Request(Request::ForgetDir(dir.clone())));
    }

    /// See [`DirWatcher::sync_watches`]: the directories newly watched or found replaced.
    pub fn sync_watches(&self, dirs: &[RelPath], just_armed: &[RelPath]) -> Vec<RelPath> {
        self.ask(|reply| Request::SyncWatches {
            dirs: dirs.to_vec(),
            just_armed: just_armed.to_vec(),
            reply,
        })
        .unwrap_or_default()
    }

    /// See [`DirWatcher::rearm_some`]: the directories found replaced.
    pub fn rearm_some(&self, max_checked: usize, max_rearmed: usize) -> Vec<RelPath> {
        self.ask(|reply| Request::RearmSome {
            max_checked,
            max_rearmed,
            reply,
        })
        .unwrap_or_default()
    }

    /// The watcher's state; a thread that is gone reads as off.
    pub fn status(&self, rescans: u64, debounce_ms: u64) -> WatcherStatus {
        self.ask(|reply| Request::Status {
            rescans,
            debounce_ms,
            reply,
        })
        .unwrap_or_else(|| WatcherStatus::disabled("the watcher thread stopped", debounce_ms))
    }

    /// The project's files, as the watcher reads them.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Writes cookie `n` under `.codelens/`; its event proves every earlier one was seen.
    pub fn write_cookie(&self, n: u64) -> std::io::Result<()> {
        std::fs::write(self.cookies.path(n), b"")
    }

    pub fn remove_cookie(&self, n: u64) {
        let _ = std::fs::remove_file(self.cookies.path(n));
    }
}

impl Cookies {
    fn path(&self, n: u64) -> std::path::PathBuf {
        self.dir.join(format!("{}{n}", self.prefix))
    }
}

/// How long dropping a handle waits for its thread; a thread stuck past that (in a
/// `stat` on a hung mount …) is left to end on its own rather than stall the engine.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for WatcherHandle {
    fn drop(&mut self) {
        let _ = self.inbox.send(Input::Stop);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + STOP_WAIT;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(target: "codelens::engine", "the watcher thread did not stop; left to end on its own");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = thread.join();
    }
}

/// Tells the engine when the watcher thread ends without a `Stop` (a panic unwinds
/// through this): silence must never pass for "nothing changed".
struct ExitNotice<F: Fn(WatchMessage)> {
    sink: F,
    asked_to_stop: bool,
}

impl<F: Fn(WatchMessage)> Drop for ExitNotice<F> {
    fn drop(&mut self) {
        if !self.asked_to_stop {
            (self.sink)(WatchMessage::Stopped(
                "the file watcher's thread stopped unexpectedly".into(),
            ));
        }
    }
}

/// The watcher thread: events and requests, one at a time, in arrival order.
fn run(mut watcher: DirWatcher, inbox: Receiver<Input>, sink: impl Fn(WatchMessage)) {
    let mut notice = ExitNotice {
        sink,
        asked_to_stop: false,
    };
    for input in inbox {
        match input {
            Input::Event(Ok(event)) => {
                let changes = watcher.classify(&event);
                if !changes.is_empty() {
                    (notice.sink)(WatchMessage::Changes(changes));
                }
            }
            Input::Event(Err(error)) => {
                watcher.note_error(&error);
                (notice.sink)(WatchMessage::Failed(error.to_string()));
            }
            Input::Request(Request::WatchDir(dir, reply)) => {
                let _ = reply.send(watcher.watch_dir(&dir));
            }
            Input::Request(Request::ArmNewDir(dir, reply)) => {
                let _ = reply.send(watcher.arm_new_dir(&dir));
                if watcher.take_rescan_owed() {
                    (notice.sink)(WatchMessage::Changes(vec![FsChange::Rescan]));
                }
            }
            Input::Request(Request::ForgetDir(dir)) => watcher.forget_dir(&dir),
            Input::Request(Request::SyncWatches {
                dirs,
                just_armed,
                reply,
            }) => {
                let _ = reply.send(watcher.sync_watches(&dirs, &just_armed));
            }
            Input::Request(Request::RearmSome {
                max_checked,
                max_rearmed,
                reply,
            }) => {
                let _ = reply.send(watcher.rearm_some(max_checked, max_rearmed));
            }
            Input::Request(Request::Status {
                rescans,
                debounce_ms,
                reply,
            }) => {
                let _ = reply.send(watcher.status(rescans, debounce_ms));
            }
            Input::Stop => {
                notice.asked_to_stop = true;
                break;
            }
        }
    }
}
