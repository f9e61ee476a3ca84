//! The Pending panel: files that differ from the index, newest edit first.

use super::*;

pub(super) fn state_label(state: PendingState) -> String {
    match state {
        PendingState::Waiting {
            reindex_in_ms: Some(ms),
        } => format!("waiting {}", countdown(ms)),
        PendingState::Waiting {
            reindex_in_ms: None,
        } => "waiting".into(),
        PendingState::Indexing => "indexing".into(),
        PendingState::Retrying { attempt, of } => format!("locked, retry {attempt}/{of}"),
        PendingState::Failed => "failed".into(),
        PendingState::Unsynced => "unsynced".into(),
    }
}

/// A countdown in whole seconds, rounded up (`0.2 s` left reads `1s`): the dashboard
/// redraws once a second, so tenths would be stale as soon as drawn.
pub(super) fn countdown(ms: u64) -> String {
    format!("{}s", ms.div_ceil(1000))
}

pub(super) fn age_label(now_ns: i64, at_ns: i64) -> String {
    human_age((now_ns.saturating_sub(at_ns) / 1_000_000_000).max(0) as u64)
}

/// `+` added, `~` modified, `-` deleted: as the Events panel counts a sync.
pub(super) fn change_mark(change: Change) -> &'static str {
    match change {
        Change::Added => "+",
        Change::Modified => "~",
        Change::Deleted => "-",
    }
}

pub(super) fn render_pending(
    frame: &mut Frame,
    app: &mut App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let rows = app.pending_rows();
    let count = snapshot.pending.len();
    let visible = area.height.saturating_sub(2) as usize;
    app.panel_rows[Panel::Pending.index()] = visible.max(1);
    let first = app.first_pending_visible(rows.len(), visible);
    let filter = if app.filter_editing || !app.filter.is_empty() {
        format!(
            "/{}{} · ",
            app.filter,
            if app.filter_editing { "▏" } else { "" }
        )
    } else {
        String::new()
    };
    // Where the view is in the list: `12–17 of 200`, when it does not all show.
    let title = match rows.len() {
        0 if filter.is_empty() => " Pending ".to_string(),
        0 => format!(" Pending · {filter}none of {} ", thousands(count as u64)),
        n if n <= visible && filter.is_empty() => format!(" Pending · {} ", thousands(n as u64)),
        n => format!(
            " Pending · {filter}{}–{} of {} ",
            thousands((first + 1) as u64),
            thousands((first + visible).min(n) as u64),
            thousands(n as u64)
        ),
    };
    let inner = draw_panel(frame, app, area, Panel::Pending, title, theme);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if count == 0 {
        // "In sync" is a promise only the verified verdict makes, and never while this
        // worktree reads another checkout's index: its own edits are not watched.
        let line = match snapshot.freshness.unverified() {
            _ if snapshot.worktree_mismatch.is_some() => Line::styled(
                fit_right(
                    "⚠ edits in this worktree are not tracked (w: its own index)",
                    inner.width as usize,
                ),
                theme.warning(),
            ),
            None => Line::styled(
                fit_right("✓ index in sync", inner.width as usize),
                theme.ok(),
            ),
            Some(reason) => Line::styled(
                fit_right(
                    &format!("⚠ unverified: {} · none found yet", reason.describe()),
                    inner.width as usize,
                ),
                theme.warning(),
            ),
        };
        frame.render_widget(Paragraph::new(line), inner);
        return;
    }
    let width = inner.width as usize;
    let focused = app.focus == Panel::Pending && app.overlay.is_none();
    // Only the visible rows are formatted: 10,000 pending files cost one screenful.
    let lines: Vec<Line> = rows[first..(first + visible).min(rows.len())]
        .iter()
        .enumerate()
        .map(|(i, &index)| {
            let entry = &snapshot.pending[index];
            // A deleted file has no edit to date.
            let age = if entry.change == Change::Deleted {
                " ".repeat(6)
            } else {
                format!("{:>6}", age_label(app.now_ns, entry.last_edit_ns))
            };
            let state = state_label(entry.state);
            let state_style = match entry.state {
                PendingState::Failed => theme.error(),
                PendingState::Retrying { .. } => theme.warning(),
                _ => theme.dim(),
            };
            let state_width = state.width().min(18);
            let path_width = width.saturating_sub(6 + 1 + 2 + 2 + state_width);
            let line = Line::from(vec![
                Span::raw(age),
                Span::raw(" "),
                Span::styled(change_mark(entry.change), theme.title()),
                Span::raw(" "),
                Span::raw(format!("{:path_width$}", fit_left(&entry.path, path_width))),
                Span::raw("  "),
                Span::styled(state, state_style),
            ]);
            let line = truncate_line(line, width);
            if focused && first + i == app.pending_cursor {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
