//! `codelens tui` end to end, in a real terminal: tmux runs the real binary in a real
//! temp git repository at 60×30, and the tests read the pane as a user would see it.
//! Polls have generous deadlines; nothing here asserts how fast anything is.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{BIN, TestRepo, git_in};

const DEADLINE: Duration = Duration::from_secs(30);

/// A tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    home: tempfile::TempDir,
}

impl Tmux {
    /// A 60×30 pane running a plain shell in `dir`, with a temp `CODELENS_HOME` and
    /// no CI variables (telemetry would be forced off).
    fn start(dir: &Path) -> Tmux {
        let available = Command::new("tmux").arg("-V").output();
        assert!(
            available.is_ok_and(|o| o.status.success()),
            "tmux is required for the dashboard's end-to-end tests: run ./scripts/test, which installs it"
        );
        let socket = format!("codelens-test-{}-{}", std::process::id(), unique());
        let tmux = Tmux {
            socket,
            home: tempfile::tempdir().expect("temp home"),
        };
        let shell = format!(
            "env -u CI -u GITHUB_ACTIONS -u GITLAB_CI -u BUILDKITE -u CIRCLECI -u TRAVIS -u JENKINS_URL -u TF_BUILD -u TEAMCITY_VERSION -u DO_NOT_TRACK -u CODELENS_TELEMETRY \
             CODELENS_HOME={home} CODELENS_TUI_STATS={home}/tui-stats CODELENS_WATCH_DEBOUNCE_MS=300 PS1='ready$ ' TERM=xterm-256color bash --norc --noprofile",
            home = tmux.home.path().display()
        );
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "60",
            "-y",
            "30",
            "-c",
            &dir.to_string_lossy(),
            &shell,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux.wait_for("shell prompt", |pane| pane.contains("ready$"));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    fn pane(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Polls the pane until `ready` holds; fails with the pane's content otherwise.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let pane = self.pane();
            if ready(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "waited {DEADLINE:?} for {what}; the pane shows:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn codelens_home(&self) -> &Path {
        self.home.path()
    }

    /// Frames the dashboard has drawn so far (`CODELENS_TUI_STATS`).
    fn draws(&self) -> u64 {
        std::fs::read_to_string(self.home.path().join("tui-stats"))
            .ok()
            .and_then(|s| s.trim().strip_prefix("draws ")?.parse().ok())
            .unwrap_or(0)
    }

    /// tmux's view of the pane's terminal modes, e.g. `0 1 0`: alternate screen,
    /// cursor visible, mouse tracking.
    fn modes(&self) -> String {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{alternate_on} #{cursor_flag} #{mouse_any_flag}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The process running in the pane's shell (the dashboard).
    fn dashboard_pid(&self) -> u32 {
        let shell = String::from_utf8_lossy(
            &self
                .run(&["display-message", "-p", "-t", "t", "#{pane_pid}"])
                .stdout,
        )
        .trim()
        .to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .expect("the dashboard runs under the shell")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn small_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/lib.rs", common::RUST_SRC);
    repo.write("app.py", "def main():\n    pass\n");
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

/// Quits with `q` and checks the shell got a sane terminal back: the prompt, not the
/// dashboard (the alternate screen was left), and cooked mode with echo.
fn quit_and_check_terminal(tmux: &Tmux) {
    tmux.keys(&["q"]);
    check_terminal_restored(tmux);
}

/// The dashboard is gone and the shell has a sane terminal: the prompt, not the
/// dashboard (the alternate screen was left), cursor shown, mouse tracking off,
/// cooked mode with echo.
fn check_terminal_restored(tmux: &Tmux) {
    // The dashboard's process has exited when the shell prints a fresh prompt.
    tmux.wait_for("the dashboard to exit", |pane| {
        !pane.contains("q quit")
            // (after `^C` when the terminal echoed one to the shell's screen)
            && (pane.lines().rev().find(|l| !l.trim().is_empty()))
                .is_some_and(|l| l == "ready$" || l == "^Cready$")
    });
    assert_eq!(tmux.modes(), "0 1 0", "alternate screen, cursor, mouse");
    let stty = tmux.codelens_home().join("stty.txt");
    tmux.type_line(&format!("stty -a > {}", stty.display()));
    let deadline = Instant::now() + DEADLINE;
    while !stty.is_file()
        || std::fs::read_to_string(&stty)
            .unwrap_or_default()
            .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "stty never ran:\n{}",
            tmux.pane()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let modes = std::fs::read_to_string(&stty).expect("stty output");
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(words.contains(&"icanon"), "raw mode left on:\n{modes}");
    assert!(words.contains(&"echo"), "echo left off:\n{modes}");
}

#[test]
fn edits_appear_in_pending_and_leave_after_the_debounce() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("the dashboard in sync", |pane| {
        pane.contains("index in sync") && pane.contains("q quit") && pane.contains("writer")
    });
    // Idle: no frame at all while nothing changes.
    std::thread::sleep(Duration::from_millis(500));
    let idle_from = tmux.draws();
    assert!(idle_from > 0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tmux.draws(), idle_from, "an idle dashboard drew");
    repo.write("app.py", "def main():\n    return 42\n");
    let pane = tmux.wait_for("the edit in Pending with its age", |pane| {
        pane.lines().any(|line| {
            let fields: Vec<&str> = line
                .trim_matches(|c| c == '│' || c == ' ')
                .split_whitespace()
                .collect();
            // `3s ~ app.py  waiting 1s`: its age, its change, its path.
            fields.len() >= 3
                && fields[1] == "~"
                && fields[2] == "app.py"
                && fields[0].ends_with('s')
                && fields[0].starts_with(|c: char| c.is_ascii_digit())
        })
    });
    assert!(pane.contains("Pending · 1"), "{pane}");
    tmux.wait_for("the edit re-indexed", |pane| {
        pane.contains("index in sync") && pane.contains("synced +0 ~1 -0")
    });
    quit_and_check_terminal(&tmux);
}

/// Whether the pane shows `file` waiting with a countdown in whole seconds.
fn shows_countdown(pane: &str, file: &str) -> bool {
    pane.lines().any(|line| {
        line.contains(file)
            && line.split("waiting ").nth(1).is_some_and(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                !digits.is_empty() && rest[digits.len()..].starts_with('s')
            })
    })
}

#[test]
fn a_follower_dashboard_shows_the_writers_countdown_and_asks_it_to_sync() {
    let repo = small_repo();
    let home = tempfile::tempdir().expect("temp home");
    // A long window: the edit waits until the follower asks for it.
    let mut watch = common::procs::command(&repo.root(), home.path(), &["watch"]);
    watch
        .env("CODELENS_WATCH_DEBOUNCE_MS", "60000")
        .stdout(std::process::Stdio::null());
    let mut writer = common::procs::Proc::spawn(watch, "watch");
    common::procs::wait_for_engine(&repo.root(), &mut writer);
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("the follower dashboard in sync", |pane| {
        pane.contains("follower") && pane.contains("index in sync")
    });
    repo.write("app.py", "def main():\n    return 42\n");
    // The writer's window, with its countdown, in the follower's Pending and Debounce.
    let pane = tmux.wait_for("the writer's countdown in the follower", |pane| {
        shows_countdown(pane, "app.py") && pane.contains("Debounce")
    });
    assert!(
        pane.lines()
            .any(|l| l.contains("./") && l.contains("1 file")),
        "the Debounce panel shows the writer's window:\n{pane}"
    );
    tmux.keys(&["s"]);
    let pane = tmux.wait_for("the writer's sync, asked by the follower", |pane| {
        pane.contains("index in sync") && pane.contains("synced +0 ~1 -0")
    });
    assert!(
        pane.contains("asked the writer engine"),
        "the follower says what it did:\n{pane}"
    );
    // A rescan's result is emitted after the writer published its set: it still
    // reaches the follower (published with the next write, not left for the next edit).
    tmux.keys(&["r"]);
    tmux.wait_for(
        "the writer's rescan result, asked by the follower",
        |pane| pane.contains("rescan: 0 changes found"),
    );
    assert!(writer.running(), "{}", writer.stderr());
    quit_and_check_terminal(&tmux);
}

#[test]
fn enter_opens_the_selected_file_in_the_editor_and_the_dashboard_comes_back() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    // An "editor" that records what it was asked to open, and exits.
    let opened = tmux.codelens_home().join("opened.txt");
    let editor = tmux.codelens_home().join("editor.sh");
    std::fs::write(
        &editor,
        // Written aside then renamed: the test never reads a half-written file.
        format!(
            "#!/bin/sh\necho \"$@\" > {0}.part && mv {0}.part {0}\n",
            opened.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    edit_waiting_under(
        &tmux,
        &repo,
        &format!("VISUAL='{} --wait'", editor.display()),
    );
    tmux.keys(&["Enter"]);
    let deadline = Instant::now() + DEADLINE;
    while !opened.exists() {
        assert!(
            Instant::now() < deadline,
            "the editor never ran:\n{}",
            tmux.pane()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = std::fs::read_to_string(&opened).unwrap();
    assert_eq!(
        args.trim(),
        format!("--wait {}", repo.root().join("app.py").display())
    );
    // Back from the editor: the dashboard again, and its keys still work.
    tmux.wait_for("the dashboard back", |pane| {
        pane.contains("~ app.py") && pane.contains("q quit")
    });
    assert_eq!(
        tmux.modes(),
        "1 0 1",
        "alternate screen, hidden cursor, mouse"
    );
    quit_and_check_terminal(&tmux);
}

#[test]
fn an_editor_that_fails_leaves_the_dashboard_working() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    // Not there: the shell running it exits 127.
    edit_waiting_under(&tmux, &repo, "EDITOR=/nonexistent/ed");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the failure logged, the dashboard back", |pane| {
        pane.contains("error: /nonexistent/ed") && pane.contains("~ app.py")
    });
    assert_eq!(
        tmux.modes(),
        "1 0 1",
        "alternate screen, hidden cursor, mouse"
    );
    // Its keys still work.
    tmux.keys(&["?"]);
    tmux.wait_for("help", |pane| pane.contains("full rescan: compare"));
    tmux.keys(&["Escape"]);
    quit_and_check_terminal(&tmux);
}

#[test]
fn ctrl_c_in_the_editor_is_the_editors_not_the_dashboards() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    // An "editor" that waits in the cooked terminal, as `ed` or a pager would.
    let started = tmux.codelens_home().join("started");
    let editor = tmux.codelens_home().join("slow-editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\ntouch {}\nsleep 600\n", started.display()),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    edit_waiting_under(&tmux, &repo, &format!("EDITOR={}", editor.display()));
    tmux.keys(&["Enter"]);
    let deadline = Instant::now() + DEADLINE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the editor never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.keys(&["C-c"]);
    // The editor is interrupted; the dashboard comes back and says so.
    tmux.wait_for("the dashboard back after the editor's interrupt", |pane| {
        pane.contains("error: ") && pane.contains("~ app.py")
    });
    quit_and_check_terminal(&tmux);
}

/// The dashboard started with `env`, then `app.py` edited and listed in Pending (a long
/// window: the edit stays in the list while the test selects it).
fn edit_waiting_under(tmux: &Tmux, repo: &TestRepo, env: &str) {
    tmux.type_line(&format!("CODELENS_WATCH_DEBOUNCE_MS=60000 {env} {BIN} tui"));
    tmux.wait_for("the dashboard in sync", |pane| {
        pane.contains("index in sync")
    });
    repo.write("app.py", "def main():\n    return 7\n");
    tmux.wait_for("the edit in Pending", |pane| pane.contains("~ app.py"));
}

#[test]
fn a_burst_of_new_files_is_drawn_at_most_ten_frames_a_second() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("the dashboard in sync", |pane| {
        pane.contains("index in sync")
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = tmux.draws();
    let started = Instant::now();
    for i in 0..500 {
        repo.write(&format!("burst/f{i:03}.py"), "x = 1\n");
    }
    tmux.wait_for("the burst indexed", |pane| {
        pane.contains("index in sync") && pane.contains("synced")
    });
    // Frames are counted, not timed: the cap allows ten per second that passed (and
    // one either side of the window).
    let allowed = 10 * started.elapsed().as_secs().saturating_add(1) + 2;
    let drawn = tmux.draws() - before;
    assert!(
        drawn <= allowed,
        "{drawn} frames, at most {allowed} allowed"
    );
    assert!(drawn > 0, "the burst was drawn");
    quit_and_check_terminal(&tmux);
}

#[test]
fn telemetry_consent_from_the_dashboard_is_what_the_cli_reports() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("telemetry off by default", |pane| {
        pane.contains("off (default)")
    });
    // Any key but `y` cancels.
    tmux.keys(&["t"]);
    tmux.wait_for("the consent question", |pane| {
        pane.contains("Turn on anonymous telemetry?")
    });
    tmux.keys(&["n"]);
    tmux.wait_for("the question gone", |pane| {
        !pane.contains("Turn on anonymous telemetry?")
    });
    assert!(!tmux.codelens_home().join("machine_id").exists());
    tmux.keys(&["t"]);
    tmux.wait_for("the consent question", |pane| {
        pane.contains("Turn on anonymous telemetry?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("telemetry on", |pane| pane.contains("on (your choice)"));
    let status = Command::new(BIN)
        .args(["telemetry", "status"])
        .current_dir(repo.root())
        .env("CODELENS_HOME", tmux.codelens_home())
        .env_remove("CI")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("DO_NOT_TRACK")
        .env_remove("CODELENS_TELEMETRY")
        .output()
        .expect("codelens telemetry status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("on") && l.contains("codelens telemetry on")),
        "the CLI disagrees with the dashboard:\n{text}"
    );
    quit_and_check_terminal(&tmux);
}

#[test]
fn a_nested_worktree_shows_the_warning() {
    let repo = small_repo();
    git_in(
        &repo.root(),
        &["worktree", "add", "-q", "wt", "-b", "feature"],
    );
    let tmux = Tmux::start(&repo.path("wt"));
    tmux.type_line(&format!("{BIN} tui"));
    let pane = tmux.wait_for("the worktree warning", |pane| pane.contains("wrong index"));
    assert!(pane.contains("codelens init -i"), "{pane}");
    // `w` offers the fix, `y` runs it, and the dashboard moves to the new index.
    tmux.keys(&["w"]);
    tmux.wait_for("the fix offered", |pane| {
        pane.contains("Build this worktree its own index?")
    });
    assert!(!repo.path("wt/.codelens/index.db").exists());
    tmux.keys(&["y"]);
    let pane = tmux.wait_for("the dashboard on the worktree's own index", |pane| {
        !pane.contains("wrong index") && pane.contains("index in sync") && pane.contains("feature")
    });
    assert!(repo.path("wt/.codelens/index.db").is_file(), "{pane}");
    let status = common::codelens_in(&repo.path("wt"), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(status["worktree_mismatch"], serde_json::Value::Null);
    quit_and_check_terminal(&tmux);
}

#[test]
fn a_project_without_an_index_is_offered_one() {
    let repo = TestRepo::new();
    repo.write("main.go", "package main\n\nfunc main() {}\n");
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("the offer to build an index", |pane| {
        pane.contains("No codelens index covers")
    });
    assert!(
        !repo.db_path().exists(),
        "nothing is built before the user says so"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("the dashboard on the new index", |pane| {
        pane.contains("1 file ·") && pane.contains("index in sync")
    });
    assert!(repo.db_path().is_file());
    quit_and_check_terminal(&tmux);
}

#[test]
fn sigterm_with_an_overlay_open_restores_the_terminal() {
    let repo = small_repo();
    let tmux = Tmux::start(&repo.root());
    tmux.type_line(&format!("{BIN} tui"));
    tmux.wait_for("the dashboard", |pane| pane.contains("index in sync"));
    tmux.keys(&["?"]);
    tmux.wait_for("the help overlay", |pane| pane.contains("this help"));
    assert_eq!(
        tmux.modes(),
        "1 0 1",
        "the dashboard's own modes while it runs"
    );
    let pid = tmux.dashboard_pid();
    // SAFETY: kill(2) on a pid this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    check_terminal_restored(&tmux);
}

#[test]
fn without_a_terminal_it_says_so() {
    let repo = small_repo();
    let out = common::codelens_in(&repo.root(), &["tui"]);
    let message = common::assert_one_line_error(&out, 1);
    assert!(
        message.starts_with("codelens: the dashboard (`tui`) needs a terminal"),
        "{message}"
    );
    assert!(!message.contains("codelens: codelens"), "{message}");
}
