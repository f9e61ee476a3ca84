//! The header: the freshness verdict first, then counts, last sync, watcher and catch-up; and the worktree-mismatch banner.

use super::*;

pub(super) fn render_header(
    frame: &mut Frame,
    app: &App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let role = match snapshot.role {
        Role::Writer => " writer ",
        Role::Follower => " follower ",
    };
    let branch = snapshot
        .branch
        .as_deref()
        .map(|b| format!(" · {b}"))
        .unwrap_or_default();
    // The name stays; the path gives way from its start.
    let title_room = (area.width as usize).saturating_sub(role.len() + 6 + 12);
    let title = format!(
        " codelens · {} ",
        fit_left(
            &format!("{}{branch}", show_path(app, &snapshot.root)),
            title_room
        )
    );
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(Span::styled(title, theme.title()))
        .title_top(Line::from(role).right_aligned());
    let width = area.width.saturating_sub(2) as usize;
    let line = if let Some(reason) = &app.engine_stopped {
        Line::styled(
            fit_right(
                &format!("engine stopped: {reason} — restart codelens tui"),
                width,
            ),
            theme.error(),
        )
    } else {
        health_line(app, snapshot, width, theme)
    };
    frame.render_widget(Paragraph::new(line).block(block), area);
}

/// The engine's freshness verdict, as every front end words it: "in sync" only when it
/// is verified.
pub(super) fn verdict_span<'a>(freshness: &Freshness, theme: Theme) -> Span<'a> {
    match freshness {
        Freshness::Verified { .. } => Span::styled("✓ verified", theme.ok()),
        Freshness::Pending { files, .. } => Span::styled(
            format!("● {} pending", thousands(*files as u64)),
            theme.warning(),
        ),
        Freshness::Unverified { reason, .. } => Span::styled(
            format!("⚠ unverified: {}", reason.describe()),
            theme.warning(),
        ),
    }
}

/// Files, symbols, last sync, watcher and catch-up in one line, shortest form that fits.
pub(super) fn health_line<'a>(
    app: &App,
    snapshot: &Snapshot,
    width: usize,
    theme: Theme,
) -> Line<'a> {
    // A clock time, not an age: it stays true on a dashboard that does not redraw.
    let synced = snapshot
        .last_sync
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| {
            let offset = chrono::FixedOffset::east_opt(app.utc_offset_secs)
                .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
            let at = at.with_timezone(&offset);
            let today = chrono::DateTime::from_timestamp(app.now_ns / 1_000_000_000, 0)
                .map(|now| now.with_timezone(&offset).date_naive());
            if Some(at.date_naive()) == today {
                format!("synced {}", at.format("%H:%M:%S"))
            } else {
                format!("synced {}", at.format("%b %-d %H:%M"))
            }
        })
        .unwrap_or_else(|| "never synced".into());
    // The strategy shows while watches are armed (off, none are), short enough to fit
    // where "watching" did at 80 columns.
    let strategy = match snapshot.watcher.strategy {
        crate::engine::watcher::WatchStrategy::Recursive => "recursive",
        crate::engine::watcher::WatchStrategy::PerDirectory => "per-dir",
    };
    let watcher = match snapshot.watcher.mode {
        WatchMode::Native => (format!("{strategy} watch"), theme.ok()),
        WatchMode::Degraded => (
            format!("{strategy} watch degraded ({})", snapshot.watcher.reason),
            theme.warning(),
        ),
        WatchMode::Disabled => (
            format!("watcher off ({})", snapshot.watcher.reason),
            theme.warning(),
        ),
    };
    let catchup = match &snapshot.catchup {
        Catchup::Running { checked, total } => Some(format!("catch-up {checked}/{total}")),
        Catchup::NotStarted if snapshot.role == Role::Writer => Some("catch-up…".into()),
        Catchup::Failed(why) => Some(format!("catch-up failed: {why}")),
        _ => None,
    };
    let counts = format!(
        "{} · {}",
        counted(snapshot.stats.files, "file"),
        counted(snapshot.stats.symbols, "symbol")
    );
    // The verdict first: it is what a narrow pane must never lose.
    let mut spans = vec![
        verdict_span(&snapshot.freshness, theme),
        Span::raw(" · "),
        Span::raw(counts),
        Span::raw(format!(" · {synced} · ")),
    ];
    spans.push(Span::styled(watcher.0, watcher.1));
    if let Some(catchup) = catchup {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(catchup, theme.warning()));
    }
    if let Some(error) = &snapshot.error {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(format!("error: {error}"), theme.error()));
    }
    truncate_spans(spans, width)
}

/// The warning block that cannot be missed: three roots, both branches, the fix.
pub(super) fn render_mismatch(
    frame: &mut Frame,
    app: &App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let Some(m) = &snapshot.worktree_mismatch else {
        return;
    };
    let width = area.width.saturating_sub(2) as usize;
    let branch = |b: &Option<String>| b.clone().unwrap_or_else(|| "detached HEAD".into());
    let main_checkout = if m.main_checkout_root == m.index_root {
        String::new()
    } else {
        format!(" · main checkout {}", show_path(app, &m.main_checkout_root))
    };
    let mut lines = vec![
        Line::styled(
            fit_right(
                &if width >= 60 {
                    format!(
                        "This {} reads another checkout's index: it describes {}.",
                        m.worktree_kind,
                        branch(&m.index_branch)
                    )
                } else {
                    "Reading another checkout's index!".to_string()
                },
                width,
            ),
            theme.warning(),
        ),
        Line::from(fit_right(
            &format!(
                "worktree {} · {}",
                branch(&m.worktree_branch),
                show_path(app, &m.worktree_root)
            ),
            width,
        )),
        Line::from(fit_right(
            &format!(
                "index    {} · {}{main_checkout}",
                branch(&m.index_branch),
                show_path(app, &m.index_root),
            ),
            width,
        )),
    ];
    let fix = Line::from(vec![
        Span::styled("fix: ", theme.title()),
        Span::raw(fit_right(
            "w runs `codelens init -i` here",
            width.saturating_sub(5),
        )),
    ]);
    lines.push(fix);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(theme.warning())
        .title(Span::styled(" ⚠ wrong index ", theme.warning()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `1 file`, `12,408 files`.
pub(super) fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", thousands(n)),
    }
}
