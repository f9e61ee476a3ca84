//! The Events panel (the engine's log) and the key-hint bar.

use super::*;

pub(super) fn render_events(frame: &mut Frame, app: &mut App, area: Rect, theme: Theme) {
    if area.height == 0 {
        return;
    }
    let inner = draw_panel(frame, app, area, Panel::Events, " Events ".into(), theme);
    let width = inner.width as usize;
    if app.events.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(fit_right("nothing yet", width), theme.dim())),
            inner,
        );
        return;
    }
    let visible = inner.height as usize;
    app.panel_rows[Panel::Events.index()] = visible.max(1);
    let rows = app.events.len();
    let first = app.first_visible(Panel::Events, rows, visible);
    let lines: Vec<Line> = app
        .events
        .iter()
        .skip(first)
        .take(visible)
        .enumerate()
        .map(|(i, (at, text))| {
            let style = if text.starts_with("error") || text.contains("lost") {
                theme.warning()
            } else {
                Style::new()
            };
            let line = truncate_line(
                Line::from(vec![
                    Span::styled(format!("{at} "), theme.dim()),
                    Span::styled(text.clone(), style),
                ]),
                width,
            );
            // The line Enter shows in full.
            if i == 0 && app.focus == Panel::Events && app.overlay.is_none() {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

pub(super) fn render_hints(frame: &mut Frame, area: Rect, theme: Theme) {
    frame.render_widget(
        Paragraph::new(Line::styled(
            keymap::hint_line(area.width as usize),
            theme.dim(),
        )),
        area,
    );
}
