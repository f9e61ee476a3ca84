//! Faults around the index: the telemetry endpoint failing in the ways telemetry.rs
//! does not already cover (a 500, a slow answer, a buffer far past its cap, several
//! processes flushing and sending at once), and the watcher losing events for real (the
//! kernel's inotify queue overflowing, the kernel's watch limit reached inside a user
//! namespace). Real processes, real listeners on 127.0.0.1, real inotify.

use crate::common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::procs::Proc;
use common::*;
use serde_json::{Value, json};

/// Generous caps: they prove a command finished, not how fast.
const FINISHED: Duration = Duration::from_secs(20);
const DEADLINE: Duration = Duration::from_secs(60);

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A per-test `CODELENS_HOME` and the environment every run gets (no CI switch, no
/// variable from the outer environment deciding telemetry).
struct Home {
    dir: tempfile::TempDir,
    url: String,
}

impl Home {
    fn new(url: &str) -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
            url: url.into(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("codelens-home")
    }

    fn buffer(&self) -> PathBuf {
        self.path().join("telemetry-buffer.json")
    }

    fn buffer_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.buffer()).unwrap()).unwrap()
    }

    fn command(&self, dir: &Path, args: &[&str], today: &str) -> Command {
        let mut command = codelens_command(dir, args);
        for var in codelens::config::CI_VARS {
            command.env_remove(var);
        }
        for var in [
            "DO_NOT_TRACK",
            "CODELENS_TELEMETRY",
            "CODELENS_TELEMETRY_DEBUG",
        ] {
            command.env_remove(var);
        }
        command
            .env("CODELENS_HOME", self.path())
            .env("HOME", self.dir.path())
            .env("CODELENS_TELEMETRY_URL", &self.url)
            .env("CODELENS_TELEMETRY_NOW", today)
            .stdin(Stdio::null());
        command
    }

    /// Runs a command and asserts it finished (within a generous cap) and succeeded.
    fn run(&self, dir: &Path, args: &[&str], today: &str) -> Output {
        let started = Instant::now();
        let out = self.command(dir, args, today).output().unwrap();
        assert!(started.elapsed() < FINISHED, "{args:?} did not finish");
        assert_success(&out, args);
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Opted in yesterday, with yesterday's counts buffered: the next run sends.
    fn with_a_day_to_send(&self, dir: &Path) {
        self.run(dir, &["telemetry", "on"], &day(-1));
        self.run(dir, &["status"], &day(-1));
    }
}

#[derive(Clone, Copy)]
enum Answer {
    Ok,
    ServerError,
    /// Reads the request, waits this long, then answers 200.
    Slow(Duration),
}

/// An HTTP endpoint on 127.0.0.1 that records every request body it reads.
struct Endpoint {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Endpoint {
    fn start(answer: Answer) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let seen = seen.clone();
                        std::thread::spawn(move || serve(stream, answer, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Endpoint { url, bodies, stop }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
            .collect()
    }

    /// How many times each day reached this endpoint.
    fn days_sent(&self) -> std::collections::BTreeMap<String, usize> {
        let mut days = std::collections::BTreeMap::new();
        for body in self.bodies() {
            for d in body["days"].as_array().into_iter().flatten() {
                *days
                    .entry(d["timestamp"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        days
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, answer: Answer, seen: &Mutex<Vec<String>>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let body = read_http_request(&mut stream);
    seen.lock().unwrap().push(body);
    let reply: &[u8] = match answer {
        Answer::Ok => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        Answer::ServerError => {
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        }
        Answer::Slow(wait) => {
            std::thread::sleep(wait);
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        }
    };
    let _ = stream.write_all(reply);
}

fn indexed_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

/// stdout of `status --json` minus what varies run to run (ages, telemetry itself).
fn stable_status(stdout: &[u8]) -> Value {
    let mut json: Value = serde_json::from_slice(stdout).unwrap();
    let object = json.as_object_mut().unwrap();
    for key in ["telemetry", "last_sync_secs_ago", "db_bytes"] {
        object.remove(key);
    }
    json
}

#[test]
fn a_500_keeps_the_day_for_tomorrow_and_stdout_is_unchanged() {
    let repo = indexed_repo();
    let failing = Endpoint::start(Answer::ServerError);
    let home = Home::new(&failing.url);
    home.with_a_day_to_send(&repo.root());
    let off = repo.codelens(&["status", "--json"]);

    let on = home.run(&repo.root(), &["status", "--json"], &day(0));
    assert_eq!(stable_status(&on.stdout), stable_status(&off.stdout));
    assert_eq!(failing.days_sent().get(&day(-1)), Some(&1));
    let buffer = home.buffer_json();
    assert!(buffer["days"][day(-1)].is_array(), "not acknowledged: kept");
    // Tried once today only, even though more commands run.
    for _ in 0..3 {
        home.run(&repo.root(), &["sync", "-q"], &day(0));
    }
    assert_eq!(failing.bodies().len(), 1);

    // Tomorrow, to a working endpoint: sent once, then gone from the buffer.
    let working = Endpoint::start(Answer::Ok);
    let home = Home {
        url: working.url.clone(),
        ..home
    };
    for _ in 0..3 {
        home.run(&repo.root(), &["status"], &day(1));
    }
    home.run(&repo.root(), &["status"], &day(2));
    let sent = working.days_sent();
    assert_eq!(sent.get(&day(-1)), Some(&1), "{sent:?}");
    assert_eq!(sent.get(&day(0)), Some(&1), "{sent:?}");
    assert_eq!(sent.get(&day(1)), Some(&1), "{sent:?}");
    assert!(sent.values().all(|&n| n == 1), "a day sent twice: {sent:?}");
}

#[test]
fn a_slow_endpoint_never_holds_a_command_and_no_acknowledged_day_is_resent() {
    let repo = indexed_repo();
    // Answers after 500 ms: inside the 2 s bound, so the send completes.
    let slow = Endpoint::start(Answer::Slow(Duration::from_millis(500)));
    let home = Home::new(&slow.url);
    home.with_a_day_to_send(&repo.root());
    home.run(&repo.root(), &["status"], &day(0));
    assert_eq!(slow.days_sent().get(&day(-1)), Some(&1));
    assert!(home.buffer_json()["days"].get(day(-1)).is_none());
    home.run(&repo.root(), &["status"], &day(1));
    let sent = slow.days_sent();
    assert!(sent.values().all(|&n| n == 1), "a day sent twice: {sent:?}");
    assert_eq!(sent.len(), 2, "{sent:?}");
}

#[test]
fn many_processes_flushing_at_once_send_each_day_once_and_lose_no_count() {
    let repo = indexed_repo();
    // A slow answer widens the window in which a second sender could slip in.
    let endpoint = Endpoint::start(Answer::Slow(Duration::from_millis(300)));
    let home = Home::new(&endpoint.url);
    home.with_a_day_to_send(&repo.root());
    const PROCESSES: usize = 8;
    for round in 0..3 {
        let children: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                home.command(&repo.root(), &["status", "--json"], &day(round))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let started = Instant::now();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_success(&out, &["status", "--json"]);
            assert!(out.stderr.is_empty());
        }
        assert!(
            started.elapsed() < FINISHED * 2,
            "round {round} did not finish"
        );
    }
    home.run(&repo.root(), &["status"], &day(3));
    let sent = endpoint.days_sent();
    assert!(sent.values().all(|&n| n == 1), "a day sent twice: {sent:?}");
    assert_eq!(
        sent.keys().cloned().collect::<Vec<_>>(),
        vec![day(-1), day(0), day(1), day(2)]
    );
    // Every one of the concurrent `status` runs was counted on its day.
    for body in endpoint.bodies() {
        for d in body["days"].as_array().unwrap() {
            if d["timestamp"] == day(-1).as_str() {
                continue;
            }
            let statuses: u64 = d["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["event_name"] == "status")
                .map(|e| e["count"].as_u64().unwrap())
                .sum();
            assert_eq!(statuses, PROCESSES as u64, "{d}");
        }
    }
    let size = std::fs::metadata(home.buffer()).unwrap().len();
    assert!(size <= 256 * 1024);
}

#[test]
fn a_huge_or_corrupt_buffer_is_bounded_and_never_reaches_stdout() {
    let repo = indexed_repo();
    let endpoint = Endpoint::start(Answer::Ok);
    let home = Home::new(&endpoint.url);
    home.run(&repo.root(), &["telemetry", "on"], &day(0));
    let off = repo.codelens(&["status", "--json"]);
    let huge_day = json!({"days": {day(-1): [{"event_type": "cli_command",
        "event_name": "x".repeat(5_000_000), "language": "rust", "agent": "none",
        "file_count_bucket": "<100", "count": 1}]}})
    .to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("20 MB of garbage", vec![0xffu8; 20 << 20]),
        ("one 5 MB day", huge_day.into_bytes()),
        ("deeply nested", "[".repeat(1 << 20).into_bytes()),
        (
            "valid JSON, wrong shape",
            br#"{"days": [1, 2, 3], "last_send_day": 7}"#.to_vec(),
        ),
    ];
    for (what, content) in cases {
        std::fs::write(home.buffer(), content).unwrap();
        let on = home.run(&repo.root(), &["status", "--json"], &day(0));
        assert_eq!(
            stable_status(&on.stdout),
            stable_status(&off.stdout),
            "{what}"
        );
        let size = std::fs::metadata(home.buffer()).unwrap().len();
        assert!(size <= 256 * 1024, "{what}: {size} bytes");
        assert!(home.buffer_json()["days"].is_object(), "{what}");
    }
    // Nothing that was not a real day was ever sent.
    for body in endpoint.bodies() {
        assert!(body.to_string().len() < 256 * 1024, "{body:.200}");
    }
}

// ---------------------------------------------------------------------------------------
// Watcher faults, on a real `codelens watch` process.

/// `codelens watch` in the background, its stderr collected (`common::procs::Proc`:
/// killed when dropped).
fn spawn_watch(mut command: Command) -> Proc {
    command
        .env("CODELENS_TELEMETRY", "0")
        .env("CODELENS_WATCH_DEBOUNCE_MS", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Proc::spawn(command, "codelens watch")
}

/// Everything it wrote to stderr, once killed.
fn stderr_after_kill(mut watch: Proc) -> String {
    watch.kill9();
    watch.stderr()
}

/// Lets a process stopped by [`stop_and_overflow`] run again.
fn resume(watch: &Proc) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.pid(), libc::SIGCONT) };
}

/// Polls `status --json` until `ready` holds; panics with the last answer past DEADLINE.
fn wait_status(repo: &TestRepo, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = repo.status_json();
        if ready(&status) {
            return status;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "never reached: {what}; last: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the watching engine (SIGSTOP) and overflows its kernel event queue, leaving it
/// stopped: what the caller changes now is lost with the overflow, until SIGCONT.
fn stop_and_overflow(repo: &TestRepo, watch: &Proc) {
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.pid(), libc::SIGSTOP) };
    let mut a = std::fs::File::create(repo.path("src/flood_a.txt")).unwrap();
    let mut b = std::fs::File::create(repo.path("src/flood_b.txt")).unwrap();
    // Alternating files: consecutive identical events would be merged by the kernel.
    for _ in 0..max_queued {
        a.write_all(b"a").unwrap();
        b.write_all(b"b").unwrap();
    }
}

fn engine_up(status: &Value) -> bool {
    status["watcher"]["engine"] == "running" && status["watcher"]["mode"] != "none"
}

#[test]
fn a_real_inotify_queue_overflow_means_a_full_reconcile_reported_in_status() {
    let repo = indexed_repo();
    let watch = spawn_watch(codelens_command(&repo.root(), &["watch"]));
    let ready = wait_status(&repo, "a native watcher", |s| {
        engine_up(s) && s["watcher"]["mode"] == "native" && s["pending"] == json!([])
    });
    assert_eq!(ready["watcher"]["rescans"], 0, "{ready}");

    // Stop the engine, overflow its kernel queue, then make the edit whose event is lost.
    stop_and_overflow(&repo, &watch);
    repo.write("web/lost.ts", "export function lostInTheOverflow() {}\n");
    resume(&watch);

    let status = wait_status(&repo, "the reconcile after the overflow", |s| {
        s["watcher"]["rescans"].as_u64().unwrap_or(0) >= 1
            && s["pending"] == json!([])
            && s["files"] == 5
    });
    assert_eq!(status["watcher"]["mode"], "native", "{status}");
    // The index equals the tree: nothing is left for a sync to find.
    let sync = repo.sync_json();
    assert_eq!(
        (&sync["added"], &sync["modified"], &sync["removed"]),
        (&json!(0), &json!(0), &json!(0)),
        "{sync}"
    );
    let stderr = stderr_after_kill(watch);
    assert!(stderr.contains("full rescan"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Soak finding: a directory deleted and recreated while the kernel queue overflowed
/// (both events lost) kept its place in the engine's watch set, and the reconcile after
/// the overflow did not renew watches it believed it had: every later file written into
/// the new directory was silently stale while the watcher said `native`.
#[test]
fn a_directory_replaced_during_an_overflow_is_watched_again_after_the_reconcile() {
    let repo = indexed_repo();
    repo.write("web/deep/inner.ts", "export function inner() {}\n");
    repo.commit_all("deep");
    repo.ok(&["sync", "-q"]);
    let watch = spawn_watch(codelens_command(&repo.root(), &["watch"]));
    wait_status(&repo, "a native watcher", |s| {
        engine_up(s) && s["watcher"]["mode"] == "native" && s["pending"] == json!([])
    });

    stop_and_overflow(&repo, &watch);
    // Lost in the overflow: `web/` and `web/deep/` replaced by new directories (new
    // inodes, so their old kernel watches are gone) under the same names.
    std::fs::remove_dir_all(repo.path("web")).unwrap();
    repo.write("web/render.ts", TS_SRC);
    repo.write("web/deep/inner.ts", "export function inner() {}\n");
    resume(&watch);
    wait_status(&repo, "the reconcile after the overflow", |s| {
        s["watcher"]["rescans"].as_u64().unwrap_or(0) >= 1 && s["pending"] == json!([])
    });

    // Written after the engine settled: only a live watch on the new directories sees them.
    repo.write("web/late.ts", "export function lateInTheNewDir() {}\n");
    repo.write(
        "web/deep/later.ts",
        "export function laterInTheNewDir() {}\n",
    );
    let status = wait_status(&repo, "files in the replaced directories indexed", |s| {
        s["pending"] == json!([]) && s["files"] == 7
    });
    assert_eq!(status["watcher"]["mode"], "native", "{status}");
    let sync = repo.sync_json();
    assert_eq!(sync["added"], 0, "nothing was left for a sync: {sync}");
    drop(watch);
}

#[test]
fn the_kernel_watch_limit_in_a_user_namespace_degrades_honestly() {
    // /proc/sys/user/max_inotify_watches is per user namespace: lowered inside one, it
    // makes the kernel itself refuse watches (ENOSPC) for the engine started there.
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 3 > /proc/sys/user/max_inotify_watches")
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIP: cannot lower the inotify watch limit in a user namespace: {:?}",
            probe.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        );
        return;
    }
    let repo = indexed_repo();
    for dir in ["a", "b", "c", "d", "e", "f"] {
        repo.write(&format!("{dir}/x.rs"), "pub fn x() {}\n");
    }
    repo.sync_json();
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "sh", "-c"])
        .arg("echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" watch")
        .arg(BIN)
        .current_dir(repo.root())
        .env_remove("CODELENS_LOG");
    let watch = spawn_watch(command);
    let status = wait_status(&repo, "a degraded watcher", |s| {
        engine_up(s) && s["watcher"]["mode"] == "degraded"
    });
    let reason = status["watcher"]["reason"].as_str().unwrap();
    assert!(reason.contains("max_user_watches"), "{status}");

    // An edit where no watch could be placed is still never silently stale: status
    // checks the tree itself while the watcher is degraded.
    for dir in ["a", "b", "c", "d", "e", "f"] {
        repo.write(&format!("{dir}/x.rs"), "pub fn x() {}\npub fn y() {}\n");
    }
    let status = repo.status_json();
    let stale = oracle::silently_stale(&repo.root(), &status);
    assert!(stale.is_empty(), "not pending: {stale:?}; {status}");
    assert!(
        !status["pending"].as_array().unwrap().is_empty(),
        "some directories are unwatched: {status}"
    );
    // A sync (what the auto-sync notice asks for) brings it level.
    repo.sync_json();
    let status = repo.status_json();
    assert_eq!(status["pending"], json!([]), "{status}");
    let differing = oracle::differing(&repo.root());
    assert!(differing.is_empty(), "{}", differing.describe());
    let stderr = stderr_after_kill(watch);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
