//! Long-running `codelens` processes for the reliability tests: spawned with a temp
//! `CODELENS_HOME`, stderr collected on a thread (to check what reached the user), and
//! killed with SIGKILL (`kill -9`) or stopped with SIGTERM.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment every reliability test gives codelens: its own home, a short debounce,
/// no log level from the caller's shell.
pub fn command(dir: &Path, home: &Path, args: &[&str]) -> Command {
    let mut command = super::codelens_command(dir, args);
    command
        .env("CODELENS_HOME", home)
        .env("CODELENS_WATCH_DEBOUNCE_MS", "100")
        .env("CODELENS_TELEMETRY", "0");
    command
}

/// Runs to completion.
pub fn run(dir: &Path, home: &Path, args: &[&str]) -> Output {
    command(dir, home, args).output().expect("codelens runs")
}

/// A running process whose stderr is being collected.
pub struct Proc {
    pub child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub name: String,
}

impl Proc {
    pub fn spawn(mut command: Command, name: &str) -> Proc {
        command.stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stderr.take().map(|mut pipe| {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        });
        Proc {
            child,
            stderr,
            reader,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`; true when it was still running at that moment.
    pub fn kill9(&mut self) -> bool {
        let was_running = self.running();
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
        self.join_reader();
        was_running
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let status = self.wait_exit(Duration::from_secs(30));
        self.join_reader();
        status
    }

    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {deadline:?}; stderr: {}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SQLite's lock errors and panics must never reach the user.
pub fn assert_no_lock_error(who: &str, stderr: &str) {
    let lower = stderr.to_lowercase();
    for bad in [
        "database is locked",
        "database table is locked",
        "sqlite_busy",
        "panicked",
    ] {
        assert!(!lower.contains(bad), "{who} printed {bad:?}:\n{stderr}");
    }
}

/// `codelens watch` on `root`, once it is the writer with a native watcher (as
/// `status --json` reports it). Its stdout is discarded; stderr is kept.
pub fn start_watch(root: &Path, home: &Path) -> Proc {
    let mut command = command(root, home, &["watch"]);
    command.stdout(Stdio::null());
    let mut proc = Proc::spawn(command, "watch");
    wait_for_engine(root, &mut proc);
    proc
}

/// `codelens watch` with the watch strategy `strategy` (`CODELENS_WATCH_STRATEGY`),
/// not yet waited for.
pub fn watch_command(root: &Path, home: &Path, strategy: &str) -> Command {
    let mut command = command(root, home, &["watch"]);
    command
        .env("CODELENS_WATCH_STRATEGY", strategy)
        .stdout(Stdio::null());
    command
}

/// [`start_watch`] under `strategy`; checks the engine reports that strategy.
pub fn start_watch_with(root: &Path, home: &Path, strategy: &str) -> Proc {
    let mut proc = Proc::spawn(watch_command(root, home, strategy), "watch");
    wait_for_engine(root, &mut proc);
    let status = super::oracle::status_json(root);
    assert_eq!(status["watcher"]["strategy"], strategy, "{status}");
    proc
}

/// Polls `status --json` until a writer engine with a native watcher publishes its
/// pending set.
pub fn wait_for_engine(root: &Path, proc: &mut Proc) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(proc.running(), "{} exited: {}", proc.name, proc.stderr());
        let status = super::oracle::status_json(root);
        if status["pending_source"] == "engine" && status["watcher"]["mode"] == "native" {
            return;
        }
        assert!(
            Instant::now() < until,
            "no watching engine after 60 s: {status}\n{}",
            proc.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
