//! `codelens --mcp` as an agent meets it: the real binary as a child process, spoken to
//! over stdio with JSON-RPC, on real temp repositories with real edits.

use crate::common;

use std::time::{Duration, Instant};

use common::mcp_client::{Client, DEADLINE};
use common::*;
use serde_json::{Value, json};

/// The shared sources, with the worktree test's `wt/` ignored.
fn indexed_repo() -> TestRepo {
    indexed_sources_repo_with(&[(".gitignore", "/wt/\n")])
}

#[test]
fn tools_are_listed_read_only_with_schemas() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[("CODELENS_LOG", "trace")]);
    let listed = client.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "file_outline",
            "find_files",
            "index_status",
            "search_symbols",
            "search_text",
            "symbol_definition"
        ]
    );
    for tool in tools {
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        if tool["name"] == "index_status" {
            assert!(
                tool["outputSchema"]["properties"]["pending"].is_object(),
                "{tool}"
            );
        } else {
            assert!(
                tool["outputSchema"]["properties"]["stale_files"].is_object(),
                "{tool}"
            );
        }
    }
    client.assert_stdout_is_protocol_only();
}

#[test]
fn search_finds_symbols_and_an_edit_brings_the_banner_until_reindexed() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[("CODELENS_WATCH_DEBOUNCE_MS", "5000")]);
    let clean = client.call(
        "search_symbols",
        json!({"query": "Indexer", "match": "exact"}),
    );
    let text = Client::text(&clean);
    assert!(
        text.starts_with("tools/indexer.py:1: class Indexer"),
        "{text}"
    );
    assert_eq!(clean["structuredContent"]["total"], 1);
    assert_eq!(clean["structuredContent"]["stale_files"], json!([]));
    assert!(!text.contains("⚠️"), "a clean answer has no banner: {text}");

    repo.write(
        "tools/indexer.py",
        &format!("{PYTHON_SRC}\n\ndef added_later():\n    pass\n"),
    );
    repo.write(
        "web/render.ts",
        &format!("{TS_SRC}\nexport const other = 1;\n"),
    );
    let stale = client.call(
        "search_symbols",
        json!({"query": "Indexer", "match": "exact"}),
    );
    let text = Client::text(&stale);
    assert!(
        text.starts_with("⚠️ Some files referenced below were edited since the last index sync"),
        "{text}"
    );
    assert!(text.contains("  - tools/indexer.py (edited "), "{text}");
    assert!(
        text.contains("1 other file pending sync: web/render.ts"),
        "the footer: {text}"
    );
    let stale_files = stale["structuredContent"]["stale_files"]
        .as_array()
        .unwrap();
    assert_eq!(stale_files.len(), 1);
    assert_eq!(stale_files[0]["path"], "tools/indexer.py");
    assert_eq!(stale["structuredContent"]["pending_elsewhere"], 1);

    // The outline of a pending file is read from disk as it is now, never stale lines.
    let outline = client.call("file_outline", json!({"path": "tools/indexer.py"}));
    let outline_text = Client::text(&outline);
    assert!(
        outline_text.contains("function added_later"),
        "{outline_text}"
    );
    assert!(
        outline_text.contains("read from tools/indexer.py on disk now"),
        "{outline_text}"
    );

    // After the debounce the watcher re-indexes and the banner goes away.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = client.call(
            "search_symbols",
            json!({"query": "added_later", "match": "exact"}),
        );
        if answer["structuredContent"]["total"] == 1 && !Client::text(&answer).contains("⚠️") {
            break;
        }
        assert!(Instant::now() < deadline, "never re-indexed: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    client.assert_stdout_is_protocol_only();
}

#[test]
fn find_files_and_paging() {
    let repo = indexed_repo();
    for i in 0..30 {
        repo.write(
            &format!("pkg/m{i:02}.go"),
            &format!("package pkg\n\nfunc F{i}() {{}}\n"),
        );
    }
    repo.ok(&["sync", "-q"]);
    let mut client = Client::start(&repo.root(), &[]);
    let page1 = client.call("find_files", json!({"pattern": "pkg/*.go", "limit": 20}));
    assert_eq!(page1["structuredContent"]["total"], 30);
    assert_eq!(
        page1["structuredContent"]["items"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    assert_eq!(page1["structuredContent"]["truncated"], true);
    let cursor = page1["structuredContent"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let page2 = client.call(
        "find_files",
        json!({"pattern": "pkg/*.go", "limit": 20, "cursor": cursor}),
    );
    assert_eq!(
        page2["structuredContent"]["items"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(page2["structuredContent"]["truncated"], false);
    assert_eq!(page2["structuredContent"]["items"][9]["path"], "pkg/m29.go");
    let by_substring = client.call("find_files", json!({"pattern": "render"}));
    assert_eq!(
        by_substring["structuredContent"]["items"][0]["path"],
        "web/render.ts"
    );
    let bad = client.call("find_files", json!({"pattern": "src/[", "limit": 5}));
    assert_eq!(bad["isError"], true, "{bad}");
}

/// Follows `next_cursor` from the first page to the last, collecting every item.
fn all_pages(client: &mut Client, tool: &str, mut args: Value) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..100 {
        let answer = client.call(tool, args.clone());
        assert_ne!(answer["isError"], true, "{answer}");
        let content = &answer["structuredContent"];
        items.extend(content["items"].as_array().expect("items").iter().cloned());
        match content["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(content["truncated"], true, "{content}");
                args["cursor"] = json!(cursor);
            }
            None => return items,
        }
    }
    panic!("{tool} never stopped paging");
}

#[test]
fn outline_definitions_and_text_search_page_with_a_cursor() {
    let repo = indexed_repo();
    let mut many = String::from("package pkg\n\n");
    for i in 0..45 {
        many.push_str(&format!("func Handle{i:02}() int {{ return {i} }}\n\n"));
    }
    repo.write("pkg/many.go", &many);
    for i in 0..7 {
        repo.write(
            &format!("pkg/dup{i}.go"),
            "package pkg\n\nfunc Shared() int { return 1 }\n",
        );
    }
    repo.ok(&["sync", "-q"]);
    let mut client = Client::start(&repo.root(), &[]);

    let outline = all_pages(
        &mut client,
        "file_outline",
        json!({"path": "pkg/many.go", "limit": 10}),
    );
    let names: Vec<&str> = outline
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..45).map(|i| format!("Handle{i:02}")).collect();
    assert_eq!(names, expected, "every symbol once, in source order");

    let definitions = all_pages(
        &mut client,
        "symbol_definition",
        json!({"name": "Shared", "limit": 3}),
    );
    let mut paths: Vec<&str> = definitions
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 7, "{paths:?}");
    paths.dedup();
    assert_eq!(paths.len(), 7, "no definition twice: {paths:?}");

    let lines = all_pages(
        &mut client,
        "search_text",
        json!({"pattern": "return \\d+ \\}", "path_glob": "pkg/*.go", "limit": 4}),
    );
    let found: Vec<(String, u64)> = lines
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.len(), 45 + 7, "{found:?}");
    let mut sorted = found.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(found, sorted, "pages are in path order, without repeats");

    let bad = client.call(
        "file_outline",
        json!({"path": "pkg/many.go", "cursor": "x"}),
    );
    assert_eq!(bad["isError"], true, "{bad}");
    client.assert_stdout_is_protocol_only();
}

#[test]
fn index_status_has_the_keys_of_status_json() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    client.call("search_symbols", json!({"query": "Store"}));
    repo.write(
        "src/store.rs",
        &format!("{RUST_SRC}\npub fn added() {{}}\n"),
    );
    let status = client.call("index_status", json!({}));
    let mcp = status["structuredContent"]
        .as_object()
        .expect("structured")
        .clone();
    let cli = repo.status_json();
    for key in cli.as_object().unwrap().keys() {
        if key == "agents" {
            continue; // agent registrations are the CLI's concern, not the engine's
        }
        assert!(mcp.contains_key(key), "index_status lacks {key}: {mcp:?}");
    }
    assert_eq!(mcp["files"], cli["files"]);
    assert_eq!(mcp["root"], cli["root"]);
    assert_eq!(mcp["pending_source"], "engine");
    assert_eq!(mcp["watcher"]["engine"], "running");
    assert!(mcp["catchup"]["state"].is_string());
}

#[test]
fn paths_outside_the_project_are_refused() {
    let repo = indexed_repo();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.rs"), "fn secret() {}\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.rs"), repo.path("src/link.rs")).unwrap();
    // A sibling directory whose name extends the root's.
    let sibling = format!("{}-evil", repo.root().display());
    std::fs::create_dir_all(&sibling).unwrap();
    let mut client = Client::start(&repo.root(), &[]);
    for path in [
        "../etc/passwd",
        "/etc/passwd",
        "src/../../x.rs",
        "src/link.rs",
        "a\u{0}b",
        "",
        &format!("{sibling}/x.rs"),
    ] {
        let answer = client.call("file_outline", json!({"path": path}));
        assert_eq!(
            answer["isError"], true,
            "{path:?} was not refused: {answer}"
        );
    }
    let _ = std::fs::remove_dir_all(&sibling);
    // And an ordinary path still works.
    let fine = client.call("file_outline", json!({"path": "./src/store.rs"}));
    assert!(Client::text(&fine).contains("struct Store"), "{fine}");
}

#[test]
fn malformed_input_never_kills_the_server() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    client.send_raw("this is not json");
    client.send_raw("{\"jsonrpc\": \"2.0\", \"id\": 999, \"method\": \"no/such/method\"}");
    client.send_raw(&"x".repeat(200_000));
    let unknown = client.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert!(
        unknown.get("error").is_some() || unknown["result"]["isError"] == true,
        "{unknown}"
    );
    let bad_args = client.request(
        "tools/call",
        json!({"name": "search_symbols", "arguments": {"limit": "many"}}),
    );
    assert!(
        bad_args.get("error").is_some() || bad_args["result"]["isError"] == true,
        "{bad_args}"
    );
    // Still serving.
    let status = client.call("index_status", json!({}));
    assert_eq!(status["structuredContent"]["files"], 4);
    client.assert_stdout_is_protocol_only();
}

#[test]
fn a_nested_worktree_without_its_own_index_gets_the_warning_on_every_answer() {
    let repo = indexed_repo();
    repo.git(&["worktree", "add", "-q", "-b", "feature", "wt"]);
    let mut client = Client::start(&repo.path("wt"), &[]);
    for (tool, args) in [
        ("search_symbols", json!({"query": "Store"})),
        ("find_files", json!({"pattern": "*.rs"})),
        ("file_outline", json!({"path": "src/store.rs"})),
    ] {
        let answer = client.call(tool, args);
        let text = Client::text(&answer);
        assert!(
            text.starts_with("⚠️ This linked worktree"),
            "{tool}: {text}"
        );
        assert!(text.contains("codelens init -i"), "{tool}: {text}");
        assert_eq!(
            answer["structuredContent"]["worktree_mismatch"]["worktree_branch"],
            "feature"
        );
    }
}

#[test]
fn without_an_index_initialize_works_and_tools_say_how_to_build_one() {
    let plain = tempfile::tempdir().unwrap();
    let mut client = Client::start(plain.path(), &[]);
    let answer = client.call("search_symbols", json!({"query": "x"}));
    assert_eq!(answer["isError"], true);
    assert!(Client::text(&answer).contains("codelens init"), "{answer}");
}

#[test]
fn symbol_definition_serves_current_source_even_after_lines_moved() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[("CODELENS_WATCH_DEBOUNCE_MS", "30000")]);
    let clean = client.call("symbol_definition", json!({"name": "open"}));
    let item = &clean["structuredContent"]["items"][0];
    assert_eq!(item["path"], "src/store.rs", "{clean}");
    assert_eq!(item["line"], 6);
    assert!(
        item["source"]
            .as_str()
            .unwrap()
            .starts_with("    pub fn open(path: &str) -> Store {"),
        "{clean}"
    );
    assert_eq!(item["reparsed"], false);

    // Three lines inserted above it: the indexed range (6-8) now holds other code.
    repo.write(
        "src/store.rs",
        &format!("// one\n// two\n// three\n{RUST_SRC}"),
    );
    let moved = client.call(
        "symbol_definition",
        json!({"name": "open", "path": "src/store.rs"}),
    );
    let item = &moved["structuredContent"]["items"][0];
    assert_eq!(item["line"], 9, "{moved}");
    assert_eq!(item["reparsed"], true);
    assert!(
        item["source"]
            .as_str()
            .unwrap()
            .starts_with("    pub fn open(path: &str) -> Store {"),
        "{moved}"
    );
    let text = Client::text(&moved);
    assert!(
        text.starts_with("⚠️ Some files referenced below were edited"),
        "{text}"
    );
}

#[test]
fn a_definition_moved_to_a_file_not_yet_indexed_is_found_there() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[("CODELENS_WATCH_DEBOUNCE_MS", "30000")]);
    let before = client.call("symbol_definition", json!({"name": "open"}));
    assert_eq!(
        before["structuredContent"]["items"][0]["path"],
        "src/store.rs"
    );
    // `open` moves out of store.rs into a brand-new file; the debounce keeps both
    // pending (not re-indexed) while the question is asked.
    repo.write("src/store.rs", "pub struct Store {\n    path: String,\n}\n");
    repo.write(
        "src/open.rs",
        "use crate::store::Store;\n\nimpl Store {\n    pub fn open(path: &str) -> Store {\n        Store { path: path.to_string() }\n    }\n}\n",
    );
    let after = client.call("symbol_definition", json!({"name": "open"}));
    let items = after["structuredContent"]["items"]
        .as_array()
        .expect("items");
    assert_eq!(items.len(), 1, "{after}");
    assert_eq!(items[0]["path"], "src/open.rs", "{after}");
    assert_eq!(items[0]["line"], 4);
    assert_eq!(items[0]["reparsed"], true);
    let text = Client::text(&after);
    assert!(
        text.starts_with("⚠️ Some files referenced below were edited"),
        "{text}"
    );
    assert!(text.contains("src/open.rs"), "{text}");
}

#[test]
fn search_text_finds_lines_by_regex_within_a_glob() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    let all = client.call("search_text", json!({"pattern": "fn (open|main)\\b"}));
    let paths: Vec<String> = all["structuredContent"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}:{}", m["path"].as_str().unwrap(), m["line"]))
        .collect();
    assert_eq!(paths, vec!["src/store.rs:6"], "{all}");
    let python = client.call(
        "search_text",
        json!({"pattern": "def ", "path_glob": "tools/*.py"}),
    );
    assert_eq!(python["structuredContent"]["total"], 2, "{python}");
    // Grouped by file: the path once, then `line:text`.
    assert!(
        Client::text(&python).contains("tools/indexer.py\n2:    def run(self):\n6:def main():"),
        "{python}"
    );
    let bad = client.call("search_text", json!({"pattern": "(unclosed"}));
    assert_eq!(bad["isError"], true);
}

/// `fixed_strings`, `case_insensitive` and `context`, as agents use `rg -F -i -C`.
#[test]
fn search_text_takes_literals_ignores_case_and_shows_context() {
    let repo = TestRepo::new();
    repo.write(
        "src/calc.rs",
        "// header\nfn total(a: u32) -> u32 {\n    a.max(1) + (2)\n}\n// TODO: Total\n// footer\n",
    );
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    let mut client = Client::start(&repo.root(), &[]);
    // A regex metacharacter taken literally.
    let literal = client.call(
        "search_text",
        json!({"pattern": "max(1) + (2)", "fixed_strings": true}),
    );
    assert_eq!(literal["structuredContent"]["total"], 1, "{literal}");
    let as_regex = client.call("search_text", json!({"pattern": "max(1) + (2)"}));
    assert_eq!(as_regex["structuredContent"]["total"], 0, "{as_regex}");
    let any_case = client.call(
        "search_text",
        json!({"pattern": "total", "case_insensitive": true}),
    );
    assert_eq!(any_case["structuredContent"]["total"], 2, "{any_case}");
    let exact_case = client.call("search_text", json!({"pattern": "total"}));
    assert_eq!(exact_case["structuredContent"]["total"], 1, "{exact_case}");
    let with_context = client.call("search_text", json!({"pattern": "TODO", "context": 1}));
    let item = &with_context["structuredContent"]["items"][0];
    assert_eq!(item["before"], json!(["}"]), "{with_context}");
    assert_eq!(item["after"], json!(["// footer"]), "{with_context}");
    assert_eq!(
        Client::text(&with_context)
            .lines()
            .take(4)
            .collect::<Vec<_>>(),
        ["src/calc.rs", "4-}", "5:// TODO: Total", "6-// footer"],
        "{with_context}"
    );
    // Context is bounded, and stops at the file's edges.
    let edges = client.call("search_text", json!({"pattern": "header", "context": 1000}));
    let item = &edges["structuredContent"]["items"][0];
    assert!(item.get("before").is_none(), "none before line 1: {edges}");
    assert_eq!(item["after"].as_array().map(Vec::len), Some(5), "{edges}");
    client.assert_stdout_is_protocol_only();
}

#[test]
fn with_the_watcher_off_a_moved_definition_is_still_served_from_the_file_as_it_is() {
    let repo = indexed_repo();
    let two_news =
        "struct A;\nimpl A {\n    fn new() {}\n}\nstruct B;\nimpl B {\n    fn new() {}\n}\n";
    repo.write("src/two.rs", two_news);
    repo.ok(&["sync", "-q"]);
    let mut client = Client::start(&repo.root(), &[("CODELENS_NO_WATCH", "1")]);
    // The first query waits for start-up catch-up; the edits come after it.
    client.call("search_symbols", json!({"query": "open"}));
    repo.write("src/store.rs", &format!("// one\n// two\n{RUST_SRC}"));
    repo.write("src/two.rs", &format!("{two_news}// edited\n"));
    // No watcher reported the edit, but the stat no longer matches the index: the
    // file is parsed now, and the banner names it all the same.
    let definition = client.call("symbol_definition", json!({"name": "open"}));
    let item = &definition["structuredContent"]["items"][0];
    assert_eq!(item["line"], 8, "{definition}");
    assert_eq!(item["reparsed"], true);
    let stale = &definition["structuredContent"]["stale_files"];
    assert_eq!(stale[0]["path"], "src/store.rs", "{definition}");
    assert_eq!(stale[0]["state"], "unsynced", "{definition}");
    assert!(
        Client::text(&definition)
            .starts_with("⚠️ Some files referenced below were edited since the last index sync"),
        "{definition}"
    );
    assert!(
        item["source"]
            .as_str()
            .unwrap()
            .starts_with("    pub fn open("),
        "{definition}"
    );
    let text = Client::text(&definition);
    assert!(text.contains("auto-sync is off"), "{text}");
    let outline = client.call("file_outline", json!({"path": "src/store.rs"}));
    assert!(
        Client::text(&outline).contains("8-10: fn open in Store"),
        "{outline}"
    );
    assert!(
        Client::text(&outline).contains("src/store.rs (edited"),
        "{outline}"
    );
    // Two definitions in one file name it once.
    let news = client.call("symbol_definition", json!({"name": "new"}));
    assert_eq!(news["structuredContent"]["total"], 2, "{news}");
    assert_eq!(
        Client::text(&news).matches("src/two.rs (edited").count(),
        1,
        "{news}"
    );
    // A file the answer does not name gets no banner: the search below finds only
    // web/render.ts.
    let search = client.call("search_symbols", json!({"query": "render"}));
    assert!(Client::text(&search).contains("web/render.ts"), "{search}");
    assert!(!Client::text(&search).starts_with("⚠️"), "{search}");
}

#[test]
fn sigterm_ends_the_server_cleanly() {
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    client.call("search_symbols", json!({"query": "Store"}));
    // SAFETY: signals our own child process.
    unsafe { libc::kill(client.proc.pid(), libc::SIGTERM) };
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = client.proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let leftovers: Vec<String> = std::fs::read_dir(repo.path(".codelens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("cookie-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Its writer lock is free again.
    let project = codelens::engine::project::Project::at(repo.root());
    assert!(!project.writer_engine_running());
}

#[test]
fn a_last_request_without_its_newline_is_still_answered() {
    let repo = indexed_repo();
    let mut client = Client::spawn(
        common::codelens_command(&repo.root(), &["--mcp"]),
        "codelens --mcp",
    );
    let request = json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    // No newline, then end of input.
    client.write_raw(request.to_string().as_bytes()).unwrap();
    client.finish(DEADLINE);
    let answers: Vec<Value> = client
        .seen()
        .iter()
        .map(|l| serde_json::from_slice(l).expect("JSON-RPC"))
        .collect();
    let out = Value::Array(answers.clone());
    assert!(
        answers
            .iter()
            .any(|a| a["id"] == 7 && a["result"]["serverInfo"]["name"] == "codelens"),
        "{out}"
    );
}

fn paths_of(result: &Value) -> Vec<String> {
    let mut paths: Vec<String> = result["structuredContent"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Agents' first glob is `*.rs`: without a `/` a glob matches file names at any depth
/// (as `.gitignore`, `rg -g` and `fd -g` read it); with one, paths from the root.
#[test]
fn a_glob_without_a_slash_matches_file_names_at_any_depth() {
    let repo = TestRepo::new();
    repo.write("src/a.rs", "pub fn alpha() {}\n");
    repo.write("src/deep/b.rs", "pub fn beta() {}\n");
    repo.write("web/c.ts", "export function gamma() {}\n");
    repo.write("web/notes.rs.txt", "fn not_rust() {}\n");
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    let mut client = Client::start(&repo.root(), &[]);
    let find = |client: &mut Client, pattern: &str| {
        paths_of(&client.call("find_files", json!({"pattern": pattern})))
    };
    assert_eq!(find(&mut client, "*.rs"), ["src/a.rs", "src/deep/b.rs"]);
    assert_eq!(find(&mut client, "b.rs"), ["src/deep/b.rs"], "a substring");
    assert_eq!(
        find(&mut client, "src/*.rs"),
        ["src/a.rs"],
        "`*` stays in src/"
    );
    assert_eq!(find(&mut client, "**/b.rs"), ["src/deep/b.rs"]);
    assert_eq!(
        find(&mut client, "src/**/*.rs"),
        ["src/a.rs", "src/deep/b.rs"]
    );
    let both = client.call("find_files", json!({"pattern": "*.{ts,txt}"}));
    assert_eq!(paths_of(&both), ["web/c.ts", "web/notes.rs.txt"], "{both}");
    let found = client.call(
        "search_text",
        json!({"pattern": "fn ", "path_glob": "*.rs"}),
    );
    assert_eq!(paths_of(&found), ["src/a.rs", "src/deep/b.rs"]);
    let found = client.call(
        "search_text",
        json!({"pattern": "(fn|function) ", "path_glob": "web/*"}),
    );
    assert_eq!(paths_of(&found), ["web/c.ts", "web/notes.rs.txt"]);
    let bad = client.call("find_files", json!({"pattern": "src/[a.rs"}));
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(Client::text(&bad).contains("invalid glob"), "{bad}");
    client.assert_stdout_is_protocol_only();
}

/// Every schema is plain JSON Schema: no schemars-only integer formats (`uint32` …),
/// which strict validators warn on or reject; unsigned integers keep `minimum: 0`.
#[test]
fn tool_schemas_carry_no_custom_formats() {
    fn walk(value: &Value, at: &str, formats: &mut Vec<String>, minimums: &mut usize) {
        match value {
            Value::Object(map) => {
                if let Some(format) = map.get("format") {
                    formats.push(format!("{at}: {format}"));
                }
                if map.get("minimum") == Some(&json!(0)) {
                    *minimums += 1;
                }
                for (key, inner) in map {
                    walk(inner, &format!("{at}/{key}"), formats, minimums);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{at}/{i}"), formats, minimums);
                }
            }
            _ => {}
        }
    }
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    let listed = client.request("tools/list", json!({}));
    let (mut formats, mut minimums) = (Vec::new(), 0);
    for tool in listed["result"]["tools"].as_array().expect("tools") {
        let name = tool["name"].as_str().unwrap();
        walk(&tool["inputSchema"], name, &mut formats, &mut minimums);
        walk(&tool["outputSchema"], name, &mut formats, &mut minimums);
    }
    assert_eq!(formats, Vec::<String>::new());
    assert!(minimums >= 10, "unsigned bounds kept: {minimums}");
}

/// A question that waits for start-up catch-up and carries a `progressToken` gets
/// `notifications/progress` with files checked (and in all, once known), before its
/// answer; one without a token gets none.
#[test]
fn a_question_waiting_for_catch_up_reports_progress_to_a_token() {
    let repo = TestRepo::new();
    // Enough content that comparing it again takes a while in a debug build.
    let body = "lorem ipsum dolor sit amet\n".repeat(1200);
    for i in 0..1500 {
        repo.write(&format!("notes/d{:02}/n{i:04}.txt", i % 40), &body);
    }
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);
    // Edited while no engine runs: catch-up hashes every one of them.
    for i in 0..1500 {
        repo.write(
            &format!("notes/d{:02}/n{i:04}.txt", i % 40),
            &format!("{body}edited\n"),
        );
    }
    let mut client = Client::start(&repo.root(), &[]);
    let answer = client.request(
        "tools/call",
        json!({
            "name": "find_files",
            "arguments": {"pattern": "n0001.txt"},
            "_meta": {"progressToken": "catch-up-1"},
        }),
    );
    assert!(answer.get("error").is_none(), "{answer}");
    let progress: Vec<Value> = client
        .seen()
        .iter()
        .map(|line| serde_json::from_slice::<Value>(line).unwrap())
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "no progress before the answer");
    let mut last = -1.0;
    for note in &progress {
        let params = &note["params"];
        assert_eq!(params["progressToken"], "catch-up-1", "{note}");
        let done = params["progress"].as_f64().unwrap();
        assert!(done > last, "progress only increases: {progress:?}");
        last = done;
        if let Some(total) = params["total"].as_f64() {
            assert!(done <= total, "{note}");
        }
        assert!(
            params["message"].as_str().unwrap().contains("catch-up"),
            "{note}"
        );
    }
    // Later questions do not wait, and a question without a token gets nothing.
    let seen_before = client.seen().len();
    client.call("find_files", json!({"pattern": "n0002.txt"}));
    let after: Vec<Value> = client.seen()[seen_before..]
        .iter()
        .map(|line| serde_json::from_slice::<Value>(line).unwrap())
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(after, Vec::<Value>::new());
    client.assert_stdout_is_protocol_only();
}

/// MCP logging: nothing before the client sets a level; after `logging/setLevel`, an
/// engine warning (here the rescan an ignore-rule change forces) arrives as
/// `notifications/message`.
#[test]
fn engine_warnings_reach_a_client_that_set_a_logging_level() {
    fn messages(lines: &[Vec<u8>]) -> Vec<Value> {
        lines
            .iter()
            .map(|line| serde_json::from_slice::<Value>(line).unwrap())
            .filter(|m| m["method"] == "notifications/message")
            .collect()
    }
    let repo = indexed_repo();
    let mut client = Client::start(&repo.root(), &[]);
    // Lines read here beside those `request` keeps.
    let mut read: Vec<Vec<u8>> = Vec::new();
    client.call("find_files", json!({"pattern": "*.rs"}));
    // Before any level is set, a rescan says nothing.
    repo.write(".gitignore", "/wt/\n*.tmp\n");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        read.extend(client.recv_line(Duration::from_millis(100)));
    }
    client.call("find_files", json!({"pattern": "*.rs"}));
    assert_eq!(messages(&read), Vec::<Value>::new());
    assert_eq!(messages(client.seen()), Vec::<Value>::new());

    let set = client.request("logging/setLevel", json!({"level": "warning"}));
    assert!(set.get("error").is_none(), "{set}");
    repo.write(".gitignore", "/wt/\n*.tmp\n*.bak\n");
    let until = Instant::now() + DEADLINE;
    let warning = loop {
        let found = messages(&read)
            .into_iter()
            .find(|m| m["params"]["level"] == "warning");
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < until, "no warning: {:?}", messages(&read));
        read.extend(client.recv_line(Duration::from_millis(200)));
    };
    assert_eq!(warning["params"]["logger"], "codelens.engine", "{warning}");
    assert!(
        warning["params"]["data"]["event"]
            .as_str()
            .is_some_and(|e| e.contains("rescan")),
        "{warning}"
    );
    // Below the level: nothing (a sync is `debug`).
    assert!(
        messages(&read)
            .iter()
            .all(|m| m["params"]["level"] != "debug"),
        "{:?}",
        messages(&read)
    );
    client.assert_stdout_is_protocol_only();
}

/// An index an older codelens wrote: the server rebuilds it before its first answer,
/// says so in one line on stderr (stdout carries only protocol messages), and the
/// `kind` filter then takes the language's word or the family.
#[test]
fn an_older_index_is_rebuilt_by_the_server_with_one_line_on_stderr() {
    let repo = indexed_repo();
    let conn = rusqlite::Connection::open(repo.db_path()).unwrap();
    conn.execute(
        "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let mut client = Client::start(&repo.root(), &[]);
    let items = |client: &mut Client, kind: &str| -> Vec<(String, String, String)> {
        let found = client.call("search_symbols", json!({"query": "", "kind": kind}));
        let items = found["structuredContent"]["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{found}"))
            .clone();
        items
            .iter()
            .map(|i| {
                let field = |name: &str| i[name].as_str().unwrap().to_string();
                (field("name"), field("kind"), field("family"))
            })
            .collect()
    };
    let by_word = items(&mut client, "fn");
    assert_eq!(
        by_word,
        vec![("open".into(), "fn".into(), "method".into())],
        "{by_word:?}"
    );
    let by_family = items(&mut client, "method");
    let mut names: Vec<&str> = by_family.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["area", "open", "run"], "{by_family:?}");
    client.assert_stdout_is_protocol_only();
    let stderr = client.proc.stderr();
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rebuilt it from scratch"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0]
            .starts_with("codelens: the index was written by an older codelens (schema version 1;"),
        "{stderr}"
    );
}
