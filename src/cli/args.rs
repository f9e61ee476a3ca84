//! The command line's arguments (clap).

use super::*;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Build the index of the project containing PATH (the git worktree top, or PATH).
    Init {
        /// Any directory inside the project (default: the current directory).
        path: Option<PathBuf>,
        /// Build this git worktree its own index, even when a parent directory has one.
        #[arg(short = 'i', long = "worktree")]
        own_worktree: bool,
        /// No progress bar and no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Bring the index up to date with the working tree.
    Sync {
        path: Option<PathBuf>,
        #[arg(short, long)]
        quiet: bool,
        /// Print {added, modified, removed, unchanged, hashed, duration_ms} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the index's health and the files that differ from it.
    Status {
        path: Option<PathBuf>,
        /// Machine-readable output (keys documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Serve the Model Context Protocol on stdin/stdout (for AI agents).
    Mcp { path: Option<PathBuf> },
    /// The index-health dashboard, for a side pane beside the editor.
    Tui {
        path: Option<PathBuf>,
        /// Leave the mouse to the terminal (its own text selection); `m` toggles it too.
        #[arg(long)]
        no_mouse: bool,
    },
    /// Run the engine in the foreground: watch the tree and keep the index in sync
    /// (events on stderr; Ctrl-C stops it).
    Watch { path: Option<PathBuf> },
    /// Register `codelens --mcp` with your coding agents (Claude Code, Cursor, VS Code,
    /// Codex CLI, Gemini CLI, opencode, Windsurf): each detected one, or those named.
    Install {
        /// Any directory inside the project, for project-scoped files (default: the
        /// current directory).
        path: Option<PathBuf>,
        #[command(flatten)]
        which: AgentArgs,
        /// Print the exact diff of every file that would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also append a short note about the staleness banner to each agent's memory
        /// file (CLAUDE.md, AGENTS.md …) without asking. Default: asked on a terminal,
        /// not added otherwise.
        #[arg(long, conflicts_with = "no_instructions")]
        with_instructions: bool,
        /// Never add the memory-file note (and do not ask).
        #[arg(long)]
        no_instructions: bool,
    },
    /// Remove codelens's entry (and note) from the agents' configs, and nothing else.
    Uninstall {
        path: Option<PathBuf>,
        #[command(flatten)]
        which: AgentArgs,
        /// Print the exact diff of every file that would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The git-hooks fallback where the file watcher is off (WSL2 /mnt, network drives).
    Hooks {
        #[command(subcommand)]
        action: HooksAction,
    },
    /// Anonymous, opt-in usage telemetry (off by default; see TELEMETRY.md).
    Telemetry {
        #[command(subcommand)]
        action: TelemetryAction,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TelemetryAction {
    /// Opt in: counts of commands and MCP tools used, per day, sent once a day.
    On,
    /// Opt out, and delete what was recorded but not sent yet.
    Off,
    /// Whether telemetry is on and which switch decided, the machine id, the buffer.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print exactly the JSON that would be sent next (nothing when nothing is due).
    Show,
    /// Turn off, delete the buffer and the machine id, and ask the server to delete
    /// the data sent under that id.
    Forget,
}

/// Which agents `install` / `uninstall` act on, and in which scope.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Only this agent (repeat the flag, or separate names with commas): claude, cursor,
    /// vscode, codex, gemini, opencode, windsurf. Default: every agent found.
    #[arg(long = "agent", value_name = "NAME", value_delimiter = ',')]
    agents: Vec<String>,
    /// The project's own config files (`.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json` …).
    #[arg(long, conflicts_with = "user")]
    project: bool,
    /// The per-user config files (`~/.claude.json`, `~/.codex/config.toml` …).
    #[arg(long)]
    user: bool,
}

impl AgentArgs {
    pub(crate) fn selection(&self) -> anyhow::Result<install::Selection> {
        let mut agents: Vec<&'static install::Agent> = Vec::new();
        for name in &self.agents {
            let Some(agent) = install::agents::by_name(name) else {
                anyhow::bail!(UsageError(format!(
                    "unknown agent `{name}` (known: {})",
                    install::agents::names()
                )));
            };
            if !agents.iter().any(|a| a.name == agent.name) {
                agents.push(agent);
            }
        }
        let scope = match (self.project, self.user) {
            (true, _) => Some(install::Scope::Project),
            (_, true) => Some(install::Scope::User),
            _ => None,
        };
        Ok(install::Selection { agents, scope })
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum HooksAction {
    /// Make post-checkout, post-merge, post-commit and post-rewrite run `codelens sync -q`.
    Install { path: Option<PathBuf> },
    /// Remove exactly what `install` added.
    Uninstall { path: Option<PathBuf> },
}

/// Whether `install` adds the memory-file note.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notes {
    Yes,
    No,
    /// Ask on a terminal; without one, no.
    Ask,
}
