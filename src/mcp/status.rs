//! Status tools: `index_status`, the document `codelens status --json` prints.

use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArgs {}

#[tool_router(router = status_tools, vis = "pub(super)")]
impl CodelensServer {
    #[tool(
        description = "How fresh the index is — the keys of `codelens status --json`: the freshness verdict \
                       (verified, pending, or unverified with its reason), files, symbols, languages, last sync, pending \
                       files with change, edit age and state, watcher, worktree mismatch, telemetry — plus the engine's \
                       role and catch-up progress. Never waits.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<StatusReport>()
    )]
    async fn index_status(
        &self,
        Parameters(_args): Parameters<NoArgs>,
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::IndexStatus);
        let server = self.clone();
        Ok(blocking(move || server.index_status_now()).await)
    }
}

impl CodelensServer {
    fn index_status_now(&self) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        // Never waits: the snapshot as it is, catch-up progress included.
        let snapshot = backend.engine.snapshot();
        let status =
            StatusReport::from_snapshot(&backend.project, &snapshot, Audience::Agent, now_ns());
        let value = serde_json::to_value(&status).unwrap_or(Value::Null);
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Some(m) = &snapshot.worktree_mismatch {
            text = format!("{}\n\n{text}", m.warning());
        }
        let mut result = CallToolResult::structured(value);
        result.content = vec![ContentBlock::text(text)];
        result
    }
}
