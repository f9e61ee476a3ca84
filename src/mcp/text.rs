//! Text tools: `search_text`.

use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchTextArgs {
    /// A regular expression (Rust `regex` syntax), matched line by line.
    pub pattern: String,
    /// Only files matching this glob: without `/` it matches file names at any depth
    /// (`*.rs`), with `/` paths from the project root (`src/**/*.ts`).
    #[serde(default)]
    pub path_glob: Option<String>,
    /// At most this many matching lines (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to page on.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TextMatch {
    pub path: String,
    pub line: u32,
    pub text: String,
}

#[tool_router(router = text_tools, vis = "pub(super)")]
impl CodelensServer {
    #[tool(
        description = "Lines matching a regular expression in the indexed text files, optionally only files matching \
                       `path_glob` (without `/` it matches file names at any depth: `*.rs`; with `/` paths: \
                       `src/**/*.ts`); results as path:line:text, at most `limit` (default 50, max 500) lines.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<TextMatch>>()
    )]
    async fn search_text(
        &self,
        Parameters(args): Parameters<SearchTextArgs>,
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::SearchText);
        let server = self.clone();
        Ok(blocking(move || server.search_text_now(args)).await)
    }
}

impl CodelensServer {
    fn search_text_now(&self, args: SearchTextArgs) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let query = match TextQuery::new(&args.pattern) {
            Ok(query) => query,
            Err(error) => return tool_error(format!("invalid regular expression: {error}")),
        };
        let glob = match args.path_glob.as_deref().map(PathGlob::new) {
            Some(Ok(glob)) => Some(glob),
            Some(Err(why)) => return tool_error(why),
            None => None,
        };
        let (limit, offset) = match page(args.limit, &args.cursor) {
            Ok(p) => (p.0 as usize, p.1 as usize),
            Err(e) => return e,
        };
        // Matches are gathered in path order up to the end of this page (and one more,
        // to know whether another page follows): the same cursor always pages the same.
        let wanted = offset.saturating_add(limit).saturating_add(1);
        let snapshot = Self::fresh_snapshot(backend);
        let include = |path: &RelPath| glob.as_ref().is_none_or(|g| g.is_match(path));
        let search = match backend.engine.read().search_text(&query, include, wanted) {
            Ok(search) => search,
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let mut matches: Vec<TextMatch> = (search.hits.into_iter())
            .map(|hit| TextMatch {
                path: hit.path.to_string(),
                line: hit.line,
                text: hit.text,
            })
            .collect();
        // Every file was read: the count is exact; otherwise it is a lower bound.
        let complete = search.complete;
        let found_total = matches.len();
        // Whole files past the page's end were read too; only the first `wanted` in path
        // order count (files are taken in path order, so those are exact).
        matches.truncate(wanted);
        let more_after_page = matches.len() > offset + limit;
        let offset = offset.min(matches.len());
        matches.drain(..offset);
        matches.truncate(limit);
        let (taken, mut text) =
            Self::fit(&matches, |m| format!("{}:{}:{}", m.path, m.line, m.text));
        matches.truncate(taken);
        let cursor = (taken < limit.min(found_total.saturating_sub(offset)) || more_after_page)
            .then(|| (offset + taken).to_string());
        if matches.is_empty() {
            text = if offset > 0 {
                "No more matching lines.".to_string()
            } else {
                format!("No line matches {:?}.", args.pattern)
            };
        } else if let Some(cursor) = &cursor {
            text.push_str(&format!(
                "… more matches: call again with cursor {cursor:?}, or narrow the pattern or path_glob"
            ));
        }
        let total = if complete {
            found_total
        } else {
            found_total.max(offset + taken + 1)
        } as u64;
        let mut referenced: Vec<String> = matches.iter().map(|m| m.path.clone()).collect();
        referenced.dedup();
        let body = ReadAnswer::new(matches, total, cursor.is_some(), cursor);
        Self::answer(backend, &snapshot, &referenced, text, body)
    }
}
