//! Containment: nothing outside the project is ever indexed, read or served — not
//! through a tracked directory that a checkout turns into a symlink, not through a
//! directory swapped for one under a running engine, not in a race.
//!
//! Real repositories, real symlinks, a real `git checkout`, the real binary, a real MCP
//! client over stdio. The outside files carry canaries; no answer, no pending entry and
//! no index row may ever hold one.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::mcp_client::Client;
use common::*;
use serde_json::{Value, json};

/// In the outside "SSH key": never in an answer.
const KEY_CANARY: &str = "BEGIN OPENSSH PRIVATE KEY zq-canary";
/// In the body of the outside Python file's function.
const BODY_CANARY: &str = "stolen-secret-body";
/// The outside function's name: never a symbol of the index.
const OUTSIDE_FN: &str = "zq_exfil_fn";
/// The outside files' names.
const OUTSIDE_NAMES: [&str; 2] = ["id_ed25519", "config.py"];

/// A repository with a tracked `docs/` and `sub/`, beside an `outside/` directory (an
/// `~/.ssh` stand-in) that is not part of it; branch `evil` has `docs` as a symlink to
/// it. `main` is checked out and indexed.
struct Scenario {
    repo: TestRepo,
    outside: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Scenario {
        let outside = tempfile::tempdir().unwrap();
        let outside_dir = outside.path().canonicalize().unwrap();
        std::fs::write(
            outside_dir.join("id_ed25519"),
            format!("-----{KEY_CANARY}-----\nAAAA\n"),
        )
        .unwrap();
        std::fs::write(
            outside_dir.join("config.py"),
            format!("def {OUTSIDE_FN}():\n    return '{BODY_CANARY}'\n\ndef sub_fn():\n    return '{BODY_CANARY}'\n"),
        )
        .unwrap();
        std::fs::write(
            outside_dir.join("secret.py"),
            format!("def sub_fn():\n    return '{BODY_CANARY}'\n"),
        )
        .unwrap();
        let repo = TestRepo::new();
        repo.write("docs/readme.md", "# docs\n");
        repo.write("src/lib.py", "def inside_fn():\n    return 'inside'\n");
        repo.write(
            "sub/secret.py",
            "def sub_fn():\n    return 'inside-original'\n",
        );
        repo.commit_all("main");
        repo.git(&["checkout", "-q", "-b", "evil"]);
        repo.git(&["rm", "-q", "-r", "docs"]);
        std::os::unix::fs::symlink(&outside_dir, repo.path("docs")).unwrap();
        repo.commit_all("docs is a symlink now");
        repo.git(&["checkout", "-q", "main"]);
        assert!(repo.path("docs").is_dir() && !repo.path("docs").is_symlink());
        repo.ok(&["init", "-q"]);
        Scenario { repo, outside }
    }

    fn outside_dir(&self) -> PathBuf {
        self.outside.path().canonicalize().unwrap()
    }

    /// Panics if `text` holds any outside byte or name (`what` says where it came from).
    fn assert_clean(&self, what: &str, text: &str) {
        let outside = self.outside_dir();
        let outside = outside.to_string_lossy();
        for canary in [KEY_CANARY, BODY_CANARY, OUTSIDE_FN, "id_ed25519", &outside] {
            assert!(
                !text.contains(canary),
                "{what} leaked {canary:?} from outside the project:\n{text}"
            );
        }
        assert!(
            !text.contains("docs/config.py"),
            "{what} leaked docs/config.py:\n{text}"
        );
    }

    /// No index row names or holds an outside file.
    fn assert_index_clean(&self) {
        let index = oracle::read_index(&self.repo.root());
        for path in index.rows.keys().chain(index.pending.keys()) {
            let path = String::from_utf8_lossy(path);
            for name in OUTSIDE_NAMES {
                assert!(
                    !path.ends_with(&format!("docs/{name}")),
                    "the index holds {path}, a file outside the project"
                );
            }
        }
    }

    /// No row under `docs/` once the engine settled.
    fn index_has_nothing_under_docs(&self) -> bool {
        let index = oracle::read_index(&self.repo.root());
        !index.rows.keys().any(|p| p.starts_with(b"docs/"))
    }
}

/// Every read tool, with queries that do not themselves contain a canary (answers echo
/// their query).
fn poll_every_tool(scenario: &Scenario, client: &mut Client, round: usize) {
    let calls = [
        (
            "search_text",
            json!({"pattern": "PRIV[A]TE|stolen-sec[r]et"}),
        ),
        ("find_files", json!({"pattern": "docs"})),
        ("find_files", json!({"pattern": "**/id_*"})),
        (
            "search_symbols",
            json!({"query": "exfil", "mode": "substring"}),
        ),
        ("search_symbols", json!({"query": "sub_fn"})),
        ("symbol_definition", json!({"name": "sub_fn"})),
        ("file_outline", json!({"path": "sub/secret.py"})),
        ("file_outline", json!({"path": "src/lib.py"})),
        ("index_status", json!({})),
    ];
    for (tool, args) in calls {
        let answer = client.request("tools/call", json!({"name": tool, "arguments": args}));
        scenario.assert_clean(
            &format!("round {round}: {tool} {args}"),
            &answer.to_string(),
        );
    }
}

/// Polls every tool (and the index) for 5 s after `act`, then until the engine has
/// dropped `docs/`'s rows.
fn poll_after(scenario: &Scenario, client: &mut Client, act: impl FnOnce()) {
    act();
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(5) {
        poll_every_tool(scenario, client, round);
        scenario.assert_index_clean();
        round += 1;
    }
    let until = Instant::now() + Duration::from_secs(30);
    while !scenario.index_has_nothing_under_docs() {
        assert!(Instant::now() < until, "docs/ rows never went");
        std::thread::sleep(Duration::from_millis(100));
    }
    poll_every_tool(scenario, client, round);
    client.assert_stdout_is_protocol_only();
}

#[test]
fn a_checkout_that_turns_docs_into_a_symlink_leaks_nothing_to_mcp_with_the_watcher() {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    let mut client = Client::start(&root, &[("CODELENS_WATCH_DEBOUNCE_MS", "200")]);
    // A read waits for the engine's catch-up; the watcher is armed by then.
    client.call("search_symbols", json!({"query": "inside_fn"}));
    let ready = client.call("index_status", json!({}));
    assert_eq!(
        ready["structuredContent"]["watcher"]["mode"], "native",
        "{ready}"
    );
    poll_after(&scenario, &mut client, || {
        scenario.repo.git(&["checkout", "-q", "evil"]);
    });
    // The inside files are still served.
    let inside = client.call("search_symbols", json!({"query": "inside_fn"}));
    assert_eq!(inside["structuredContent"]["total"], 1, "{inside}");
}

#[test]
fn a_checkout_that_turns_docs_into_a_symlink_leaks_nothing_with_the_watcher_off() {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    // The checkout lands before the engine starts: its catch-up (which the first query
    // waits for) meets the symlink. With no watcher, nothing else would.
    scenario.repo.git(&["checkout", "-q", "evil"]);
    let mut client = Client::start(&root, &[("CODELENS_NO_WATCH", "1")]);
    poll_after(&scenario, &mut client, || {});
}

#[test]
fn a_checkout_that_turns_docs_into_a_symlink_leaks_nothing_to_watch_and_status() {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    let home = tempfile::tempdir().unwrap();
    let mut watch = procs::start_watch(&root, home.path());
    scenario.repo.git(&["checkout", "-q", "evil"]);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) || !scenario.index_has_nothing_under_docs() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "docs/ rows never went"
        );
        let status = scenario.repo.ok(&["status", "--json"]);
        scenario.assert_clean("status --json", &status);
        scenario.assert_index_clean();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(watch.running(), "{}", watch.stderr());
    scenario.assert_clean("codelens watch's log", &watch.stderr());
}

#[test]
fn a_checkout_that_turns_docs_into_a_symlink_leaks_nothing_to_sync() {
    let scenario = Scenario::new();
    scenario.repo.git(&["checkout", "-q", "evil"]);
    let status = scenario.repo.ok(&["status", "--json"]);
    scenario.assert_clean("status --json before sync", &status);
    let synced = scenario.repo.sync_json();
    assert_eq!(synced["removed"], 1, "docs/readme.md goes: {synced}");
    assert_eq!(synced["added"], 0, "{synced}");
    scenario.assert_index_clean();
    assert!(scenario.index_has_nothing_under_docs());
    let status = scenario.repo.ok(&["status", "--json"]);
    scenario.assert_clean("status --json after sync", &status);
    // A fresh `init` on the evil branch does not follow it either.
    scenario.repo.ok(&["init", "-q"]);
    scenario.assert_index_clean();
    oracle::assert_agrees(&scenario.repo.root());
}

/// `mv sub sub.bak; ln -s outside sub` under a running engine: every read tool serves
/// nothing from outside, with the watcher on and off.
fn a_directory_swapped_for_a_symlink(env: &[(&str, &str)]) {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    let mut client = Client::start(&root, env);
    let before = client.call("symbol_definition", json!({"name": "sub_fn"}));
    assert!(
        Client::text(&before).contains("inside-original"),
        "{before}"
    );
    let swap = || {
        std::fs::rename(root.join("sub"), root.join("sub.bak")).unwrap();
        std::os::unix::fs::symlink(scenario.outside_dir(), root.join("sub")).unwrap();
    };
    let started = Instant::now();
    swap();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(4) {
        poll_every_tool(&scenario, &mut client, round);
        let outline = client.call("file_outline", json!({"path": "sub/secret.py"}));
        assert!(
            outline["structuredContent"]["items"]
                .as_array()
                .is_none_or(|items| items.is_empty()),
            "{outline}"
        );
        round += 1;
    }
    scenario.assert_index_clean();
}

#[test]
fn a_directory_swapped_for_a_symlink_serves_nothing_from_outside_with_the_watcher() {
    a_directory_swapped_for_a_symlink(&[("CODELENS_WATCH_DEBOUNCE_MS", "1000")]);
}

#[test]
fn a_directory_swapped_for_a_symlink_serves_nothing_from_outside_with_the_watcher_off() {
    a_directory_swapped_for_a_symlink(&[("CODELENS_NO_WATCH", "1")]);
}

#[test]
fn a_directory_swapped_under_codelens_watch_loses_its_rows() {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    let home = tempfile::tempdir().unwrap();
    let _watch = procs::start_watch(&root, home.path());
    std::fs::rename(root.join("sub"), root.join("sub.bak")).unwrap();
    std::os::unix::fs::symlink(scenario.outside_dir(), root.join("sub")).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let index = oracle::read_index(&root);
        scenario.assert_index_clean();
        if !index.rows.contains_key(&b"sub/secret.py"[..])
            && index.rows.contains_key(&b"sub.bak/secret.py"[..])
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the stale sub/secret.py row was never dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every kind of symlink, at every depth, through `sync` and `status`: the index is
/// what git says the tree is (git does not follow symlinked directories either).
#[test]
fn symlinks_of_every_kind_are_never_followed() {
    let scenario = Scenario::new();
    let repo = &scenario.repo;
    let root = repo.root();
    repo.write("a/b/c/deep.py", "def deep():\n    pass\n");
    repo.write("hard/original.py", "def hard():\n    pass\n");
    repo.ok(&["sync", "-q"]);
    // A parent swapped at each depth, one after the other.
    for swapped in ["a", "a/b", "a/b/c"] {
        let real = root.join(swapped);
        let aside = root.join("aside");
        std::fs::rename(&real, &aside).unwrap();
        std::os::unix::fs::symlink(scenario.outside_dir(), &real).unwrap();
        let status = repo.ok(&["status", "--json"]);
        scenario.assert_clean(&format!("status with {swapped} swapped"), &status);
        repo.ok(&["sync", "-q"]);
        scenario.assert_index_clean();
        oracle::assert_agrees(&root);
        std::fs::remove_file(&real).unwrap();
        std::fs::rename(&aside, &real).unwrap();
        repo.ok(&["sync", "-q"]);
        oracle::assert_agrees(&root);
    }
    std::os::unix::fs::symlink("/", root.join("slash")).unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    std::os::unix::fs::symlink("later", root.join("dangling")).unwrap();
    std::fs::hard_link(root.join("hard/original.py"), root.join("hard/linked.py")).unwrap();
    let synced = repo.sync_json();
    assert_eq!(
        synced["added"], 1,
        "only the hard link is a new file: {synced}"
    );
    oracle::assert_agrees(&root);
    // The dangling link's target appears: the link is still not followed.
    std::fs::create_dir(root.join("later")).unwrap();
    std::fs::write(root.join("later/x.py"), "def later():\n    pass\n").unwrap();
    repo.ok(&["sync", "-q"]);
    oracle::assert_agrees(&root);
    let index = oracle::read_index(&root);
    assert!(index.rows.contains_key(&b"hard/linked.py"[..]));
    assert!(index.rows.contains_key(&b"later/x.py"[..]));
    for path in index.rows.keys() {
        for link in [&b"slash/"[..], b"loop/", b"dangling/"] {
            assert!(!path.starts_with(link), "{}", String::from_utf8_lossy(path));
        }
    }
}

/// 1,000 swaps of a directory for a symlink and back while `search_text` and
/// `symbol_definition` run in a tight loop on a file under it: never a byte from outside.
#[test]
fn a_thousand_swaps_racing_reads_never_serve_an_outside_byte() {
    let scenario = Scenario::new();
    let root = scenario.repo.root();
    let mut client = Client::start(&root, &[("CODELENS_WATCH_DEBOUNCE_MS", "60000")]);
    client.call("index_status", json!({}));
    let swapper = {
        let (root, outside) = (root.clone(), scenario.outside_dir());
        std::thread::spawn(move || {
            for _ in 0..1000 {
                swap_once(&root, &outside);
                // A breath between cycles, so that the reads interleave with every phase
                // of the swap instead of racing one burst.
                std::thread::sleep(Duration::from_millis(2));
            }
            1000
        })
    };
    let mut queries = 0;
    while !swapper.is_finished() || queries < 30 {
        for (tool, args) in [
            (
                "search_text",
                json!({"pattern": "return '", "path_glob": "sub/*"}),
            ),
            ("symbol_definition", json!({"name": "sub_fn"})),
            ("file_outline", json!({"path": "sub/secret.py"})),
        ] {
            let answer = client.request("tools/call", json!({"name": tool, "arguments": args}));
            scenario.assert_clean(&format!("{tool} mid-swap"), &answer.to_string());
            queries += 1;
        }
    }
    let cycles = swapper.join().unwrap();
    assert!(
        cycles == 1000 && queries >= 30,
        "{cycles} swaps, {queries} queries"
    );
    scenario.assert_index_clean();
}

fn swap_once(root: &Path, outside: &Path) {
    std::fs::rename(root.join("sub"), root.join("sub.bak")).unwrap();
    std::os::unix::fs::symlink(outside, root.join("sub")).unwrap();
    std::fs::remove_file(root.join("sub")).unwrap();
    std::fs::rename(root.join("sub.bak"), root.join("sub")).unwrap();
}

#[test]
fn index_status_carries_no_machine_id_and_no_home_path() {
    let repo = indexed_sources_repo();
    let home = tempfile::tempdir().unwrap();
    let home_str = home
        .path()
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Telemetry on, explicitly (CI turns it off otherwise); payloads go to stderr, never
    // to a network.
    let env = [
        ("CODELENS_HOME", home_str.as_str()),
        ("CODELENS_TELEMETRY", "1"),
        ("CODELENS_TELEMETRY_DEBUG", "1"),
    ];
    let user = |args: &[&str]| {
        let mut command = codelens_command(&repo.root(), args);
        command.envs(env);
        let out = command.output().unwrap();
        assert_success(&out, args);
        out.stdout
    };
    user(&["telemetry", "on"]);
    let mut client = Client::start(&repo.root(), &env);
    client.call("search_symbols", json!({"query": "Store"}));
    let status = client.call("index_status", json!({}));
    let telemetry = &status["structuredContent"]["telemetry"];
    assert_eq!(telemetry["enabled"], true, "{status}");
    assert!(telemetry["decided_by"].is_string(), "{status}");
    assert!(telemetry.get("machine_id").is_none(), "{status}");
    assert!(telemetry.get("buffer_path").is_none(), "{status}");
    let text = status.to_string();
    assert!(
        !text.contains(&home_str),
        "index_status names the home dir: {text}"
    );
    // The id the user's own `status --json` shows is nowhere in the agent's answer.
    let user_view: Value = serde_json::from_slice(&user(&["status", "--json"])).unwrap();
    let id = user_view["telemetry"]["machine_id"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !id.is_empty(),
        "the user's own status keeps the id: {user_view}"
    );
    assert!(
        !text.contains(id),
        "index_status leaks the machine id: {text}"
    );
}

#[test]
fn a_path_that_never_existed_is_said_to_be_so() {
    let repo = indexed_sources_repo();
    let mut client = Client::start(&repo.root(), &[]);
    for tool in ["file_outline", "symbol_definition"] {
        let args = if tool == "file_outline" {
            json!({"path": "src/never.py"})
        } else {
            json!({"name": "Store", "path": "src/never.py"})
        };
        let answer = client.call(tool, args);
        let text = Client::text(&answer);
        assert_eq!(answer["isError"], true, "{answer}");
        assert!(text.contains("does not exist"), "{tool}: {text}");
        assert!(!text.contains("deleted"), "{tool}: {text}");
    }
    // `src/./store.rs` is `src/store.rs`, in every tool.
    let plain = client.call("file_outline", json!({"path": "src/store.rs"}));
    let dotted = client.call("file_outline", json!({"path": "src/./store.rs"}));
    assert_eq!(plain["structuredContent"], dotted["structuredContent"]);
    let defined = client.call(
        "symbol_definition",
        json!({"name": "Store", "path": "src/./store.rs"}),
    );
    assert!(
        defined["structuredContent"]["total"].as_u64() >= Some(1),
        "{defined}"
    );
}
