//! The `codelens` command line: a thin front end over the engine.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use codelens::config::{AgentEnv, Config};
use codelens::engine;
use codelens::engine::banner::human_age;
use codelens::engine::progress::Progress;
use codelens::engine::project::Project;
use codelens::engine::reconcile::{self, Change, SyncReport};
use codelens::engine::status::{StatusPending, StatusReport};
use codelens::engine::{Engine, EngineOptions, Role};
use codelens::humanize::{human_bytes, thousands};
use codelens::install;
use codelens::telemetry::{self, EventName, TelemetryEnv};

/// tree-sitter and the walker allocate many small, short-lived objects on several
/// threads; mimalloc handles that pattern markedly faster than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a usage error (clap's own convention too).
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "codelens",
    version,
    about = "A code index that is honest about its own freshness"
)]
struct Cli {
    /// Serve the Model Context Protocol on stdin/stdout for the project containing PATH
    /// (default: the current directory). Same as `codelens mcp [PATH]`.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = ".")]
    mcp: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
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
enum TelemetryAction {
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
struct AgentArgs {
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
    fn selection(&self) -> anyhow::Result<install::Selection> {
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
enum HooksAction {
    /// Make post-checkout, post-merge, post-commit and post-rewrite run `codelens sync -q`.
    Install { path: Option<PathBuf> },
    /// Remove exactly what `install` added.
    Uninstall { path: Option<PathBuf> },
}

fn main() -> ExitCode {
    codelens::engine::symbols::use_fast_allocator();
    // Like other Unix filters: `codelens status | head` ends quietly on a closed pipe
    // instead of panicking in `println!`.
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    // The dashboard owns the terminal: log lines on stderr would scribble over it.
    if !matches!(cli.command, Some(Command::Tui { .. })) {
        init_logging();
    }
    let telemetry_env = TelemetryEnv::from_env();
    for warning in &telemetry_env.warnings {
        eprintln!("codelens: warning: {warning}");
    }
    // The session flushes this process's counts when dropped, at the end of `main`,
    // after the command's own output is complete (see TELEMETRY.md for the 2 s bound).
    // `codelens telemetry …` manages telemetry: it neither counts itself nor sends, so
    // `show` prints what the next command will send rather than racing it.
    let mut session = (!matches!(cli.command, Some(Command::Telemetry { .. })))
        .then(|| telemetry::start(telemetry_env.clone()));
    let long_running = cli.mcp.is_some()
        || matches!(
            cli.command,
            Some(Command::Mcp { .. } | Command::Watch { .. } | Command::Tui { .. })
        );
    if long_running && let Some(session) = &mut session {
        session.flush_periodically();
    }
    let result = run(cli, &telemetry_env);
    drop(session);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("codelens: {error:#}");
            let code = if error.is::<UsageError>() {
                i32::from(EXIT_USAGE)
            } else {
                error
                    .downcast_ref::<engine::Error>()
                    .map_or(1, engine::Error::exit_code)
            };
            ExitCode::from(code as u8)
        }
    }
}

/// Help and version go to stdout as usual; a real usage error becomes one line.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let text = error.to_string();
    let first = match error.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => "no command given",
        _ => text
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: "),
    };
    eprintln!("codelens: {first} (see `codelens --help`)");
    ExitCode::from(EXIT_USAGE)
}

fn run(cli: Cli, telemetry_env: &TelemetryEnv) -> anyhow::Result<()> {
    if let Some(path) = cli.mcp {
        telemetry::record_event(EventName::Mcp);
        return mcp_serve(&path);
    }
    let Some(command) = cli.command else {
        anyhow::bail!(UsageError(
            "no command given (see `codelens --help`)".into()
        ));
    };
    // Counted once the command has told the recorder about its project (language,
    // size), so the count carries them; the `telemetry` command itself is not counted.
    let counted = match &command {
        Command::Init { .. } => Some(EventName::Init),
        Command::Sync { .. } => Some(EventName::Sync),
        Command::Status { .. } => Some(EventName::Status),
        Command::Watch { .. } => Some(EventName::Watch),
        Command::Mcp { .. } => Some(EventName::Mcp),
        Command::Hooks {
            action: HooksAction::Install { .. },
        } => Some(EventName::HooksInstall),
        Command::Hooks {
            action: HooksAction::Uninstall { .. },
        } => Some(EventName::HooksUninstall),
        Command::Tui { .. } => Some(EventName::Tui),
        Command::Install { .. } => Some(EventName::Install),
        Command::Uninstall { .. } => Some(EventName::Uninstall),
        Command::Telemetry { .. } => None,
    };
    if let Some(name @ (EventName::Mcp | EventName::Watch | EventName::Tui)) = counted {
        // Long-running: counted at start, not when Ctrl-C ends them.
        telemetry::record_event(name);
    }
    let result = run_command(command, telemetry_env);
    if let Some(name) =
        counted.filter(|n| !matches!(n, EventName::Mcp | EventName::Watch | EventName::Tui))
    {
        telemetry::record_event(name);
    }
    result
}

fn run_command(command: Command, telemetry_env: &TelemetryEnv) -> anyhow::Result<()> {
    match command {
        Command::Init {
            path,
            own_worktree,
            quiet,
        } => init(&start_dir(path)?, own_worktree, quiet),
        Command::Sync { path, quiet, json } => sync(&start_dir(path)?, quiet, json),
        Command::Status { path, json } => status(&start_dir(path)?, json, telemetry_env),
        Command::Watch { path } => watch(&start_dir(path)?),
        Command::Tui { path, no_mouse } => codelens::ui::run(
            &start_dir(path)?,
            codelens::ui::TuiOptions {
                mouse_capture: !no_mouse,
            },
        ),
        Command::Mcp { path } => mcp_serve(&start_dir(path)?),
        Command::Install {
            path,
            which,
            dry_run,
            with_instructions,
            no_instructions,
        } => {
            let notes = match (with_instructions, no_instructions) {
                (true, _) => Notes::Yes,
                (_, true) => Notes::No,
                _ => Notes::Ask,
            };
            install_agents(&start_dir(path)?, &which, dry_run, notes)
        }
        Command::Uninstall {
            path,
            which,
            dry_run,
        } => uninstall_agents(&start_dir(path)?, &which, dry_run),
        Command::Hooks {
            action: HooksAction::Install { path },
        } => hooks(&start_dir(path)?, true),
        Command::Hooks {
            action: HooksAction::Uninstall { path },
        } => hooks(&start_dir(path)?, false),
        Command::Telemetry { action } => telemetry_command(action, telemetry_env),
    }
}

/// Tells the recorder the project's dominant language and size bucket (only when
/// telemetry is on: otherwise not even the index's stats are read for it).
fn note_project(project: &Project) {
    if !telemetry::is_enabled() {
        return;
    }
    if let Ok(stats) = engine::read::index_stats(project) {
        telemetry::set_project(&stats.languages, stats.files);
    }
}

fn telemetry_command(action: TelemetryAction, env: &TelemetryEnv) -> anyhow::Result<()> {
    match action {
        TelemetryAction::On | TelemetryAction::Off => {
            let on = matches!(action, TelemetryAction::On);
            let status = telemetry::set_consent(env, on)?;
            println!("telemetry {}", status.summary());
            if status.enabled != on {
                eprintln!(
                    "codelens: note: your choice is stored, but {} decides while it is set",
                    status.decided_by.describe()
                );
            } else if on {
                println!("what is sent: see `codelens telemetry status` and TELEMETRY.md");
            } else {
                println!("nothing is recorded or sent; the unsent buffer was deleted");
            }
            Ok(())
        }
        TelemetryAction::Status { json } => {
            let status = telemetry::status(env);
            if json {
                println!("{}", serde_json::to_string_pretty(&status.to_json())?);
                return Ok(());
            }
            println!("telemetry   {}", if status.enabled { "on" } else { "off" });
            println!("decided by  {}", status.decided_by.describe());
            println!(
                "machine id  {}",
                status.machine_id.as_deref().unwrap_or("none")
            );
            println!(
                "buffer      {} ({} bytes)",
                status.buffer_path.display(),
                status.buffer_bytes
            );
            println!(
                "pending     {}",
                if status.pending_days.is_empty() {
                    "no days".to_string()
                } else {
                    status.pending_days.join(", ")
                }
            );
            println!("endpoint    {}", env.url);
            println!("collected:");
            for line in telemetry::COLLECTED {
                println!("  - {line}");
            }
            println!("never collected: {}", telemetry::NEVER_COLLECTED.join(", "));
            Ok(())
        }
        TelemetryAction::Show => {
            let buffer = telemetry::buffer::read(env);
            match telemetry::session::next_payload(env, &buffer) {
                Some(payload) => println!("{}", serde_json::to_string_pretty(&payload)?),
                None => eprintln!(
                    "codelens: nothing would be sent: {} (only completed UTC days are sent)",
                    match buffer.days.len() {
                        0 => "the buffer is empty".to_string(),
                        n => format!("{n} day(s) buffered, none completed"),
                    }
                ),
            }
            Ok(())
        }
        TelemetryAction::Forget => {
            let id = telemetry::forget_local(env)?;
            let Some(id) = id else {
                println!("no machine id: nothing was sent under one; telemetry is off");
                return Ok(());
            };
            println!("deleted machine id {id} and the local buffer; telemetry is off");
            let url = telemetry::session::deletion_url(&env.url, &id);
            if env.debug {
                eprintln!("codelens: telemetry (debug, not sent): DELETE {url}");
                return Ok(());
            }
            match telemetry::session::request_deletion(env, &id) {
                Ok(()) => {
                    println!("the server deleted the data sent under that id");
                    Ok(())
                }
                Err(error) => anyhow::bail!(
                    "could not ask the server to delete the data of {id} ({error}); retry with: curl -X DELETE {url}"
                ),
            }
        }
    }
}

/// `CODELENS_LOG=debug` (any `tracing` filter): log lines on stderr — never stdout,
/// which carries data (and, for `--mcp`, only protocol messages).
fn init_logging() {
    let Some(filter) = Config::from_env().log else {
        return;
    };
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(filter) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        Err(error) => eprintln!(
            "codelens: warning: {}={filter:?} is not a log filter ({error}); logging stays off",
            codelens::config::LOG_VAR
        ),
    }
}

fn start_dir(path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => std::env::current_dir().context("cannot read the current directory"),
    }
}

/// The engine's progress counters, drawn as a bar on a terminal by a thread of its own
/// (hidden when quiet or not on a terminal); the bar goes when this is dropped.
struct ProgressView {
    progress: Progress,
    drawing: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl ProgressView {
    fn new(quiet: bool) -> ProgressView {
        let progress = Progress::new();
        if quiet || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
            return ProgressView {
                progress,
                drawing: None,
            };
        }
        let style = ProgressStyle::with_template(
            "{spinner} {msg:10} {bar:30} {human_pos}/{human_len} files  {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(0).with_style(style);
        let (stop, stopped) = std::sync::mpsc::channel();
        let counters = progress.clone();
        let thread = std::thread::spawn(move || {
            let tick = std::time::Duration::from_millis(120);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                bar.set_length(counters.length());
                bar.set_position(counters.position());
                bar.set_message(counters.stage().label());
                bar.tick();
            }
            bar.finish_and_clear();
        });
        ProgressView {
            progress,
            drawing: Some((stop, thread)),
        }
    }

    /// Clears the bar (before printing a summary).
    fn finish(&mut self) {
        if let Some((stop, thread)) = self.drawing.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        self.finish();
    }
}

fn init(start: &Path, own_worktree: bool, quiet: bool) -> anyhow::Result<()> {
    let project = Project::for_init(start, own_worktree)?;
    project.ensure_no_engine()?;
    let _lock = project.lock_for_writing()?;
    let mut progress = ProgressView::new(quiet);
    let _counted = NoteOnExit(&project);
    let report = match reconcile::build_index(&project, &progress.progress)? {
        reconcile::Built::Seeded { seed, report } => {
            progress.finish();
            warn_walk_errors(&report.walk_errors);
            if !quiet {
                let stats = engine::read::index_stats(&project)?;
                println!(
                    "indexed {} files, {} symbols in {}, seeded from the index of {} ({}) → {}",
                    thousands(stats.files),
                    thousands(stats.symbols),
                    human_ms(report.duration_ms),
                    seed.root.display(),
                    sync_changes(&report),
                    project.db_path().display()
                );
            }
            return Ok(());
        }
        reconcile::Built::Fresh { report, seed_error } => {
            if let Some((seed, error)) = seed_error {
                eprintln!(
                    "codelens: warning: not seeding from {}: {error}",
                    seed.root.display()
                );
            }
            report
        }
    };
    progress.finish();
    warn_walk_errors(&report.walk_errors);
    if !quiet {
        let skipped = match report.skipped {
            0 => String::new(),
            n => format!(
                " ({} skipped: binary, too large or unreadable)",
                thousands(n)
            ),
        };
        println!(
            "indexed {} files, {} symbols in {}{skipped} → {}",
            thousands(report.files),
            thousands(report.symbols),
            human_ms(report.duration_ms),
            project.db_path().display()
        );
    }
    Ok(())
}

fn sync(start: &Path, quiet: bool, as_json: bool) -> anyhow::Result<()> {
    let project = Project::find(start)?;
    let mut progress = ProgressView::new(quiet || as_json);
    let report = reconcile::sync_project(&project, &progress.progress)?;
    progress.finish();
    note_project(&project);
    warn_walk_errors(&report.walk_errors);
    if as_json {
        println!("{}", serde_json::to_string(&report)?);
    } else if !quiet {
        println!("{}", sync_summary(&report));
    }
    Ok(())
}

/// A usage mistake found after parsing (exit code 2).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn mcp_serve(start: &Path) -> anyhow::Result<()> {
    let start = start
        .canonicalize()
        .with_context(|| format!("{}", start.display()))?;
    codelens::mcp::serve(&start)
}

fn watch(start: &Path) -> anyhow::Result<()> {
    let project = Project::find(start)?;
    let config = Config::from_env();
    for warning in &config.warnings {
        eprintln!("codelens: warning: {warning}");
    }
    let mut options = EngineOptions::from_config(&config);
    options.start_dir = Some(start.to_path_buf());
    let engine = Engine::start(project.clone(), options)?;
    note_project(&project);
    telemetry::record_event(EventName::EngineStart);
    let events = engine.subscribe();
    let snapshot = engine.wait_for_catchup();
    if let Some(mismatch) = &snapshot.worktree_mismatch {
        eprintln!("{}", mismatch.warning());
    }
    let role = match snapshot.role {
        Role::Writer => "keeping the index",
        Role::Follower => "following another engine that keeps the index",
    };
    eprintln!(
        "codelens: {role} of {} · watcher {} ({}) · debounce {} ms · Ctrl-C stops",
        project.root.display(),
        snapshot.watcher.mode_name(),
        snapshot.watcher.reason,
        snapshot.watcher.debounce_ms
    );
    for event in events.iter() {
        eprintln!("{} {event}", chrono::Local::now().format("%H:%M:%S"));
    }
    Ok(())
}

fn hooks(start: &Path, install: bool) -> anyhow::Result<()> {
    let dir = engine::hooks::hooks_dir(start)?;
    let changes = if install {
        let codelens = std::env::current_exe().context("cannot locate the codelens binary")?;
        engine::hooks::install(&dir, &codelens)?
    } else {
        engine::hooks::uninstall(&dir)?
    };
    for (hook, change) in changes {
        println!("{:<14} {}", hook, format!("{change:?}").to_lowercase());
    }
    Ok(())
}

/// Whether `install` adds the memory-file note.
#[derive(Debug, Clone, Copy)]
enum Notes {
    Yes,
    No,
    /// Ask on a terminal; without one, no.
    Ask,
}

fn install_context(start: &Path) -> anyhow::Result<install::Context> {
    Ok(install::Context {
        env: AgentEnv::from_env(),
        project_root: Project::for_init(start, false)?.root,
    })
}

/// install's errors, with a command-line mistake kept apart for exit code 2.
fn install_error(error: install::Error) -> anyhow::Error {
    match error {
        install::Error::Usage(message) => anyhow::Error::new(UsageError(message)),
        other => anyhow::Error::new(other),
    }
}

fn install_agents(
    start: &Path,
    which: &AgentArgs,
    dry_run: bool,
    notes: Notes,
) -> anyhow::Result<()> {
    let selection = which.selection()?;
    let ctx = install_context(start)?;
    let launch = install::Launch::detect(&ctx.env).map_err(install_error)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let plan = install::plan_install(
        &ctx,
        &selection,
        &launch,
        |agent, _scope, path| match notes {
            Notes::Yes => true,
            Notes::No => false,
            // A dry run writes nothing, so it asks nothing either.
            Notes::Ask if interactive && !dry_run => ask(&format!(
                "codelens: add a short note on the staleness banner to {} (read by {})?",
                path.display(),
                agent.title
            )),
            Notes::Ask => false,
        },
    )
    .map_err(install_error)?;
    finish(&plan, dry_run)?;
    if !dry_run && !plan.changed_files().is_empty() {
        eprintln!(
            "codelens: restart the agents (or reload their MCP servers) to start using codelens"
        );
    }
    Ok(())
}

fn uninstall_agents(start: &Path, which: &AgentArgs, dry_run: bool) -> anyhow::Result<()> {
    let selection = which.selection()?;
    let ctx = install_context(start)?;
    let plan = install::plan_uninstall(&ctx, &selection).map_err(install_error)?;
    if plan.steps.is_empty() {
        eprintln!("codelens: not registered with any of the selected agents; nothing to remove");
        return Ok(());
    }
    finish(&plan, dry_run)
}

/// `--dry-run`: the diff on stdout, the steps on stderr. Otherwise: write, then one
/// line per step (and per backup) on stdout.
fn finish(plan: &install::Plan, dry_run: bool) -> anyhow::Result<()> {
    let lines: Vec<String> = plan
        .steps
        .iter()
        .map(|step| {
            format!(
                "{:<9} {:<8} {}  {}",
                step.agent.name,
                step.scope.to_string(),
                step.path.display(),
                step.action
            )
        })
        .collect();
    if dry_run {
        print!("{}", plan.diff());
        for line in &lines {
            eprintln!("codelens: would do: {line}");
        }
        if plan.changed_files().is_empty() {
            eprintln!("codelens: nothing would change");
        }
        return Ok(());
    }
    let backups = plan.apply()?;
    for line in &lines {
        println!("{line}");
    }
    for backup in backups {
        println!("backup    {}", backup.display());
    }
    Ok(())
}

/// A yes/no question on stderr (stdout is data); anything but y/yes is no.
fn ask(question: &str) -> bool {
    use std::io::Write;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Notes the project for telemetry when `init` ends, whichever way it built the index.
struct NoteOnExit<'a>(&'a Project);

impl Drop for NoteOnExit<'_> {
    fn drop(&mut self) {
        note_project(self.0);
    }
}

fn sync_changes(report: &SyncReport) -> String {
    format!("+{} ~{} -{}", report.added, report.modified, report.removed)
}

fn sync_summary(report: &SyncReport) -> String {
    let time = human_ms(report.duration_ms);
    if !report.changed() {
        return format!(
            "up to date · {} files · {time}",
            thousands(report.unchanged)
        );
    }
    format!(
        "{} · {} unchanged · {time}",
        sync_changes(report),
        thousands(report.unchanged)
    )
}

fn warn_walk_errors(errors: &[String]) {
    if let Some(first) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        eprintln!("codelens: warning: could not read {first}{more}");
    }
}

fn status(start: &Path, as_json: bool, telemetry_env: &TelemetryEnv) -> anyhow::Result<()> {
    let project = Project::find(start)?;
    let (report, mismatch, warnings) = StatusReport::from_index(&project, start, telemetry_env)?;
    for warning in warnings {
        eprintln!("codelens: warning: {warning}");
    }
    telemetry::set_project(&report.languages, report.files);
    let agents = install::registrations(&install::Context {
        env: AgentEnv::from_env(),
        project_root: mismatch
            .as_ref()
            .map_or(&project.root, |m| &m.worktree_root)
            .clone(),
    });

    if as_json {
        let agents: Vec<_> = agents
            .iter()
            .map(|r| {
                json!({
                    "agent": r.agent.name,
                    "scope": r.scope.to_string(),
                    "path": r.path.to_string_lossy(),
                })
            })
            .collect();
        let mut out = serde_json::to_value(&report)?;
        out["agents"] = json!(agents);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    let git = match (&report.git.branch, &report.git.head) {
        (Some(branch), Some(head)) => format!(" · {branch} @ {}", &head[..head.len().min(8)]),
        (Some(branch), None) => format!(" · {branch} (no commits)"),
        (None, Some(head)) => format!(" · detached @ {}", &head[..head.len().min(8)]),
        (None, None) => String::new(),
    };
    if let Some(mismatch) = &mismatch {
        println!("{}\n", mismatch.warning());
    }
    println!("codelens · {}{git}", project.root.display());
    print_stats(&report);
    match (&report.last_sync, report.last_sync_secs_ago) {
        (Some(at), Some(ago)) => println!("  last sync  {} ago ({at})", human_age(ago)),
        _ => println!("  last sync  unknown"),
    }
    println!("  freshness  {}", report.freshness.summary());
    print_pending(&report.pending);
    println!(
        "  watcher    {} · {}",
        report.watcher.mode, report.watcher.reason
    );
    println!(
        "  telemetry  {}",
        telemetry::status(telemetry_env).summary()
    );
    if agents.is_empty() {
        println!(
            "  agents     none · `codelens install` registers the MCP server with your agents"
        );
    } else {
        let shown: Vec<String> = agents
            .iter()
            .map(|r| format!("{} ({})", r.agent.name, r.scope))
            .collect();
        println!("  agents     {}", shown.join(" · "));
    }
    Ok(())
}

fn print_stats(stats: &StatusReport) {
    println!(
        "  index      {} files · {} symbols · schema v{} · {}",
        thousands(stats.files),
        thousands(stats.symbols),
        stats.schema_version,
        human_bytes(stats.db_bytes)
    );
    if !stats.skipped.is_empty() {
        let parts: Vec<String> = stats
            .skipped
            .iter()
            .map(|(why, n)| format!("{} {}", thousands(*n), why.replace('_', " ")))
            .collect();
        println!("  skipped    {}", parts.join(" · "));
    }
    let mut languages: Vec<(&String, &u64)> = stats.languages.iter().collect();
    languages.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = languages
        .iter()
        .take(6)
        .map(|(l, n)| format!("{l} {}", thousands(**n)))
        .collect();
    let more = languages.len().saturating_sub(6);
    let more = if more > 0 {
        format!(" · +{more} more")
    } else {
        String::new()
    };
    println!(
        "  languages  {}{more}",
        if shown.is_empty() {
            "none".into()
        } else {
            shown.join(" · ")
        }
    );
}

fn print_pending(pending: &[StatusPending]) {
    const SHOWN: usize = 10;
    if pending.is_empty() {
        println!("  pending    none · the index matches the working tree");
        return;
    }
    let noun = if pending.len() == 1 {
        "file differs"
    } else {
        "files differ"
    };
    // The running engine's own files wait for their debounce; otherwise nobody will.
    let hint = if pending.iter().all(|p| p.state == "unsynced") {
        "run `codelens sync`"
    } else {
        "the running engine re-indexes them"
    };
    println!(
        "  pending    {} {noun} from the index · {hint}",
        thousands(pending.len() as u64)
    );
    // The report lists them newest edit first.
    let width = pending
        .iter()
        .take(SHOWN)
        .map(|p| p.path.chars().count())
        .max()
        .unwrap_or(0);
    for p in pending.iter().take(SHOWN) {
        let what = match (p.change, p.edited_secs_ago) {
            (Change::Deleted, _) | (_, None) => "deleted".to_string(),
            (Change::Added, Some(ago)) => format!("added {} ago", human_age(ago)),
            (Change::Modified, Some(ago)) => format!("edited {} ago", human_age(ago)),
        };
        let state = if p.state == "unsynced" {
            String::new()
        } else {
            format!(" · {}", p.state)
        };
        println!("               {:width$}  {what}{state}", p.path);
    }
    if pending.len() > SHOWN {
        println!(
            "               … and {} more",
            thousands((pending.len() - SHOWN) as u64)
        );
    }
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
