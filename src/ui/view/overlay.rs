//! Overlays: help and the telemetry consent dialogs.

use super::*;

pub(super) fn render_overlay(
    frame: &mut Frame,
    app: &App,
    overlay: &Overlay,
    area: Rect,
    theme: Theme,
) {
    let (title, lines): (&str, Vec<Line>) = match overlay {
        Overlay::Help => {
            let mut lines: Vec<Line> = keymap::help_lines()
                .map(|(keys, help)| {
                    Line::from(vec![
                        Span::styled(format!("{keys:<15}"), theme.title()),
                        Span::raw(help),
                    ])
                })
                .collect();
            lines.push(Line::from(""));
            lines.push(Line::styled(
                format!(
                    "mouse capture is {} · Esc closes",
                    if app.mouse_capture { "on" } else { "off" }
                ),
                theme.dim(),
            ));
            (" Keys ", lines)
        }
        Overlay::ConfirmTelemetry { turn_on: true } => {
            let mut lines = vec![Line::styled("Turn on anonymous telemetry?", theme.title())];
            lines.push(Line::from("Sent once a day, counts per day only:"));
            for item in telemetry::COLLECTED {
                lines.push(Line::from(format!(" + {item}")));
            }
            lines.push(Line::from(format!(
                "Never: {}.",
                telemetry::NEVER_COLLECTED.join(", ")
            )));
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::styled("y", theme.title()),
                Span::raw(": turn on · any other key: cancel"),
            ]));
            (" Telemetry ", lines)
        }
        Overlay::ConfirmTelemetry { turn_on: false } => (
            " Telemetry ",
            vec![
                Line::styled("Turn telemetry off?", theme.title()),
                Line::from("Nothing more is recorded; the unsent buffer is deleted."),
                Line::from(""),
                Line::from(vec![
                    Span::styled("y", theme.title()),
                    Span::raw(": turn off · any other key: cancel"),
                ]),
            ],
        ),
        Overlay::ConfirmWorktreeIndex => {
            let root = app
                .snapshot
                .as_ref()
                .and_then(|s| s.worktree_mismatch.as_ref())
                .map(|m| show_path(app, &m.worktree_root))
                .unwrap_or_default();
            (
                " Worktree index ",
                vec![
                    Line::styled("Build this worktree its own index?", theme.title()),
                    Line::from(format!("`codelens init -i` in {root}")),
                    Line::from("The dashboard then follows the new index."),
                    Line::from(""),
                    Line::from(vec![
                        Span::styled("y", theme.title()),
                        Span::raw(": build · any other key: cancel"),
                    ]),
                ],
            )
        }
        Overlay::Notice(text) => (
            " codelens ",
            vec![
                Line::from(text.clone()),
                Line::from(""),
                Line::styled("any key closes", theme.dim()),
            ],
        ),
    };
    let width = (lines.iter().map(Line::width).max().unwrap_or(0) as u16)
        .saturating_add(4)
        .clamp(20, 72)
        .min(area.width);
    // Wrapped lines need more rows than there are lines; a rough allowance suffices.
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_width))
        .sum();
    let height = (rows as u16).saturating_add(2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(Span::styled(title, theme.title())),
        ),
        popup,
    );
}
