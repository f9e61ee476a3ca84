//! The same server through rmcp's own client (the official Rust SDK), over a child
//! process: the round trip an agent makes.

use crate::common;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

fn args(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn rmcp_client_round_trip_with_a_banner_after_an_edit() {
    let repo = TestRepo::new();
    repo.write("src/store.rs", RUST_SRC);
    repo.write("web/render.ts", TS_SRC);
    repo.commit_all("initial");
    repo.ok(&["init", "-q"]);

    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("--mcp")
        .current_dir(repo.root())
        .env("CODELENS_WATCH_DEBOUNCE_MS", "30000");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.expect("initialized");
    let server = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .map(|s| s.name);
    assert_eq!(server.as_deref(), Some("codelens"));

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 6);
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );

    let found = client
        .call_tool(
            CallToolRequestParams::new("search_symbols")
                .with_arguments(args(json!({"query": "render"}))),
        )
        .await
        .unwrap();
    assert!(
        text_of(&found).starts_with("web/render.ts:5: function render"),
        "{}",
        text_of(&found)
    );

    repo.write(
        "web/render.ts",
        &format!("{TS_SRC}\nexport const later = 2;\n"),
    );
    let stale = client
        .call_tool(
            CallToolRequestParams::new("search_symbols")
                .with_arguments(args(json!({"query": "render"}))),
        )
        .await
        .unwrap();
    let text = text_of(&stale);
    assert!(
        text.starts_with("⚠️ Some files referenced below were edited since the last index sync"),
        "{text}"
    );
    assert!(text.contains("web/render.ts (edited "), "{text}");
    assert_eq!(
        stale.structured_content.as_ref().unwrap()["stale_files"][0]["path"],
        "web/render.ts"
    );

    let refused = client
        .call_tool(
            CallToolRequestParams::new("file_outline")
                .with_arguments(args(json!({"path": "/etc/passwd"}))),
        )
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    client.cancel().await.unwrap();
}
