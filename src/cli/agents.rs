//! `install`, `uninstall` and `hooks`: registering codelens with agents and git.

use super::*;

pub(crate) fn hooks(start: &Path, install: bool) -> anyhow::Result<()> {
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

pub(crate) fn install_context(start: &Path, config: &Config) -> anyhow::Result<install::Context> {
    Ok(install::Context {
        env: config.agents.clone(),
        project_root: Project::for_init(start, false)?.root,
    })
}

/// install's errors, with a command-line mistake kept apart for exit code 2.
pub(crate) fn install_error(error: install::Error) -> anyhow::Error {
    match error {
        install::Error::Usage(message) => anyhow::Error::new(UsageError(message)),
        other => anyhow::Error::new(other),
    }
}

pub(crate) fn install_agents(
    start: &Path,
    config: &Config,
    which: &AgentArgs,
    dry_run: bool,
    notes: Notes,
) -> anyhow::Result<()> {
    let selection = which.selection()?;
    let ctx = install_context(start, config)?;
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

pub(crate) fn uninstall_agents(
    start: &Path,
    config: &Config,
    which: &AgentArgs,
    dry_run: bool,
) -> anyhow::Result<()> {
    let selection = which.selection()?;
    let ctx = install_context(start, config)?;
    let plan = install::plan_uninstall(&ctx, &selection).map_err(install_error)?;
    if plan.steps.is_empty() {
        eprintln!("codelens: not registered with any of the selected agents; nothing to remove");
        return Ok(());
    }
    finish(&plan, dry_run)
}

/// `--dry-run`: the diff on stdout, the steps on stderr. Otherwise: write, then one
/// line per step (and per backup) on stdout.
pub(crate) fn finish(plan: &install::Plan, dry_run: bool) -> anyhow::Result<()> {
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
pub(crate) fn ask(question: &str) -> bool {
    use std::io::Write;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
