//! `init`, `sync` and `status`: the index commands, and how they print.

use super::*;

/// Tells the recorder the project's dominant language and size bucket (only when
/// telemetry is on: otherwise not even the index's stats are read for it).
pub(crate) fn note_project(project: &Project) {
    if !telemetry::is_enabled() {
        return;
    }
    if let Ok(stats) = engine::read::index_stats(project) {
        telemetry::set_project(&stats.languages, stats.files);
    }
}

pub(crate) fn init(start: &Path, own_worktree: bool, quiet: bool) -> anyhow::Result<()> {
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

pub(crate) fn sync(start: &Path, quiet: bool, as_json: bool) -> anyhow::Result<()> {
    let project = Project::find(start)?;
    let mut progress = ProgressView::new(quiet || as_json);
    if let Some(old) = reconcile::rebuild_if_outdated(&project, &progress.progress)? {
        eprintln!("codelens: {}", reconcile::rebuilt_message(old));
    }
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

/// Notes the project for telemetry when `init` ends, whichever way it built the index.
pub(crate) struct NoteOnExit<'a>(&'a Project);

impl Drop for NoteOnExit<'_> {
    fn drop(&mut self) {
        note_project(self.0);
    }
}

pub(crate) fn sync_changes(report: &SyncReport) -> String {
    format!("+{} ~{} -{}", report.added, report.modified, report.removed)
}

pub(crate) fn sync_summary(report: &SyncReport) -> String {
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

pub(crate) fn warn_walk_errors(errors: &[String]) {
    if let Some(first) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        eprintln!("codelens: warning: could not read {first}{more}");
    }
}

pub(crate) fn status(start: &Path, as_json: bool, config: &Config) -> anyhow::Result<()> {
    let telemetry_env = &config.telemetry;
    let project = Project::find(start)?;
    let (report, mismatch, warnings) = StatusReport::from_index(&project, start, telemetry_env)?;
    for warning in warnings {
        eprintln!("codelens: warning: {warning}");
    }
    telemetry::set_project(&report.languages, report.files);
    let agents = install::registrations(&install::Context {
        env: config.agents.clone(),
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

pub(crate) fn print_stats(stats: &StatusReport) {
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

pub(crate) fn print_pending(pending: &[StatusPending]) {
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

pub(crate) fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
