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
use std::sync::{Arc, OnceLock};
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

mod files;
mod logging;
mod status;
mod symbols;
mod text;

pub use files::{FileItem, FindFilesArgs};
pub use status::NoArgs;
pub use symbols::{
    DefinitionItem, FileOutlineArgs, SearchSymbolsArgs, SymbolDefinitionArgs, SymbolItem,
};
pub use text::{SearchTextArgs, TextMatch};

use crate::config::Config;
use crate::engine::freshness::Freshness;
use crate::engine::lang::Lang;
use crate::engine::project::Project;
use crate::engine::read::{Outline, ReadError, TextOptions, TextQuery};
use crate::engine::status::{Audience, StatusReport};
use crate::engine::store::{NameMatch, SymbolHit};
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
    /// Answers every read: the engine's read API (the server opens no SQLite itself).
    engine: Engine,
    /// Only the first query waits for start-up catch-up; a later re-check (after an
    /// outside `codelens sync`, an overflow) shows in the banner instead of stalling.
    waited_for_catchup: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct CodelensServer {
    /// Filled by a thread of its own, so `initialize` answers at once even on a big
    /// index; tools wait for it (opening takes milliseconds, catch-up runs after).
    backend: Arc<OnceLock<Result<Backend, String>>>,
    tool_router: ToolRouter<Self>,
    /// The client's logging level, once it set one (`logging/setLevel`).
    logging: Arc<logging::Logging>,
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
    /// The engine's verdict on the index's freshness: `verified`, `pending` or
    /// `unverified` with its `reason` (as `codelens status --json`'s `freshness`).
    pub freshness: Option<Freshness>,
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
            freshness: None,
        }
    }
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A read the engine could not answer: its reason as is, an index error prefixed.
fn read_error(error: ReadError) -> CallToolResult {
    match error {
        ReadError::Refused(why) => tool_error(why),
        ReadError::Index(error) => tool_error(format!("codelens: {error}")),
    }
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

/// How often a request waiting for start-up catch-up reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Where a request that waits reports its progress: the client's `progressToken`, if
/// it sent one, as `notifications/progress` with files checked and in all.
pub struct CatchupProgress {
    to: Option<(rmcp::Peer<RoleServer>, rmcp::model::ProgressToken)>,
    runtime: Option<tokio::runtime::Handle>,
    /// The last `checked` count sent (`u64::MAX`: none yet).
    sent: std::sync::atomic::AtomicU64,
}

impl CatchupProgress {
    fn of(context: &RequestContext<RoleServer>) -> CatchupProgress {
        CatchupProgress {
            to: context
                .meta
                .get_progress_token()
                .map(|token| (context.peer.clone(), token)),
            runtime: tokio::runtime::Handle::try_current().ok(),
            sent: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    /// Sends the catch-up progress `snapshot` shows (on the calling, blocking thread:
    /// it is on the wire before the answer). Progress only ever increases.
    fn report(&self, snapshot: &Snapshot) {
        let (Some((peer, token)), Some(runtime)) = (&self.to, &self.runtime) else {
            return;
        };
        let (checked, total) = match snapshot.catchup {
            crate::engine::Catchup::Running { checked, total } => (checked, total),
            _ => (0, 0),
        };
        // Only progress that moved is sent (clients expect it to increase).
        let last = self
            .sent
            .swap(checked, std::sync::atomic::Ordering::Relaxed);
        if last != u64::MAX && checked <= last {
            return;
        }
        let mut param = rmcp::model::ProgressNotificationParam::new(token.clone(), checked as f64)
            .with_message(format!(
                "waiting for catch-up: {checked} of {total} changed-looking files checked"
            ));
        if total > 0 {
            param = param.with_total(total as f64);
        }
        let _ = runtime.block_on(peer.notify_progress(param));
    }
}

/// A glob as agents write them, the way `.gitignore`, `rg -g` and `fd -g` read one: a
/// glob without a `/` (`*.rs`) matches a file's name at any depth; one with a `/`
/// (`src/*.rs`, `**/x`) matches the path from the project root, `*` staying within one
/// directory.
pub struct PathGlob {
    matcher: globset::GlobMatcher,
    by_name: bool,
    /// What every matching path starts with: the pattern up to its first
    /// metacharacter, cut back to a `/` (empty for a by-name glob).
    literal_prefix: Vec<u8>,
}

impl PathGlob {
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|error| format!("invalid glob {pattern:?}: {error}"))?;
        let by_name = !pattern.contains('/');
        let literal = &pattern[..pattern
            .find(['*', '?', '[', '{', '\\'])
            .unwrap_or(pattern.len())];
        let literal_prefix = match literal.rfind('/') {
            Some(slash) if !by_name => literal.as_bytes()[..=slash].to_vec(),
            _ => Vec::new(),
        };
        Ok(PathGlob {
            matcher: glob.compile_matcher(),
            by_name,
            literal_prefix,
        })
    }

    /// The part of `sorted` (in byte order of its paths) that can hold a match: the
    /// run of paths under the glob's literal directory prefix, found by binary search,
    /// so `pkg01/**/*.ts` tests a few thousand paths of a 100k-file index, not all.
    pub fn candidates<'a, T>(&self, sorted: &'a [T], path: impl Fn(&T) -> &RelPath) -> &'a [T] {
        let prefix = self.literal_prefix.as_slice();
        let start = sorted.partition_point(|item| path(item).as_bytes() < prefix);
        let len = sorted[start..].partition_point(|item| path(item).as_bytes().starts_with(prefix));
        &sorted[start..start + len]
    }

    pub fn is_match(&self, path: &RelPath) -> bool {
        if self.by_name {
            self.matcher
                .is_match(String::from_utf8_lossy(path.file_name()).as_ref())
        } else {
            self.matcher.is_match(path.to_string_lossy().as_ref())
        }
    }
}

/// Plain JSON Schema 2020-12 for every tool: schemars marks integers with formats of
/// its own (`uint32`, `uint64`, `uint`, `int64`, `double` …) that are not in the
/// standard; strict validators (Ajv) warn on or reject them. The bounds they imply for
/// unsigned integers stay, as `minimum: 0`.
fn plain_json_schema(schema: &mut serde_json::Map<String, Value>) {
    let custom = schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| {
            f.starts_with("int") || f.starts_with("uint") || f == "float" || f == "double"
        });
    if custom {
        let unsigned = schema
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f.starts_with("uint"));
        schema.remove("format");
        if unsigned {
            schema.entry("minimum").or_insert(json!(0));
        }
    }
    for value in schema.values_mut() {
        plain_json_value(value);
    }
}

fn plain_json_value(value: &mut Value) {
    match value {
        Value::Object(map) => plain_json_schema(map),
        Value::Array(items) => items.iter_mut().for_each(plain_json_value),
        _ => {}
    }
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

impl CodelensServer {
    /// Opens the project containing `start` and starts its engine on a thread of its
    /// own (catch-up runs in the background too: `initialize` waits for neither).
    /// Without an index, every tool answers with a clear error instead.
    /// Every tool: one router per tool group (one file each), combined, with their
    /// schemas made plain JSON Schema.
    fn all_tools() -> ToolRouter<Self> {
        let mut router =
            Self::symbols_tools() + Self::files_tools() + Self::text_tools() + Self::status_tools();
        for route in router.map.values_mut() {
            plain_json_schema(Arc::make_mut(&mut route.attr.input_schema));
            if let Some(output) = &mut route.attr.output_schema {
                plain_json_schema(Arc::make_mut(output));
            }
        }
        router
    }

    /// `config` is the environment as the process read it at start.
    pub fn new(start: &Path, config: Config) -> CodelensServer {
        let backend = Arc::new(OnceLock::new());
        let filled = Arc::clone(&backend);
        let start = start.to_path_buf();
        let opener = std::thread::Builder::new()
            .name("codelens-open".into())
            .spawn(move || {
                // A panic must still fill the cell: tools wait on it.
                let opened = std::panic::catch_unwind(|| Self::open_backend(&start, &config))
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
            tool_router: Self::all_tools(),
            logging: Arc::default(),
        }
    }

    fn open_backend(start: &Path, config: &Config) -> Result<Backend, String> {
        Project::find(start)
            .map_err(|e| e.to_string())
            .and_then(|project| {
                for warning in &config.warnings {
                    eprintln!("codelens: warning: {warning}");
                }
                // stderr: stdout carries only protocol messages.
                let progress = Default::default();
                match codelens_core::engine::reconcile::rebuild_if_outdated(&project, &progress) {
                    Ok(Some(old)) => eprintln!(
                        "codelens: {}",
                        codelens_core::engine::reconcile::rebuilt_message(old)
                    ),
                    Ok(None) => {}
                    Err(error) => return Err(error.to_string()),
                }
                let mut options = EngineOptions::from_config(config);
                options.start_dir = Some(start.to_path_buf());
                let engine = Engine::start(project.clone(), options).map_err(|e| e.to_string())?;
                if telemetry::is_enabled()
                    && let Ok(stats) = engine.read().stats()
                {
                    telemetry::set_project(&stats.languages, stats.files);
                }
                telemetry::record(EventType::Lifecycle, EventName::EngineStart);
                Ok(Backend {
                    project,
                    engine,
                    waited_for_catchup: std::sync::atomic::AtomicBool::new(false),
                })
            })
    }
}

impl CodelensServer {
    /// A read tool's call: counted for telemetry, then answered off the async runtime
    /// (the engine's reads block), with the request's progress token for catch-up.
    async fn answer_read(
        &self,
        tool: EventName,
        context: &RequestContext<RoleServer>,
        answer: impl FnOnce(&CodelensServer, &CatchupProgress) -> CallToolResult + Send + 'static,
    ) -> Result<CallToolResult, McpError> {
        telemetry::record(EventType::McpTool, tool);
        let server = self.clone();
        let progress = CatchupProgress::of(context);
        Ok(blocking(move || answer(&server, &progress)).await)
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

    /// The snapshot a read answer is composed from: every edit saved before the question
    /// is in it (cookie), and start-up catch-up has finished or timed out.
    fn fresh_snapshot(backend: &Backend, progress: &CatchupProgress) -> Arc<Snapshot> {
        let first = !backend
            .waited_for_catchup
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        // The first question waits for start-up catch-up (reporting its progress), and
        // only then settles: the engine reads no event while it compares the tree.
        let waited = first.then(|| {
            backend
                .engine
                .wait_for_catchup_reporting(PROGRESS_EVERY, |now| progress.report(now))
        });
        if let Some(unfinished) = waited.filter(|w| !w.catchup_finished()) {
            // Timed out: its banner and verdict say catch-up is still running.
            return unfinished;
        }
        let settled = backend.engine.settle(SETTLE_TIMEOUT);
        let snapshot = backend.engine.snapshot();
        // Never vouch for a set the engine could not confirm is complete.
        if settled {
            snapshot
        } else {
            Arc::new(snapshot.unsettled())
        }
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
        let with_unreported = backend
            .engine
            .read()
            .with_unreported_edits(snapshot, referenced);
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
        body.freshness = Some(snapshot.freshness.clone());
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
        for notice in [snapshot.auto_sync_notice(), snapshot.freshness_notice()]
            .into_iter()
            .flatten()
        {
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
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CodelensServer {
    #[allow(deprecated)] // MCP logging: deprecated by SEP-2577, still read by clients
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("codelens", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    /// `logging/setLevel`: the engine's events at that level or above reach the client
    /// from now on (see `logging.rs`).
    #[allow(deprecated)] // MCP logging: deprecated by SEP-2577, still read by clients
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.logging
            .set(request.level, context.peer, Arc::clone(&self.backend));
        Ok(())
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
pub fn serve(start: &Path, config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let server = CodelensServer::new(start, config.clone());
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

    #[test]
    fn a_glob_narrowed_to_its_literal_prefix_matches_exactly_what_a_full_scan_matches() {
        let mut paths: Vec<RelPath> = [
            "a.rs",
            "pkg0/x.ts",
            "pkg01/a/b.ts",
            "pkg01/c.ts",
            "pkg01/c.rs",
            "pkg01x/d.ts",
            "pkg02/e.ts",
            "src/a.rs",
            "src/ab.rs",
            "src/b/a.rs",
            "src{/z.rs",
            "z/pkg01/f.ts",
        ]
        .iter()
        .map(|p| RelPath::from_bytes(p.as_bytes().to_vec()))
        .collect();
        paths.push(RelPath::from_bytes(b"pkg01/\xff.ts".to_vec()));
        paths.sort();
        let mut narrowed_somewhere = false;
        for pattern in [
            "pkg01/**/*.ts",
            "pkg01/*.ts",
            "pkg0*/*.ts",
            "**/*.ts",
            "*.ts",
            "src/a[bc].rs",
            "src/{a,b}*.rs",
            "src/**",
            "z/pkg01/*",
            "nothing/*",
            "src\\{/*.rs",
        ] {
            let glob = PathGlob::new(pattern).unwrap();
            let scanned: Vec<&RelPath> = paths.iter().filter(|p| glob.is_match(p)).collect();
            let candidates = glob.candidates(&paths, |p| p);
            narrowed_somewhere |= candidates.len() < paths.len();
            let narrowed: Vec<&RelPath> = candidates.iter().filter(|p| glob.is_match(p)).collect();
            assert_eq!(narrowed, scanned, "{pattern}");
        }
        assert!(narrowed_somewhere);
        assert_eq!(
            PathGlob::new("pkg01/**/*.ts")
                .unwrap()
                .candidates(&paths, |p| p)
                .len(),
            4
        );
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
