//! The long-running front ends started from the command line: `watch` and `--mcp`.

use super::*;

pub(crate) fn mcp_serve(start: &Path, config: &Config) -> anyhow::Result<()> {
    let start = start
        .canonicalize()
        .with_context(|| format!("{}", start.display()))?;
    codelens::mcp::serve(&start, config)
}

pub(crate) fn watch(start: &Path, config: &Config) -> anyhow::Result<()> {
    let project = Project::find(start)?;
    for warning in &config.warnings {
        eprintln!("codelens: warning: {warning}");
    }
    if let Some(old) = reconcile::rebuild_if_outdated(&project, &Default::default())? {
        eprintln!("codelens: {}", reconcile::rebuilt_message(old));
    }
    let mut options = EngineOptions::from_config(config);
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
