//! `codelens install` / `uninstall`: register `codelens --mcp` with the coding agents a
//! person uses, by editing each agent's own MCP config file surgically (see
//! [`agents`] for the table of agents, [`jsonc`] and [`toml`] for the editors).
//!
//! Every change is planned first — each file read, parsed and edited in memory — and
//! only written when every file involved parsed, so a malformed file in one agent's
//! config leaves all of them untouched. A changed file is backed up to
//! `<file>.codelens-backup` (with the file's permissions) just before it is first
//! replaced; an existing backup is kept, so it stays the pre-codelens original.

pub mod agents;
mod jsonc;
mod memory;
mod toml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::AgentEnv;
pub use agents::{AGENTS, Agent, Format};

/// The key every agent's config holds our server under.
pub const SERVER_NAME: &str = "codelens";
/// Suffix of the copy of a file made before changing it.
pub const BACKUP_SUFFIX: &str = ".codelens-backup";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {what} — left untouched", path.display())]
    Malformed { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A mistake in the command line (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error("no agent found; looked at {0} (name one with --agent NAME)")]
    NoAgent(String),
    #[error("cannot locate the codelens binary to register: {0}")]
    Exe(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Project,
    User,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Project => "project",
            Scope::User => "user",
        })
    }
}

/// What the registered entry runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `codelens` when the `codelens` found on `PATH` is this very binary, else the
    /// absolute path of the running binary (a different `codelens` on `PATH`, say an
    /// older one, must not be what agents start).
    pub command: String,
}

impl Launch {
    pub fn detect(env: &AgentEnv) -> Result<Launch> {
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|e| Error::Exe(e.to_string()))?;
        let same_on_path = agents::on_path(env, SERVER_NAME)
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| p == exe);
        if same_on_path {
            return Ok(Launch {
                command: SERVER_NAME.to_string(),
            });
        }
        let command = exe
            .to_str()
            .ok_or_else(|| Error::Exe(format!("{} is not valid UTF-8", exe.display())))?;
        Ok(Launch {
            command: command.to_string(),
        })
    }
}

/// Where install looks and what it writes.
#[derive(Debug, Clone)]
pub struct Context {
    pub env: AgentEnv,
    /// Project-scope files live here: the git worktree top, or the directory given.
    pub project_root: PathBuf,
}

impl Context {
    /// An agent's config file for `scope`; `None` when the agent has none there (or
    /// `HOME` is unset for the user scope).
    pub fn config_path(&self, agent: &Agent, scope: Scope) -> Option<PathBuf> {
        match scope {
            Scope::User => agents::pick(
                agent
                    .user_config
                    .iter()
                    .filter_map(|u| u.resolve(&self.env)),
            ),
            Scope::Project => agents::pick(
                agent
                    .project_config
                    .iter()
                    .map(|p| self.project_root.join(p)),
            ),
        }
    }

    pub fn memory_path(&self, agent: &Agent, scope: Scope) -> Option<PathBuf> {
        match scope {
            Scope::User => agent.user_memory.and_then(|u| u.resolve(&self.env)),
            Scope::Project => agent.project_memory.map(|p| self.project_root.join(p)),
        }
    }

    fn user_installed(&self, agent: &Agent) -> bool {
        agent
            .user_markers
            .iter()
            .filter_map(|m| m.resolve(&self.env))
            .any(|p| p.exists())
            || agent
                .binaries
                .iter()
                .any(|b| agents::on_path(&self.env, b).is_some())
    }

    fn used_by_project(&self, agent: &Agent) -> bool {
        agent
            .project_markers
            .iter()
            .any(|m| self.project_root.join(m).exists())
    }

    /// Agents that look installed, each with the scope to use when none is asked for:
    /// the user scope, unless only the project shows the agent (a `.vscode/` in a repo of
    /// someone without VS Code's user directory).
    fn detect(&self) -> Vec<(&'static Agent, Scope)> {
        AGENTS
            .iter()
            .filter_map(|agent| {
                if self.user_installed(agent) && !agent.user_config.is_empty() {
                    Some((agent, Scope::User))
                } else if self.used_by_project(agent) && !agent.project_config.is_empty() {
                    Some((agent, Scope::Project))
                } else {
                    None
                }
            })
            .collect()
    }

    /// What detection looked at, for the "no agent found" message.
    fn looked_at(&self) -> String {
        let mut places = Vec::new();
        for agent in AGENTS {
            for marker in agent.user_markers {
                if let Some(p) = marker.resolve(&self.env) {
                    places.push(p.display().to_string());
                }
            }
            for marker in agent.project_markers {
                places.push(self.project_root.join(marker).display().to_string());
            }
        }
        let binaries: Vec<&str> = AGENTS.iter().flat_map(|a| a.binaries).copied().collect();
        format!(
            "{} and for {} on PATH",
            places.join(", "),
            binaries.join(", ")
        )
    }
}

/// The members of our entry, in the order written (serde_json's map would sort them).
pub type Entry = Vec<(&'static str, Value)>;

/// The entry an agent's config gets, as JSON values (the TOML editor converts them).
pub fn entry(agent: &Agent, launch: &Launch) -> Entry {
    let mut args = vec!["--mcp".to_string()];
    if agent.workspace_arg {
        args.push("${workspaceFolder}".to_string());
    }
    let command = json!(launch.command);
    match agent.format {
        Format::McpServers | Format::CodexToml => vec![("command", command), ("args", json!(args))],
        Format::ClaudeCode | Format::VsCode => vec![
            ("type", json!("stdio")),
            ("command", command),
            ("args", json!(args)),
        ],
        Format::Opencode => {
            let mut command = vec![launch.command.clone()];
            command.extend(args);
            vec![
                ("type", json!("local")),
                ("command", json!(command)),
                ("enabled", json!(true)),
            ]
        }
    }
}

/// Our entry in `text` (a file of `agent`'s format), if any.
pub fn read_entry(agent: &Agent, text: &str) -> Result<Option<Value>, String> {
    match agent.format {
        Format::CodexToml => toml::get(text, SERVER_NAME),
        format => jsonc::get(text, format.container(), SERVER_NAME),
    }
}

fn upsert(agent: &Agent, text: &str, entry: &Entry) -> Result<String, String> {
    match agent.format {
        Format::CodexToml => toml::upsert(text, SERVER_NAME, entry),
        format => jsonc::upsert(text, format.container(), SERVER_NAME, entry),
    }
}

fn remove(agent: &Agent, text: &str) -> Result<String, String> {
    match agent.format {
        Format::CodexToml => toml::remove(text, SERVER_NAME),
        format => jsonc::remove(text, format.container(), SERVER_NAME),
    }
}

/// Where codelens is registered: one agent, one scope, one file.
#[derive(Debug, Clone)]
pub struct Registration {
    pub agent: &'static Agent,
    pub scope: Scope,
    pub path: PathBuf,
}

/// Files larger than this are never parsed by [`registrations`]: for them the cheap key
/// check alone decides (`~/.claude.json` keeps every project's history and can be tens
/// of MB; `status` must stay quick).
pub const MAX_PARSED_BYTES: u64 = 16 * 1024 * 1024;

/// Every agent config holding our entry. Cheap: a handful of reads, one byte scan each
/// for `"codelens"` used as a key (`"codelens":` / `[mcp_servers.codelens]`); only a
/// file that has one is parsed, and only if it is at most [`MAX_PARSED_BYTES`] (a larger
/// one with the key counts as registered, unverified). A file that does not parse counts
/// as not registered (status never fails over someone else's file).
pub fn registrations(ctx: &Context) -> Vec<Registration> {
    let mut found = Vec::new();
    for agent in AGENTS {
        for scope in [Scope::Project, Scope::User] {
            let Some(path) = ctx.config_path(agent, scope) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if !has_key(agent, &bytes) {
                continue;
            }
            let registered = bytes.len() as u64 > MAX_PARSED_BYTES
                || std::str::from_utf8(&bytes)
                    .is_ok_and(|text| matches!(read_entry(agent, text), Ok(Some(_))));
            if registered {
                found.push(Registration { agent, scope, path });
            }
        }
    }
    found
}

/// Whether `bytes` name our server as a key: `"codelens"` followed by optional blanks
/// and `:` (JSON), or `codelens` as a TOML table name or key. A quick over-approximation
/// of [`read_entry`]: never false when the entry is there.
fn has_key(agent: &Agent, bytes: &[u8]) -> bool {
    let needle: &[u8] = match agent.format {
        Format::CodexToml => SERVER_NAME.as_bytes(),
        _ => b"\"codelens\"",
    };
    memchr::memmem::find_iter(bytes, needle).any(|at| match agent.format {
        Format::CodexToml => true,
        _ => bytes[at + needle.len()..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b':'),
    })
}

/// What happened (or, with `--dry-run`, would happen) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Updated,
    Unchanged,
    Removed,
    NoteAdded,
    NoteRemoved,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Unchanged => "already registered, unchanged",
            Action::Removed => "removed",
            Action::NoteAdded => "note added",
            Action::NoteRemoved => "note removed",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Step {
    pub agent: &'static Agent,
    pub scope: Scope,
    pub path: PathBuf,
    pub action: Action,
}

/// Planned file contents: `None` before = the file does not exist; `None` after = delete.
#[derive(Debug, Clone)]
struct FileEdit {
    before: Option<String>,
    after: Option<String>,
}

/// Every step, and the files they change, not yet written.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    files: BTreeMap<PathBuf, FileEdit>,
}

impl Plan {
    /// The text `path` has so far in this plan (the disk's, until an edit).
    fn current(&mut self, path: &Path) -> Result<Option<String>> {
        if !self.files.contains_key(path) {
            let before = read_text(path)?;
            self.files.insert(
                path.to_path_buf(),
                FileEdit {
                    after: before.clone(),
                    before,
                },
            );
        }
        Ok(self.files[path].after.clone())
    }

    fn set(&mut self, path: &Path, after: Option<String>) {
        if let Some(edit) = self.files.get_mut(path) {
            edit.after = after;
        }
    }

    /// The files this plan changes.
    pub fn changed_files(&self) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|(_, e)| e.before != e.after)
            .map(|(p, _)| p.as_path())
            .collect()
    }

    /// A unified diff of every change (what `--dry-run` prints).
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for (path, edit) in &self.files {
            if edit.before == edit.after {
                continue;
            }
            let before = edit.before.as_deref().unwrap_or("");
            let after = edit.after.as_deref().unwrap_or("");
            let shown = path.display().to_string();
            let old_name = if edit.before.is_some() {
                format!("a{}", with_slash(&shown))
            } else {
                "/dev/null".to_string()
            };
            let new_name = if edit.after.is_some() {
                format!("b{}", with_slash(&shown))
            } else {
                "/dev/null".to_string()
            };
            let diff = similar::TextDiff::from_lines(before, after);
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&old_name, &new_name)
                    .to_string(),
            );
        }
        out
    }

    /// Writes every changed file: backup first (when the file existed and has no backup
    /// yet: an existing `<file>.codelens-backup` is kept, as the pre-codelens original),
    /// then the new content through a temporary file renamed over it. Returns the
    /// backup of every changed file that existed (made now or kept).
    pub fn apply(&self) -> Result<Vec<PathBuf>> {
        let mut backups = Vec::new();
        for (path, edit) in &self.files {
            if edit.before == edit.after {
                continue;
            }
            // Edit a symlinked config (dotfiles managers) where it lives, not the link.
            let target = if edit.before.is_some() {
                path.canonicalize().map_err(|e| io(path, e))?
            } else {
                path.clone()
            };
            if let Some(before) = &edit.before {
                // The first backup is kept: it is the file as it was before codelens
                // ever changed it, which a later install or uninstall must not replace.
                let backup = backup_path(&target);
                crate::fsutil::write_backup_once(&target, &backup, before.as_bytes())
                    .map_err(|e| io(&backup, e))?;
                backups.push(backup);
            }
            match &edit.after {
                Some(after) => write_atomically(&target, after)?,
                None => std::fs::remove_file(&target).map_err(|e| io(&target, e))?,
            }
        }
        Ok(backups)
    }
}

fn with_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(BACKUP_SUFFIX);
    PathBuf::from(name)
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's text; `None` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Malformed {
                path: path.to_path_buf(),
                what: "not UTF-8 text".into(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Replaces `path` with `text` atomically, keeping the file's permissions (see
/// [`crate::fsutil::write_atomically`]); a new file gets the usual 0666 minus umask.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    crate::fsutil::write_atomically(path, text.as_bytes(), 0o666).map_err(|e| io(path, e))
}

/// Which agents, in which scope.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Named with `--agent`; empty: detect them.
    pub agents: Vec<&'static Agent>,
    /// `--project` / `--user`; `None`: each agent's default (see [`Context::detect`]).
    pub scope: Option<Scope>,
}

/// Plans `codelens install`. `want_note(agent, scope, memory_file)` says whether that
/// agent gets the note about the staleness banner (asked, or from a flag).
pub fn plan_install(
    ctx: &Context,
    selection: &Selection,
    launch: &Launch,
    mut want_note: impl FnMut(&Agent, Scope, &Path) -> bool,
) -> Result<Plan> {
    let targets: Vec<(&'static Agent, Scope)> = if selection.agents.is_empty() {
        let detected = ctx.detect();
        let detected: Vec<_> = match selection.scope {
            None => detected,
            Some(scope) => detected
                .into_iter()
                .filter(|(agent, _)| has_scope(agent, scope))
                .map(|(agent, _)| (agent, scope))
                .collect(),
        };
        if detected.is_empty() {
            return Err(Error::NoAgent(ctx.looked_at()));
        }
        detected
    } else {
        let scope = selection.scope.unwrap_or(Scope::User);
        for agent in &selection.agents {
            if !has_scope(agent, scope) {
                return Err(Error::Usage(format!(
                    "{} has no {scope}-scoped MCP configuration (try --{})",
                    agent.name,
                    match scope {
                        Scope::User => "project",
                        Scope::Project => "user",
                    }
                )));
            }
        }
        selection.agents.iter().map(|a| (*a, scope)).collect()
    };

    let mut plan = Plan::default();
    for (agent, scope) in &targets {
        let Some(path) = ctx.config_path(agent, *scope) else {
            return Err(Error::Usage(format!(
                "{}'s {scope} configuration needs HOME to be set",
                agent.name
            )));
        };
        let before = plan.current(&path)?;
        let text = before.as_deref().unwrap_or("");
        let malformed = |what| Error::Malformed {
            path: path.clone(),
            what,
        };
        let had = read_entry(agent, text).map_err(malformed)?.is_some();
        let after = upsert(agent, text, &entry(agent, launch)).map_err(malformed)?;
        let action = match (had, before.as_deref() == Some(after.as_str())) {
            (_, true) => Action::Unchanged,
            (true, false) => Action::Updated,
            (false, false) => Action::Added,
        };
        plan.set(&path, Some(after));
        plan.steps.push(Step {
            agent,
            scope: *scope,
            path,
            action,
        });
    }
    for (agent, scope) in &targets {
        let Some(path) = ctx.memory_path(agent, *scope) else {
            continue;
        };
        let text = plan.current(&path)?.unwrap_or_default();
        if text.contains(memory::BEGIN) || !want_note(agent, *scope, &path) {
            continue;
        }
        plan.set(&path, Some(memory::add(&text)));
        plan.steps.push(Step {
            agent,
            scope: *scope,
            path,
            action: Action::NoteAdded,
        });
    }
    Ok(plan)
}

fn has_scope(agent: &Agent, scope: Scope) -> bool {
    match scope {
        Scope::User => !agent.user_config.is_empty(),
        Scope::Project => !agent.project_config.is_empty(),
    }
}

/// Plans `codelens uninstall`: our entry (and note) out of every selected agent's config
/// in the selected scope(s) (both when none is given). A note stays while another agent
/// that keeps its registration reads the same memory file (`AGENTS.md` is shared).
pub fn plan_uninstall(ctx: &Context, selection: &Selection) -> Result<Plan> {
    let chosen = |r: &Registration| {
        (selection.agents.is_empty() || selection.agents.iter().any(|a| a.name == r.agent.name))
            && selection.scope.is_none_or(|s| s == r.scope)
    };
    // Files that do not parse are not "registered"; a named agent's malformed file
    // still has to be reported, not silently skipped.
    for agent in &selection.agents {
        for scope in [Scope::Project, Scope::User] {
            if selection.scope.is_some_and(|s| s != scope) {
                continue;
            }
            if let Some(path) = ctx.config_path(agent, scope)
                && let Some(text) = read_text(&path)?
            {
                let checked = match agent.format {
                    Format::CodexToml => toml::validate(&text),
                    format => jsonc::validate(&text, format.container()),
                };
                checked.map_err(|what| Error::Malformed { path, what })?;
            }
        }
    }
    let (removing, staying): (Vec<_>, Vec<_>) =
        registrations(ctx).into_iter().partition(|r| chosen(r));
    let mut plan = Plan::default();
    for reg in &removing {
        let text = plan.current(&reg.path)?.unwrap_or_default();
        let after = remove(reg.agent, &text).map_err(|what| Error::Malformed {
            path: reg.path.clone(),
            what,
        })?;
        // A file that held nothing but our entry (install created it) goes away.
        let empty = matches!(after.trim(), "" | "{}");
        plan.set(&reg.path, if empty { None } else { Some(after) });
        plan.steps.push(Step {
            agent: reg.agent,
            scope: reg.scope,
            path: reg.path.clone(),
            action: Action::Removed,
        });
    }
    let still_read: Vec<PathBuf> = staying
        .iter()
        .filter_map(|r| ctx.memory_path(r.agent, r.scope))
        .collect();
    for reg in &removing {
        let Some(path) = ctx.memory_path(reg.agent, reg.scope) else {
            continue;
        };
        if still_read.contains(&path) {
            continue;
        }
        let Some(text) = plan.current(&path)? else {
            continue;
        };
        if !text.contains(memory::BEGIN) {
            continue;
        }
        let after = memory::remove(&text);
        plan.set(
            &path,
            if after.trim().is_empty() {
                None
            } else {
                Some(after)
            },
        );
        plan.steps.push(Step {
            agent: reg.agent,
            scope: reg.scope,
            path,
            action: Action::NoteRemoved,
        });
    }
    Ok(plan)
}
