//! File tools: `find_files`.

use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindFilesArgs {
    /// A glob (`*.rs` matches file names at any depth; `src/**/*.rs` matches paths) or,
    /// without glob characters, a substring of the path.
    pub pattern: String,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileItem {
    pub path: String,
    pub language: Option<String>,
    pub size: u64,
}

#[tool_router(router = files_tools, vis = "pub(super)")]
impl CodelensServer {
    #[tool(
        description = "Indexed files whose path matches a glob or contains a substring, with language and size; at most \
                       `limit` (default 50, max 500) per answer, then `next_cursor`. A glob without `/` matches the file \
                       name at any depth (`*.rs`, `*_test.go`), as in .gitignore, `rg -g` and `fd -g`; one with `/` matches \
                       the path from the project root (`src/*.rs`: directly in src; `src/**/*.rs`: anywhere below it).",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<FileItem>>()
    )]
    async fn find_files(
        &self,
        Parameters(args): Parameters<FindFilesArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.answer_read(EventName::FindFiles, &context, move |server, progress| {
            server.find_files_now(args, progress)
        })
        .await
    }
}

impl CodelensServer {
    fn find_files_now(&self, args: FindFilesArgs, progress: &CatchupProgress) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let (limit, offset) = match page(args.limit, &args.cursor) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let is_glob = args.pattern.contains(['*', '?', '[', '{']);
        let matcher = if is_glob {
            match PathGlob::new(&args.pattern) {
                Ok(glob) => Some(glob),
                Err(why) => return tool_error(why),
            }
        } else {
            None
        };
        let snapshot = Self::fresh_snapshot(backend, progress);
        let files = match backend.engine.read().files() {
            Ok(files) => files,
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let candidates = match &matcher {
            Some(glob) => glob.candidates(&files, |f| &f.path),
            None => &files[..],
        };
        let matching: Vec<FileItem> = candidates
            .iter()
            .filter(|f| match &matcher {
                Some(glob) => glob.is_match(&f.path),
                None => f.path.to_string_lossy().contains(&args.pattern),
            })
            .map(|f| FileItem {
                path: f.path.to_string(),
                language: f.language.clone(),
                size: f.size,
            })
            .collect();
        let total = matching.len() as u64;
        let window: Vec<FileItem> = matching
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        let (taken, mut text) = Self::fit(&window, |f| {
            format!(
                "{} ({}, {} bytes)",
                f.path,
                f.language.as_deref().unwrap_or("binary/skipped"),
                f.size
            )
        });
        if total == 0 {
            text = format!("No indexed file matches {:?}.", args.pattern);
        }
        let shown_until = offset as u64 + taken as u64;
        let truncated = shown_until < total;
        if truncated {
            text.push_str(&format!(
                "… {} more: call again with cursor \"{shown_until}\"",
                total - shown_until
            ));
        }
        let items: Vec<FileItem> = window.into_iter().take(taken).collect();
        let referenced: Vec<String> = items.iter().map(|f| f.path.clone()).collect();
        let body = ReadAnswer::new(
            items,
            total,
            truncated,
            truncated.then(|| shown_until.to_string()),
        );
        Self::answer(backend, &snapshot, &referenced, text, body)
    }
}
