//! Telemetry, end to end: the real binary, a temp `CODELENS_HOME` per test, real TCP
//! listeners on 127.0.0.1 and the real ingest server. The clock is moved with
//! `CODELENS_TELEMETRY_NOW` (honoured by debug builds only).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use common::mcp_client::Client;
use common::{RUST_SRC, TestRepo, assert_success, codelens_command, read_http_request};

/// Every variable that can switch telemetry, removed from each child so the test
/// decides (our CI sets `CI=true`).
const SWITCHES: &[&str] = &[
    "DO_NOT_TRACK",
    "CODELENS_TELEMETRY",
    "CODELENS_TELEMETRY_URL",
    "CODELENS_TELEMETRY_DEBUG",
    "CODELENS_TELEMETRY_NOW",
    "CODELENS_HOME",
];

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A temp home for codelens's per-user state, and the environment of every run.
struct Home {
    dir: TempDir,
    url: String,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
            // Nothing listens there unless a test says so (a refused connection).
            url: "http://127.0.0.1:9/v1/events".into(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("codelens-home")
    }

    fn buffer(&self) -> PathBuf {
        self.path().join("telemetry-buffer.json")
    }

    fn buffer_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.buffer()).expect("buffer exists"))
            .expect("buffer is JSON")
    }

    fn command(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = codelens_command(dir, args);
        for ci in codelens::config::CI_VARS {
            command.env_remove(ci);
        }
        for var in SWITCHES {
            command.env_remove(var);
        }
        command
            .env("CODELENS_HOME", self.path())
            .env("HOME", self.dir.path())
            .env("CODELENS_TELEMETRY_URL", &self.url);
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    fn run(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(dir, args, env)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(dir, args, env);
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    fn on_day(&self, dir: &Path, args: &[&str], today: &str) -> String {
        self.ok(dir, args, &[("CODELENS_TELEMETRY_NOW", today)])
    }

    fn opt_in(&self, dir: &Path, today: &str) {
        self.on_day(dir, &["telemetry", "on"], today);
    }

    fn status(&self, dir: &Path) -> Value {
        serde_json::from_str(&self.ok(dir, &["telemetry", "status", "--json"], &[])).unwrap()
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .map(|dir| {
                dir.map_while(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn indexed_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/store.rs", RUST_SRC);
    repo.commit_all("init");
    repo.ok(&["init", "-q"]);
    repo
}

/// A TCP listener on 127.0.0.1 that counts connections; it answers `200` to each, or
/// (`hang`) accepts and never answers.
struct Listener {
    url: String,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Listener {
    fn start(hang: bool) -> Listener {
        Listener::answering(hang, 200)
    }

    /// Answers every request with `status` (or hangs).
    fn answering(hang: bool, status: u16) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, stopped, seen) = (connections.clone(), stop.clone(), bodies.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        if hang {
                            held.push(stream);
                            continue;
                        }
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        seen.lock().unwrap().push(read_http_request(&mut stream));
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Listener {
            url,
            connections,
            stop,
            bodies,
        }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The real `codelens-ingest`, on 127.0.0.1 with a port of its own.
struct Ingest {
    child: Child,
    base: String,
    _db: TempDir,
}

impl Ingest {
    fn start(min_machines: u64) -> Ingest {
        let db = tempfile::tempdir().unwrap();
        let mut child = Command::new(common::ingest_bin())
            .args(["--listen", "127.0.0.1:0", "--min-machines"])
            .arg(min_machines.to_string())
            .args(["--max-body", "200000", "--min-days-seen", "1", "--db"])
            .arg(db.path().join("telemetry.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("codelens-ingest starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect(&line)
            .to_string();
        Ingest {
            child,
            base: format!("http://{addr}/v1"),
            _db: db,
        }
    }

    fn events_url(&self) -> String {
        format!("{}/events", self.base)
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("POST", Some(body)) => agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body),
            ("DELETE", _) => agent.delete(&url).call(),
            _ => agent.get(&url).call(),
        }
        .expect("ingest answers");
        let code = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn aggregate(&self) -> Value {
        let (code, body) = self.request("GET", "/aggregate", None);
        assert_eq!(code, 200, "{body}");
        body
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count_of(aggregate: &Value, name: &str) -> u64 {
    aggregate["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["event_name"] == name)
        .map(|b| b["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn by_default_nothing_is_recorded_written_or_sent() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let listener = Listener::start(false);
    home.url = listener.url.clone();
    for today in [day(-1), day(0)] {
        for args in [&["status"][..], &["sync"], &["status", "--json"]] {
            home.on_day(&repo.root(), args, &today);
        }
    }
    assert!(home.files().is_empty(), "{:?}", home.files());
    assert_eq!(listener.count(), 0);
    let status = home.status(&repo.root());
    assert_eq!(status["enabled"], false);
    assert_eq!(status["decided_by"], "default (off)");
    assert_eq!(status["machine_id"], Value::Null);
    assert!(!home.path().exists(), "status created the home");
    let json = repo_status_json(&home, &repo);
    assert_eq!(json["telemetry"]["enabled"], false);
    assert_eq!(json["telemetry"]["pending_days"], json!([]));
}

fn repo_status_json(home: &Home, repo: &TestRepo) -> Value {
    serde_json::from_str(&home.ok(&repo.root(), &["status", "--json"], &[])).unwrap()
}

#[test]
fn every_off_switch_beats_on_and_ci_is_off_unless_opted_in() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let listener = Listener::start(false);
    home.url = listener.url.clone();
    home.opt_in(&repo.root(), &day(-1));
    let id_before = std::fs::read_to_string(home.path().join("machine_id")).unwrap();
    let switches: &[(&str, &str, &str)] = &[
        ("DO_NOT_TRACK", "1", "DO_NOT_TRACK=1"),
        ("CODELENS_TELEMETRY", "0", "CODELENS_TELEMETRY=0"),
        ("CI", "true", "CI detected (CI)"),
        ("GITHUB_ACTIONS", "true", "CI detected (GITHUB_ACTIONS)"),
    ];
    for (var, value, described) in switches {
        for today in [day(-1), day(0)] {
            home.ok(
                &repo.root(),
                &["status"],
                &[(var, value), ("CODELENS_TELEMETRY_NOW", &today)],
            );
        }
        let status: Value = serde_json::from_str(&home.ok(
            &repo.root(),
            &["telemetry", "status", "--json"],
            &[(var, value)],
        ))
        .unwrap();
        assert_eq!(status["enabled"], false, "{var}");
        assert_eq!(status["decided_by"], *described);
    }
    assert!(!home.buffer().exists(), "an off switch let a count through");
    assert_eq!(listener.count(), 0);
    // `telemetry off` beats the earlier `on` too, and deletes the buffer.
    home.on_day(&repo.root(), &["status"], &day(0));
    assert!(home.buffer().exists());
    let off = home.ok(&repo.root(), &["telemetry", "off"], &[]);
    assert!(off.contains("off"), "{off}");
    assert!(!home.buffer().exists(), "opt-out deletes the unsent buffer");
    home.on_day(&repo.root(), &["status"], &day(1));
    assert!(!home.buffer().exists());
    // The explicit opt-in works in CI.
    let ci_on: Value = serde_json::from_str(&home.ok(
        &repo.root(),
        &["telemetry", "status", "--json"],
        &[("CI", "true"), ("CODELENS_TELEMETRY", "1")],
    ))
    .unwrap();
    assert_eq!(ci_on["enabled"], true);
    assert_eq!(ci_on["decided_by"], "CODELENS_TELEMETRY=1");
    assert_eq!(
        std::fs::read_to_string(home.path().join("machine_id")).unwrap(),
        id_before,
        "the id is kept until `forget`"
    );
}

#[test]
fn a_switch_in_the_environment_keeps_off_even_when_the_user_says_on() {
    let repo = indexed_repo();
    let home = Home::new();
    let out = home.run(&repo.root(), &["telemetry", "on"], &[("DO_NOT_TRACK", "1")]);
    assert_success(&out, &["telemetry", "on"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("DO_NOT_TRACK=1"));
    assert!(!home.path().join("machine_id").exists(), "no id while off");
}

#[test]
fn counts_roll_up_per_day_and_only_completed_days_reach_the_ingest_server() {
    let repo = indexed_repo();
    let ingest = Ingest::start(1);
    let mut home = Home::new();
    home.url = ingest.events_url();
    let (yesterday, today) = (day(-1), day(0));
    home.opt_in(&repo.root(), &yesterday);
    home.on_day(&repo.root(), &["status"], &yesterday);
    home.on_day(&repo.root(), &["status"], &yesterday);
    home.on_day(&repo.root(), &["sync", "-q"], &yesterday);
    let buffer = home.buffer_json();
    let rows = buffer["days"][&yesterday].as_array().unwrap();
    let status_row = rows.iter().find(|r| r["event_name"] == "status").unwrap();
    assert_eq!(status_row["count"], 2);
    assert_eq!(status_row["event_type"], "cli_command");
    assert_eq!(status_row["language"], "rust");
    assert_eq!(status_row["file_count_bucket"], "<100");
    // Yesterday is still "today" for these runs: nothing was sent.
    assert_eq!(ingest.aggregate()["buckets"], json!([]));
    assert_eq!(
        home.status(&repo.root())["pending_days"],
        json!([yesterday.clone()])
    );

    // `show` prints exactly what the next send holds: the completed day only.
    let shown: Value =
        serde_json::from_str(&home.on_day(&repo.root(), &["telemetry", "show"], &today)).unwrap();
    assert_eq!(shown["days"].as_array().unwrap().len(), 1);
    assert_eq!(shown["days"][0]["timestamp"], yesterday.as_str());

    // The next day's first command sends yesterday, and only yesterday.
    home.on_day(&repo.root(), &["status"], &today);
    let aggregate = ingest.aggregate();
    assert_eq!(count_of(&aggregate, "status"), 2, "{aggregate}");
    assert_eq!(count_of(&aggregate, "sync"), 1);
    assert!(
        aggregate["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["day"] == yesterday.as_str())
    );
    let pending = home.status(&repo.root())["pending_days"].clone();
    assert_eq!(
        pending,
        json!([today.clone()]),
        "sent days leave the buffer"
    );

    // A re-send after a lost reply is not counted twice.
    let (code, _) = ingest.request("POST", "/events", Some(&shown.to_string()));
    assert_eq!(code, 200);
    assert_eq!(count_of(&ingest.aggregate(), "status"), 2);

    // At most one send a day: another run today does not send today's counts.
    home.on_day(&repo.root(), &["status"], &today);
    assert_eq!(count_of(&ingest.aggregate(), "status"), 2);

    // `forget` deletes the id, the buffer, and the server's data for the id.
    let machine_id = shown["machine_id"].as_str().unwrap().to_string();
    let forgot = home.on_day(&repo.root(), &["telemetry", "forget"], &today);
    assert!(forgot.contains(&machine_id), "{forgot}");
    assert_eq!(ingest.aggregate()["buckets"], json!([]));
    assert!(!home.path().join("machine_id").exists());
    assert!(!home.buffer().exists());
    assert_eq!(home.status(&repo.root())["enabled"], false);
}

#[test]
fn days_before_the_opt_in_are_never_sent() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(-1));
    // A buffer fixture with a day before the opt-in (as if counted under an old id).
    let mut buffer = home.buffer_json_or_empty();
    buffer["days"][day(-5)] = json!([{"event_type": "cli_command", "event_name": "init",
        "language": "rust", "agent": "none", "file_count_bucket": "<100", "count": 7}]);
    buffer["days"][day(-1)] = json!([{"event_type": "cli_command", "event_name": "sync",
        "language": "rust", "agent": "none", "file_count_bucket": "<100", "count": 1}]);
    std::fs::write(home.buffer(), buffer.to_string()).unwrap();
    let shown: Value =
        serde_json::from_str(&home.on_day(&repo.root(), &["telemetry", "show"], &day(0))).unwrap();
    let days: Vec<&str> = shown["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(days, vec![day(-1)]);
}

impl Home {
    fn buffer_json_or_empty(&self) -> Value {
        std::fs::read(self.buffer())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"days": {}}))
    }
}

#[test]
fn a_canary_in_paths_names_and_queries_never_reaches_the_buffer_or_a_payload() {
    const CANARY: &str = "zqxCanary7731";
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join(format!("project-{CANARY}"));
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join(format!("src/{CANARY}_mod.rs")),
        format!("pub fn {CANARY}_symbol() {{}}\n"),
    )
    .unwrap();
    common::git_in(&root, &["init", "-q", "-b", "main"]);
    let home = Home::new();
    home.opt_in(&root, &day(-1));
    let env = [("CODELENS_TELEMETRY_NOW", day(-1))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    home.ok(&root, &["init", "-q"], &env);
    home.ok(&root, &["status", "--json"], &env);

    // An MCP session whose client name and query carry the canary too.
    let mut mcp = Client::spawn(home.command(&root, &["--mcp"], &env), "codelens --mcp");
    mcp.initialize(&format!("{CANARY}-agent"));
    let line = mcp
        .request(
            "tools/call",
            json!({"name": "search_symbols", "arguments": {"query": CANARY}}),
        )
        .to_string();
    assert!(
        line.contains(CANARY),
        "the answer itself finds the symbol: {line}"
    );
    mcp.finish(Duration::from_secs(20));
    mcp.assert_stdout_is_protocol_only();

    let buffer = std::fs::read_to_string(home.buffer()).unwrap();
    assert!(!buffer.contains(CANARY), "{buffer}");
    let rows = home.buffer_json()["days"][day(-1)].clone();
    let tool = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event_name"] == "search_symbols")
        .expect("the tool call is counted");
    assert_eq!(tool["event_type"], "mcp_tool");
    assert_eq!(
        tool["agent"], "other",
        "an unknown client is `other`, not its name"
    );

    // The payload, printed instead of sent (debug), and as `show` prints it.
    let out = home.run(
        &root,
        &["status"],
        &[
            ("CODELENS_TELEMETRY_NOW", &day(0)),
            ("CODELENS_TELEMETRY_DEBUG", "1"),
        ],
    );
    assert_success(&out, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("telemetry payload"), "{stderr}");
    assert!(stderr.contains("search_symbols"), "{stderr}");
    assert!(!stderr.contains(CANARY), "{stderr}");
    let shown = home.on_day(&root, &["telemetry", "show"], &day(0));
    assert!(shown.contains("search_symbols") && !shown.contains(CANARY));
}

/// Digits vary between runs (timings, ages); the telemetry line reports telemetry.
fn normalized(stdout: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in stdout.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out.lines()
        .filter(|l| !l.contains("telemetry"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn stdout_is_identical_with_telemetry_on_and_off() {
    let commands: &[&[&str]] = &[
        &["init"],
        &["sync"],
        &["sync", "--json"],
        &["status"],
        &["status", "--json"],
        &["hooks", "install"],
        &["hooks", "uninstall"],
    ];
    let mut outputs = Vec::new();
    for on in [false, true] {
        let repo = TestRepo::new();
        repo.write("src/store.rs", RUST_SRC);
        repo.commit_all("init");
        let home = Home::new();
        if on {
            home.opt_in(&repo.root(), &day(-1));
        }
        let mut seen = Vec::new();
        for args in commands {
            // The day changes midway, so the "on" run also flushes and tries a send.
            let today = if args[0] == "status" { day(0) } else { day(-1) };
            let mut out = home.on_day(&repo.root(), args, &today);
            if let Ok(mut json) = serde_json::from_str::<Value>(&out)
                && let Some(object) = json.as_object_mut()
            {
                object.remove("telemetry");
                out = serde_json::to_string_pretty(&json).unwrap();
            }
            let head = repo.git(&["rev-parse", "HEAD"]);
            let out = out
                .replace(head.trim(), "HEAD")
                .replace(&head[..8], "HEAD")
                .replace(&repo.root().to_string_lossy().into_owned(), "ROOT");
            seen.push(normalized(&out));
        }
        if on {
            assert!(home.buffer().exists(), "the on run did record");
        }
        outputs.push(seen);
    }
    assert_eq!(outputs[0], outputs[1]);
}

/// A completed day in the buffer, so the next run tries to send it.
fn with_a_day_to_send(home: &Home, repo: &TestRepo) {
    home.opt_in(&repo.root(), &day(-1));
    home.on_day(&repo.root(), &["status"], &day(-1));
}

#[test]
fn a_hanging_endpoint_does_not_hold_the_command() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let listener = Listener::start(true);
    home.url = listener.url.clone();
    with_a_day_to_send(&home, &repo);
    let started = Instant::now();
    let out = home.run(
        &repo.root(),
        &["status"],
        &[("CODELENS_TELEMETRY_NOW", &day(0))],
    );
    // Documented bound: 2 s at exit. Assert only that it finished, with a generous cap.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_success(&out, &["status"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listener.count(), 1, "the send was tried");
    // Not acknowledged: the day stays buffered.
    assert!(home.buffer_json()["days"][day(-1)].is_array());
}

/// A port on 127.0.0.1 where nothing listens, held for as long as this lives: a socket
/// bound to it that never listens, so a connection is refused and no other listener —
/// of a test running beside this one in this process, or of any process — can take the
/// port meanwhile (as one could between closing a listener and using its port).
struct RefusingPort {
    _socket: std::os::fd::OwnedFd,
    port: u16,
}

impl RefusingPort {
    fn new() -> RefusingPort {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let error = || std::io::Error::last_os_error();
        // SAFETY: socket(2) has no preconditions; its descriptor is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", error());
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_in is a valid value (port 0: any free port).
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let raw = (&raw mut addr).cast::<libc::sockaddr>();
        // SAFETY: `raw` points to a sockaddr_in of `len` bytes, alive for both calls.
        unsafe {
            assert_eq!(
                libc::bind(socket.as_raw_fd(), raw, len),
                0,
                "bind: {}",
                error()
            );
            assert_eq!(
                libc::getsockname(socket.as_raw_fd(), raw, &mut len),
                0,
                "getsockname: {}",
                error()
            );
        }
        RefusingPort {
            _socket: socket,
            port: u16::from_be(addr.sin_port),
        }
    }
}

#[test]
fn a_down_endpoint_is_silent_keeps_the_day_and_is_tried_once_a_day() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let down = RefusingPort::new();
    home.url = format!("http://127.0.0.1:{}/v1/events", down.port);
    with_a_day_to_send(&home, &repo);
    let out = home.run(
        &repo.root(),
        &["status"],
        &[("CODELENS_TELEMETRY_NOW", &day(0))],
    );
    assert_success(&out, &["status"]);
    assert!(out.stderr.is_empty());
    assert!(home.buffer_json()["days"][day(-1)].is_array());
    assert_eq!(home.buffer_json()["last_send_day"], day(0).as_str());
    // The endpoint is back, but today's attempt was made: no second send today.
    let listener = Listener::start(false);
    home.url = listener.url.clone();
    home.on_day(&repo.root(), &["status"], &day(0));
    assert_eq!(listener.count(), 0);
    // Tomorrow it is tried again, and the acknowledged days leave the buffer.
    home.on_day(&repo.root(), &["status"], &day(1));
    assert_eq!(listener.count(), 1);
    let body: Value = serde_json::from_str(&listener.bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(body["days"][0]["timestamp"], day(-1).as_str());
    assert_eq!(body["days"][1]["timestamp"], day(0).as_str());
    let left = home.buffer_json();
    assert_eq!(
        left["days"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&day(1)]
    );
}

#[test]
fn an_oversized_buffer_is_trimmed_oldest_first() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(-1));
    let mut days = serde_json::Map::new();
    for offset in 1..3000 {
        days.insert(
            day(-offset),
            json!([{"event_type": "cli_command", "event_name": "status", "language": "rust",
                    "agent": "none", "file_count_bucket": "<100", "count": offset}]),
        );
    }
    let fixture = json!({"days": days}).to_string();
    assert!(fixture.len() > 256 * 1024);
    std::fs::write(home.buffer(), fixture).unwrap();
    home.on_day(&repo.root(), &["status"], &day(0));
    let size = std::fs::metadata(home.buffer()).unwrap().len();
    assert!(size <= 256 * 1024, "{size}");
    let buffer = home.buffer_json();
    assert!(buffer["days"][day(0)].is_array(), "today kept");
    assert!(buffer["days"][day(-1)].is_array(), "recent days kept");
    assert!(buffer["days"].get(day(-2999)).is_none(), "oldest dropped");
}

#[test]
fn a_corrupt_buffer_is_replaced_not_fatal() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    std::fs::write(home.buffer(), b"\x00{{{ not json at all").unwrap();
    let before = home.run(&repo.root(), &["status", "--json"], &[]);
    assert_success(&before, &["status", "--json"]);
    assert!(before.stderr.is_empty());
    home.on_day(&repo.root(), &["sync"], &day(0));
    let buffer = home.buffer_json();
    assert_eq!(buffer["days"][day(0)].as_array().unwrap().len(), 2);
}

#[test]
fn the_ingest_server_rejects_what_is_not_on_the_lists() {
    let ingest = Ingest::start(2);
    let id = "6f9619ff-8b86-4d11-b42d-00c04fc964ff";
    let payload = |field: &str, name: &str, id: &str| {
        format!(
            r#"{{"schema_version":1,"machine_id":"{id}","days":[{{"timestamp":"{}","events":[{{"event_type":"cli_command","event_name":"{name}","language":"go","agent":"none","file_count_bucket":"<100","count":4{field}}}]}}]}}"#,
            day(-1)
        )
    };
    let (code, body) = ingest.request(
        "POST",
        "/events",
        Some(&payload(r#","path":"/x""#, "sync", id)),
    );
    assert_eq!(code, 400, "{body}");
    let (code, _) = ingest.request("POST", "/events", Some(&payload("", "make_coffee", id)));
    assert_eq!(code, 400);
    let (code, _) = ingest.request("POST", "/events", Some("not json"));
    assert_eq!(code, 400);
    let (code, _) = ingest.request("POST", "/events", Some(&" ".repeat(300_000)));
    assert_eq!(code, 413);
    let (code, _) = ingest.request("DELETE", "/machines/not-an-id", None);
    assert_eq!(code, 400);
    assert_eq!(ingest.aggregate()["buckets"], json!([]));

    // One machine's bucket is suppressed; two machines make it visible.
    let (code, body) = ingest.request("POST", "/events", Some(&payload("", "sync", id)));
    assert_eq!(code, 200, "{body}");
    let aggregate = ingest.aggregate();
    assert_eq!(aggregate["buckets"], json!([]));
    assert_eq!(aggregate["suppressed"], 1);
    let other = "0b7d7a4e-3e43-4a7e-9f6e-2f1a6f1c9d00";
    let (code, _) = ingest.request("POST", "/events", Some(&payload("", "sync", other)));
    assert_eq!(code, 200);
    let aggregate = ingest.aggregate();
    assert_eq!(count_of(&aggregate, "sync"), 8);
    assert_eq!(aggregate["buckets"][0]["machines"], 2);
    let (code, body) = ingest.request("DELETE", &format!("/machines/{other}"), None);
    assert_eq!((code, &body["deleted_rows"]), (200, &json!(1)));
    assert_eq!(ingest.aggregate()["suppressed"], 1);
}

#[test]
fn the_public_schema_lists_exactly_the_recorded_values() {
    use codelens::telemetry::schema::{Agent, EventName, EventType, FileCountBucket, Language};
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/telemetry-schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let event = &schema["$defs"]["event"]["properties"];
    let listed = |field: &str| -> Vec<String> {
        event[field]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{field} has an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let names = |it: &mut dyn Iterator<Item = &'static str>| -> Vec<String> {
        it.map(String::from).collect()
    };
    assert_eq!(listed("event_type"), names(&mut EventType::names()));
    assert_eq!(listed("event_name"), names(&mut EventName::names()));
    assert_eq!(listed("language"), names(&mut Language::names()));
    assert_eq!(listed("agent"), names(&mut Agent::names()));
    assert_eq!(
        listed("file_count_bucket"),
        names(&mut FileCountBucket::names())
    );
}

#[test]
fn a_bad_switch_value_is_one_warning_line_and_nothing_else() {
    let repo = indexed_repo();
    let home = Home::new();
    let out = home.run(
        &repo.root(),
        &["status"],
        &[("CODELENS_TELEMETRY", "maybe")],
    );
    assert_success(&out, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("codelens: warning: CODELENS_TELEMETRY"));
    assert!(home.files().is_empty());
}

#[test]
fn a_long_running_watch_flushes_in_the_background() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    let mut child = home
        .command(&repo.root(), &["watch"], &[("CODELENS_NO_WATCH", "1")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Ctrl-C skips the exit flush, so the counts must reach the disk while it runs.
    while !home.buffer().exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no background flush"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let _ = child.wait();
    assert!(
        stdout.is_empty(),
        "watch and telemetry print nothing on stdout"
    );
    let names: Vec<String> = home.buffer_json()["days"][day(0)]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"watch".to_string()), "{names:?}");
    assert!(names.contains(&"engine_start".to_string()), "{names:?}");
}

/// `codelens --mcp` with this home's environment, initialized as Claude Code.
fn start_mcp(home: &Home, root: &Path, env: &[(&str, &str)]) -> Client {
    let mut mcp = Client::spawn(home.command(root, &["--mcp"], env), "codelens --mcp");
    mcp.initialize("claude-code");
    mcp
}

/// One counted tool call.
fn search(mcp: &mut Client) {
    let answer = mcp.request(
        "tools/call",
        json!({"name": "search_symbols", "arguments": {"query": "Store"}}),
    );
    assert!(answer.get("result").is_some(), "{answer}");
}

/// Closes the server's stdin and waits for its exit (and its flush).
fn finish(mut mcp: Client) {
    mcp.finish(Duration::from_secs(30));
}

fn rows_on(home: &Home, day: &str) -> Vec<Value> {
    home.buffer_json_or_empty()["days"][day]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn off_then_on_the_same_day_never_lets_earlier_counts_through() {
    let repo = indexed_repo();
    let home = Home::new();
    let today = day(0);
    home.opt_in(&repo.root(), &today);
    let env = [("CODELENS_TELEMETRY_NOW", today.as_str())];
    let mut mcp = start_mcp(&home, &repo.root(), &env);
    search(&mut mcp); // before the off
    home.on_day(&repo.root(), &["telemetry", "off"], &today);
    search(&mut mcp); // during the off (the server has not re-read the consent yet)
    home.on_day(&repo.root(), &["telemetry", "on"], &today);
    finish(mcp);
    // The exit flush found the consent changed under it: its counts belong to the
    // earlier choice and are dropped (the opt-in day alone could not tell them apart).
    let rows = rows_on(&home, &today);
    assert!(rows.is_empty(), "{rows:?}");

    // A process started after the on counts as usual.
    let mut mcp = start_mcp(&home, &repo.root(), &env);
    search(&mut mcp);
    finish(mcp);
    let rows = rows_on(&home, &today);
    assert!(
        rows.iter().any(|r| r["event_name"] == "search_symbols"),
        "{rows:?}"
    );
}

#[test]
fn debug_mode_does_not_use_up_the_day_s_send() {
    let repo = indexed_repo();
    let mut home = Home::new();
    with_a_day_to_send(&home, &repo);
    let debug = [
        ("CODELENS_TELEMETRY_NOW", day(0)),
        ("CODELENS_TELEMETRY_DEBUG", "1".to_string()),
    ];
    let debug: Vec<(&str, &str)> = debug.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let out = home.run(&repo.root(), &["status"], &debug);
        assert_success(&out, &["status"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("telemetry payload (debug"), "{stderr}");
    }
    assert_eq!(home.buffer_json()["last_send_day"], Value::Null);
    // The real send still happens today.
    let listener = Listener::start(false);
    home.url = listener.url.clone();
    home.on_day(&repo.root(), &["status"], &day(0));
    assert_eq!(listener.count(), 1);
    assert!(home.buffer_json()["days"].get(day(-1)).is_none(), "sent");
}

#[test]
fn a_held_buffer_lock_does_not_hold_the_command() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    let unlocked = home.on_day(&repo.root(), &["status"], &day(0));
    std::fs::remove_file(home.buffer()).unwrap();

    // Another process (this test) holds the lock and never lets go.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.path().join("telemetry.lock"))
        .unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let out = home.run(
        &repo.root(),
        &["status"],
        &[("CODELENS_TELEMETRY_NOW", &day(0))],
    );
    // Documented bound: 2 s at exit. Assert only that it finished, with a generous cap.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_success(&out, &["status"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        normalized(&String::from_utf8(out.stdout).unwrap()),
        normalized(&unlocked)
    );
    assert!(!home.buffer().exists(), "the flush was skipped, not queued");

    drop(lock);
    home.on_day(&repo.root(), &["status"], &day(0));
    assert!(
        home.buffer().exists(),
        "with the lock free, counts land again"
    );
}

#[test]
fn a_temp_file_left_by_a_cut_off_write_is_removed_by_the_next_flush() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    let stale = home
        .path()
        .join("telemetry-buffer.json.codelens-tmp-999999");
    std::fs::write(&stale, b"{\"days\":{}}").unwrap();
    home.on_day(&repo.root(), &["status"], &day(0));
    assert!(!stale.exists(), "{:?}", home.files());
    assert!(home.buffer().exists());
}

#[test]
fn stalled_uploads_do_not_stall_the_ingest_server() {
    let ingest = Ingest::start(1);
    let addr = ingest
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    // More stalled clients than the server has workers (4): headers and the start of
    // a body, then nothing, connections held open.
    let stalled: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            stream
                .write_all(
                    b"POST /v1/events HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"schema_version\":",
                )
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let payload = format!(
        r#"{{"schema_version":1,"machine_id":"6f9619ff-8b86-4d11-b42d-00c04fc964ff","days":[{{"timestamp":"{}","events":[{{"event_type":"cli_command","event_name":"sync","language":"go","agent":"none","file_count_bucket":"<100","count":1}}]}}]}}"#,
        day(-1)
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let started = Instant::now();
    let response = agent
        .post(&ingest.events_url())
        .header("content-type", "application/json")
        .send(&payload)
        .expect("the ingest server answers");
    assert_eq!(response.status().as_u16(), 200);
    // Generous: only that it was answered, well before the client gave up.
    assert!(started.elapsed() < Duration::from_secs(45));
    drop(stalled);
}

impl Ingest {
    fn addr(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_string()
    }
}

/// A valid payload for one machine, yesterday.
fn one_day_payload() -> String {
    format!(
        r#"{{"schema_version":1,"machine_id":"6f9619ff-8b86-4d11-b42d-00c04fc964ff","days":[{{"timestamp":"{}","events":[{{"event_type":"cli_command","event_name":"sync","language":"go","agent":"none","file_count_bucket":"<100","count":1}}]}}]}}"#,
        day(-1)
    )
}

/// Everything the server sends on `stream` until it closes it (or `within` passes).
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn clients_stalled_mid_headers_or_mid_body_are_cut_off_and_never_block_others() {
    let ingest = Ingest::start(1);
    let started = Instant::now();
    // Slowloris: part of the headers, then nothing.
    let mut mid_headers: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut stream = TcpStream::connect(ingest.addr()).unwrap();
            stream
                .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\ncontent-ty")
                .unwrap();
            stream
        })
        .collect();
    // All the headers and the start of the body, then nothing.
    let mut mid_body = TcpStream::connect(ingest.addr()).unwrap();
    mid_body
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\ncontent-length: 1000\r\n\r\n{\"sch")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let (code, body) = ingest.request("POST", "/events", Some(&one_day_payload()));
    assert_eq!(code, 200, "{body}");
    assert_eq!(ingest.request("GET", "/aggregate", None).0, 200);
    assert!(started.elapsed() < Duration::from_secs(4));

    // The body's deadline (5 s) answers 408; the header timeout (10 s) closes the
    // connection without an answer. Both well before the 30 s allowed here.
    let answer = read_until_closed(&mut mid_body, Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    for stream in &mut mid_headers {
        assert_eq!(read_until_closed(stream, Duration::from_secs(30)), "");
    }
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn a_chunked_body_is_read_and_one_over_the_limit_refused_with_413() {
    let ingest = Ingest::start(1);
    let chunked = |chunks: Vec<Vec<u8>>| {
        let mut stream = TcpStream::connect(ingest.addr()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        // Written on a thread of its own: the server may answer, and stop reading,
        // before the last chunk.
        let writing = std::thread::spawn(move || {
            let _ = writer.write_all(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            for chunk in chunks {
                let _ = writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                let _ = writer.write_all(&chunk);
                let _ = writer.write_all(b"\r\n");
            }
            let _ = writer.write_all(b"0\r\n\r\n");
        });
        let answer = read_until_closed(&mut stream, Duration::from_secs(20));
        let _ = writing.join();
        answer
    };

    let payload = one_day_payload().into_bytes();
    let (first, second) = payload.split_at(payload.len() / 2);
    let answer = chunked(vec![first.to_vec(), second.to_vec()]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    // The server runs with --max-body 200000: five chunks of 50000 bytes go over.
    let answer = chunked(vec![vec![b' '; 50_000]; 5]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(ingest.aggregate()["buckets"][0]["count"], 1);
}

// ---------------------------------------------------------------------------------------
// The client's hardening (issue 20): each test below failed before its fix.

fn status_row(count: u64) -> Value {
    json!([{"event_type": "cli_command", "event_name": "status", "language": "rust",
            "agent": "none", "file_count_bucket": "<100", "count": count}])
}

#[test]
fn a_long_offline_client_sends_400_days_oldest_first_with_counts_clamped() {
    let repo = indexed_repo();
    let ingest = Ingest::start(1);
    let mut home = Home::new();
    home.url = ingest.events_url();
    home.opt_in(&repo.root(), &day(-600));
    // 450 completed days waiting, one of them with a count no person makes.
    let mut days = serde_json::Map::new();
    for offset in 11..=460 {
        days.insert(day(-offset), status_row(1));
    }
    days.insert(day(-300), status_row(u64::MAX));
    std::fs::write(home.buffer(), json!({ "days": days }).to_string()).unwrap();

    home.on_day(&repo.root(), &["status"], &day(0));
    let aggregate = ingest.aggregate();
    let sent: std::collections::BTreeSet<&str> = aggregate["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["day"].as_str().unwrap())
        .collect();
    assert_eq!(sent.len(), 400, "one send carries at most 400 days");
    assert_eq!(
        sent.first().copied(),
        Some(day(-460).as_str()),
        "oldest first"
    );
    assert_eq!(sent.last().copied(), Some(day(-61).as_str()));
    let clamped = aggregate["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["day"] == day(-300).as_str())
        .unwrap();
    assert_eq!(clamped["count"].as_u64(), Some(codelens_ingest::MAX_COUNT));
    // The 50 newest completed days wait for tomorrow's send.
    let left = home.status(&repo.root())["pending_days"].clone();
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 51, "{left:?}");
    assert_eq!(left[0], day(-60));
    home.on_day(&repo.root(), &["status"], &day(1));
    assert_eq!(
        home.status(&repo.root())["pending_days"],
        json!([day(1)]),
        "drained"
    );
}

#[test]
fn days_the_server_refuses_are_dropped_and_counted_but_a_429_is_retried() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let busy = Listener::answering(false, 429);
    home.url = busy.url.clone();
    with_a_day_to_send(&home, &repo);
    home.on_day(&repo.root(), &["status"], &day(0));
    assert_eq!(busy.count(), 1);
    assert!(home.buffer_json()["days"][day(-1)].is_array(), "429: kept");
    assert_eq!(home.status(&repo.root())["rejected_days"], 0);

    let refusing = Listener::answering(false, 400);
    home.url = refusing.url.clone();
    home.on_day(&repo.root(), &["status"], &day(1));
    assert_eq!(refusing.count(), 1);
    let buffer = home.buffer_json();
    assert!(buffer["days"].get(day(-1)).is_none(), "400: dropped");
    assert!(buffer["days"].get(day(0)).is_none(), "400: dropped");
    let status = home.status(&repo.root());
    assert_eq!(status["rejected_days"], 2, "{status}");
    let text = home.ok(&repo.root(), &["telemetry", "status"], &[]);
    assert!(text.contains("rejected    2 day(s)"), "{text}");
    // Not re-sent the next day.
    home.on_day(&repo.root(), &["status"], &day(2));
    assert_eq!(refusing.count(), 2, "only day 1's counts went");
    let body: Value = serde_json::from_str(&refusing.bodies.lock().unwrap()[1]).unwrap();
    assert_eq!(body["days"].as_array().unwrap().len(), 1);
    assert_eq!(body["days"][0]["timestamp"], day(1).as_str());
}

/// Accepts one request, reports it, and answers 200 only once released.
struct GatedEndpoint {
    url: String,
    received: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl GatedEndpoint {
    fn start() -> GatedEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
        let (received_tx, received) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            read_http_request(&mut stream);
            let _ = received_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        });
        GatedEndpoint {
            url,
            received,
            release,
        }
    }
}

#[test]
fn telemetry_off_during_a_send_means_nothing_is_written_afterwards() {
    let repo = indexed_repo();
    let mut home = Home::new();
    let endpoint = GatedEndpoint::start();
    home.url = endpoint.url.clone();
    with_a_day_to_send(&home, &repo);
    let sending = home
        .command(
            &repo.root(),
            &["status"],
            &[("CODELENS_TELEMETRY_NOW", &day(0))],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    endpoint
        .received
        .recv_timeout(Duration::from_secs(30))
        .expect("the send reached the endpoint");
    // The user turns telemetry off while the request is in flight.
    home.ok(&repo.root(), &["telemetry", "off"], &[]);
    assert!(!home.buffer().exists(), "off deletes the buffer");
    let files_after_off = home.files();
    let modified = |name: &str| {
        std::fs::metadata(home.path().join(name))
            .ok()?
            .modified()
            .ok()
    };
    let stamps: Vec<_> = files_after_off.iter().map(|f| modified(f)).collect();
    endpoint.release.send(()).unwrap();
    let out = sending.wait_with_output().unwrap();
    assert_success(&out, &["status"]);
    assert!(
        !home.buffer().exists(),
        "the send's result rewrote the buffer"
    );
    assert_eq!(home.files(), files_after_off, "a file appeared after off");
    let stamps_now: Vec<_> = files_after_off.iter().map(|f| modified(f)).collect();
    assert_eq!(stamps_now, stamps, "a file was written after off");
}

#[test]
fn show_on_the_opt_in_day_prints_today_as_not_yet_sendable() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    home.on_day(&repo.root(), &["status"], &day(0));
    let out = home.run(
        &repo.root(),
        &["telemetry", "show"],
        &[("CODELENS_TELEMETRY_NOW", &day(0))],
    );
    assert_success(&out, &["telemetry", "show"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(shown["days"], json!([]), "nothing is sendable yet: {shown}");
    let pending = &shown["not_yet_sendable"];
    assert_eq!(pending["days"][0]["timestamp"], day(0).as_str(), "{shown}");
    let events = pending["days"][0]["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["event_name"] == "status"),
        "{shown}"
    );
    assert!(shown["machine_id"].is_string());
    // Next to a completed day: both, the completed one as the next send.
    let next_day = home.on_day(&repo.root(), &["telemetry", "show"], &day(1));
    let next_day: Value = serde_json::from_str(&next_day).unwrap();
    assert_eq!(next_day["days"][0]["timestamp"], day(0).as_str());
    assert!(next_day.get("not_yet_sendable").is_none(), "{next_day}");
}

#[test]
fn a_bad_endpoint_url_warns_only_when_it_would_be_used() {
    let repo = indexed_repo();
    let mut home = Home::new();
    home.url = "ftp://example.invalid/v1/events".into();
    let off = home.run(&repo.root(), &["status"], &[]);
    assert_success(&off, &["status"]);
    assert!(
        off.stderr.is_empty(),
        "warned while off: {}",
        String::from_utf8_lossy(&off.stderr)
    );
    let on = home.run(&repo.root(), &["telemetry", "on"], &[]);
    assert_success(&on, &["telemetry", "on"]);
    let stderr = String::from_utf8_lossy(&on.stderr);
    assert!(stderr.contains("CODELENS_TELEMETRY_URL"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let status = home.run(&repo.root(), &["status"], &[]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.contains("CODELENS_TELEMETRY_URL"), "{stderr}");
}

/// Runs `command` to its end and returns its peak resident set, in KiB (`wait4`'s
/// `ru_maxrss` for that one child, whatever else the test process runs meanwhile).
fn peak_rss_kib(mut command: Command) -> i64 {
    #[allow(clippy::zombie_processes)] // reaped by wait4 below
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are live.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    // Reaped above by wait4 (which `Child` cannot do): forget it without a second wait.
    std::mem::forget(child);
    usage.ru_maxrss
}

#[test]
fn status_and_show_read_a_huge_buffer_only_up_to_a_bound() {
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(-1));
    let mut small = serde_json::Map::new();
    small.insert(day(-1), status_row(1));
    std::fs::write(home.buffer(), json!({ "days": small }).to_string()).unwrap();
    let baseline =
        peak_rss_kib(home.command(&repo.root(), &["telemetry", "status", "--json"], &[]));
    // A 9 MB buffer (valid JSON, valid rows) that our writer would never make, written
    // as a stream: a child forked from this process counts this process's memory in
    // its peak, so the fixture must not sit in it.
    let row = status_row(1)[0].to_string();
    let mut file = std::io::BufWriter::new(std::fs::File::create(home.buffer()).unwrap());
    write!(file, "{{\"days\":{{").unwrap();
    for offset in 1..=2_000 {
        let rows = vec![row.as_str(); 40].join(",");
        let comma = if offset == 1 { "" } else { "," };
        write!(file, "{comma}\"{}\":[{rows}]", day(-offset)).unwrap();
    }
    write!(file, "}}}}").unwrap();
    file.into_inner().unwrap().sync_all().unwrap();
    let huge_len = std::fs::metadata(home.buffer()).unwrap().len();
    assert!(huge_len > 9_000_000, "{huge_len}");
    for args in [
        &["telemetry", "status", "--json"][..],
        &["telemetry", "show"],
    ] {
        let peak = peak_rss_kib(home.command(&repo.root(), args, &[]));
        // Reading the file whole alone would add its 9 MB; parsing it, far more.
        assert!(
            peak < baseline + 4 * 1024,
            "{args:?}: peak {peak} KiB against {baseline} KiB with a small buffer"
        );
    }
    let status = home.status(&repo.root());
    assert_eq!(status["buffer_bytes"], huge_len);
    assert_eq!(
        status["pending_days"],
        json!([]),
        "not read: treated as corrupt"
    );
    // The next flush replaces it with a buffer of the bounded size.
    home.on_day(&repo.root(), &["status"], &day(0));
    assert!(std::fs::metadata(home.buffer()).unwrap().len() < 256 * 1024);
}

#[test]
fn the_lock_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let repo = indexed_repo();
    let home = Home::new();
    home.opt_in(&repo.root(), &day(0));
    home.on_day(&repo.root(), &["status"], &day(0));
    for name in [
        "telemetry.lock",
        "telemetry.json",
        "machine_id",
        "telemetry-buffer.json",
    ] {
        let mode = std::fs::metadata(home.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}

#[test]
fn on_and_off_under_do_not_track_say_that_the_environment_still_decides() {
    let repo = indexed_repo();
    let home = Home::new();
    for action in ["on", "off"] {
        let out = home.run(
            &repo.root(),
            &["telemetry", action],
            &[("DO_NOT_TRACK", "1")],
        );
        assert_success(&out, &["telemetry", action]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("DO_NOT_TRACK=1") && stderr.contains("environment still decides"),
            "{action}: {stderr}"
        );
    }
}

#[test]
fn the_public_schema_states_the_limits_client_and_server_share() {
    use codelens::telemetry::schema::{MAX_COUNT, MAX_DAYS_PER_PAYLOAD, MAX_ROWS_PER_DAY};
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/telemetry-schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let days = &schema["properties"]["days"];
    assert_eq!(days["maxItems"], MAX_DAYS_PER_PAYLOAD);
    let events = &schema["$defs"]["day"]["properties"]["events"];
    assert_eq!(events["maxItems"], MAX_ROWS_PER_DAY);
    assert_eq!(
        schema["$defs"]["event"]["properties"]["count"]["maximum"],
        MAX_COUNT
    );
    // The one spelling of a machine id the server accepts.
    let pattern = schema["properties"]["machine_id"]["pattern"]
        .as_str()
        .unwrap();
    assert_eq!(
        pattern,
        "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    );
    assert_eq!(codelens_ingest::MAX_ROWS_PER_DAY, MAX_ROWS_PER_DAY);
}
