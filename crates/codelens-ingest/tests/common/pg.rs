//! A private PostgreSQL server for tests and benchmarks: `initdb` in a temporary
//! directory (as the `postgres` user when run as root: the server refuses to run as
//! root), started on a free port on 127.0.0.1, stopped when dropped. `./scripts/test`
//! starts one the same way for the whole run and exports its URL in
//! [`URL_VAR`]; tests use that, the benchmark starts its own when it is unset.
#![allow(dead_code)] // each test binary uses its own part of this

use std::path::PathBuf;
use std::process::Command;

/// The URL of a running server whose `postgres` role may create databases.
pub const URL_VAR: &str = "CODELENS_TEST_POSTGRES_URL";
/// Set by `./scripts/test`: PostgreSQL tests must run (a missing URL is a failure).
pub const REQUIRED_VAR: &str = "CODELENS_TEST_REQUIRE_POSTGRES";

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`'s.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgCluster {
    pub fn start() -> Result<PgCluster, String> {
        let bin = bin_dir().ok_or("no PostgreSQL under /usr/lib/postgresql/*/bin")?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("codelens-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let cluster = PgCluster {
            port: free_port(),
            bin,
            as_postgres,
            dir,
        };
        let data = cluster.data();
        run(cluster
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data))?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            cluster.port,
            cluster.dir.path().display()
        );
        run(cluster
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(cluster.dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "start"]))?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tool` as the data directory's owner, run from inside the cluster's directory: as
    /// root, the `postgres` user may not be allowed into the caller's working directory
    /// (a checkout under /root, say).
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path());
        command
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&data)
            .arg("stop")
            .output();
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A database of its own for one test, on the server at `base` (a URL ending in a
/// database name): created now, so tests running side by side never meet.
pub fn fresh_database(base: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "codelens_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
    });
    let (server, _) = base.rsplit_once('/').expect("a URL ending in /DATABASE");
    format!("{server}/{name}")
}

/// The server the tests use: [`URL_VAR`]'s. Unset, PostgreSQL tests are skipped with a
/// loud line on stderr — unless [`REQUIRED_VAR`] is set (as `./scripts/test` does), when
/// that is a failure.
pub fn test_server() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os(REQUIRED_VAR).is_some() => {
            panic!("{REQUIRED_VAR} is set but {URL_VAR} is not: no PostgreSQL to test against")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: the PostgreSQL half of this test ({URL_VAR} is unset; \
                 ./scripts/test starts a server and sets it) ***\n"
            );
            None
        }
    }
}
