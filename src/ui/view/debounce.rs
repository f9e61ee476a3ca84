//! The Debounce panel: directories waiting for their quiet window.

use super::*;
use crate::engine::runner::MAX_WAIT_WINDOWS;

pub(super) fn render_debounce(
    frame: &mut Frame,
    app: &mut App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    if area.height == 0 {
        return;
    }
    let window = snapshot.watcher.debounce_ms;
    let title = format!(" Debounce · {} window ", countdown(window));
    let inner = draw_panel(frame, app, area, Panel::Debounce, title, theme);
    let rows = snapshot.directories.len();
    let visible = inner.height as usize;
    app.panel_rows[Panel::Debounce.index()] = visible.max(1);
    let first = app.first_visible(Panel::Debounce, rows, visible);
    // Rows cut off below say how many: the last row gives way to `+N more`.
    let more = rows.saturating_sub(first + visible);
    let shown = if more > 0 {
        visible.saturating_sub(1)
    } else {
        visible
    };
    let more = rows - (first + shown).min(rows);
    let width = inner.width as usize;
    let dirs = &snapshot.directories[first..(first + shown).min(rows)];
    // Writes still coming in past one window: the wait is capped, and says at what.
    let lefts: Vec<String> = dirs
        .iter()
        .map(|dir| {
            let max_wait = dir.window_ms.saturating_mul(u64::from(MAX_WAIT_WINDOWS));
            if dir.waited_ms > dir.window_ms {
                format!(
                    "{} · max {}",
                    countdown(dir.reindex_in_ms),
                    countdown(max_wait.saturating_sub(dir.waited_ms))
                )
            } else {
                countdown(dir.reindex_in_ms)
            }
        })
        .collect();
    let left_width = lefts.iter().map(|l| l.width()).max().unwrap_or(0);
    let mut lines: Vec<Line> = dirs
        .iter()
        .zip(lefts)
        .map(|(dir, left)| {
            let name = if dir.dir.is_empty() { "./" } else { &dir.dir };
            let files = match dir.files {
                1 => "1 file".to_string(),
                n => format!("{n} files"),
            };
            let done = dir.window_ms.saturating_sub(dir.reindex_in_ms);
            let fixed = files.len() + left_width + 6;
            let gauge_width = (width / 4).clamp(0, 12);
            let name_width = width.saturating_sub(fixed + gauge_width);
            truncate_line(
                Line::from(vec![
                    Span::raw(format!("{:name_width$}", fit_left(name, name_width))),
                    Span::raw(format!(" {files} ")),
                    Span::styled(
                        gauge_text(done, dir.window_ms.max(1), gauge_width),
                        theme.fg(Color::Cyan),
                    ),
                    Span::raw(format!(" {left}")),
                ]),
                width,
            )
        })
        .collect();
    if more > 0 {
        lines.push(Line::styled(
            fit_right(&format!("+{} more", thousands(more as u64)), width),
            theme.dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
