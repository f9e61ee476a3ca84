//! The `codelens` command line: a thin front end over the engine. It parses the
//! arguments and the environment (once), runs one command and maps errors to exit codes.

mod agents;
mod args;
mod index;
mod progress;
mod serve;
mod telemetry_cmd;

use anyhow::Context;
use clap::Parser;
use codelens::config::Config;
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
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agents::*;
use args::*;
use index::*;
use progress::*;
use serve::*;
use telemetry_cmd::*;

/// Exit code for a usage error (clap's own convention too).
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "codelens",
    version,
    about = "A code index that is honest about its own freshness"
)]
pub(crate) struct Cli {
    /// Serve the Model Context Protocol on stdin/stdout for the project containing PATH
    /// (default: the current directory). Same as `codelens mcp [PATH]`.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = ".")]
    mcp: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

pub(crate) fn main() -> ExitCode {
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
    // The environment, read once: every command takes its settings from this.
    let config = Config::from_env();
    // The dashboard owns the terminal: log lines on stderr would scribble over it.
    if !matches!(cli.command, Some(Command::Tui { .. })) {
        init_logging(&config);
    }
    let telemetry_env = &config.telemetry;
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
    let result = run(cli, &config);
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
pub(crate) fn usage_error(error: clap::Error) -> ExitCode {
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

pub(crate) fn run(cli: Cli, config: &Config) -> anyhow::Result<()> {
    if let Some(path) = cli.mcp {
        telemetry::record_event(EventName::Mcp);
        return mcp_serve(&path, config);
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
    let result = run_command(command, config);
    if let Some(name) =
        counted.filter(|n| !matches!(n, EventName::Mcp | EventName::Watch | EventName::Tui))
    {
        telemetry::record_event(name);
    }
    result
}

pub(crate) fn run_command(command: Command, config: &Config) -> anyhow::Result<()> {
    match command {
        Command::Init {
            path,
            own_worktree,
            quiet,
        } => init(&start_dir(path)?, own_worktree, quiet),
        Command::Sync { path, quiet, json } => sync(&start_dir(path)?, quiet, json),
        Command::Status { path, json } => status(&start_dir(path)?, json, config),
        Command::Watch { path } => watch(&start_dir(path)?, config),
        Command::Tui { path, no_mouse } => codelens::ui::run(
            &start_dir(path)?,
            codelens::ui::TuiOptions {
                mouse_capture: !no_mouse,
            },
            config,
        ),
        Command::Mcp { path } => mcp_serve(&start_dir(path)?, config),
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
            install_agents(&start_dir(path)?, config, &which, dry_run, notes)
        }
        Command::Uninstall {
            path,
            which,
            dry_run,
        } => uninstall_agents(&start_dir(path)?, config, &which, dry_run),
        Command::Hooks {
            action: HooksAction::Install { path },
        } => hooks(&start_dir(path)?, true),
        Command::Hooks {
            action: HooksAction::Uninstall { path },
        } => hooks(&start_dir(path)?, false),
        Command::Telemetry { action } => telemetry_command(action, &config.telemetry),
    }
}

/// `CODELENS_LOG=debug` (any `tracing` filter): log lines on stderr — never stdout,
/// which carries data (and, for `--mcp`, only protocol messages).
pub(crate) fn init_logging(config: &Config) {
    let Some(filter) = config.log.clone() else {
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

pub(crate) fn start_dir(path: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => std::env::current_dir().context("cannot read the current directory"),
    }
}

/// A usage mistake found after parsing (exit code 2).
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
