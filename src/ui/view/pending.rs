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

pub(super) fn render_pending(
    frame: &mut Frame,
    app: &mut App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let count = snapshot.pending.len();
    let title = match count {
        0 => " Pending ".to_string(),
        n => format!(" Pending · {} ", thousands(n as u64)),
    };
    let block = panel(app, Panel::Pending, title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if count == 0 {
        // "In sync" is a promise only the verified verdict makes.
        let line = match snapshot.freshness.unverified() {
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
    let visible = inner.height as usize;
    let first = app.first_visible(Panel::Pending, count, visible);
    let width = inner.width as usize;
    // Only the visible rows are formatted: 10,000 pending files cost one screenful.
    let lines: Vec<Line> = snapshot.pending[first..(first + visible).min(count)]
        .iter()
        .map(|entry| {
            let age = format!("{:>6}", age_label(app.now_ns, entry.last_edit_ns));
            let state = state_label(entry.state);
            let state_style = match entry.state {
                PendingState::Failed => theme.error(),
                PendingState::Retrying { .. } => theme.warning(),
                _ => theme.dim(),
            };
            let state_width = state.width().min(18);
            let path_width = width.saturating_sub(6 + 2 + 2 + state_width);
            let line = Line::from(vec![
                Span::raw(age),
                Span::raw("  "),
                Span::raw(format!("{:path_width$}", fit_left(&entry.path, path_width))),
                Span::raw("  "),
                Span::styled(state, state_style),
            ]);
            truncate_line(line, width)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
