//! `codelens install` / `uninstall` on a temporary HOME and a temporary git project: the
//! real binary edits real agent config files, and every entry it writes is started and
//! spoken to over MCP.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::mcp_client::Client;
use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A temp HOME, a temp project (a git repository) and a PATH we control, so that
/// nothing of the machine running the tests (an installed `code`, a real
/// `~/.claude.json`) is seen or touched.
struct Setup {
    home: TempDir,
    empty_path: TempDir,
    repo: TestRepo,
}

impl Setup {
    fn new() -> Setup {
        let repo = TestRepo::new();
        repo.write("src/store.rs", RUST_SRC);
        repo.commit_all("initial");
        Setup {
            home: tempfile::tempdir().unwrap(),
            empty_path: tempfile::tempdir().unwrap(),
            repo,
        }
    }

    fn home(&self, relative: &str) -> PathBuf {
        self.home.path().join(relative)
    }

    fn project(&self, relative: &str) -> PathBuf {
        self.repo.path(relative)
    }

    /// `codelens ARGS` in the project, with PATH holding nothing but `path_dir`.
    fn run_with_path(&self, path_dir: &Path, args: &[&str]) -> Output {
        codelens_command(&self.repo.root(), args)
            .env("HOME", self.home.path())
            .env("PATH", path_dir)
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("codelens runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_path(self.empty_path.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn backup_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".codelens-backup");
    PathBuf::from(name)
}

/// Our entry as the agent would read it. JSONC files may hold comments and trailing
/// commas, so they are read with the same parser family the agents use for JSONC.
fn entry_in(path: &Path, container: &str) -> Option<Value> {
    let text = read(path);
    if path.extension().is_some_and(|e| e == "toml") {
        let doc: toml_edit::DocumentMut = text.parse().expect("valid TOML");
        let table = doc.get("mcp_servers")?.get("codelens")?.as_table_like()?;
        let mut entry = serde_json::Map::new();
        for (key, item) in table.iter() {
            let value = item.as_value().unwrap();
            let json = if let Some(s) = value.as_str() {
                json!(s)
            } else if let Some(array) = value.as_array() {
                json!(
                    array
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect::<Vec<_>>()
                )
            } else {
                json!(value.to_string().trim())
            };
            entry.insert(key.to_string(), json);
        }
        return Some(Value::Object(entry));
    }
    let value: Value =
        jsonc_parser::parse_to_serde_value(&text, &Default::default()).expect("valid JSONC");
    value.get(container)?.get("codelens").cloned()
}

/// Every agent's file and container, for one scope.
const JSON_AGENTS: &[(&str, &str, &str, &str)] = &[
    // agent, flag, file (in HOME for --user, in the project for --project), container
    ("claude", "--user", ".claude.json", "mcpServers"),
    ("claude", "--project", ".mcp.json", "mcpServers"),
    ("cursor", "--user", ".cursor/mcp.json", "mcpServers"),
    ("cursor", "--project", ".cursor/mcp.json", "mcpServers"),
    ("vscode", "--project", ".vscode/mcp.json", "servers"),
    ("vscode", "--user", ".config/Code/User/mcp.json", "servers"),
    ("gemini", "--user", ".gemini/settings.json", "mcpServers"),
    ("gemini", "--project", ".gemini/settings.json", "mcpServers"),
    ("opencode", "--project", "opencode.json", "mcp"),
    (
        "opencode",
        "--user",
        ".config/opencode/opencode.json",
        "mcp",
    ),
    (
        "windsurf",
        "--user",
        ".codeium/windsurf/mcp_config.json",
        "mcpServers",
    ),
];

fn file_for(setup: &Setup, flag: &str, relative: &str) -> PathBuf {
    if flag == "--user" {
        setup.home(relative)
    } else {
        setup.project(relative)
    }
}

/// A config with another server, comments and other settings, in `container`'s shape.
fn json_fixture(container: &str) -> String {
    let other = if container == "mcp" {
        r#"{ "type": "local", "command": ["npx", "-y", "docs-mcp"], "enabled": true }"#
    } else {
        r#"{
      "command": "npx", // pinned below
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": { "TOKEN": "${env:GH_TOKEN}" }
    }"#
    };
    format!(
        "{{\n  // Settings I care about.\n  \"theme\": \"dark\",\n  \"{container}\": {{\n    /* the one I use */\n    \"github\": {other}\n  }},\n  \"zeta\": [1, 2, 3],\n}}\n"
    )
}

const CODEX_FIXTURE: &str = r#"# My Codex settings
model = "gpt-5" # default model
approval_policy = "on-request"

# Docs lookups
[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"] # pinned

[profiles.fast]
model = "gpt-5-mini"
"#;

#[test]
fn json_configs_keep_every_other_byte_and_uninstall_restores_them() {
    for (agent, flag, relative, container) in JSON_AGENTS {
        let setup = Setup::new();
        let path = file_for(&setup, flag, relative);
        let original = json_fixture(container);
        write(&path, &original);

        let out = setup.ok(&["install", "--agent", agent, flag]);
        assert!(out.contains("added"), "{agent} {flag}: {out}");
        let installed = read(&path);
        for line in original.lines().filter(|l| !l.trim().starts_with('}')) {
            assert!(
                installed.contains(line),
                "{agent}: lost {line:?}:\n{installed}"
            );
        }
        assert!(entry_in(&path, container).is_some(), "{agent}: {installed}");
        let value: Value = jsonc_parser::parse_to_serde_value(&installed, &Default::default())
            .expect("still valid JSONC");
        assert!(
            value[container]["github"].is_object(),
            "{agent}: {installed}"
        );
        assert_eq!(read(&backup_of(&path)), original, "{agent}: backup first");

        // The only lines that differ are our entry's (and one comma before it).
        let diff = similar::TextDiff::from_lines(&original, &installed);
        let removed: Vec<_> = diff
            .iter_all_changes()
            .filter(|c| c.tag() == similar::ChangeTag::Delete)
            .collect();
        assert!(removed.len() <= 1, "{agent}: {removed:?}");

        setup.ok(&["uninstall", "--agent", agent]);
        assert_eq!(
            read(&path),
            original,
            "{agent} {flag}: uninstall restores it"
        );
    }
}

#[test]
fn codex_toml_keeps_comments_and_order() {
    let setup = Setup::new();
    let path = setup.home(".codex/config.toml");
    write(&path, CODEX_FIXTURE);
    setup.ok(&["install", "--agent", "codex"]);
    let installed = read(&path);
    for line in CODEX_FIXTURE.lines() {
        assert!(installed.contains(line), "lost {line:?}:\n{installed}");
    }
    assert!(
        installed.contains("[mcp_servers.codelens]\ncommand = "),
        "{installed}"
    );
    // Our table sits with the other servers; the profile after it is untouched.
    let ours = installed.find("[mcp_servers.codelens]").unwrap();
    assert!(installed.find("[mcp_servers.docs]").unwrap() < ours);
    assert!(ours < installed.find("[profiles.fast]").unwrap());
    assert_eq!(read(&backup_of(&path)), CODEX_FIXTURE);

    setup.ok(&["install", "--agent", "codex"]);
    assert_eq!(read(&path), installed, "a second install changes nothing");
    assert_eq!(read(&path).matches("[mcp_servers.codelens]").count(), 1);

    setup.ok(&["uninstall", "--agent", "codex"]);
    assert_eq!(read(&path), CODEX_FIXTURE);
}

#[test]
fn installing_twice_keeps_one_entry_and_an_old_entry_is_updated() {
    let setup = Setup::new();
    let path = setup.project(".mcp.json");
    write(
        &path,
        "{\n  \"mcpServers\": {\n    \"codelens\": {\n      \"command\": \"/old/codelens\",\n      \"args\": [\"--mcp\"],\n      \"env\": {\"CODELENS_LOG\": \"debug\"}\n    }\n  }\n}\n",
    );
    let out = setup.ok(&["install", "--agent", "claude", "--project"]);
    assert!(out.contains("updated"), "{out}");
    let once = read(&path);
    let out = setup.ok(&["install", "--agent", "claude", "--project"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(read(&path), once);
    assert_eq!(once.matches("\"codelens\"").count(), 1, "{once}");
    let entry = entry_in(&path, "mcpServers").unwrap();
    assert_eq!(entry["command"], BIN, "{once}");
    assert_eq!(
        entry["env"]["CODELENS_LOG"], "debug",
        "other members are kept"
    );
}

#[test]
fn a_malformed_config_is_reported_and_nothing_is_written() {
    let setup = Setup::new();
    let broken = setup.home(".cursor/mcp.json");
    let broken_text = "{\n  \"mcpServers\": {\n    \"github\": { \"command\": \"npx\" \n";
    write(&broken, broken_text);
    let gemini = setup.home(".gemini/settings.json");
    write(&gemini, "{}\n");

    let out = setup.run(&["install", "--agent", "gemini,cursor"]);
    let stderr = assert_one_line_error(&out, 1);
    assert!(stderr.contains(&broken.display().to_string()), "{stderr}");
    assert!(stderr.contains("left untouched"), "{stderr}");
    assert_eq!(read(&broken), broken_text);
    assert_eq!(
        read(&gemini),
        "{}\n",
        "the other agent's file is not written either"
    );
    assert!(!backup_of(&broken).exists() && !backup_of(&gemini).exists());

    let toml = setup.home(".codex/config.toml");
    write(&toml, "[mcp_servers\ncommand = 1\n");
    let out = setup.run(&["install", "--agent", "codex"]);
    let stderr = assert_one_line_error(&out, 1);
    assert!(
        stderr.contains("config.toml") && stderr.contains("not valid TOML"),
        "{stderr}"
    );
    assert_eq!(read(&toml), "[mcp_servers\ncommand = 1\n");

    let out = setup.run(&["uninstall", "--agent", "cursor"]);
    assert_one_line_error(&out, 1);
    assert_eq!(read(&broken), broken_text);
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let setup = Setup::new();
    let path = setup.project(".vscode/mcp.json");
    let original = json_fixture("servers");
    write(&path, &original);
    let out = setup.ok(&[
        "install",
        "--agent",
        "vscode,codex",
        "--project",
        "--dry-run",
        "--with-instructions",
    ]);
    assert!(out.contains(&format!("--- a{}", path.display())), "{out}");
    assert!(out.contains("+    \"codelens\": {"), "{out}");
    assert!(out.contains("+[mcp_servers.codelens]"), "{out}");
    assert!(out.contains("+<!-- codelens:begin"), "{out}");
    assert_eq!(read(&path), original);
    assert!(!setup.project(".codex").exists());
    assert!(!setup.project("AGENTS.md").exists());
    assert!(!backup_of(&path).exists());

    setup.ok(&["install", "--agent", "vscode", "--project"]);
    let installed = read(&path);
    let out = setup.ok(&["uninstall", "--dry-run"]);
    assert!(out.contains("-    \"codelens\": {"), "{out}");
    assert_eq!(read(&path), installed);
}

#[test]
fn usage_errors_and_no_agent_found() {
    let setup = Setup::new();
    let out = setup.run(&["install", "--agent", "emacs"]);
    let stderr = assert_one_line_error(&out, 2);
    assert!(
        stderr.contains("emacs") && stderr.contains("claude, cursor, vscode"),
        "{stderr}"
    );
    let out = setup.run(&["install", "--agent", "windsurf", "--project"]);
    assert_one_line_error(&out, 2);
    let out = setup.run(&["install", "--project", "--user"]);
    assert_eq!(out.status.code(), Some(2));

    let out = setup.run(&["install"]);
    let stderr = assert_one_line_error(&out, 1);
    assert!(stderr.contains("no agent found"), "{stderr}");
    for looked in [
        ".cursor",
        ".codex",
        ".gemini",
        ".codeium/windsurf",
        ".vscode",
    ] {
        assert!(stderr.contains(looked), "{looked}: {stderr}");
    }
    assert!(
        std::fs::read_dir(setup.home.path())
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn detected_agents_only_and_status_lists_them() {
    let setup = Setup::new();
    setup.repo.ok(&["init", "-q"]);
    std::fs::create_dir_all(setup.home(".codex")).unwrap();
    std::fs::create_dir_all(setup.project(".vscode")).unwrap();
    // An agent binary on PATH counts as installed too.
    let bin = tempfile::tempdir().unwrap();
    let gemini = bin.path().join("gemini");
    write(&gemini, "#!/bin/sh\n");
    set_executable(&gemini);

    let out = setup.run_with_path(bin.path(), &["install"]);
    assert_success(&out, &["install"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("codex     user"), "{stdout}");
    assert!(stdout.contains("gemini    user"), "{stdout}");
    assert!(stdout.contains("vscode    project"), "{stdout}");
    assert!(
        !stdout.contains("claude") && !stdout.contains("cursor"),
        "{stdout}"
    );

    let status: Value = serde_json::from_str(&setup.ok(&["status", "--json"])).unwrap();
    let mut agents: Vec<String> = status["agents"]
        .as_array()
        .expect("agents is a list")
        .iter()
        .map(|a| {
            format!(
                "{}:{}",
                a["agent"].as_str().unwrap(),
                a["scope"].as_str().unwrap()
            )
        })
        .collect();
    agents.sort();
    assert_eq!(agents, ["codex:user", "gemini:user", "vscode:project"]);
    let vscode = status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "vscode")
        .unwrap();
    assert_eq!(
        vscode["path"].as_str().unwrap(),
        setup.project(".vscode/mcp.json").to_str().unwrap()
    );
    let human = setup.ok(&["status"]);
    assert!(human.contains("agents     "), "{human}");
    assert!(human.contains("vscode (project)"), "{human}");

    setup.ok(&["uninstall"]);
    let status: Value = serde_json::from_str(&setup.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["agents"], json!([]));
    assert!(
        !setup.project(".vscode/mcp.json").exists(),
        "install made it, uninstall removes it"
    );
}

#[test]
fn the_memory_note_is_opt_in_added_once_and_removed() {
    let setup = Setup::new();
    let claude_md = setup.project("CLAUDE.md");
    write(&claude_md, "# Notes\n\nUse tabs.\n");

    setup.ok(&["install", "--agent", "claude", "--project"]);
    assert_eq!(
        read(&claude_md),
        "# Notes\n\nUse tabs.\n",
        "no TTY, no flag: no note"
    );

    for _ in 0..2 {
        setup.ok(&[
            "install",
            "--agent",
            "claude,codex",
            "--project",
            "--with-instructions",
        ]);
    }
    let noted = read(&claude_md);
    assert!(
        noted.starts_with("# Notes\n\nUse tabs.\n\n<!-- codelens:begin"),
        "{noted}"
    );
    assert_eq!(noted.matches("codelens:begin").count(), 1);
    assert!(noted.contains("staleness") || noted.contains("edited since the last index sync"));
    assert_eq!(
        read(&setup.project("AGENTS.md"))
            .matches("codelens:begin")
            .count(),
        1
    );

    setup.ok(&["uninstall", "--agent", "claude"]);
    assert_eq!(read(&claude_md), "# Notes\n\nUse tabs.\n");
    assert!(
        setup.project("AGENTS.md").exists(),
        "codex is still registered"
    );
    setup.ok(&["uninstall"]);
    assert!(
        !setup.project("AGENTS.md").exists(),
        "the note was all it held"
    );
}

#[cfg(unix)]
fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) {}

/// The command line an agent would run for our entry: opencode's single array, or
/// `command` + `args`, with the editors' `${workspaceFolder}` expanded as they do.
fn command_line(entry: &Value, project: &Path) -> Vec<String> {
    let parts: Vec<Value> = match &entry["command"] {
        Value::Array(all) => all.clone(),
        command => {
            let mut all = vec![command.clone()];
            all.extend(entry["args"].as_array().cloned().unwrap_or_default());
            all
        }
    };
    parts
        .iter()
        .map(|p| {
            p.as_str()
                .unwrap()
                .replace("${workspaceFolder}", project.to_str().unwrap())
        })
        .collect()
}

/// Starts `argv` the way an agent does (cwd: the project; PATH as given) and completes
/// an MCP `initialize`; returns the server's name.
fn initialize_through(argv: &[String], cwd: &Path, home: &Path, path: &Path) -> String {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(cwd)
        .env("HOME", home)
        .env("PATH", path)
        .env("CODELENS_NO_WATCH", "1");
    let mut client = Client::spawn(command, &format!("{argv:?}"));
    let answer = client.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "install-test", "version": "1"}}),
    );
    answer["result"]["serverInfo"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_written_entry_starts_the_server() {
    let setup = Setup::new();
    setup.repo.ok(&["init", "-q"]);
    let bin_dir = Path::new(BIN).parent().unwrap();
    let cases: Vec<(&str, &str, PathBuf, &str)> = JSON_AGENTS
        .iter()
        .map(|(agent, flag, relative, container)| {
            (*agent, *flag, file_for(&setup, flag, relative), *container)
        })
        .chain([("codex", "--user", setup.home(".codex/config.toml"), "")])
        .collect();
    // Once with the binary's directory on PATH (the entry says `codelens`), once
    // without (the entry holds the binary's absolute path).
    for (path_dir, expect_bare) in [(bin_dir, true), (setup.empty_path.path(), false)] {
        for (agent, flag, file, container) in &cases {
            let args = ["install", "--agent", agent, flag];
            let out = setup.run_with_path(path_dir, &args);
            assert_success(&out, &args);
            let entry = entry_in(file, container)
                .unwrap_or_else(|| panic!("{agent} {flag}: no entry in {}", file.display()));
            let argv = command_line(&entry, &setup.repo.root());
            assert_eq!(argv[0] == "codelens", expect_bare, "{agent}: {argv:?}");
            assert!(argv.contains(&"--mcp".to_string()), "{agent}: {argv:?}");
            // Run exactly what the agent would, PATH lookup included.
            let name = initialize_through(&argv, &setup.repo.root(), setup.home.path(), path_dir);
            assert_eq!(name, "codelens", "{agent} {flag}: {argv:?}");
        }
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn a_private_config_gets_a_private_backup_and_the_first_backup_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let path = setup.home(".claude.json");
    let original = "{\n  \"oauthAccount\": {\"token\": \"secret\"}\n}\n";
    write(&path, original);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    setup.ok(&["install", "--agent", "claude"]);
    let backup = backup_of(&path);
    assert_eq!(read(&backup), original);
    assert_eq!(
        mode(&backup),
        0o600,
        "the backup is as private as the original"
    );
    assert_eq!(mode(&path), 0o600, "the config stays private");

    // Edited since, reinstalled: the backup still holds the pre-codelens original.
    setup.ok(&["uninstall", "--agent", "claude"]);
    write(&path, "{\n  \"theme\": \"dark\"\n}\n");
    setup.ok(&["install", "--agent", "claude"]);
    assert_eq!(
        read(&backup),
        original,
        "a later install keeps the first backup"
    );
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(mode(&path), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(setup.home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("codelens-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A `~/.claude.json` as heavy users have it: tens of MB of per-project history.
fn huge_claude_json(registered: bool) -> String {
    let mut text = String::from("{\n");
    if registered {
        text.push_str(
            "  \"mcpServers\": {\"codelens\": {\"type\": \"stdio\", \"command\": \"codelens\", \"args\": [\"--mcp\"]}},\n",
        );
    }
    text.push_str("  \"projects\": {\n");
    let history = "x".repeat(1000);
    let mut i = 0;
    while text.len() < 20 * 1024 * 1024 {
        // "codelens" as a value and inside a path key: not our entry.
        text.push_str(&format!(
            "    \"/home/me/src/codelens{i}\": {{\"name\": \"codelens\", \"history\": \"{history}\"}},\n"
        ));
        i += 1;
    }
    text.push_str("    \"/last\": {}\n  }\n}\n");
    text
}

#[test]
fn status_stays_quick_with_a_huge_claude_json() {
    let setup = Setup::new();
    setup.repo.ok(&["init", "-q"]);
    let path = setup.home(".claude.json");
    for registered in [false, true] {
        write(&path, &huge_claude_json(registered));
        let started = std::time::Instant::now();
        let status: Value = serde_json::from_str(&setup.ok(&["status", "--json"])).unwrap();
        // Generous: this only shows that status finished, not how fast.
        assert!(started.elapsed() < Duration::from_secs(60));
        let agents = status["agents"].as_array().unwrap();
        if registered {
            // Over the parse limit: the key check alone says it is there.
            assert_eq!(agents.len(), 1, "{agents:?}");
            assert_eq!(agents[0]["agent"], "claude");
            assert_eq!(agents[0]["scope"], "user");
        } else {
            assert!(agents.is_empty(), "{agents:?}");
        }
    }
}
