//! Drawing the dashboard: a pure function of the [`App`] and the frame's size. Every
//! size from 1×1 up renders (saturating arithmetic throughout, and layouts that give up
//! panels before they would overflow); with `NO_COLOR` no cell carries a colour, and
//! emphasis falls back to bold and reverse video.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use super::app::{App, Overlay, Panel, Screen};
use super::keymap;
use crate::engine::banner::{PendingState, human_age};
use crate::engine::reconcile::Change;
use crate::engine::watcher::WatchMode;
use crate::engine::{Catchup, Freshness, Role, Snapshot};
use crate::humanize::{human_bytes, thousands};
use crate::telemetry;

mod debounce;
mod events;
mod header;
mod overlay;
mod pending;
mod screens;
mod telemetry_panel;

use debounce::*;
use events::*;
use header::*;
use overlay::*;
use pending::*;
use screens::*;
use telemetry_panel::*;

/// Below this, not even the one-line summary fits.
const MIN_SUMMARY: (u16, u16) = (20, 3);

/// Below this, the panels give way to a short summary.
const MIN_PANELS: (u16, u16) = (40, 12);

/// From this width on, the panels sit in two columns.
const TWO_COLUMNS_FROM: u16 = 100;

/// Colours from the terminal's own palette (named ANSI colours, never RGB), so they
/// follow light and dark themes; with `NO_COLOR`, plain text with modifiers only.
#[derive(Clone, Copy)]
pub(super) struct Theme {
    color: bool,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    fn warning(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    fn dim(self) -> Style {
        if self.color {
            Style::new().add_modifier(Modifier::DIM)
        } else {
            Style::new()
        }
    }
    fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    fn focused_border(self) -> Style {
        if self.color {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }
    fn focused_title(self) -> Style {
        // Reverse video marks focus even without colours.
        Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }
}

/// Draws the whole dashboard (or what fits) for the current state.
pub fn render(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    let theme = Theme { color: app.color };
    if area.width < MIN_SUMMARY.0 || area.height < MIN_SUMMARY.1 {
        let text = if area.width >= 9 { "too small" } else { "…" };
        frame.render_widget(Paragraph::new(fit_right(text, area.width as usize)), area);
        return;
    }
    if area.width < MIN_PANELS.0 || area.height < MIN_PANELS.1 {
        render_summary(frame, app, area, theme);
    } else {
        match app.screen.clone() {
            Screen::Dashboard => render_dashboard(frame, app, area, theme),
            screen => render_message_screen(frame, app, &screen, area, theme),
        }
    }
    if let Some(overlay) = app.overlay.clone() {
        render_overlay(frame, app, &overlay, area, theme);
    } else {
        app.overlay_scrollable = false;
    }
}

pub(super) fn render_dashboard(frame: &mut Frame, app: &mut App, area: Rect, theme: Theme) {
    // Until panels are drawn again, the mouse finds none (the summary has none).
    app.panel_areas = [Rect::default(); 4];
    let Some(snapshot) = app.snapshot.clone() else {
        return;
    };
    let wide = area.width >= TWO_COLUMNS_FROM && area.height >= 20;
    let mismatch_rows: u16 = if snapshot.worktree_mismatch.is_some() {
        6
    } else {
        0
    };
    // The consent lines stay however short the pane: they are part of the promise.
    let consent_rows: u16 = if app.telemetry.enabled { 5 } else { 4 };
    // Header, warning, consent, one pending row with its borders, hints: below that the
    // panels would hide what matters, and the summary says it in fewer lines.
    if !wide && area.height < 3 + mismatch_rows + consent_rows + 3 + 1 {
        render_summary(frame, app, area, theme);
        return;
    }
    let [header, warning, body, hints] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(mismatch_rows),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, app, &snapshot, header, theme);
    if mismatch_rows > 0 {
        render_mismatch(frame, app, &snapshot, warning, theme);
    }
    let debounce_rows = match snapshot.directories.len() {
        0 => 0,
        n => (n as u16).saturating_add(2).min(if wide { 8 } else { 5 }),
    };
    let [pending, debounce, consent, events] = if wide {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(body);
        let [pending, debounce] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(debounce_rows)]).areas(left);
        let telemetry_rows = (telemetry::COLLECTED.len() as u16 + 7).min(right.height / 2);
        let [consent, events] =
            Layout::vertical([Constraint::Length(telemetry_rows), Constraint::Min(3)]).areas(right);
        [pending, debounce, consent, events]
    } else {
        // In a short pane the countdowns give way: each pending row shows its own.
        let debounce_rows = if body.height < 16 { 0 } else { debounce_rows };
        // Pending gets three fifths of what is left, Events the rest — unless that is
        // too little for a box with a line in it.
        let rest = body.height.saturating_sub(debounce_rows + consent_rows);
        let events_rows = match rest * 2 / 5 {
            rows if rows < 3 => 0,
            rows => rows,
        };
        Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(debounce_rows),
            Constraint::Length(consent_rows),
            Constraint::Length(events_rows),
        ])
        .areas(body)
    };
    // The two-column layout has room for the full list of what telemetry collects.
    render_pending(frame, app, &snapshot, pending, theme);
    render_debounce(frame, app, &snapshot, debounce, theme);
    render_telemetry(frame, app, consent, theme, wide);
    render_events(frame, app, events, theme);
    app.set_visible([true, debounce.height > 0, true, events.height > 0]);
    app.panel_areas = [pending, debounce, consent, events];
    render_hints(frame, hints, theme);
}

/// Draws a panel's box over `area` (highlighted while it has the focus) and returns the
/// area inside it.
pub(super) fn draw_panel(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    panel: Panel,
    title: String,
    theme: Theme,
) -> Rect {
    let focused = app.focus == panel && app.overlay.is_none();
    let block = Block::bordered().border_type(BorderType::Rounded);
    let block = if focused {
        block
            .border_style(theme.focused_border())
            .title(Span::styled(title, theme.focused_title()))
    } else {
        block.title(Span::styled(title, theme.title()))
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// Paths under `$HOME` as `~/…`.
pub(super) fn show_path(app: &App, path: &std::path::Path) -> String {
    if let Some(home) = &app.home
        && let Ok(rest) = path.strip_prefix(home)
    {
        return if rest.as_os_str().is_empty() {
            "~".into()
        } else {
            format!("~/{}", rest.display())
        };
    }
    path.display().to_string()
}

/// `text` cut to `width` columns, ending in `…` when cut.
pub fn fit_right(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` cut to `width` columns from the left, starting with `…` when cut: for paths,
/// whose end (the file name) matters most.
pub fn fit_left(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        tail.push(c);
    }
    let mut out = String::from('…');
    out.extend(tail.into_iter().rev());
    out
}

/// `text` broken at spaces into lines of at most `width` columns (a word longer than
/// that is cut).
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed = if line.is_empty() { 0 } else { 1 } + word.width();
        if !line.is_empty() && line.width() + needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.into_iter().map(|l| fit_right(&l, width)).collect()
}

/// A line cut to `width` columns, its last visible span ending in `…`.
pub(super) fn truncate_line(line: Line<'_>, width: usize) -> Line<'_> {
    truncate_spans(line.spans, width)
}

pub(super) fn truncate_spans(spans: Vec<Span<'_>>, width: usize) -> Line<'_> {
    let total: usize = spans.iter().map(Span::width).sum();
    if total <= width {
        return Line::from(spans);
    }
    let mut out = Vec::new();
    let mut used = 0;
    for span in spans {
        let w = span.width();
        if used + w < width {
            used += w;
            out.push(span);
            continue;
        }
        let room = width - used;
        out.push(Span::styled(fit_right(&span.content, room), span.style));
        break;
    }
    Line::from(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::engine::Event;
    use crate::telemetry::{Decider, TelemetryStatus};
    use crate::ui::app::TelemetryView;
    use crate::ui::fixtures::{self, NOW_NS};

    fn app_with(snapshot: Snapshot) -> App {
        let mut app = App::new(true, true, NOW_NS);
        app.home = Some(PathBuf::from("/home/dev"));
        app.on_snapshot(Arc::new(snapshot), NOW_NS);
        app.on_engine_event(
            "10:41:20".into(),
            &Event::CatchupFinished {
                found: 3,
                duration_ms: 41,
                rescan: false,
            },
        );
        app.on_engine_event(
            "10:41:57".into(),
            &Event::Synced {
                added: 0,
                modified: 3,
                removed: 0,
                duration_ms: 18,
            },
        );
        app
    }

    fn draw(app: &mut App, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("backend");
        terminal.draw(|frame| render(frame, app)).expect("render");
        terminal.backend().buffer().clone()
    }

    fn text(buffer: &Buffer) -> String {
        let area = buffer.area;
        let mut out = String::new();
        for y in 0..area.height {
            let mut line = String::new();
            for x in 0..area.width {
                line.push_str(buffer[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn telemetry_on() -> TelemetryStatus {
        TelemetryStatus {
            enabled: true,
            decided_by: Decider::UserOn,
            machine_id: Some("1a2b3c4d-0000-4000-8000-000000000000".into()),
            buffer_path: PathBuf::from("/home/dev/.codelens/telemetry-buffer.json"),
            buffer_bytes: 2_100,
            pending_days: vec!["2026-11-24".into()],
            rejected_days: 0,
            stored_choice: Some(true),
        }
    }

    #[test]
    fn in_sync_side_pane() {
        let mut app = app_with(fixtures::snapshot_in_sync());
        insta::assert_snapshot!(text(&draw(&mut app, 60, 24)));
    }

    /// The pane sizes a side pane comes in, smallest first.
    const PANES: [(u16, u16); 5] = [(30, 10), (40, 20), (60, 24), (80, 30), (120, 40)];

    /// Every pane size, one after the other, for one snapshot file per state.
    fn at_every_pane(app: &mut App) -> String {
        PANES
            .iter()
            .map(|&(w, h)| format!("{w}x{h}:\n{}", text(&draw(app, w, h))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first line the user reads, with the borders taken off.
    fn first_line(screen: &str) -> &str {
        screen.lines().next().unwrap_or_default()
    }

    #[test]
    fn the_header_leads_with_the_status_word_at_every_width() {
        let states: Vec<(&str, Snapshot)> = vec![
            ("✓ verified · synced", fixtures::snapshot_in_sync()),
            ("● 3 pending", fixtures::snapshot_pending(NOW_NS)),
            ("✗ error", {
                let mut s = fixtures::snapshot_pending(NOW_NS);
                s.error = Some("cannot publish the pending set: disk full".into());
                s
            }),
        ];
        let unverified = fixtures::unverified_reasons().into_iter().map(|reason| {
            (
                "⚠ unverified",
                fixtures::snapshot_unverified(NOW_NS, reason),
            )
        });
        for (word, snapshot) in states.into_iter().chain(unverified) {
            for (width, height) in PANES {
                let mut app = app_with(snapshot.clone());
                let screen = text(&draw(&mut app, width, height));
                let lead = first_line(&screen).trim_start_matches(['╭', ' ']);
                let word = fit_right(word, lead.width().min(word.width()));
                assert!(
                    lead.starts_with(word.trim_end_matches('…')),
                    "{width}x{height} does not lead with {word}:\n{screen}"
                );
                // The watcher and the sync age stay in view from 30 columns on.
                let watcher = if snapshot.watcher.mode == WatchMode::Native {
                    "per-dir watch"
                } else {
                    "watcher off"
                };
                assert!(screen.contains(watcher), "{width}x{height}:\n{screen}");
                assert!(screen.contains("synced"), "{width}x{height}:\n{screen}");
                // A long reason may push the name out below 80 columns: the verdict first.
                if width >= 80 {
                    assert!(
                        first_line(&screen).contains(" · app"),
                        "{width}x{height} lost the project:\n{screen}"
                    );
                }
                if width >= 80 && snapshot.error.is_none() {
                    assert!(
                        screen.contains("12,408 files"),
                        "{width}x{height}:\n{screen}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_branch_gives_way_before_the_project_name() {
        let mut snapshot = fixtures::snapshot_pending(NOW_NS);
        snapshot.branch = Some("feature/the-dashboard-in-a-narrow-side-pane".into());
        let mut app = app_with(snapshot);
        for width in [40, 50, 60, 80] {
            let screen = text(&draw(&mut app, width, 20));
            let top = first_line(&screen);
            assert!(top.contains("● 3 pending · app"), "{width}: {top}");
            assert!(top.contains("synced 3s ago") || screen.contains("synced 3s ago"));
        }
        let top = first_line(&text(&draw(&mut app, 60, 20))).to_string();
        assert!(
            top.contains("· app · feature/the-dash") && top.contains("…"),
            "the branch is cut: {top}"
        );
        // Counts go first: at 40 columns the line keeps the age, the watcher and the
        // role (which the title has no room for).
        let screen = text(&draw(&mut app, 40, 20));
        assert_eq!(
            screen.lines().nth(1),
            Some("│synced 3s ago · per-dir watch · writer│")
        );
        let long_project = Snapshot {
            root: PathBuf::from("/home/dev/src/a-project-with-a-long-name"),
            ..fixtures::snapshot_pending(NOW_NS)
        };
        let mut app = app_with(long_project);
        let top = first_line(&text(&draw(&mut app, 40, 20))).to_string();
        assert!(
            top.starts_with("╭ ● 3 pending · a-project-with-a-long… ╮"),
            "{top}"
        );
    }

    #[test]
    fn header_states_at_every_pane_size() {
        let mut app = app_with(fixtures::snapshot_in_sync());
        insta::assert_snapshot!("verified_panes", at_every_pane(&mut app));
        let mut app = app_with(fixtures::snapshot_pending(NOW_NS));
        insta::assert_snapshot!("pending_panes", at_every_pane(&mut app));
        let mut app = app_with(fixtures::snapshot_unverified(
            NOW_NS,
            crate::engine::freshness::Unverified::WatcherOff,
        ));
        insta::assert_snapshot!("watcher_off_panes", at_every_pane(&mut app));
        let mut app = app_with(fixtures::snapshot_unverified(
            NOW_NS,
            crate::engine::freshness::Unverified::WriterNotResponding { secs: 14 },
        ));
        insta::assert_snapshot!("writer_not_responding_panes", at_every_pane(&mut app));
        // Every other reason, at the three side-pane sizes, in one file.
        let others: Vec<String> = fixtures::unverified_reasons()
            .into_iter()
            .map(|reason| {
                let mut app = app_with(fixtures::snapshot_unverified(NOW_NS, reason.clone()));
                let screens: Vec<String> = [(40, 20), (60, 24), (80, 30)]
                    .into_iter()
                    .map(|(w, h)| format!("{w}x{h}:\n{}", text(&draw(&mut app, w, h))))
                    .collect();
                format!("== {reason:?}\n{}", screens.join("\n"))
            })
            .collect();
        insta::assert_snapshot!("every_unverified_reason", others.join("\n"));
    }

    #[test]
    fn a_follower_draws_its_writers_debounce() {
        for (width, height) in [(40, 20), (60, 24), (80, 30)] {
            let mut app = app_with(fixtures::snapshot_follower_debounce(NOW_NS));
            let screen = text(&draw(&mut app, width, height));
            assert!(screen.contains("follower"), "{width}x{height}:\n{screen}");
            assert!(screen.contains("Debounce"), "{width}x{height}:\n{screen}");
            assert!(screen.contains("waiting 2s"), "{width}x{height}:\n{screen}");
            insta::assert_snapshot!(format!("follower_debounce_{width}x{height}"), screen);
        }
    }

    fn press(app: &mut App, code: ratatui::crossterm::event::KeyCode) {
        use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    #[test]
    fn overlays_scroll_with_their_action_line_pinned() {
        use ratatui::crossterm::event::KeyCode;
        for (width, height) in [(40, 20), (60, 24), (80, 30)] {
            let mut app = app_with(fixtures::snapshot_in_sync());
            press(&mut app, KeyCode::Char('t'));
            let screen = text(&draw(&mut app, width, height));
            assert!(screen.contains("y: turn on"), "{width}x{height}:\n{screen}");
            // Scrolled to its end: the last line of the body, and still the action.
            // (Where it fits, a scroll key would answer it: "any other key".)
            if app.overlay_scrollable {
                press(&mut app, KeyCode::End);
                press(&mut app, KeyCode::PageDown);
                assert!(app.overlay.is_some(), "scrolling does not answer");
            }
            let screen = text(&draw(&mut app, width, height));
            assert!(screen.contains("y: turn on"), "{width}x{height}:\n{screen}");
            assert!(
                screen.contains("host names."),
                "{width}x{height}:\n{screen}"
            );
            insta::assert_snapshot!(format!("consent_scrolled_{width}x{height}"), screen);
            // Back to the top: the question again.
            if app.overlay_scrollable {
                press(&mut app, KeyCode::Home);
            }
            let screen = text(&draw(&mut app, width, height));
            assert!(screen.contains("Turn on anonymous telemetry?"), "{screen}");
            assert_eq!(
                app.on_key(ratatui::crossterm::event::KeyEvent::new(
                    KeyCode::Char('y'),
                    ratatui::crossterm::event::KeyModifiers::NONE,
                )),
                Some(crate::ui::app::Effect::SetTelemetry(true))
            );

            let mut app = app_with(fixtures::snapshot_in_sync());
            app.overlay = Some(Overlay::Help);
            draw(&mut app, width, height);
            if app.overlay_scrollable {
                press(&mut app, KeyCode::Char('G'));
            }
            let screen = text(&draw(&mut app, width, height));
            assert!(screen.contains("Esc closes"), "{width}x{height}:\n{screen}");
            let last = keymap::help_lines()
                .last()
                .map(|(keys, _)| keys)
                .unwrap_or("");
            assert!(
                screen.contains(last),
                "{width}x{height} ends with {last}:\n{screen}"
            );
            insta::assert_snapshot!(format!("help_scrolled_{width}x{height}"), screen);
        }
    }

    #[test]
    fn a_dialog_leaves_no_stray_border_beside_it() {
        let mut snapshot = fixtures::snapshot_in_sync();
        snapshot.telemetry = telemetry_on();
        let mut app = app_with(snapshot);
        app.overlay = Some(Overlay::ConfirmTelemetry { turn_on: false });
        let screen = text(&draw(&mut app, 60, 24));
        for line in screen.lines().filter(|l| l.contains('║')) {
            let outside: String = line
                .split('║')
                .enumerate()
                .filter(|(i, _)| *i == 0 || *i == 2)
                .map(|(_, part)| part)
                .collect();
            assert!(
                !outside.contains(['│', '╭', '╮', '╰', '╯', '─']),
                "a panel's border beside the dialog:\n{screen}"
            );
        }
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn the_pending_list_has_kinds_a_cursor_pages_and_a_filter() {
        use crate::ui::app::Effect;
        use ratatui::crossterm::event::KeyCode;
        let mut app = app_with(fixtures::snapshot_pending(NOW_NS));
        let screen = text(&draw(&mut app, 60, 24));
        let row = |name: &str| {
            screen
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            row("runner.rs").contains("3s ~ src/engine/runner.rs"),
            "{screen}"
        );
        assert!(row("web/app.ts").contains("1m12s + web/app.ts"), "{screen}");
        // A deleted file has no edit age.
        assert!(
            row("go/main.go").starts_with("│       - go/main.go"),
            "{screen}"
        );
        // Enter opens the selected file; a deleted one has nothing to open.
        assert_eq!(
            app.on_key(ratatui::crossterm::event::KeyEvent::from(KeyCode::Enter)),
            Some(Effect::OpenInEditor(PathBuf::from(
                "/home/dev/src/app/src/engine/runner.rs"
            )))
        );
        press(&mut app, KeyCode::Char('G'));
        assert_eq!(
            app.on_key(ratatui::crossterm::event::KeyEvent::from(KeyCode::Char(
                'c'
            ))),
            Some(Effect::Copy("go/main.go".into()))
        );
        press(&mut app, KeyCode::Enter);
        assert!(matches!(app.overlay, Some(Overlay::Notice(ref t)) if t.contains("deleted")));

        // 200 files in a 40x20 pane: the position, and pages of the panel's height.
        let mut app = app_with(fixtures::snapshot_many_pending(NOW_NS, 200));
        let screen = text(&draw(&mut app, 40, 20));
        let page = app.panel_rows[0];
        assert!(page > 1, "{screen}");
        assert!(screen.contains(&format!("1–{page} of 200")), "{screen}");
        press(&mut app, KeyCode::PageDown);
        press(&mut app, KeyCode::PageDown);
        assert_eq!(app.pending_cursor, 2 * page);
        let screen = text(&draw(&mut app, 40, 20));
        assert!(
            screen.contains(&format!("{}–{} of 200", page + 2, 2 * page + 1)),
            "{screen}"
        );
        insta::assert_snapshot!("pending_cursor_40x20", screen);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.pending_cursor, page);

        // `/` filters: typed characters narrow the list, Enter keeps it, Esc clears it.
        press(&mut app, KeyCode::Char('/'));
        for c in "module_007/".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        assert!(app.filter_editing);
        let screen = text(&draw(&mut app, 40, 20));
        assert!(screen.contains("/module_007/▏"), "{screen}");
        press(&mut app, KeyCode::Enter);
        assert!(!app.filter_editing);
        let screen = text(&draw(&mut app, 40, 20));
        assert!(screen.contains("file_00007.rs"), "{screen}");
        assert!(!screen.contains("file_00008.rs"), "{screen}");
        assert_eq!(app.pending_rows().len(), 1);
        assert_eq!(
            app.on_key(ratatui::crossterm::event::KeyEvent::from(KeyCode::Char(
                'c'
            ))),
            Some(Effect::Copy("src/module_007/file_00007.rs".into()))
        );
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.pending_rows().len(), 200);
    }

    #[test]
    fn the_debounce_panel_says_what_it_cuts_off_and_the_maximum_wait() {
        let mut snapshot = fixtures::snapshot_many_pending(NOW_NS, 800);
        // Written to for 4 s of a 2 s window: re-indexed within 6 s whatever comes.
        snapshot.directories[0].waited_ms = 4_000;
        let mut app = app_with(snapshot);
        let screen = text(&draw(&mut app, 60, 24));
        let rows = app.panel_rows[Panel::Debounce.index()];
        assert!(
            screen.contains(&format!("+{} more", 400 - (rows - 1))),
            "{screen}"
        );
        assert!(screen.contains("1s · max 6s"), "{screen}");
        insta::assert_snapshot!("debounce_more_60x24", screen);
        // Scrolled to its end, nothing is cut off below.
        press(&mut app, ratatui::crossterm::event::KeyCode::Tab);
        press(&mut app, ratatui::crossterm::event::KeyCode::End);
        let screen = text(&draw(&mut app, 60, 24));
        assert!(!screen.contains("more"), "{screen}");
        assert!(screen.contains("src/module_399"), "{screen}");
    }

    #[test]
    fn the_mouse_focuses_and_scrolls_the_panel_under_it() {
        use ratatui::crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
        let mut app = app_with(fixtures::snapshot_many_pending(NOW_NS, 200));
        draw(&mut app, 60, 24);
        let at = |kind, area: Rect, dy: u16| MouseEvent {
            kind,
            column: area.x + 2,
            row: area.y + dy,
            modifiers: KeyModifiers::NONE,
        };
        let events = app.panel_areas[Panel::Events.index()];
        let pending = app.panel_areas[Panel::Pending.index()];
        assert!(events.height > 0 && pending.height > 0);
        // The wheel over Events scrolls Events, and focus stays on Pending.
        for _ in 0..10 {
            app.on_engine_event("10:50:00".into(), &Event::Rescan { count: 1 });
        }
        app.on_mouse(at(MouseEventKind::ScrollDown, events, 1));
        assert_eq!(app.focus, Panel::Pending);
        assert_eq!(app.scroll[Panel::Events.index()], 3);
        app.on_mouse(at(MouseEventKind::ScrollDown, pending, 1));
        assert_eq!(app.pending_cursor, 3);
        // A click focuses; in Pending it selects the row clicked.
        app.on_mouse(at(MouseEventKind::Down(MouseButton::Left), events, 1));
        assert_eq!(app.focus, Panel::Events);
        app.on_mouse(at(MouseEventKind::Down(MouseButton::Left), pending, 2));
        assert_eq!((app.focus, app.pending_cursor), (Panel::Pending, 1));
        // `m` says what it did.
        press(&mut app, ratatui::crossterm::event::KeyCode::Char('m'));
        assert!(
            app.events[0].1.starts_with("mouse capture off"),
            "{:?}",
            app.events[0]
        );
        press(&mut app, ratatui::crossterm::event::KeyCode::Char('m'));
        assert!(
            app.events[0].1.starts_with("mouse capture on"),
            "{:?}",
            app.events[0]
        );
    }

    #[test]
    fn wording_says_what_is_true() {
        // A worktree reading another checkout's index is never "in sync".
        let mut snapshot = fixtures::snapshot_mismatch(NOW_NS);
        snapshot.pending.clear();
        snapshot.directories.clear();
        snapshot.freshness = Freshness::Verified {
            basis: crate::engine::freshness::Basis::Watcher,
        };
        let mut app = app_with(snapshot);
        let screen = text(&draw(&mut app, 80, 30));
        assert!(
            screen.contains("edits in this worktree are not tracked"),
            "{screen}"
        );
        assert!(!screen.contains("in sync"), "{screen}");
        // One change, and a rescan logged as one.
        let caught = Event::CatchupFinished {
            found: 1,
            duration_ms: 4,
            rescan: false,
        };
        assert_eq!(caught.to_string(), "catch-up: 1 change found in 4 ms");
        let rescanned = Event::CatchupFinished {
            found: 2,
            duration_ms: 4,
            rescan: true,
        };
        assert_eq!(rescanned.to_string(), "rescan: 2 changes found in 4 ms");
        // The no-index screen offers only the keys that work there.
        let mut app = App::new(true, true, NOW_NS);
        app.set_screen(Screen::NoIndex {
            root: PathBuf::from("/src/app"),
        });
        let screen = text(&draw(&mut app, 60, 12));
        assert_eq!(screen.lines().last(), Some("y build · q quit"), "{screen}");
    }

    #[test]
    fn pending_files_with_ages_and_states() {
        for (width, height) in [(40, 20), (80, 24), (160, 48)] {
            let mut app = app_with(fixtures::snapshot_pending(NOW_NS));
            let screen = text(&draw(&mut app, width, height));
            insta::assert_snapshot!(format!("pending_{width}x{height}"), screen);
        }
    }

    #[test]
    fn worktree_mismatch_stays_visible_at_every_layout() {
        for (width, height) in [(40, 20), (80, 24), (160, 48), (20, 6)] {
            let mut app = app_with(fixtures::snapshot_mismatch(NOW_NS));
            let screen = text(&draw(&mut app, width, height));
            assert!(
                screen.contains("wrong index"),
                "{width}x{height}:\n{screen}"
            );
            insta::assert_snapshot!(format!("mismatch_{width}x{height}"), screen);
        }
        // Wherever the panels show, the block names both roots and both branches.
        for (width, height) in [(60, 30), (80, 24), (100, 20), (160, 48), (200, 60)] {
            let mut app = app_with(fixtures::snapshot_mismatch(NOW_NS));
            let screen = text(&draw(&mut app, width, height));
            for fact in [
                "~/src/app/wt/feature",
                "~/src/app",
                "feature",
                "main",
                "init -i",
            ] {
                assert!(
                    screen.contains(fact),
                    "{width}x{height} lacks {fact}:\n{screen}"
                );
            }
        }
    }

    #[test]
    fn consent_stays_visible_in_every_side_pane() {
        for mismatch in [false, true] {
            for width in [20u16, 30, 40, 60, 80, 99] {
                for height in 3u16..=40 {
                    let mut snapshot = fixtures::snapshot_pending(NOW_NS);
                    if mismatch {
                        snapshot.worktree_mismatch = Some(fixtures::mismatch());
                    }
                    let mut app = app_with(snapshot);
                    let screen = text(&draw(&mut app, width, height));
                    assert!(
                        screen.contains("off (default)")
                            || screen.contains("telemetry off")
                            || screen.contains("telemetr…"),
                        "{width}x{height} (mismatch {mismatch}) hides consent:\n{screen}"
                    );
                    if mismatch {
                        assert!(
                            screen.contains("wrong index") || screen.contains("⚠"),
                            "{width}x{height} hides the mismatch:\n{screen}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn consent_on_and_off() {
        let mut off = app_with(fixtures::snapshot_in_sync());
        let screen = text(&draw(&mut off, 80, 24));
        assert!(screen.contains("off (default)"), "{screen}");
        let mut snapshot = fixtures::snapshot_in_sync();
        snapshot.telemetry = telemetry_on();
        let mut on = app_with(snapshot);
        let screen = text(&draw(&mut on, 80, 24));
        // Stored here or by the CLI alike: never claim a command was run.
        assert!(screen.contains("on (your choice)"), "{screen}");
        assert!(!screen.contains("codelens telemetry on"), "{screen}");
        assert!(screen.contains("1a2b3c4d"), "{screen}");
        insta::assert_snapshot!("consent_on_80x24", screen);
        let wide = text(&draw(&mut on, 160, 48));
        for item in telemetry::NEVER_COLLECTED {
            assert!(wide.contains(item), "{item} missing:\n{wide}");
        }
        insta::assert_snapshot!("consent_on_160x48", wide);
    }

    #[test]
    fn env_switch_is_shown_as_not_changeable() {
        let mut snapshot = fixtures::snapshot_in_sync();
        snapshot.telemetry.decided_by = Decider::DoNotTrack;
        let mut app = app_with(snapshot);
        assert!(app.telemetry.env_locked);
        let screen = text(&draw(&mut app, 80, 24));
        assert!(screen.contains("DO_NOT_TRACK=1"), "{screen}");
        assert!(screen.contains("not changeable here"), "{screen}");
        assert!(screen.contains("stored choice: none (off)"), "{screen}");
        app.overlay = None;
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char('t'),
        ));
        assert!(
            matches!(&app.overlay, Some(Overlay::Notice(text)) if text.starts_with("Telemetry is off: DO_NOT_TRACK=1.")),
            "{:?}",
            app.overlay
        );
    }

    #[test]
    fn overflow_event_in_the_log() {
        let mut app = app_with(fixtures::snapshot_pending(NOW_NS));
        app.on_engine_event("10:42:00".into(), &Event::Rescan { count: 1 });
        app.on_engine_event("10:42:00".into(), &Event::LockRetry { attempt: 2, of: 5 });
        let screen = text(&draw(&mut app, 80, 24));
        assert!(screen.contains("events lost: full rescan #1"), "{screen}");
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn tiny_pane_keeps_the_essentials() {
        let mut app = app_with(fixtures::snapshot_mismatch(NOW_NS));
        insta::assert_snapshot!(text(&draw(&mut app, 20, 6)));
        let mut app = app_with(fixtures::snapshot_in_sync());
        let screen = text(&draw(&mut app, 30, 4));
        assert!(screen.contains("✓ verified"), "{screen}");
        assert!(screen.contains("per-dir watch"), "{screen}");
        assert!(screen.contains("telemetry off"), "{screen}");
        assert_eq!(text(&draw(&mut app, 12, 2)), "too small\n\n");
    }

    #[test]
    fn help_overlay_lists_the_keymap() {
        let mut app = app_with(fixtures::snapshot_in_sync());
        app.overlay = Some(Overlay::Help);
        let screen = text(&draw(&mut app, 80, 24));
        for (keys, _) in keymap::help_lines() {
            assert!(screen.contains(keys), "{keys} missing:\n{screen}");
        }
        insta::assert_snapshot!(screen);
    }

    #[test]
    fn missing_index_and_build_progress() {
        let mut app = App::new(true, true, NOW_NS);
        app.set_screen(Screen::NoIndex {
            root: PathBuf::from("/src/app"),
        });
        let screen = text(&draw(&mut app, 60, 12));
        assert!(
            screen.contains("No codelens index covers /src/app."),
            "{screen}"
        );
        app.set_screen(Screen::Building {
            what: "Indexing /src/app".into(),
            checked: 250,
            total: 1000,
        });
        insta::assert_snapshot!(text(&draw(&mut app, 60, 12)));
    }

    #[test]
    fn engine_stopped_is_said_plainly() {
        let mut app = app_with(fixtures::snapshot_pending(NOW_NS));
        app.on_engine_stopped("codelens-engine panicked: boom".into());
        let screen = text(&draw(&mut app, 80, 24));
        assert!(
            screen.contains("engine stopped: codelens-engine panicked"),
            "{screen}"
        );
        assert_eq!(app.next_tick(), None, "a stopped engine's ages do not tick");
    }

    #[test]
    fn every_size_renders_without_panic() {
        // Between them, every panel, the overlay and the message screen.
        let mut states = Vec::new();
        let mut many = fixtures::snapshot_many_pending(NOW_NS, 500);
        many.worktree_mismatch = Some(fixtures::mismatch());
        many.telemetry = telemetry_on();
        let mut dashboard = app_with(many.clone());
        dashboard.on_engine_stopped("the engine thread ended".into());
        states.push(dashboard);
        let mut with_overlay = app_with(many);
        with_overlay.overlay = Some(Overlay::ConfirmTelemetry { turn_on: true });
        with_overlay.scroll = [usize::MAX / 2; 4];
        states.push(with_overlay);
        let mut locked = fixtures::snapshot_in_sync();
        locked.telemetry.decided_by = Decider::Ci {
            var: "GITHUB_ACTIONS",
        };
        let mut help = app_with(locked);
        help.overlay = Some(Overlay::Help);
        states.push(help);
        let mut no_index = App::new(false, true, NOW_NS);
        no_index.set_screen(Screen::NoIndex {
            root: PathBuf::from("/a/project/without/an/index"),
        });
        states.push(no_index);
        let mut failed = App::new(true, true, NOW_NS);
        failed.set_screen(Screen::Failed(
            "the index at /x/.codelens/index.db is corrupt (file is not a database); rebuild it with `codelens init`".into(),
        ));
        states.push(failed);
        let mut building = App::new(true, true, NOW_NS);
        building.set_screen(Screen::Building {
            what: "Indexing /a/very/long/path/that/goes/on".into(),
            checked: 3,
            total: 0,
        });
        states.push(building);
        render_at_every_size(&mut states, 200, 60);
    }

    /// Draws each of `states` at every size up to `widest`×`tallest`.
    fn render_at_every_size(states: &mut [App], widest: u16, tallest: u16) {
        let mut terminal = Terminal::new(TestBackend::new(1, 1)).expect("backend");
        for app in states {
            for width in 1..=widest {
                for height in 1..=tallest {
                    terminal.backend_mut().resize(width, height);
                    terminal
                        .draw(|frame| render(frame, app))
                        .unwrap_or_else(|e| panic!("{width}x{height}: {e}"));
                }
            }
        }
    }

    /// Names no fixture has: very long, wide (CJK, emoji), combining marks, a lossy
    /// non-UTF-8 byte, control characters; with the filter, the cursor and a notice on
    /// them, a follower's windows, at every small pane size.
    #[test]
    fn hostile_names_render_at_every_small_size_without_panic() {
        let long = format!(
            "{}\u{fffd}\u{7}\t{}",
            "deep/".repeat(80),
            "名前😀e\u{301}".repeat(40)
        );
        let mut snapshot = fixtures::snapshot_follower_debounce(NOW_NS);
        snapshot.root = PathBuf::from(format!("/home/dev/{}", "プロジェクト".repeat(30)));
        snapshot.branch = Some(format!("feature/{}", "ブランチ-😀".repeat(30)));
        snapshot.error = Some(format!("cannot read {long}"));
        for entry in &mut snapshot.pending {
            entry.path = format!("{long}/{}", entry.path);
        }
        for dir in &mut snapshot.directories {
            dir.dir = long.clone();
            dir.files = usize::MAX;
            dir.waited_ms = u64::MAX;
            dir.reindex_in_ms = u64::MAX;
        }
        let mut states = Vec::new();
        let mut filtered = app_with(snapshot.clone());
        filtered.on_engine_event("10:42:00".into(), &Event::Error(long.clone()));
        filtered.filter = "名前😀".into();
        filtered.filter_editing = true;
        filtered.pending_cursor = usize::MAX;
        states.push(filtered);
        let mut notice = app_with(snapshot);
        notice.overlay = Some(Overlay::Notice(long.repeat(3)));
        notice.overlay_scroll = usize::MAX / 2;
        states.push(notice);
        render_at_every_size(&mut states, 90, 30);
    }

    /// Keys and mouse events in any order, on an empty list, a long one and a tiny pane:
    /// every one is answered or ignored, none panics, and each frame still draws.
    #[test]
    fn any_sequence_of_keys_and_clicks_is_handled() {
        use ratatui::crossterm::event::{
            KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
        };
        let keys = [
            KeyCode::Char('/'),
            KeyCode::Char('名'),
            KeyCode::Char('x'),
            KeyCode::Backspace,
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::Char('?'),
            KeyCode::Char('j'),
            KeyCode::Char('k'),
            KeyCode::Char('c'),
            KeyCode::Char('m'),
            KeyCode::Char('t'),
        ];
        let kinds = [
            MouseEventKind::Down(MouseButton::Left),
            MouseEventKind::ScrollUp,
            MouseEventKind::ScrollDown,
        ];
        let mut empty = fixtures::snapshot_in_sync();
        empty.role = Role::Follower;
        for (snapshot, (width, height)) in [
            (empty, (40, 20)),
            (fixtures::snapshot_many_pending(NOW_NS, 300), (60, 24)),
            (fixtures::snapshot_follower_debounce(NOW_NS), (30, 10)),
        ] {
            let mut app = app_with(snapshot);
            let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("backend");
            // A fixed sequence that still visits every pair of neighbours.
            let mut state = 0x2545_f491_u32;
            for _ in 0..3000 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let pick = state as usize;
                if pick.is_multiple_of(4) {
                    app.on_mouse(MouseEvent {
                        kind: kinds[pick / 4 % kinds.len()],
                        column: (pick >> 8) as u16 % (width + 5),
                        row: (pick >> 16) as u16 % (height + 5),
                        modifiers: KeyModifiers::NONE,
                    });
                } else {
                    let _ = app.on_key(KeyEvent::new(
                        keys[pick / 4 % keys.len()],
                        KeyModifiers::NONE,
                    ));
                }
                terminal
                    .draw(|frame| render(frame, &mut app))
                    .expect("render");
            }
        }
    }

    #[test]
    fn no_color_buffers_carry_no_colours() {
        let mut snapshot = fixtures::snapshot_mismatch(NOW_NS);
        snapshot.telemetry = telemetry_on();
        let mut app = app_with(snapshot);
        app.color = false;
        app.on_engine_event("10:42:00".into(), &Event::Rescan { count: 1 });
        for (width, height) in [(40, 20), (80, 24), (160, 48), (20, 6)] {
            let buffer = draw(&mut app, width, height);
            for cell in buffer.content() {
                assert_eq!(cell.fg, Color::Reset, "{width}x{height}: {cell:?}");
                assert_eq!(cell.bg, Color::Reset, "{width}x{height}: {cell:?}");
            }
            // Focus is still visible: reverse video on the focused panel's title.
            assert!(
                buffer
                    .content()
                    .iter()
                    .any(|c| c.modifier.contains(Modifier::REVERSED))
                    || height < MIN_PANELS.1,
                "{width}x{height}"
            );
        }
        // And with colours, some cell is coloured (the test above can fail).
        app.color = true;
        let buffer = draw(&mut app, 80, 24);
        assert!(buffer.content().iter().any(|c| c.fg != Color::Reset));
    }

    #[test]
    fn ten_thousand_pending_files_format_only_what_is_visible() {
        let mut app = app_with(fixtures::snapshot_many_pending(NOW_NS, 10_000));
        let screen = text(&draw(&mut app, 160, 48));
        assert!(screen.contains("Pending · 1–34 of 10,000"), "{screen}");
        app.pending_cursor = usize::MAX / 2;
        let screen = text(&draw(&mut app, 160, 48));
        assert!(screen.contains("file_09999.rs"), "{screen}");
        assert!(
            screen.contains("Pending · 9,967–10,000 of 10,000"),
            "{screen}"
        );
    }

    #[test]
    fn paths_are_cut_from_the_left() {
        assert_eq!(fit_left("src/engine/runner.rs", 12), "…e/runner.rs");
        assert_eq!(fit_right("catch-up running", 9), "catch-up…");
        assert_eq!(fit_left("abc", 0), "");
        assert_eq!(fit_right("abc", 3), "abc");
        assert_eq!(
            wrap_words("never: code, paths", 12),
            ["never: code,", "paths"]
        );
        assert_eq!(wrap_words("abcdefgh", 4), ["abc…"]);
        let _ = TelemetryView::default();
    }
}
