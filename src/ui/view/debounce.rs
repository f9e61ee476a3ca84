//! The Debounce panel: directories waiting for their quiet window.

use super::*;

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
    let block = panel(app, Panel::Debounce, title, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = snapshot.directories.len();
    let visible = inner.height as usize;
    app.panel_rows[Panel::Debounce.index()] = visible.max(1);
    let first = app.first_visible(Panel::Debounce, rows, visible);
    let width = inner.width as usize;
    let lines: Vec<Line> = snapshot.directories[first..(first + visible).min(rows)]
        .iter()
        .map(|dir| {
            let name = if dir.dir.is_empty() { "./" } else { &dir.dir };
            let files = match dir.files {
                1 => "1 file".to_string(),
                n => format!("{n} files"),
            };
            let left = countdown(dir.reindex_in_ms);
            let done = dir.window_ms.saturating_sub(dir.reindex_in_ms);
            let fixed = files.len() + left.len() + 6;
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
    frame.render_widget(Paragraph::new(lines), inner);
}
