//! Whole-screen states: the summary for a pane too small for panels, and the message screens (starting, no index, building, failed).

use super::*;

/// A few lines for a pane too small for panels: what matters most, in order.
pub(super) fn render_summary(frame: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let width = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let Some(snapshot) = app
        .snapshot
        .as_deref()
        .filter(|_| app.screen == Screen::Dashboard)
    else {
        lines.push(Line::from(fit_right(&screen_summary(&app.screen), width)));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    };
    if let Some(reason) = &app.engine_stopped {
        lines.push(Line::styled(
            fit_right(&format!("engine stopped: {reason}"), width),
            theme.error(),
        ));
    }
    if let Some(mismatch) = &snapshot.worktree_mismatch {
        lines.push(Line::styled(
            fit_right(
                &format!(
                    "⚠ wrong index ({}) · w: codelens init -i",
                    mismatch.index_branch.as_deref().unwrap_or("detached")
                ),
                width,
            ),
            theme.warning(),
        ));
    }
    // The status word and the project first, then how the index keeps up: the sync
    // age and the watcher (the verified status word already says when).
    let status = status_word(app, snapshot, theme);
    let room = width.saturating_sub(status.width());
    let project = project_name(&snapshot.root);
    let mut first = vec![Span::styled(
        fit_right(&status.content, width),
        status.style,
    )];
    if room >= 3 + 2 {
        first.push(Span::raw(fit_right(&format!(" · {project}"), room)));
    }
    lines.insert(0, Line::from(first));
    let health = health_line(app, snapshot, width, theme, false);
    lines.push(health);
    for entry in snapshot
        .pending
        .iter()
        .take((area.height as usize).saturating_sub(lines.len() + 1))
    {
        let age = match entry.change {
            Change::Deleted => "deleted".to_string(),
            _ => age_label(app.now_ns, entry.last_edit_ns),
        };
        let path_width = width.saturating_sub(age.len() + 1);
        lines.push(Line::from(format!(
            "{age} {}",
            fit_left(&entry.path, path_width)
        )));
    }
    lines.truncate((area.height as usize).saturating_sub(1));
    lines.push(Line::styled(
        fit_right(&telemetry_short(app), width),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(lines), area);
}

pub(super) fn screen_summary(screen: &Screen) -> String {
    match screen {
        Screen::Starting => "codelens · starting…".into(),
        Screen::NoIndex { .. } => "no index · y: build · q: quit".into(),
        Screen::Building { checked, total, .. } => format!("indexing {checked}/{total}"),
        Screen::Failed(reason) => format!("error: {reason}"),
        Screen::Dashboard => "codelens".into(),
    }
}

/// Starting, no index, building, failed: one message box and the key hints.
pub(super) fn render_message_screen(
    frame: &mut Frame,
    app: &App,
    screen: &Screen,
    area: Rect,
    theme: Theme,
) {
    let [body, hints] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let (title, lines): (&str, Vec<Line>) = match screen {
        Screen::Starting => (" codelens ", vec![Line::from("Starting the engine…")]),
        Screen::NoIndex { root } => (
            " codelens · no index ",
            vec![
                Line::from(format!(
                    "No codelens index covers {}.",
                    show_path(app, root)
                )),
                Line::from(""),
                Line::from(vec![
                    Span::styled("y", theme.title()),
                    Span::raw(": build one now (.codelens/ at that root) · "),
                    Span::styled("q", theme.title()),
                    Span::raw(": quit"),
                ]),
            ],
        ),
        Screen::Building {
            what,
            checked,
            total,
        } => {
            let inner = body.width.saturating_sub(4) as usize;
            (
                " codelens · indexing ",
                vec![
                    Line::from(what.clone()),
                    Line::from(""),
                    Line::from(
                        gauge_text(*checked, *total, inner.saturating_sub(22))
                            + &format!(" {checked}/{total} files"),
                    ),
                ],
            )
        }
        Screen::Failed(reason) => (
            " codelens · cannot start ",
            vec![
                Line::styled(reason.clone(), theme.error()),
                Line::from(""),
                Line::from("q: quit"),
            ],
        ),
        Screen::Dashboard => (" codelens ", Vec::new()),
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(Span::styled(title, theme.title()));
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        body,
    );
    // Only the keys that work on this screen.
    let keys = match screen {
        Screen::NoIndex { .. } => "y build · q quit",
        _ => "q quit",
    };
    frame.render_widget(
        Paragraph::new(Line::styled(
            fit_right(keys, hints.width as usize),
            theme.dim(),
        )),
        hints,
    );
}

/// `▕█████░░░░▏`-style progress in `width` cells (plain characters: no colour needed).
pub(super) fn gauge_text(done: u64, total: u64, width: usize) -> String {
    if width < 3 {
        return String::new();
    }
    let inner = width - 2;
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as u128 * inner as u128) / total as u128) as usize
    };
    format!(
        "▕{}{}▏",
        "█".repeat(filled),
        "░".repeat(inner.saturating_sub(filled))
    )
}
