//! Shared helpers for the integration tests: real temp git repositories and the real
//! `codelens` binary.
#![allow(dead_code)]

pub mod mcp_client;
pub mod oracle;
pub mod procs;
pub mod rng;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_codelens");

/// The values of `CODELENS_WATCH_STRATEGY`: every watcher scenario runs under each
/// (see [`under_both_strategies!`](crate::under_both_strategies)).
pub const WATCH_STRATEGIES: [&str; 2] = ["per-directory", "recursive"];

/// Turns each scenario `fn NAME(strategy: &str)` of the calling module into two tests,
/// `NAME::per_directory` and `NAME::recursive`, so that every watcher scenario runs
/// under both watch strategies without being written twice.
#[macro_export]
macro_rules! under_both_strategies {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn per_directory() {
                super::$scenario($crate::common::WATCH_STRATEGIES[0])
            }

            #[test]
            fn recursive() {
                super::$scenario($crate::common::WATCH_STRATEGIES[1])
            }
        }
    )*};
}

/// Waits, at most a generous minute (tests never assert a duration), until `engine`
/// publishes a snapshot that is `ready`, and returns it; panics naming `what`, with the
/// last snapshot, otherwise.
pub fn wait(
    engine: &codelens::engine::Engine,
    what: &str,
    ready: impl Fn(&codelens::engine::Snapshot) -> bool,
) -> std::sync::Arc<codelens::engine::Snapshot> {
    engine
        .wait_until(std::time::Duration::from_secs(60), ready)
        .unwrap_or_else(|| {
            panic!(
                "engine never reached: {what}; last: {:?}",
                engine.snapshot()
            )
        })
}

/// The real `codelens-ingest`: a binary of the workspace's `codelens-ingest` crate, built
/// beside `codelens` by `cargo test` at the workspace root (a default member). Cargo
/// names only a package's own binaries to its tests, hence the sibling path.
pub fn ingest_bin() -> PathBuf {
    let bin =
        Path::new(BIN).with_file_name(format!("codelens-ingest{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests from the workspace root (`cargo test`), which builds it",
        bin.display()
    );
    bin
}

/// A temp directory holding a git repository at `root()`.
pub struct TestRepo {
    dir: TempDir,
}

impl TestRepo {
    /// An empty git repository with an identity configured for commits.
    pub fn new() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("codelens-test-")
            .tempdir()
            .expect("temp dir");
        let repo = TestRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "codelens test"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().expect("canonical temp dir")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        self.write_bytes(relative, content.as_bytes());
    }

    pub fn write_bytes(&self, relative: &str, content: &[u8]) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.path(relative)).unwrap();
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.root(), args)
    }

    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Runs `codelens ARGS` with the repository root as the working directory.
    pub fn codelens(&self, args: &[&str]) -> Output {
        codelens_in(&self.root(), args)
    }

    /// `codelens ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.codelens(args);
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    pub fn status_json(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json is JSON")
    }

    pub fn sync_json(&self) -> Value {
        serde_json::from_str(&self.ok(&["sync", "--json"])).expect("sync --json is JSON")
    }

    pub fn db_path(&self) -> PathBuf {
        self.path(".codelens/index.db")
    }
}

/// A repository with one Rust, one TypeScript and one Python source, committed and
/// indexed.
pub fn indexed_sources_repo() -> TestRepo {
    indexed_sources_repo_with(&[])
}

/// [`indexed_sources_repo`], with `extra` files (path, content) committed beside them.
pub fn indexed_sources_repo_with(extra: &[(&str, &str)]) -> TestRepo {
    let repo = TestRepo::new();
    for (path, content) in extra {
        repo.write(path, content);
    }
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.write("tools/indexer.py", PYTHON_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    repo
}

pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn codelens_in(dir: &Path, args: &[&str]) -> Output {
    codelens_command(dir, args).output().expect("codelens runs")
}

pub fn codelens_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("CODELENS_LOG");
    command
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "codelens {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the documented error shape: the exit code, and exactly one stderr line
/// starting `codelens: `.
pub fn assert_one_line_error(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(stderr.starts_with("codelens: "), "got: {stderr}");
    assert!(!stderr.contains("panicked"), "got: {stderr}");
    stderr
}

/// Paths in `status --json`'s pending list, as `change:path`, sorted.
pub fn pending_of(status: &Value) -> Vec<String> {
    let mut pending: Vec<String> = status["pending"]
        .as_array()
        .expect("pending is a list")
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p["change"].as_str().unwrap(),
                p["path"].as_str().unwrap()
            )
        })
        .collect();
    pending.sort();
    pending
}

/// Real-looking sources, one per language with symbols.
pub const RUST_SRC: &str = "pub struct Store {\n    path: String,\n}\n\nimpl Store {\n    pub fn open(path: &str) -> Store {\n        Store { path: path.to_string() }\n    }\n}\n";
pub const PYTHON_SRC: &str =
    "class Indexer:\n    def run(self):\n        return 1\n\n\ndef main():\n    Indexer().run()\n";
pub const TS_SRC: &str = "export interface Shape {\n  area(): number;\n}\n\nexport function render(shape: Shape): string {\n  return String(shape.area());\n}\n";
pub const GO_SRC: &str =
    "package server\n\ntype Server struct{}\n\nfunc (s *Server) Start() error {\n\treturn nil\n}\n";

/// Reads one HTTP/1.1 request with a content-length body from a test listener's
/// connection; returns the body (empty when the client hung up early).
pub fn read_http_request(stream: &mut std::net::TcpStream) -> String {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return String::new();
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}
