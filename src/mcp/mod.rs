//! The MCP server (`codelens --mcp`): read tools over stdio for AI agents, answered from
//! the index and wrapped, in one place ([`CodelensServer::answer`]), with what the agent
//! must know about that index's freshness — the worktree warning, the staleness banner
//! naming pending files with their edit ages, the result, and a footer about pending
//! files elsewhere.
//!
//! stdout carries protocol messages only: rmcp produces them and `pump_output` copies
//! them to stdout; nothing else here prints.

// Project files are read through the engine's `contain::Tree` only.
#![deny(clippy::disallowed_methods)]

use std::path::{Component, Path};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ClientJsonRpcMessage, ContentBlock, CustomRequest, CustomResult, ErrorCode,
    Implementation, InitializeRequestParams, InitializeResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::engine::banner::{PendingEntry, PendingState};
use crate::engine::contain::Tree;
use crate::engine::lang::Lang;
use crate::engine::project::Project;
use crate::engine::store::{FileEntry, NameMatch, Store, SymbolHit};
use crate::engine::symbols::SymbolExtractor;
use crate::engine::watcher::WatchMode;
use crate::engine::{Engine, EngineOptions, RelPath, Snapshot, now_ns};
use crate::telemetry::{self, EventName, EventType};

/// Past this many characters of text an answer is cut and continued with `cursor`:
/// agents' clients truncate or reject larger tool results.
pub const ANSWER_BUDGET: usize = 20_000;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// How long a query waits at most for the watcher to report every edit made before it
/// (the round trip takes well under a millisecond unless the machine is starved).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// A definition's source is cut past this many characters (a minified line …).
const MAX_SOURCE_CHARS: usize = 8_000;
/// `symbol_definition` parses at most this many pending files (newest first) looking
/// for a definition the index does not know yet.
const MAX_PENDING_PARSED: usize = 200;

const INSTRUCTIONS: &str = "codelens answers questions about this project's code from an index it keeps in sync with \
the working tree. Tools: search_symbols (find definitions by name), symbol_definition (a definition's source), \
file_outline (a file's definitions in order), find_files (paths by glob or substring), search_text (regex over the \
indexed files), index_status (how fresh the index is). Every answer that mentions a file \
edited since the last index sync starts with a banner beginning '⚠️ Some files referenced below were edited since the \
last index sync' naming those files with their edit ages: read those files directly for exact content; everything \
else is fresh. An answer may also start with a worktree warning (this git worktree is reading another checkout's \
index: run `codelens init -i` there) or end with a line about files pending elsewhere. structuredContent carries the \
same facts as fields (stale_files, worktree_mismatch, pending_elsewhere).";

/// The index and engine behind the tools, or why there is none.
struct Backend {
    project: Project,
    /// The project's files, held open at the root: every read goes through it.
    tree: Tree,
    engine: Engine,
    /// A read-only connection of our own: SQLite in WAL mode lets it read while the
    /// engine writes.
    reader: Mutex<Store>,
    /// Distinct symbol names, lower-cased, as of an index write counter: a substring
    /// search scans these in memory instead of every symbol row in SQLite.
    names: Mutex<Option<NameList>>,
    /// The indexed files as of an index write counter (find_files, search_text).
    files: Mutex<Option<(u64, Arc<Vec<FileEntry>>)>>,
    /// Only the first query waits for start-up catch-up; a later re-check (after an
    /// outside `codelens sync`, an overflow) shows in the banner instead of stalling.
    waited_for_catchup: std::sync::atomic::AtomicBool,
}

/// Distinct symbol names as of an index write counter, laid out for a fast substring
/// scan: all lower-cased names in one buffer, each followed by `\n`.
struct NameList {
    generation: u64,
    names: Vec<String>,
    /// `lowered[starts[i]..starts[i + 1] - 1]` is `names[i]` lower-cased.
    lowered: Vec<u8>,
    starts: Vec<usize>,
}

impl NameList {
    fn new(generation: u64, names: Vec<String>) -> NameList {
        let mut lowered = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        let mut starts = Vec::with_capacity(names.len() + 1);
        for name in &names {
            starts.push(lowered.len());
            lowered.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            lowered.push(b'\n');
        }
        starts.push(lowered.len());
        NameList {
            generation,
            names,
            lowered,
            starts,
        }
    }

    /// Indexes of the names containing (or starting with) `needle`, lower-cased; `None`
    /// past `max` of them.
    fn matching(&self, needle: &[u8], prefix_only: bool, max: usize) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        let mut last = usize::MAX;
        // One SIMD pass over all names; a name's own `\n` keeps matches inside it.
        for at in memchr::memmem::find_iter(&self.lowered, needle) {
            let index = self.starts.partition_point(|&s| s <= at) - 1;
            if index == last || (prefix_only && self.starts[index] != at) {
                continue;
            }
            last = index;
            if found.len() == max {
                return None;
            }
            found.push(index);
        }
        Some(found)
    }
}

/// Past this many matching names a search is broad anyway: SQLite's scan is as good.
const MAX_NAMES_IN_LOOKUP: usize = 2_000;

#[derive(Clone)]
pub struct CodelensServer {
    /// Filled by a thread of its own, so `initialize` answers at once even on a big
    /// index; tools wait for it (opening takes milliseconds, catch-up runs after).
    backend: Arc<OnceLock<Result<Backend, String>>>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchSymbolsArgs {
    /// The name, or part of it.
    pub query: String,
    /// `exact`, `prefix` or `substring` (default; ASCII case-insensitive).
    #[serde(default)]
    pub r#match: Option<String>,
    /// Only this kind: function, method, class, interface, type, enum, module, constant …
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this language: rust, python, javascript, typescript, tsx, go.
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
pub struct FindFilesArgs {
    /// A glob (`src/**/*.rs`) or, without glob characters, a substring of the path.
    pub pattern: String,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArgs {}

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

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchTextArgs {
    /// A regular expression (Rust `regex` syntax), matched line by line.
    pub pattern: String,
    /// Only files whose path matches this glob.
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
pub struct DefinitionItem {
    pub name: String,
    pub kind: String,
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
pub struct TextMatch {
    pub path: String,
    pub line: u32,
    pub text: String,
}

/// The fields every read answer's structuredContent carries besides its items.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadAnswer<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub truncated: bool,
    pub next_cursor: Option<String>,
    /// Referenced files edited since the last sync: `{path, edited_secs_ago, state}`.
    pub stale_files: Vec<Value>,
    /// Set while this worktree reads another checkout's index.
    pub worktree_mismatch: Option<Value>,
    /// Pending files the answer does not mention.
    pub pending_elsewhere: usize,
}

impl<T> ReadAnswer<T> {
    /// The result part; the freshness fields are filled in by [`CodelensServer::answer`].
    fn new(items: Vec<T>, total: u64, truncated: bool, next_cursor: Option<String>) -> Self {
        ReadAnswer {
            items,
            total,
            truncated,
            next_cursor,
            stale_files: Vec::new(),
            worktree_mismatch: None,
            pending_elsewhere: 0,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SymbolItem {
    pub name: String,
    pub kind: String,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub container: Option<String>,
    pub language: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileItem {
    pub path: String,
    pub language: Option<String>,
    pub size: u64,
}

impl From<SymbolHit> for SymbolItem {
    fn from(hit: SymbolHit) -> Self {
        SymbolItem {
            name: hit.name,
            kind: hit.kind,
            path: hit.path.to_string(),
            line: hit.line,
            end_line: hit.end_line,
            container: hit.container,
            language: hit.language,
        }
    }
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn page(limit: Option<u32>, cursor: &Option<String>) -> Result<(u32, u32), CallToolResult> {
    page_or(limit, cursor, DEFAULT_LIMIT)
}

/// `limit` (default `default`, clamped to [1, 500]) and the offset a cursor carries.
fn page_or(
    limit: Option<u32>,
    cursor: &Option<String>,
    default: u32,
) -> Result<(u32, u32), CallToolResult> {
    let limit = limit.unwrap_or(default).clamp(1, MAX_LIMIT);
    let offset = match cursor {
        None => 0,
        Some(c) => c.parse::<u32>().map_err(|_| {
            tool_error(format!(
                "invalid cursor {c:?}: pass a next_cursor back unchanged"
            ))
        })?,
    };
    Ok((limit, offset))
}

/// The lines of `content` that `line_regex` matches, with their 1-based numbers and
/// without their line ending. `buffer_regex` (the same pattern in multi-line mode)
/// finds the candidates in one pass over the whole buffer, so a file without a match
/// costs one scan instead of one search per line.
fn matching_lines<'a>(
    content: &'a [u8],
    buffer_regex: Option<&regex::bytes::Regex>,
    line_regex: &regex::bytes::Regex,
) -> Vec<(u32, &'a [u8])> {
    // A carriage return changes what `.` and `$` see across the whole buffer: such files
    // (and patterns the caller found mode-dependent) are searched line by line.
    let Some(buffer_regex) = buffer_regex.filter(|_| memchr::memchr(b'\r', content).is_none())
    else {
        return content_lines(content)
            .enumerate()
            .filter(|(_, line)| line_regex.is_match(line))
            .map(|(n, line)| (n as u32 + 1, line))
            .collect();
    };
    let mut found = Vec::new();
    let mut line_number = 1u32;
    let mut counted_to = 0;
    let mut from = 0;
    while from <= content.len() {
        let Some(hit) = buffer_regex.find_at(content, from) else {
            break;
        };
        let start = content[..hit.start()]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Past the last line ending there is no line (as `str::lines` sees it).
        if start == content.len() && (content.is_empty() || content.ends_with(b"\n")) {
            break;
        }
        let end = memchr::memchr(b'\n', &content[hit.start()..])
            .map_or(content.len(), |i| hit.start() + i);
        line_number += memchr::memchr_iter(b'\n', &content[counted_to..start]).count() as u32;
        counted_to = start;
        let line = &content[start..end];
        if line_regex.is_match(line) {
            found.push((line_number, line));
        }
        // On to the next line (an empty match at the very end stops the loop).
        from = end + 1;
    }
    found
}

/// Whether `pattern` matches the same lines searched over a whole buffer in multi-line
/// mode: text anchors (`\A`, `\z`) and inline flags (`(?-m)` …) mean something else
/// there, so those patterns are matched line by line.
fn searchable_as_buffer(pattern: &str) -> bool {
    !["\\A", "\\z", "(?"]
        .iter()
        .any(|mode_dependent| pattern.contains(mode_dependent))
}

/// The lines of `content` as `str::lines` makes them: split at `\n`, a trailing `\r`
/// dropped, no empty line after a final line ending.
fn content_lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    body.split(|&b| b == b'\n')
        .filter(move |_| !content.is_empty())
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The cursor of the page after `shown` items from `offset`, if any are left.
fn next_cursor(offset: usize, shown: usize, total: usize) -> Option<String> {
    (offset + shown < total).then(|| (offset + shown).to_string())
}

/// `requested` as a path relative to the project root, normalised (`./src/a.py`,
/// `src/./a.py`, `src//a.py` and `src/a.py` are one path) or refused: absolute paths,
/// `..`, NUL bytes. This is lexical only; whether the path may be read is decided when
/// it is opened, through the [`Tree`], which refuses every symlink on the way.
pub fn resolve_inside(requested: &str) -> Result<RelPath, String> {
    if requested.is_empty() || requested.contains('\0') {
        return Err("path must be a non-empty relative path without NUL bytes".into());
    }
    let relative = Path::new(requested);
    let mut parts: Vec<&str> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "path {requested:?} must be relative to the project root, without `..`"
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(format!(
            "path {requested:?} names the project root, not a file"
        ));
    }
    Ok(RelPath::from_bytes(parts.join("/").into_bytes()))
}

#[tool_router(router = tool_router)]
impl CodelensServer {
    /// Opens the project containing `start` and starts its engine on a thread of its
    /// own (catch-up runs in the background too: `initialize` waits for neither).
    /// Without an index, every tool answers with a clear error instead.
    pub fn new(start: &Path) -> CodelensServer {
        let backend = Arc::new(OnceLock::new());
        let filled = Arc::clone(&backend);
        let start = start.to_path_buf();
        let opener = std::thread::Builder::new()
            .name("codelens-open".into())
            .spawn(move || {
                // A panic must still fill the cell: tools wait on it.
                let opened = std::panic::catch_unwind(|| Self::open_backend(&start))
                    .unwrap_or_else(|_| {
                        Err("the index could not be opened (internal error)".into())
                    });
                let _ = filled.set(opened);
            });
        if let Err(error) = opener {
            let _ = backend.set(Err(format!("cannot start a thread: {error}")));
        }
        CodelensServer {
            backend,
            tool_router: Self::tool_router(),
        }
    }

    fn open_backend(start: &Path) -> Result<Backend, String> {
        Project::find(start)
            .map_err(|e| e.to_string())
            .and_then(|project| {
                let config = Config::from_env();
                for warning in &config.warnings {
                    eprintln!("codelens: warning: {warning}");
                }
                let mut options = EngineOptions::from_config(&config);
                options.start_dir = Some(start.to_path_buf());
                let engine = Engine::start(project.clone(), options).map_err(|e| e.to_string())?;
                let reader =
                    Store::open_read_only(&project.db_path()).map_err(|e| e.to_string())?;
                let tree = project.tree().map_err(|e| e.to_string())?;
                if telemetry::is_enabled()
                    && let Ok(stats) = reader.stats()
                {
                    telemetry::set_project(&stats.languages, stats.files);
                }
                telemetry::record(EventType::Lifecycle, EventName::EngineStart);
                Ok(Backend {
                    project,
                    tree,
                    engine,
                    reader: Mutex::new(reader),
                    names: Mutex::new(None),
                    files: Mutex::new(None),
                    waited_for_catchup: std::sync::atomic::AtomicBool::new(false),
                })
            })
    }

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
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::SearchSymbols);
        let server = self.clone();
        Ok(blocking(move || server.search_symbols_now(args)).await)
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
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::FileOutline);
        let server = self.clone();
        Ok(blocking(move || server.file_outline_now(args)).await)
    }

    #[tool(
        description = "Indexed files whose path matches a glob (`src/**/*.ts`) or contains a substring, with language and \
                       size; at most `limit` (default 50, max 500) per answer, then `next_cursor`.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<FileItem>>()
    )]
    async fn find_files(
        &self,
        Parameters(args): Parameters<FindFilesArgs>,
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::FindFiles);
        let server = self.clone();
        Ok(blocking(move || server.find_files_now(args)).await)
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
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, EventName::SymbolDefinition);
        let server = self.clone();
        Ok(blocking(move || server.symbol_definition_now(args)).await)
    }

    #[tool(
        description = "Lines matching a regular expression in the indexed text files, optionally only files matching \
                       `path_glob`; results as path:line:text, at most `limit` (default 50, max 500) lines.",
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

    #[tool(
        description = "How fresh the index is — the keys of `codelens status --json`: files, symbols, languages, last \
                       sync, pending files with edit ages and state, watcher, worktree mismatch, telemetry — plus the \
                       engine's role and catch-up progress. Never waits.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<IndexStatus>()
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

async fn blocking(work: impl FnOnce() -> CallToolResult + Send + 'static) -> CallToolResult {
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| tool_error(format!("internal error: {e}")));
    tracing::debug!(
        target: "codelens::mcp",
        elapsed_ms = started.elapsed().as_millis() as u64,
        error = result.is_error.unwrap_or(false),
        "tool call answered"
    );
    result
}

impl CodelensServer {
    fn backend(&self) -> Result<&Backend, CallToolResult> {
        self.backend.wait().as_ref().map_err(|why| {
            tool_error(format!(
                "{why} (run `codelens init`, then restart this MCP server)"
            ))
        })
    }

    /// Whether `rel` is no longer what the index recorded for it (or cannot be
    /// trusted: not a regular file, no row): then line numbers must come from parsing
    /// the file now, even when no watcher reported the edit (watcher off, a follower
    /// between polls, a settle that timed out).
    fn changed_since_index(backend: &Backend, rel: &RelPath) -> bool {
        let Ok(Some(now)) = backend.tree.file_stat(rel) else {
            return true;
        };
        let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
        reader
            .file_stat(rel)
            .ok()
            .flatten()
            .is_none_or(|indexed| indexed != now)
    }

    /// The content of a regular file inside the project, through the tree (never
    /// through a symlink) and never past the index's size cap.
    fn read_regular(backend: &Backend, rel: &RelPath) -> Option<Vec<u8>> {
        let read = backend
            .tree
            .read_file(rel, crate::engine::scan::MAX_FILE_BYTES);
        read.ok()?.content
    }

    /// Why `rel`, which the index does not hold and which cannot be read now, is not
    /// answered for: it does not exist, or is (or lies behind) a symlink.
    fn not_readable(backend: &Backend, rel: &RelPath) -> String {
        match backend.tree.lstat(rel) {
            Ok((crate::engine::contain::EntryKind::Symlink, _)) => {
                format!("{rel} is a symlink; codelens never follows symlinks")
            }
            Ok((crate::engine::contain::EntryKind::Dir, _)) => format!("{rel} is a directory"),
            Ok(_) => format!("{rel} is not a regular file codelens can read"),
            Err(error)
                if error.kind() != std::io::ErrorKind::NotFound
                    && crate::engine::contain::is_absent(&error) =>
            {
                format!("{rel} lies behind a symlink; codelens never follows symlinks")
            }
            Err(_) => format!("{rel} does not exist and is not in the index"),
        }
    }

    /// The snapshot a read answer is composed from: every edit saved before the question
    /// is in it (cookie), and start-up catch-up has finished or timed out.
    fn fresh_snapshot(backend: &Backend) -> Arc<Snapshot> {
        backend.engine.settle(SETTLE_TIMEOUT);
        if backend
            .waited_for_catchup
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return backend.engine.snapshot();
        }
        backend.engine.wait_for_catchup()
    }

    /// The snapshot with the referenced files that differ from their index row but that
    /// no watcher reported (auto-sync off or degraded, where the engine learns of edits
    /// only at catch-up) added as `unsynced`, or `None` when there are none. A file
    /// whose stat changed counts, as in `codelens status` before hashing: an answer
    /// that may quote stale lines says so. With a native watcher the pending set is
    /// complete (the answer settled first) and nothing is looked at.
    fn with_unreported_edits(
        backend: &Backend,
        snapshot: &Snapshot,
        referenced: &[String],
    ) -> Option<Snapshot> {
        if snapshot.watcher.mode == WatchMode::Native {
            return None;
        }
        // Known pending files, then each path once (a search names a file per hit).
        let mut looked_at: std::collections::HashSet<&str> =
            snapshot.pending.iter().map(|p| p.path.as_str()).collect();
        let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut unreported = Vec::new();
        for path in referenced {
            if !looked_at.insert(path) {
                continue;
            }
            let rel = RelPath::from_bytes(path.as_bytes().to_vec());
            let Ok(Some(indexed)) = reader.file_stat(&rel) else {
                continue;
            };
            let edited_ns = match backend.tree.file_stat(&rel) {
                Ok(Some(now)) => {
                    if now == indexed {
                        continue;
                    }
                    now.mtime_ns
                }
                // Deleted since (or no longer a file, or behind a symlink): seen gone now.
                Ok(None) | Err(_) => now_ns(),
            };
            unreported.push(PendingEntry {
                path: path.clone(),
                first_edit_ns: edited_ns,
                last_edit_ns: edited_ns,
                state: PendingState::Unsynced,
            });
        }
        if unreported.is_empty() {
            return None;
        }
        let mut snapshot = snapshot.clone();
        snapshot.pending.extend(unreported);
        Some(snapshot)
    }

    /// Wraps a result the same way for every read tool: worktree warning and staleness
    /// banner first, then the result, then the footer (and the auto-sync notice).
    fn answer<T: Serialize>(
        backend: &Backend,
        snapshot: &Snapshot,
        referenced: &[String],
        result_text: String,
        mut body: ReadAnswer<T>,
    ) -> CallToolResult {
        let with_unreported = Self::with_unreported_edits(backend, snapshot, referenced);
        let snapshot = with_unreported.as_ref().unwrap_or(snapshot);
        let refs: Vec<&str> = referenced.iter().map(String::as_str).collect();
        let now = now_ns();
        body.stale_files = snapshot
            .pending
            .iter()
            .filter(|p| refs.contains(&p.path.as_str()))
            .map(|p| {
                json!({
                    "path": p.path,
                    "edited_secs_ago": (now.saturating_sub(p.last_edit_ns) / 1_000_000_000).max(0),
                    "state": crate::engine::runner::state_name(p.state),
                })
            })
            .collect();
        body.pending_elsewhere = snapshot
            .pending
            .iter()
            .filter(|p| !refs.contains(&p.path.as_str()))
            .count();
        body.worktree_mismatch = snapshot
            .worktree_mismatch
            .as_ref()
            .map(crate::engine::worktree::Mismatch::to_json);
        let mut text = String::new();
        if let Some(banner) = snapshot.banner(&refs) {
            text.push_str(&banner);
            text.push_str("\n\n");
        }
        text.push_str(&result_text);
        if let Some(footer) = snapshot.footer(&refs) {
            text.push_str("\n\n");
            text.push_str(&footer);
        }
        if let Some(notice) = snapshot.auto_sync_notice() {
            text.push('\n');
            text.push_str(&notice);
        }
        let structured = serde_json::to_value(&body).unwrap_or(Value::Null);
        let mut result = CallToolResult::structured(structured);
        result.content = vec![ContentBlock::text(text)];
        result
    }

    /// Lines of `items` that fit the budget: how many, and the text.
    fn fit<T>(items: &[T], line: impl Fn(&T) -> String) -> (usize, String) {
        let mut text = String::new();
        let mut taken = 0;
        for item in items {
            let next = line(item);
            if taken > 0 && text.len() + next.len() + 1 > ANSWER_BUDGET - 2_000 {
                break;
            }
            text.push_str(&next);
            text.push('\n');
            taken += 1;
        }
        (taken, text)
    }

    fn search_symbols_now(&self, args: SearchSymbolsArgs) -> CallToolResult {
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
        let snapshot = Self::fresh_snapshot(backend);
        let found = {
            let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
            let matching = match mode {
                NameMatch::Exact => None,
                _ => Self::matching_names(backend, &reader, &args.query, mode),
            };
            let (kind, language) = (args.kind.as_deref(), args.language.as_deref());
            match matching {
                Some(names) => {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    reader.symbols_with_names(&names, &args.query, kind, language, limit, offset)
                }
                None => reader.search_symbols(&args.query, mode, kind, language, limit, offset),
            }
        };
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

    /// The indexed files, from memory unless the index changed since they were read.
    fn indexed_files(backend: &Backend) -> crate::engine::Result<Arc<Vec<FileEntry>>> {
        let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
        let generation = reader.generation()?;
        let mut cache = backend.files.lock().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some((g, files)) if *g == generation => Ok(Arc::clone(files)),
            _ => {
                let files = Arc::new(reader.files()?);
                *cache = Some((generation, Arc::clone(&files)));
                Ok(files)
            }
        }
    }

    /// The distinct names a prefix or substring query matches (ASCII case-insensitive),
    /// from the in-memory name list, reloaded when the index changed; `None` when too
    /// many match for a lookup by name to pay off.
    fn matching_names(
        backend: &Backend,
        reader: &Store,
        query: &str,
        mode: NameMatch,
    ) -> Option<Vec<String>> {
        if query.is_empty() || query.contains('\n') {
            return None;
        }
        let generation = reader.generation().ok()?;
        let mut cache = backend.names.lock().unwrap_or_else(|e| e.into_inner());
        if cache
            .as_ref()
            .is_none_or(|list| list.generation != generation)
        {
            *cache = Some(NameList::new(
                generation,
                reader.distinct_symbol_names().ok()?,
            ));
        }
        let list = cache.as_ref()?;
        let needle = query.to_ascii_lowercase();
        let indexes = list.matching(
            needle.as_bytes(),
            mode == NameMatch::Prefix,
            MAX_NAMES_IN_LOOKUP,
        )?;
        Some(indexes.into_iter().map(|i| list.names[i].clone()).collect())
    }

    fn file_outline_now(&self, args: FileOutlineArgs) -> CallToolResult {
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
        let snapshot = Self::fresh_snapshot(backend);
        let path = rel.to_string();
        let pending = snapshot.pending.iter().any(|p| p.path == path)
            || Self::changed_since_index(backend, &rel);
        let hits = if pending {
            // Never serve stale line numbers as current: parse the file as it is now.
            let Some(content) = Self::read_regular(backend, &rel) else {
                let indexed = {
                    let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
                    reader.has_file(&rel).unwrap_or(false)
                };
                if !indexed {
                    return tool_error(Self::not_readable(backend, &rel));
                }
                let body = ReadAnswer::<SymbolItem>::new(Vec::new(), 0, false, None);
                return Self::answer(
                    backend,
                    &snapshot,
                    std::slice::from_ref(&path),
                    format!("{path} was deleted since the last sync."),
                    body,
                );
            };
            let lang = Lang::detect(rel.file_name());
            SymbolExtractor::new()
                .extract(lang, &content)
                .into_iter()
                .map(|s| SymbolHit {
                    path: rel.clone(),
                    name: s.name,
                    kind: s.kind,
                    line: s.line,
                    column: s.column,
                    end_line: s.end_line,
                    container: s.container,
                    language: Some(lang.name().to_string()),
                })
                .collect()
        } else {
            let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
            match reader.has_file(&rel) {
                Ok(true) => match reader.file_symbols(&rel) {
                    Ok(hits) => hits,
                    Err(error) => return tool_error(format!("codelens: {error}")),
                },
                Ok(false) => {
                    return tool_error(format!(
                        "{path} is not in the index (ignored, or not a file)"
                    ));
                }
                Err(error) => return tool_error(format!("codelens: {error}")),
            }
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

    fn find_files_now(&self, args: FindFilesArgs) -> CallToolResult {
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
            match globset::GlobBuilder::new(&args.pattern)
                .literal_separator(true)
                .build()
            {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(error) => {
                    return tool_error(format!("invalid glob {:?}: {error}", args.pattern));
                }
            }
        } else {
            None
        };
        let snapshot = Self::fresh_snapshot(backend);
        let files = match Self::indexed_files(backend) {
            Ok(files) => files,
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let matching: Vec<FileItem> = files
            .iter()
            .filter(|f| {
                let path = f.path.to_string_lossy();
                match &matcher {
                    Some(glob) => glob.is_match(path.as_ref()),
                    None => path.contains(&args.pattern),
                }
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

    fn symbol_definition_now(&self, args: SymbolDefinitionArgs) -> CallToolResult {
        const MAX_LINES: usize = 200;
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
        let snapshot = Self::fresh_snapshot(backend);
        let hits = {
            let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
            reader.symbols_named(&args.name)
        };
        let hits = match hits {
            Ok(hits) => hits
                .into_iter()
                .filter(|h| only.as_ref().is_none_or(|p| &h.path == p))
                .collect::<Vec<_>>(),
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let mut items = Vec::new();
        let mut paths: Vec<RelPath> = hits.iter().map(|h| h.path.clone()).collect();
        paths.dedup();
        // A definition may have moved to a file the index has not seen yet (a new
        // file, or one that did not define it at the last sync): pending files are
        // parsed as they are now too, so the answer never says "not found" while the
        // definition sits in a file the banner would name.
        let mut candidates: Vec<RelPath> = snapshot
            .pending
            .iter()
            .take(MAX_PENDING_PARSED)
            .map(|p| RelPath::from_bytes(p.path.as_bytes().to_vec()))
            .filter(|p| only.as_ref().is_none_or(|o| o == p))
            .filter(|p| !paths.contains(p))
            .filter(|p| Lang::detect(p.file_name()).has_symbols())
            .collect();
        candidates.sort();
        paths.extend(candidates);
        if let Some(only) = &only
            && paths.is_empty()
            && !backend.tree.exists(only)
        {
            let indexed = {
                let reader = backend.reader.lock().unwrap_or_else(|e| e.into_inner());
                reader.has_file(only).unwrap_or(false)
            };
            if !indexed {
                return tool_error(Self::not_readable(backend, only));
            }
        }
        for path in paths {
            let Some(content) = Self::read_regular(backend, &path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&content);
            let lines: Vec<&str> = text.lines().collect();
            let pending = snapshot.pending.iter().any(|p| p.path == path.to_string())
                || Self::changed_since_index(backend, &path);
            // A pending file's indexed lines may point at another symbol now: find the
            // definition again in the file as it is.
            let found: Vec<(String, String, u32, u32, Option<String>)> = if pending {
                SymbolExtractor::new()
                    .extract(Lang::detect(path.file_name()), &content)
                    .into_iter()
                    .filter(|s| s.name == args.name)
                    .map(|s| (s.name, s.kind, s.line, s.end_line, s.container))
                    .collect()
            } else {
                hits.iter()
                    .filter(|h| h.path == path)
                    .map(|h| {
                        (
                            h.name.clone(),
                            h.kind.clone(),
                            h.line,
                            h.end_line,
                            h.container.clone(),
                        )
                    })
                    .collect()
            };
            for (name, kind, line, end_line, container) in found {
                let start = (line as usize).saturating_sub(1).min(lines.len());
                let end = (end_line as usize)
                    .min(lines.len())
                    .min(start + MAX_LINES)
                    .max(start);
                items.push(DefinitionItem {
                    name,
                    kind,
                    path: path.to_string(),
                    line,
                    end_line,
                    container,
                    source: {
                        let mut source = lines[start..end].join("\n");
                        if source.len() > MAX_SOURCE_CHARS {
                            let cut = (0..=MAX_SOURCE_CHARS)
                                .rev()
                                .find(|&i| source.is_char_boundary(i))
                                .unwrap_or(0);
                            source.truncate(cut);
                            source.push_str("\n… (cut: the definition is longer)");
                        }
                        source
                    },
                    reparsed: pending,
                });
            }
        }
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

    fn search_text_now(&self, args: SearchTextArgs) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        // Matched line by line, but searched over the whole file: one scan finds the
        // candidate lines (in multi-line, CRLF-aware mode `^`, `$` and `\b` behave at a
        // line's edges as they do on the line alone), and each candidate line is then
        // checked on its own, so a match spanning lines never counts.
        let build = |multi_line: bool| {
            regex::bytes::RegexBuilder::new(&args.pattern)
                .size_limit(1 << 22)
                .multi_line(multi_line)
                .build()
        };
        let (buffer_regex, line_regex) = match (build(true), build(false)) {
            (Ok(buffer), Ok(line)) => (buffer, line),
            (Err(error), _) | (_, Err(error)) => {
                return tool_error(format!("invalid regular expression: {error}"));
            }
        };
        let buffer_regex = searchable_as_buffer(&args.pattern).then_some(buffer_regex);
        let glob = match &args.path_glob {
            Some(g) => match globset::GlobBuilder::new(g).literal_separator(true).build() {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(error) => return tool_error(format!("invalid glob {g:?}: {error}")),
            },
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
        let files: Vec<RelPath> = match Self::indexed_files(backend) {
            Ok(files) => files
                .iter()
                .filter(|f| f.skipped.is_none())
                .filter(|f| {
                    glob.as_ref()
                        .is_none_or(|g| g.is_match(f.path.to_string_lossy().as_ref()))
                })
                .map(|f| f.path.clone())
                .collect(),
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        // Files in parallel, each worker stopping once the limit is reached anywhere.
        let found = std::sync::Mutex::new(Vec::<TextMatch>::new());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let stopped_early = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..crate::engine::scan::worker_count() {
                scope.spawn(|| {
                    loop {
                        // Checked before claiming a file: every claimed file is read, so
                        // the files read are always a prefix of the list (in path order)
                        // and the first `wanted` matches found are the first in order.
                        if found.lock().map(|f| f.len() >= wanted).unwrap_or(true) {
                            if next.load(std::sync::atomic::Ordering::Relaxed) < files.len() {
                                // Files left unread: whatever was found is not the total.
                                stopped_early.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            break;
                        }
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let Some(content) = Self::read_regular(backend, path) else {
                            continue;
                        };
                        let local = matching_lines(&content, buffer_regex.as_ref(), &line_regex)
                            .into_iter()
                            .map(|(line, text)| TextMatch {
                                path: path.to_string(),
                                line,
                                text: String::from_utf8_lossy(text).chars().take(300).collect(),
                            })
                            .collect::<Vec<_>>();
                        if !local.is_empty()
                            && let Ok(mut all) = found.lock()
                        {
                            all.extend(local);
                        }
                    }
                });
            }
        });
        let mut matches = found.into_inner().unwrap_or_default();
        matches.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
        // Every file was read: the count is exact; otherwise it is a lower bound.
        let complete = !stopped_early.into_inner();
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

    fn index_status_now(&self) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        // Never waits: the snapshot as it is, catch-up progress included.
        let snapshot = backend.engine.snapshot();
        let status = IndexStatus::of(&backend.project, &snapshot, now_ns());
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

/// `index_status`: the keys of `codelens status --json` that the engine knows (same
/// names, same meaning; not `agents`, `git.head`, `pending[].change`), from its
/// snapshot, plus the engine's role and catch-up progress.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IndexStatus {
    /// The worktree the server stands in (differs from `index_root` on a mismatch).
    pub root: String,
    pub index_root: String,
    pub index_dir: String,
    pub schema_version: i64,
    pub files: u64,
    /// Files recorded but not parsed, by reason: binary, too_large, unreadable.
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub symbols: u64,
    /// Language → indexed files.
    pub languages: std::collections::BTreeMap<String, u64>,
    /// RFC 3339 UTC.
    pub last_sync: Option<String>,
    pub last_sync_secs_ago: Option<u64>,
    pub db_bytes: u64,
    pub git: StatusGit,
    pub pending: Vec<StatusPending>,
    /// Always `engine` here: the running engine's own pending set.
    pub pending_source: String,
    pub watcher: StatusWatcher,
    /// Null, or the three roots, both branches and the fix.
    pub worktree_mismatch: Option<Value>,
    /// As `codelens telemetry status --json`, less the machine id and the buffer's path
    /// (they stay out of an agent's transcript).
    pub telemetry: Value,
    /// `writer` or `follower`.
    pub role: String,
    /// `{state: not_started | running | done | failed, …}`.
    pub catchup: Value,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusGit {
    pub branch: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusPending {
    pub path: String,
    pub edited_secs_ago: u64,
    /// waiting, indexing, retrying, failed or unsynced.
    pub state: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusWatcher {
    /// native, degraded or disabled.
    pub mode: String,
    pub reason: String,
    /// Always `running` here.
    pub engine: String,
    pub rescans: u64,
    pub debounce_ms: u64,
    pub watched_dirs: usize,
    pub unwatched_dirs: usize,
}

impl IndexStatus {
    fn of(project: &Project, snapshot: &Snapshot, now: i64) -> IndexStatus {
        let secs_ago = |at_ns: i64| (now.saturating_sub(at_ns) / 1_000_000_000).max(0) as u64;
        let last_sync_secs_ago = snapshot
            .last_sync
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .and_then(|at| at.timestamp_nanos_opt())
            .map(secs_ago);
        let catchup = match &snapshot.catchup {
            crate::engine::Catchup::NotStarted => json!({"state": "not_started"}),
            crate::engine::Catchup::Running { checked, total } => {
                json!({"state": "running", "checked": checked, "total": total})
            }
            crate::engine::Catchup::Done { found, duration_ms } => {
                json!({"state": "done", "found": found, "duration_ms": duration_ms})
            }
            crate::engine::Catchup::Failed(why) => json!({"state": "failed", "error": why}),
        };
        let mismatch = snapshot.worktree_mismatch.as_ref();
        IndexStatus {
            root: mismatch
                .map_or(&project.root, |m| &m.worktree_root)
                .to_string_lossy()
                .into_owned(),
            index_root: project.root.to_string_lossy().into_owned(),
            index_dir: project.index_dir().to_string_lossy().into_owned(),
            schema_version: crate::engine::store::SCHEMA_VERSION,
            files: snapshot.stats.files,
            skipped: snapshot
                .stats
                .skipped
                .iter()
                .map(|(why, n)| (why.to_string(), *n))
                .collect(),
            symbols: snapshot.stats.symbols,
            languages: snapshot.stats.languages.clone(),
            last_sync: snapshot.last_sync.clone(),
            last_sync_secs_ago,
            db_bytes: snapshot.stats.db_bytes,
            git: StatusGit {
                branch: snapshot.branch.clone(),
            },
            pending: snapshot
                .pending
                .iter()
                .map(|p| StatusPending {
                    path: p.path.clone(),
                    edited_secs_ago: secs_ago(p.last_edit_ns),
                    state: crate::engine::runner::state_name(p.state).to_string(),
                })
                .collect(),
            pending_source: "engine".into(),
            watcher: StatusWatcher {
                mode: snapshot.watcher.mode_name().into(),
                reason: snapshot.watcher.reason.clone(),
                engine: "running".into(),
                rescans: snapshot.watcher.rescans,
                debounce_ms: snapshot.watcher.debounce_ms,
                watched_dirs: snapshot.watcher.watched_dirs,
                unwatched_dirs: snapshot.watcher.unwatched_dirs,
            },
            worktree_mismatch: mismatch.map(crate::engine::worktree::Mismatch::to_json),
            telemetry: snapshot.telemetry.to_agent_json(),
            role: match snapshot.role {
                crate::engine::Role::Writer => "writer".into(),
                crate::engine::Role::Follower => "follower".into(),
            },
            catchup,
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodelensServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("codelens", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// The default `initialize`, plus telemetry: the client's name mapped onto a fixed
    /// list of agents (the raw name is never kept), and one session start.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        telemetry::set_agent(&request.client_info.name);
        telemetry::record(EventType::Lifecycle, EventName::McpSessionStart);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    /// Requests the input guard renamed (see [`guard_line`]) get their Invalid Request
    /// error here, with their own id; any other unknown method is not found.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        if request.method == INVALID_REQUEST_METHOD {
            let reason = request
                .params
                .as_ref()
                .and_then(|p| p["reason"].as_str())
                .unwrap_or("malformed request")
                .to_string();
            return Err(McpError::invalid_request(
                format!("Invalid request: {reason}"),
                None,
            ));
        }
        Err(McpError::new(
            ErrorCode::METHOD_NOT_FOUND,
            request.method,
            None,
        ))
    }
}

/// What a malformed request that still carries an id is renamed to on its way in.
const INVALID_REQUEST_METHOD: &str = "codelens/invalid-request";
/// Longer lines are dropped unread (rmcp's own cap on a line).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// rmcp answers a line it cannot parse as an MCP message with an Invalid Request error
/// that has no `id` at all, even when the line had one (say a request with positional
/// `params`, which JSON-RPC 2.0 allows): the client waits forever for its answer. Such a
/// request — a JSON object with a string or integer `id`, not a response — is renamed
/// to [`INVALID_REQUEST_METHOD`], which is answered with an error carrying that id. Every
/// other line passes unchanged.
fn guard_line(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Cow::Borrowed(line);
    }
    let error = match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
        Ok(_) => return Cow::Borrowed(line),
        Err(error) => error,
    };
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
        return Cow::Borrowed(line);
    };
    let usable_id = match message.get("id") {
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !usable_id || message.contains_key("result") || message.contains_key("error") {
        return Cow::Borrowed(line);
    }
    let mut reason = error.to_string();
    reason.truncate(200);
    let renamed = json!({
        "jsonrpc": "2.0",
        "id": message["id"],
        "method": INVALID_REQUEST_METHOD,
        "params": {"reason": reason},
    });
    let mut out = renamed.to_string().into_bytes();
    out.push(b'\n');
    Cow::Owned(out)
}

/// Copies stdin to rmcp line by line through [`guard_line`].
async fn pump_input(
    input: impl tokio::io::AsyncRead + Unpin,
    mut to_server: impl tokio::io::AsyncWrite + Unpin,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut input = tokio::io::BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    let mut discarding = false;
    loop {
        let (taken, complete) = {
            let Ok(buf) = input.fill_buf().await else {
                break;
            };
            if buf.is_empty() {
                break;
            }
            let (taken, complete) = match memchr::memchr(b'\n', buf) {
                Some(at) => (at + 1, true),
                None => (buf.len(), false),
            };
            if !discarding {
                line.extend_from_slice(&buf[..taken]);
            }
            (taken, complete)
        };
        input.consume(taken);
        if line.len() > MAX_LINE_BYTES {
            line.clear();
            discarding = true;
        }
        if complete {
            if !discarding
                && (to_server.write_all(&guard_line(&line)).await.is_err()
                    || to_server.flush().await.is_err())
            {
                break;
            }
            discarding = false;
            line.clear();
        }
    }
    // A last message without its newline is still a message: answer it too.
    if !discarding && !line.iter().all(u8::is_ascii_whitespace) {
        line.push(b'\n');
        let _ = to_server.write_all(&guard_line(&line)).await;
        let _ = to_server.flush().await;
    }
    let _ = to_server.shutdown().await;
}

/// Copies rmcp's output to stdout. An error rmcp sends without an `id` (its answer to a
/// line that is JSON but no message) gets `"id": null`, as JSON-RPC 2.0 requires.
async fn pump_output(
    from_server: impl tokio::io::AsyncRead + Unpin,
    mut output: impl tokio::io::AsyncWrite + Unpin,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    const NO_ID: &[u8] = br#"{"jsonrpc":"2.0","error":"#;
    let mut from_server = tokio::io::BufReader::new(from_server);
    let mut line = Vec::new();
    loop {
        line.clear();
        match from_server.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let written = if let Some(rest) = line.strip_prefix(NO_ID) {
            let mut fixed = br#"{"jsonrpc":"2.0","id":null,"error":"#.to_vec();
            fixed.extend_from_slice(rest);
            output.write_all(&fixed).await
        } else {
            output.write_all(&line).await
        };
        if written.is_err() || output.flush().await.is_err() {
            break;
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes stdin, or SIGTERM/SIGINT: then
/// the service stops, the engine thread ends (its locks released, its cookie files
/// removed) and the process exits 0.
pub fn serve(start: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let server = CodelensServer::new(start);
        // stdin → guard → rmcp → fix-up → stdout (see `guard_line` and `pump_output`).
        let (to_server, server_input) = tokio::io::duplex(256 * 1024);
        let (server_output, from_server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(pump_input(tokio::io::stdin(), to_server));
        let output = tokio::spawn(pump_output(from_server, tokio::io::stdout()));
        let running = server.serve((server_input, server_output)).await?;
        let stop = running.cancellation_token();
        tokio::spawn(async move {
            terminated().await;
            stop.cancel();
        });
        let ended = running.waiting().await;
        // The service and its writer are gone: let the last answers reach stdout.
        let _ = tokio::time::timeout(Duration::from_secs(2), output).await;
        ended?;
        Ok::<(), anyhow::Error>(())
    });
    // The service (and with it the engine) is gone; a blocking read of stdin may still
    // be parked on a runtime thread and must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    served
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> NameList {
        NameList::new(1, names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn names_match_by_substring_and_prefix_ignoring_ascii_case() {
        let names = list(&["IndexStore", "open", "openStore", "storeStore", "Zebra"]);
        let found = |needle: &str, prefix| {
            names
                .matching(needle.as_bytes(), prefix, 10)
                .unwrap()
                .into_iter()
                .map(|i| names.names[i].as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found("store", false),
            vec!["IndexStore", "openStore", "storeStore"]
        );
        assert_eq!(found("store", true), vec!["storeStore"]);
        assert_eq!(found("open", true), vec!["open", "openStore"]);
        // A match never spans two names.
        assert!(found("ezebra", false).is_empty());
        assert!(
            names.matching(b"o", false, 2).is_none(),
            "past the cap: let SQLite scan"
        );
    }

    #[test]
    fn whole_buffer_search_finds_exactly_the_lines_a_per_line_search_finds() {
        let contents: [&[u8]; 8] = [
            b"a\rb\nlone carriage return\n",
            b"",
            b"fn main() {}\n",
            b"alpha\nbeta\n\ngamma beta\nlast without newline",
            b"crlf line\r\nbeta\r\n\r\nend\r\n",
            b"a\nb\na b\n  \n\tindented beta\n",
            b"\n\n\n",
            b"word\nwordy\nsword\nword",
        ];
        let patterns = [
            "beta",
            "^beta$",
            "^$",
            "a\\sb",
            "a\\nb",
            "\\bword\\b",
            "^\\s+",
            "e$",
            ".",
            "x^",
            "^",
            "a.b",
            "\\Aalpha",
            "beta\\z",
            "(?-m)^beta$",
            "(?s)a.b",
        ];
        for pattern in patterns {
            let multi = regex::bytes::RegexBuilder::new(pattern)
                .multi_line(true)
                .build()
                .unwrap();
            let multi = searchable_as_buffer(pattern).then_some(&multi);
            let single = regex::bytes::Regex::new(pattern).unwrap();
            let per_line = regex::Regex::new(pattern).unwrap();
            for content in contents {
                let text = std::str::from_utf8(content).unwrap();
                let expected: Vec<(u32, String)> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, line)| per_line.is_match(line))
                    .map(|(n, line)| (n as u32 + 1, line.to_string()))
                    .collect();
                let found: Vec<(u32, String)> = matching_lines(content, multi, &single)
                    .into_iter()
                    .map(|(n, line)| (n, String::from_utf8_lossy(line).into_owned()))
                    .collect();
                assert_eq!(found, expected, "pattern {pattern:?} in {text:?}");
            }
        }
    }

    #[test]
    fn paths_are_normalised_the_same_way_or_refused() {
        for same in [
            "src/a.rs",
            "./src/a.rs",
            "src/./a.rs",
            "src//a.rs",
            "src/a.rs/",
        ] {
            assert_eq!(
                resolve_inside(same).unwrap().to_string(),
                "src/a.rs",
                "{same:?}"
            );
        }
        for bad in [
            "",
            ".",
            "./",
            "/etc/passwd",
            "../x",
            "src/../../x",
            "src/..",
            "a\0b",
        ] {
            assert!(resolve_inside(bad).is_err(), "{bad:?}");
        }
    }
}
