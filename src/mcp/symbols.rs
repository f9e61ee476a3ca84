//! Symbol tools: `search_symbols`, `symbol_definition`, `file_outline`.

use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchSymbolsArgs {
    /// The name, or part of it.
    pub query: String,
    /// `exact`, `prefix` or `substring` (default; ASCII case-insensitive).
    #[serde(default)]
    pub r#match: Option<String>,
    /// Only this kind: the language's own word (`struct`, `fn`, `func`, `def`, `typedef` …)
    /// or a family shared by all languages: class, interface, struct, enum, function,
    /// method, constructor, field, constant, variable, module, namespace, type, macro.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this language: rust, python, javascript, typescript, tsx, go, c, cpp, java,
    /// csharp, ruby, php, kotlin, swift, shell, lua.
    #[serde(default)]
    pub language: Option<String>,
    /// At most this many results (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to page on.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileOutlineArgs {
    /// A path relative to the project root, with `/`.
    pub path: String,
    /// At most this many symbols (default and maximum 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to page on.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SymbolDefinitionArgs {
    /// The symbol's exact name.
    pub name: String,
    /// Only definitions in this file (relative to the project root).
    #[serde(default)]
    pub path: Option<String>,
    /// At most this many definitions (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to page on.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DefinitionItem {
    pub name: String,
    /// The language's own word: `struct`, `fn`, `func`, `def`, `typedef` …
    pub kind: String,
    /// The kind's family, the same set for every language (class, function, method …).
    pub family: String,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub container: Option<String>,
    /// The definition's source lines, as the file is on disk now.
    pub source: String,
    /// True when the file changed since the last sync and the location was found again
    /// by parsing it now.
    pub reparsed: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SymbolItem {
    pub name: String,
    /// The language's own word: `struct`, `fn`, `func`, `def`, `typedef` …
    pub kind: String,
    /// The kind's family, the same set for every language (class, function, method …).
    pub family: String,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub container: Option<String>,
    pub language: Option<String>,
}

impl From<SymbolHit> for SymbolItem {
    fn from(hit: SymbolHit) -> Self {
        SymbolItem {
            name: hit.name,
            kind: hit.kind,
            family: hit.family,
            path: hit.path.to_string(),
            line: hit.line,
            end_line: hit.end_line,
            container: hit.container,
            language: hit.language,
        }
    }
}

#[tool_router(router = symbols_tools, vis = "pub(super)")]
impl CodelensServer {
    #[tool(
        description = "Find symbol definitions by name (exact, prefix or substring), optionally of one kind or language. \
                       Returns name, kind, path, line, container; at most `limit` (default 50, max 500) per answer, \
                       then `next_cursor`. Answers over 20,000 characters are cut and continued by `cursor`.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<SymbolItem>>()
    )]
    async fn search_symbols(
        &self,
        Parameters(args): Parameters<SearchSymbolsArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.answer_read(
            EventName::SearchSymbols,
            &context,
            move |server, progress| server.search_symbols_now(args, progress),
        )
        .await
    }

    #[tool(
        description = "The symbol definitions of one file, in source order. For a file edited since the last sync they are \
                       read from the file as it is on disk now, and the answer says so.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<SymbolItem>>()
    )]
    async fn file_outline(
        &self,
        Parameters(args): Parameters<FileOutlineArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.answer_read(EventName::FileOutline, &context, move |server, progress| {
            server.file_outline_now(args, progress)
        })
        .await
    }

    #[tool(
        description = "A symbol's definition with its source lines (at most 200 per definition), by exact name, optionally \
                       in one file. For a file edited since the last sync the definition is found again by parsing the \
                       file as it is now: a stale line range is never served as current.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<DefinitionItem>>()
    )]
    async fn symbol_definition(
        &self,
        Parameters(args): Parameters<SymbolDefinitionArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.answer_read(
            EventName::SymbolDefinition,
            &context,
            move |server, progress| server.symbol_definition_now(args, progress),
        )
        .await
    }
}

impl CodelensServer {
    fn search_symbols_now(
        &self,
        args: SearchSymbolsArgs,
        progress: &CatchupProgress,
    ) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let mode = match args.r#match.as_deref().unwrap_or("substring") {
            "exact" => NameMatch::Exact,
            "prefix" => NameMatch::Prefix,
            "substring" | "fuzzy" => NameMatch::Substring,
            other => {
                return tool_error(format!(
                    "unknown match {other:?}: use exact, prefix or substring"
                ));
            }
        };
        if let Some(language) = &args.language
            && !Lang::ALL.iter().any(|l| l.name() == language)
        {
            return tool_error(format!("unknown language {language:?}"));
        }
        let (limit, offset) = match page(args.limit, &args.cursor) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let snapshot = Self::fresh_snapshot(backend, progress);
        let found = backend.engine.read().search_symbols(
            &args.query,
            mode,
            args.kind.as_deref(),
            args.language.as_deref(),
            limit,
            offset,
        );
        let (hits, total) = match found {
            Ok(found) => found,
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let (taken, mut text) = Self::fit(&hits, |h| {
            let container = h
                .container
                .as_deref()
                .map(|c| format!(" in {c}"))
                .unwrap_or_default();
            format!("{}:{}: {} {}{container}", h.path, h.line, h.kind, h.name)
        });
        if hits.is_empty() {
            text = format!("No symbol matches {:?}.", args.query);
        }
        let shown_until = offset as u64 + taken as u64;
        let truncated = shown_until < total;
        if truncated {
            text.push_str(&format!(
                "… {} more: call again with cursor \"{shown_until}\"",
                total - shown_until
            ));
        }
        let items: Vec<SymbolItem> = hits.into_iter().take(taken).map(SymbolItem::from).collect();
        let mut referenced: Vec<String> = items.iter().map(|i| i.path.clone()).collect();
        referenced.dedup();
        let body = ReadAnswer::new(
            items,
            total,
            truncated,
            truncated.then(|| shown_until.to_string()),
        );
        Self::answer(backend, &snapshot, &referenced, text, body)
    }

    fn file_outline_now(
        &self,
        args: FileOutlineArgs,
        progress: &CatchupProgress,
    ) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let rel = match resolve_inside(&args.path) {
            Ok(rel) => rel,
            Err(why) => return tool_error(why),
        };
        let (limit, offset) = match page_or(args.limit, &args.cursor, MAX_LIMIT) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let snapshot = Self::fresh_snapshot(backend, progress);
        let path = rel.to_string();
        let (hits, pending) = match backend.engine.read().outline(&snapshot, &rel) {
            Ok(Outline::Symbols { hits, reparsed }) => (hits, reparsed),
            Ok(Outline::Deleted) => {
                let body = ReadAnswer::<SymbolItem>::new(Vec::new(), 0, false, None);
                return Self::answer(
                    backend,
                    &snapshot,
                    std::slice::from_ref(&path),
                    format!("{path} was deleted since the last sync."),
                    body,
                );
            }
            Err(error) => return read_error(error),
        };
        let total = hits.len();
        let offset = (offset as usize).min(total);
        let window = &hits[offset..(offset + limit as usize).min(total)];
        let (taken, mut text) = Self::fit(window, |h| {
            let container = h
                .container
                .as_deref()
                .map(|c| format!(" in {c}"))
                .unwrap_or_default();
            format!(
                "{}-{}: {} {}{container}",
                h.line, h.end_line, h.kind, h.name
            )
        });
        if pending {
            text =
                format!("(read from {path} on disk now: it changed since the last sync)\n{text}");
        }
        if hits.is_empty() {
            text.push_str(&format!("{path} defines no symbols codelens extracts."));
        }
        let cursor = next_cursor(offset, taken, total);
        if let Some(cursor) = &cursor {
            text.push_str(&format!(
                "… {} more: call again with cursor {cursor:?}",
                total - offset - taken
            ));
        }
        let items: Vec<SymbolItem> = hits
            .into_iter()
            .skip(offset)
            .take(taken)
            .map(SymbolItem::from)
            .collect();
        let body = ReadAnswer::new(items, total as u64, cursor.is_some(), cursor);
        Self::answer(backend, &snapshot, &[path], text, body)
    }

    fn symbol_definition_now(
        &self,
        args: SymbolDefinitionArgs,
        progress: &CatchupProgress,
    ) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let only = match &args.path {
            Some(path) => match resolve_inside(path) {
                Ok(rel) => Some(rel),
                Err(why) => return tool_error(why),
            },
            None => None,
        };
        let (limit, offset) = match page(args.limit, &args.cursor) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let snapshot = Self::fresh_snapshot(backend, progress);
        let definitions =
            match backend
                .engine
                .read()
                .definitions(&snapshot, &args.name, only.as_ref())
            {
                Ok(definitions) => definitions,
                Err(error) => return read_error(error),
            };
        let mut items: Vec<DefinitionItem> = definitions
            .into_iter()
            .map(|d| DefinitionItem {
                name: d.name,
                kind: d.kind,
                family: d.family,
                path: d.path.to_string(),
                line: d.line,
                end_line: d.end_line,
                container: d.container,
                source: d.source,
                reparsed: d.reparsed,
            })
            .collect();
        let total = items.len();
        let offset = (offset as usize).min(total);
        items.drain(..offset);
        items.truncate(limit as usize);
        let mut text = String::new();
        let mut taken = 0;
        for item in &items {
            let block = format!(
                "{}:{}-{}: {} {}{}\n```\n{}\n```\n",
                item.path,
                item.line,
                item.end_line,
                item.kind,
                item.name,
                if item.reparsed {
                    " (re-read from disk: the file changed since the last sync)"
                } else {
                    ""
                },
                item.source
            );
            if taken > 0 && text.len() + block.len() > ANSWER_BUDGET - 2_000 {
                break;
            }
            text.push_str(&block);
            taken += 1;
        }
        if total == 0 {
            text = format!("No definition of {:?} found.", args.name);
        }
        let cursor = next_cursor(offset, taken, total);
        if let Some(cursor) = &cursor {
            text.push_str(&format!(
                "… {} more: call again with cursor {cursor:?}",
                total - offset - taken
            ));
        }
        items.truncate(taken);
        let referenced: Vec<String> = items.iter().map(|i| i.path.clone()).collect();
        let body = ReadAnswer::new(items, total as u64, cursor.is_some(), cursor);
        Self::answer(backend, &snapshot, &referenced, text, body)
    }
}
