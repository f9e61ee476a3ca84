//! The agents `codelens install` knows: where each keeps its MCP servers, in which shape,
//! and how we tell that it is installed. Every location and shape is taken from the
//! agent's own documentation, linked in `docs`.

use std::path::{Path, PathBuf};

use crate::config::AgentEnv;

/// How an agent writes one stdio MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"mcpServers": {"codelens": {"command": …, "args": […]}}}` (Claude Desktop's
    /// shape, which Cursor, Gemini CLI and Windsurf share).
    McpServers,
    /// Claude Code: the same, with `"type": "stdio"` as `claude mcp add` writes it.
    ClaudeCode,
    /// VS Code: `{"servers": {"codelens": {"type": "stdio", "command": …, "args": […]}}}`.
    VsCode,
    /// opencode: `{"mcp": {"codelens": {"type": "local", "command": [cmd, args…], "enabled": true}}}`.
    Opencode,
    /// Codex CLI: `[mcp_servers.codelens]` with `command` and `args`, in TOML.
    CodexToml,
}

impl Format {
    /// The JSON object holding the servers (for the JSON formats).
    pub fn container(self) -> &'static str {
        match self {
            Format::McpServers | Format::ClaudeCode => "mcpServers",
            Format::VsCode => "servers",
            Format::Opencode => "mcp",
            Format::CodexToml => "mcp_servers",
        }
    }
}

/// Where a per-user path is rooted.
#[derive(Debug, Clone, Copy)]
pub enum Base {
    /// `$HOME`.
    Home,
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config` (opencode uses it on macOS too).
    Xdg,
    /// Electron's per-user data directory: `~/Library/Application Support` on macOS,
    /// the XDG config directory elsewhere (VS Code keeps `User/mcp.json` there).
    AppData,
}

#[derive(Debug, Clone, Copy)]
pub struct UserPath(pub Base, pub &'static str);

impl UserPath {
    pub fn resolve(self, env: &AgentEnv) -> Option<PathBuf> {
        let home = env.home.as_ref()?;
        let xdg = || {
            env.xdg_config_home
                .clone()
                .unwrap_or_else(|| home.join(".config"))
        };
        let base = match self.0 {
            Base::Home => home.clone(),
            Base::Xdg => xdg(),
            Base::AppData if cfg!(target_os = "macos") => home.join("Library/Application Support"),
            Base::AppData => xdg(),
        };
        Some(base.join(self.1))
    }
}

#[derive(Debug)]
pub struct Agent {
    /// What `--agent` takes.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub title: &'static str,
    /// The agent's own documentation of the file and shape we write.
    pub docs: &'static str,
    pub format: Format,
    /// Pass `${workspaceFolder}` after `--mcp`: editors start servers in a directory of
    /// their choosing, and expand this variable to the open project (documented for
    /// VS Code and Cursor). Terminal agents start servers in the project itself.
    pub workspace_arg: bool,
    /// User-scope config file candidates; the first that exists is edited, else the first.
    pub user_config: &'static [UserPath],
    /// Project-scope config file candidates, relative to the project root.
    pub project_config: &'static [&'static str],
    /// Any of these existing means the agent is installed for this user.
    pub user_markers: &'static [UserPath],
    /// Any of these existing in the project means the project uses the agent.
    pub project_markers: &'static [&'static str],
    /// Executables whose presence on `PATH` means the agent is installed.
    pub binaries: &'static [&'static str],
    /// The memory / instructions file the agent reads, per scope.
    pub user_memory: Option<UserPath>,
    pub project_memory: Option<&'static str>,
}

pub static AGENTS: &[Agent] = &[
    Agent {
        name: "claude",
        aliases: &["claude-code"],
        title: "Claude Code",
        docs: "https://code.claude.com/docs/en/mcp",
        format: Format::ClaudeCode,
        workspace_arg: false,
        // User scope is the top-level `mcpServers` of ~/.claude.json; project scope is
        // `.mcp.json` at the project root (shared through version control).
        user_config: &[UserPath(Base::Home, ".claude.json")],
        project_config: &[".mcp.json"],
        user_markers: &[
            UserPath(Base::Home, ".claude"),
            UserPath(Base::Home, ".claude.json"),
        ],
        project_markers: &[".mcp.json", ".claude"],
        binaries: &["claude"],
        user_memory: Some(UserPath(Base::Home, ".claude/CLAUDE.md")),
        project_memory: Some("CLAUDE.md"),
    },
    Agent {
        name: "cursor",
        aliases: &[],
        title: "Cursor",
        docs: "https://cursor.com/docs/mcp",
        format: Format::McpServers,
        workspace_arg: true,
        user_config: &[UserPath(Base::Home, ".cursor/mcp.json")],
        project_config: &[".cursor/mcp.json"],
        user_markers: &[UserPath(Base::Home, ".cursor")],
        project_markers: &[".cursor"],
        binaries: &["cursor", "cursor-agent"],
        // Cursor's user rules live in its settings UI, not in a file.
        user_memory: None,
        project_memory: Some("AGENTS.md"),
    },
    Agent {
        name: "vscode",
        aliases: &["vs-code", "code", "copilot"],
        title: "VS Code (Copilot)",
        docs: "https://code.visualstudio.com/docs/copilot/reference/mcp-configuration",
        format: Format::VsCode,
        workspace_arg: true,
        user_config: &[UserPath(Base::AppData, "Code/User/mcp.json")],
        project_config: &[".vscode/mcp.json"],
        user_markers: &[UserPath(Base::AppData, "Code")],
        project_markers: &[".vscode"],
        binaries: &["code"],
        user_memory: None,
        project_memory: Some(".github/copilot-instructions.md"),
    },
    Agent {
        name: "codex",
        aliases: &["codex-cli"],
        title: "Codex CLI",
        docs: "https://developers.openai.com/codex/mcp",
        format: Format::CodexToml,
        workspace_arg: false,
        // A project's .codex/config.toml is read in trusted projects only.
        user_config: &[UserPath(Base::Home, ".codex/config.toml")],
        project_config: &[".codex/config.toml"],
        user_markers: &[UserPath(Base::Home, ".codex")],
        project_markers: &[".codex"],
        binaries: &["codex"],
        user_memory: Some(UserPath(Base::Home, ".codex/AGENTS.md")),
        project_memory: Some("AGENTS.md"),
    },
    Agent {
        name: "gemini",
        aliases: &["gemini-cli"],
        title: "Gemini CLI",
        docs: "https://geminicli.com/docs/tools/mcp-server/",
        format: Format::McpServers,
        workspace_arg: false,
        user_config: &[UserPath(Base::Home, ".gemini/settings.json")],
        project_config: &[".gemini/settings.json"],
        user_markers: &[UserPath(Base::Home, ".gemini")],
        project_markers: &[".gemini"],
        binaries: &["gemini"],
        user_memory: Some(UserPath(Base::Home, ".gemini/GEMINI.md")),
        project_memory: Some("GEMINI.md"),
    },
    Agent {
        name: "opencode",
        aliases: &[],
        title: "opencode",
        docs: "https://opencode.ai/docs/mcp-servers/",
        format: Format::Opencode,
        workspace_arg: false,
        user_config: &[
            UserPath(Base::Xdg, "opencode/opencode.json"),
            UserPath(Base::Xdg, "opencode/opencode.jsonc"),
        ],
        project_config: &["opencode.json", "opencode.jsonc"],
        user_markers: &[UserPath(Base::Xdg, "opencode")],
        project_markers: &["opencode.json", "opencode.jsonc", ".opencode"],
        binaries: &["opencode"],
        user_memory: Some(UserPath(Base::Xdg, "opencode/AGENTS.md")),
        project_memory: Some("AGENTS.md"),
    },
    Agent {
        name: "windsurf",
        aliases: &[],
        title: "Windsurf",
        docs: "https://docs.windsurf.com/windsurf/cascade/mcp",
        format: Format::McpServers,
        workspace_arg: false,
        // Windsurf has one, per-user MCP config and no project-scoped one.
        user_config: &[UserPath(Base::Home, ".codeium/windsurf/mcp_config.json")],
        project_config: &[],
        user_markers: &[UserPath(Base::Home, ".codeium/windsurf")],
        project_markers: &[],
        binaries: &["windsurf"],
        user_memory: Some(UserPath(
            Base::Home,
            ".codeium/windsurf/memories/global_rules.md",
        )),
        project_memory: None,
    },
];

/// The agent called `name` (or one of its aliases), case-insensitively.
pub fn by_name(name: &str) -> Option<&'static Agent> {
    let name = name.trim().to_ascii_lowercase();
    AGENTS
        .iter()
        .find(|a| a.name == name || a.aliases.contains(&name.as_str()))
}

pub fn names() -> String {
    AGENTS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// The first candidate that exists, else the first.
pub fn pick(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = candidates.into_iter().collect();
    candidates
        .iter()
        .find(|p| p.exists())
        .or(candidates.first())
        .cloned()
}

pub fn on_path(env: &AgentEnv, binary: &str) -> Option<PathBuf> {
    env.path
        .iter()
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
