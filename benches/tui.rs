//! The dashboard's costs, each printed beside what it is compared with in the same run:
//!
//!   * frame render time at 160×48 with 10,000 pending files (target p99 < 5 ms),
//!     beside the same frame with nothing pending;
//!   * CPU time of an idle `codelens tui` over 60 s (target < 0.2 s), beside the headless
//!     engine (`codelens watch`) on the same tree over the same time;
//!   * CPU time of both while 2,000 files are written at once, until the index has them.
//!
//!     cargo bench --bench tui                      # everything (about 2.5 minutes)
//!     cargo bench --bench tui -- --idle-secs 10    # a shorter idle window
//!
//! The terminal is a real one: tmux, at 160×48. Numbers live here, never in tests.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use codelens::ui::app::App;
use codelens::ui::fixtures::{self, NOW_NS};
use codelens::ui::view;

const BIN: &str = env!("CARGO_BIN_EXE_codelens");
const TREE_FILES: usize = 5_000;
const STORM_FILES: usize = 2_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let idle_secs = args
        .iter()
        .position(|a| a == "--idle-secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(60u64);

    println!("## frame render, 160×48 (in process, TestBackend)\n");
    let (p50, p99) = render_times(10_000);
    let (base50, base99) = render_times(0);
    println!("| case | p50 | p99 | target |");
    println!("|---|---|---|---|");
    println!("| 10,000 pending files | {p50:.2?} | {p99:.2?} | p99 < 5 ms |");
    println!("| nothing pending (reference) | {base50:.2?} | {base99:.2?} | |");

    let Some(tmux) = which("tmux") else {
        println!("\ntmux is not installed: the idle and storm figures need a real terminal");
        return;
    };
    let tree = tempfile::Builder::new()
        .prefix("codelens-tui-bench-")
        .tempdir()
        .expect("temp dir");
    let root = tree.path().to_path_buf();
    generate(&root, TREE_FILES);
    run(Command::new(BIN).args(["init", "-q"]).current_dir(&root));

    println!(
        "\n## CPU time (user + system), {TREE_FILES}-file tree, {idle_secs} s idle, then {STORM_FILES} files written at once\n"
    );
    println!(
        "| process | CPU idle {idle_secs} s | frames drawn idle | CPU storm until indexed | storm wall | target |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, args, target) in [
        ("codelens tui (160×48)", "tui", "idle < 0.2 s / 60 s"),
        ("codelens watch (reference: the engine alone)", "watch", ""),
    ] {
        let (idle, storm, wall, idle_draws) = cpu_profile(&tmux, &root, args, idle_secs);
        let idle_draws = idle_draws.map_or("—".to_string(), |n| n.to_string());
        println!("| {name} | {idle:.3?} | {idle_draws} | {storm:.3?} | {wall:.2?} | {target} |");
    }
}

/// p50 and p99 of one full frame at 160×48, each with the clock a second later (so the
/// ages really change and the diff has work to do).
fn render_times(pending: usize) -> (Duration, Duration) {
    let mut app = App::new(true, true, NOW_NS);
    app.on_snapshot(
        Arc::new(fixtures::snapshot_many_pending(NOW_NS, pending)),
        NOW_NS,
    );
    if pending == 0 {
        app.on_snapshot(Arc::new(fixtures::snapshot_in_sync()), NOW_NS);
    }
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).expect("backend");
    let mut times = Vec::with_capacity(2_000);
    for frame in 0..2_000i64 {
        app.on_tick(NOW_NS + frame * 1_000_000_000);
        let started = Instant::now();
        terminal
            .draw(|f| view::render(f, &mut app))
            .expect("render");
        times.push(started.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// Runs `codelens <command>` in a tmux pane on `root`; returns its CPU time over an idle
/// window, its CPU time from a 2,000-file storm until the index holds every file, and
/// that storm's wall time.
fn cpu_profile(
    tmux: &Path,
    root: &Path,
    command: &str,
    idle_secs: u64,
) -> (Duration, Duration, Duration, Option<u64>) {
    let socket = format!("codelens-bench-{}", std::process::id());
    let tmux_cmd = |args: &[&str]| {
        let out = Command::new(tmux)
            .arg("-L")
            .arg(&socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let stats = root.join(".codelens/bench-tui-stats");
    // Only the dashboard writes it: a stale one must not count for another process.
    let _ = std::fs::remove_file(&stats);
    let line = format!(
        "env -u CI CODELENS_TUI_STATS={} {BIN} {command}",
        stats.display()
    );
    tmux_cmd(&[
        "new-session",
        "-d",
        "-s",
        "b",
        "-x",
        "160",
        "-y",
        "48",
        "-c",
        &root.to_string_lossy(),
        &line,
    ]);
    let pid: u32 = tmux_cmd(&["list-panes", "-t", "b", "-F", "#{pane_pid}"])
        .parse()
        .expect("pane pid");
    // `env` execs codelens in the same process: wait for the exec, then be sure.
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    wait_until(Duration::from_secs(10), || comm().trim() == "codelens");
    let draws = || {
        std::fs::read_to_string(&stats)
            .ok()
            .and_then(|s| s.trim().strip_prefix("draws ")?.parse::<u64>().ok())
    };
    // Let start-up and catch-up finish before the idle window opens.
    wait_until(Duration::from_secs(60), || status_pending(root) == Some(0));
    std::thread::sleep(Duration::from_secs(2));
    let before = cpu_time(pid);
    let draws_before = draws();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle = cpu_time(pid) - before;
    let idle_draws = match (draws_before, draws()) {
        (Some(from), Some(to)) => Some(to - from),
        _ => None,
    };

    let before = cpu_time(pid);
    let started = Instant::now();
    let storm = root.join("storm");
    std::fs::create_dir_all(&storm).expect("storm dir");
    for i in 0..STORM_FILES {
        std::fs::write(
            storm.join(format!("s{i:05}.rs")),
            format!("pub fn storm_{i}() -> usize {{ {i} }}\n"),
        )
        .expect("write");
    }
    let expected = TREE_FILES + STORM_FILES;
    wait_until(Duration::from_secs(120), || {
        status_files(root) == Some(expected) && status_pending(root) == Some(0)
    });
    let wall = started.elapsed();
    let storm_cpu = cpu_time(pid) - before;
    tmux_cmd(&["kill-server"]);
    // Put the tree back for the next process.
    std::fs::remove_dir_all(&storm).expect("remove storm");
    run(Command::new(BIN).args(["sync", "-q"]).current_dir(root));
    (idle, storm_cpu, wall, idle_draws)
}

fn status(root: &Path) -> Option<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["status", "--json"])
        .current_dir(root)
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn status_pending(root: &Path) -> Option<usize> {
    Some(status(root)?["pending"].as_array()?.len())
}

fn status_files(root: &Path) -> Option<usize> {
    Some(status(root)?["files"].as_u64()? as usize)
}

fn wait_until(limit: Duration, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "gave up after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// utime + stime of `pid` from /proc (Linux), in clock ticks turned into time.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

fn generate(root: &Path, files: usize) {
    run(Command::new("git").args(["init", "-q"]).current_dir(root));
    for i in 0..files {
        let dir = root.join(format!("src/m{:03}", i / 50));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join(format!("f{i:05}.rs")),
            format!(
                "pub struct S{i};\n\nimpl S{i} {{\n    pub fn get(&self) -> usize {{ {i} }}\n}}\n"
            ),
        )
        .expect("write");
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("runs");
    assert!(status.success(), "{command:?} failed");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}
