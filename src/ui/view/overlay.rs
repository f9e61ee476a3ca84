//! Overlays: help, the consent dialogs and notices. The body scrolls (j/k, ↑↓,
//! PgUp/PgDn) when the pane is too short for it; the action line stays pinned at the
//! bottom, so the key that answers is always in view.

use super::*;

/// Width of the help overlay's key column.
const KEY_COLUMN: usize = 15;

/// What an overlay shows: its title, its body (scrolled) and its action line (pinned).
struct Dialog<'a> {
    title: &'a str,
    body: Vec<Line<'a>>,
    /// The key that answers, and what the others do: `(key, rest)`, or a plain line.
    action: Line<'a>,
}

/// `y: turn on · any other key: cancel` (the keys that scroll a tall body say so in
/// the bottom border, beside the position).
fn action_line<'a>(key: &'a str, answer: &str, theme: Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(key, theme.title()),
        Span::raw(format!(": {answer} · any other key: cancel")),
    ])
}

fn dialog<'a>(app: &App, overlay: &Overlay, theme: Theme) -> Dialog<'a> {
    match overlay {
        Overlay::Help => Dialog {
            title: " Keys ",
            body: keymap::help_lines()
                .map(|(keys, help)| {
                    Line::from(vec![
                        Span::styled(format!("{keys:<KEY_COLUMN$}"), theme.title()),
                        Span::raw(help),
                    ])
                })
                .collect(),
            action: Line::styled(
                format!(
                    "mouse capture is {} · Esc closes",
                    if app.mouse_capture { "on" } else { "off" },
                ),
                theme.dim(),
            ),
        },
        Overlay::ConfirmTelemetry { turn_on: true } => {
            let mut body = vec![Line::styled("Turn on anonymous telemetry?", theme.title())];
            body.push(Line::from("Sent once a day, counts per day only:"));
            for item in telemetry::COLLECTED {
                body.push(Line::from(format!(" + {item}")));
            }
            body.push(Line::from(format!(
                "Never: {}.",
                telemetry::NEVER_COLLECTED.join(", ")
            )));
            Dialog {
                title: " Telemetry ",
                body,
                action: action_line("y", "turn on", theme),
            }
        }
        Overlay::ConfirmTelemetry { turn_on: false } => Dialog {
            title: " Telemetry ",
            body: vec![
                Line::styled("Turn telemetry off?", theme.title()),
                Line::from("Nothing more is recorded; the unsent buffer is deleted."),
            ],
            action: action_line("y", "turn off", theme),
        },
        Overlay::ConfirmWorktreeIndex => {
            let root = app
                .snapshot
                .as_ref()
                .and_then(|s| s.worktree_mismatch.as_ref())
                .map(|m| show_path(app, &m.worktree_root))
                .unwrap_or_default();
            Dialog {
                title: " Worktree index ",
                body: vec![
                    Line::styled("Build this worktree its own index?", theme.title()),
                    Line::from(format!("`codelens init -i` in {root}")),
                    Line::from("The dashboard then follows the new index."),
                ],
                action: action_line("y", "build", theme),
            }
        }
        Overlay::Notice(text) => Dialog {
            title: " codelens ",
            body: vec![Line::from(text.clone())],
            action: Line::styled("any other key closes", theme.dim()),
        },
    }
}

/// `line` broken at spaces into rows of `width` columns; a help line's continuation
/// rows are indented under its text.
fn wrap_line<'a>(line: &Line<'a>, width: usize) -> Vec<Line<'a>> {
    if line.width() <= width {
        return vec![line.clone()];
    }
    // A help line: the key column, then its text.
    if line.spans.len() == 2
        && line.spans[0].content.width() == KEY_COLUMN
        && width > KEY_COLUMN + 8
    {
        let keys = line.spans[0].clone();
        let text = wrap_words(&line.spans[1].content, width - KEY_COLUMN);
        return text
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let lead = if i == 0 {
                    keys.clone()
                } else {
                    Span::raw(" ".repeat(KEY_COLUMN))
                };
                Line::from(vec![lead, Span::raw(row)])
            })
            .collect();
    }
    let style = line.spans.first().map_or(line.style, |s| s.style);
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    // A list item (` + …`) keeps its indent on every row.
    let indent = text.len() - text.trim_start().len();
    let pad = " ".repeat(indent);
    wrap_words(text.trim_start(), width.saturating_sub(indent).max(1))
        .into_iter()
        .map(|row| Line::styled(format!("{pad}{row}"), style))
        .collect()
}

pub(super) fn render_overlay(
    frame: &mut Frame,
    app: &mut App,
    overlay: &Overlay,
    area: Rect,
    theme: Theme,
) {
    let d = dialog(app, overlay, theme);
    let widest = d
        .body
        .iter()
        .chain(std::iter::once(&d.action))
        .map(Line::width)
        .max()
        .unwrap_or(0);
    let width = (widest as u16)
        .saturating_add(4)
        .clamp(20, 72)
        .min(area.width);
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let rows: Vec<Line> = d
        .body
        .iter()
        .flat_map(|line| wrap_line(line, inner_width))
        .collect();
    // Body, a blank row, the action line, and the borders.
    let height = (rows.len() as u16 + 4).min(area.height);
    let visible = height.saturating_sub(4) as usize;
    let scrollable = rows.len() > visible;
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    app.overlay_rows = visible;
    app.overlay_scrollable = scrollable;
    let first = app.overlay_scroll.min(rows.len().saturating_sub(visible));
    app.overlay_scroll = first;
    // A margin cleared around the box too: no panel border is left abutting it.
    let left = popup.x.saturating_sub(1).max(area.x);
    let right = (popup.right() + 1).min(area.right());
    let margin = Rect {
        x: left,
        y: popup.y,
        width: right - left,
        height: popup.height,
    };
    frame.render_widget(Clear, margin);
    let mut block = Block::bordered()
        .border_type(BorderType::Double)
        .title(Span::styled(d.title, theme.title()));
    if scrollable && visible > 0 {
        let last = (first + visible).min(rows.len());
        block = block.title_bottom(
            Line::styled(
                format!(" ↑↓ {}–{last} of {} ", first + 1, rows.len()),
                theme.dim(),
            )
            .right_aligned(),
        );
    }
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [body, _, action] = Layout::vertical([
        Constraint::Length(visible as u16),
        Constraint::Length(u16::from(inner.height > 1)),
        Constraint::Length(1),
    ])
    .areas(inner);
    let shown: Vec<Line> = rows.into_iter().skip(first).take(visible).collect();
    frame.render_widget(Paragraph::new(shown), body);
    let width = action.width as usize;
    frame.render_widget(Paragraph::new(truncate_line(d.action, width)), action);
}
