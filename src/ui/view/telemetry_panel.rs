//! The Telemetry panel and the one-line telemetry summary.

use super::*;

/// `on · codelens telemetry on · id 1a2b3c4d` or `off (default) · nothing recorded`.
pub(super) fn telemetry_short(app: &App) -> String {
    let t = &app.telemetry;
    let decided = if t.decided_by.is_empty() || t.decided_by.starts_with("default") {
        "default"
    } else {
        &t.decided_by
    };
    if t.enabled {
        let id = t
            .machine_id
            .as_deref()
            .map(|id| format!(" · id {}", &id[..id.len().min(8)]))
            .unwrap_or_default();
        format!(
            "telemetry on ({decided}){id} · buffer {}",
            human_bytes(t.buffer_bytes)
        )
    } else {
        format!("telemetry off ({decided}) · nothing recorded")
    }
}

pub(super) fn render_telemetry(
    frame: &mut Frame,
    app: &mut App,
    area: Rect,
    theme: Theme,
    full: bool,
) {
    if area.height == 0 {
        return;
    }
    let inner = draw_panel(
        frame,
        app,
        area,
        Panel::Telemetry,
        " Telemetry ".into(),
        theme,
    );
    let width = inner.width as usize;
    let t = &app.telemetry;
    let action = match (t.env_locked, t.enabled) {
        (true, _) => "set by the environment; not changeable here",
        (false, true) => "t: turn off",
        (false, false) => "t: turn on",
    };
    let state = if t.enabled {
        Span::styled("on", theme.warning())
    } else {
        Span::styled("off", theme.ok())
    };
    let decided = if t.decided_by.is_empty() || t.decided_by.starts_with("default") {
        "default".to_string()
    } else {
        t.decided_by.clone()
    };
    let mut lines = vec![truncate_line(
        Line::from(vec![
            state,
            Span::raw(format!(" ({decided}) · ")),
            Span::styled(action, theme.dim()),
        ]),
        width,
    )];
    // Under an environment switch, the choice it overrides (what applies without it).
    if t.env_locked {
        let stored = match t.stored_choice {
            Some(true) => "on",
            Some(false) => "off",
            None => "none (off)",
        };
        lines.push(Line::styled(
            fit_right(&format!("stored choice: {stored}"), width),
            theme.dim(),
        ));
    }
    if t.enabled {
        let id = t.machine_id.as_deref().unwrap_or("none yet");
        lines.push(Line::from(fit_right(
            &format!(
                "id {id} · buffer {} · {} unsent",
                human_bytes(t.buffer_bytes),
                match t.pending_days {
                    1 => "1 day".to_string(),
                    n => format!("{n} days"),
                }
            ),
            width,
        )));
    } else if full {
        lines.push(Line::from(fit_right(
            "nothing is recorded, written or sent",
            width,
        )));
    }
    if !full {
        // A side pane has room for one line of the promise; `t` shows the whole list.
        lines.push(Line::styled(
            fit_right(
                "counts only · never code, paths, names, queries, IPs",
                width,
            ),
            theme.dim(),
        ));
    }
    if full {
        lines.push(Line::styled(
            fit_right("collected (per day, counts only):", width),
            theme.dim(),
        ));
        for item in telemetry::COLLECTED {
            lines.push(Line::from(fit_right(&format!(" + {item}"), width)));
        }
        let never = format!("never: {}", telemetry::NEVER_COLLECTED.join(", "));
        for line in wrap_words(&never, width) {
            lines.push(Line::styled(line, theme.dim()));
        }
    }
    let visible = inner.height as usize;
    app.panel_rows[Panel::Telemetry.index()] = visible.max(1);
    let first = app.first_visible(Panel::Telemetry, lines.len(), visible);
    let lines: Vec<Line> = lines.into_iter().skip(first).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
