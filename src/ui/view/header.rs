//! The header: the status word first (the engine's freshness verdict, or an error),
//! then the project name and branch; below them the sync age, the watcher, the role,
//! catch-up and the counts — the counts given up first as the pane narrows. And the
//! worktree-mismatch banner.

use super::*;

/// Below this much room for the branch, it is left out rather than cut to a stub.
const MIN_BRANCH: usize = 4;

pub(super) fn render_header(
    frame: &mut Frame,
    app: &App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let role = role_label(snapshot.role);
    let width = area.width.saturating_sub(2) as usize;
    let status = status_word(app, snapshot, theme);
    let project = project_name(&snapshot.root);
    // The role sits on the right of the border when the title leaves room for it, and
    // in the line below otherwise.
    let full_title = title_spans(&status, &project, snapshot.branch.as_deref(), usize::MAX);
    let role_on_top = spans_width(&full_title) + role.len() + 2 < width;
    let title_room = if role_on_top {
        width.saturating_sub(role.len() + 2 + 1)
    } else {
        width
    };
    let title = title_spans(&status, &project, snapshot.branch.as_deref(), title_room);
    let mut block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(Line::from(title));
    if role_on_top {
        block = block.title_top(Line::from(format!(" {role} ")).right_aligned());
    }
    let line = if let Some(reason) = &app.engine_stopped {
        Line::styled(
            fit_right(
                &format!("engine stopped: {reason} — restart codelens tui"),
                width,
            ),
            theme.error(),
        )
    } else {
        health_line(app, snapshot, width, theme, !role_on_top)
    };
    frame.render_widget(Paragraph::new(line).block(block), area);
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Writer => "writer",
        Role::Follower => "follower",
    }
}

/// The project's name: the last component of its root.
pub(super) fn project_name(root: &std::path::Path) -> String {
    root.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string())
}

/// The word a glance at the pane must find first: `✓ verified · synced 12s ago`,
/// `● 3 pending`, `⚠ unverified: watcher off` or `✗ error`. The verdict is the
/// engine's, shown as it is; `✗ error` when the engine reported an error it has not
/// recovered from, or stopped.
pub(super) fn status_word<'a>(app: &App, snapshot: &Snapshot, theme: Theme) -> Span<'a> {
    if app.engine_stopped.is_some() || snapshot.error.is_some() {
        return Span::styled("✗ error", theme.error());
    }
    match &snapshot.freshness {
        Freshness::Verified { .. } => Span::styled(
            format!("✓ verified · {}", synced_label(app, snapshot)),
            theme.ok(),
        ),
        _ => verdict_span(&snapshot.freshness, theme),
    }
}

/// ` {status} · {project} · {branch} ` in `room` columns: the branch is cut, then left
/// out, before the project name is cut; the status word goes last.
fn title_spans<'a>(
    status: &Span<'a>,
    project: &str,
    branch: Option<&str>,
    room: usize,
) -> Vec<Span<'a>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let lead = vec![Span::raw(" "), status.clone()];
    let fixed = 1 + status.width();
    let project_part = 3 + project.width();
    let branch_part = branch.map_or(0, |b| 3 + b.width());
    let mut spans = lead;
    if fixed + project_part + branch_part < room {
        spans.push(Span::styled(format!(" · {project}"), bold));
        if let Some(branch) = branch {
            spans.push(Span::raw(format!(" · {branch}")));
        }
    } else if let Some(branch) = branch
        && room.saturating_sub(fixed + project_part + 3 + 1) >= MIN_BRANCH
    {
        let left = room - (fixed + project_part + 3 + 1);
        spans.push(Span::styled(format!(" · {project}"), bold));
        spans.push(Span::raw(format!(" · {}", fit_right(branch, left))));
    } else if fixed + project_part < room {
        spans.push(Span::styled(format!(" · {project}"), bold));
    } else if room.saturating_sub(fixed + 3 + 1) >= 2 {
        let left = room - (fixed + 3 + 1);
        spans.push(Span::styled(
            format!(" · {}", fit_right(project, left)),
            bold,
        ));
    } else {
        // Not even the project's name: the status word alone, cut if it must be.
        return vec![
            Span::raw(" "),
            Span::styled(
                fit_right(&status.content, room.saturating_sub(2)),
                status.style,
            ),
            Span::raw(" "),
        ];
    }
    spans.push(Span::raw(" "));
    spans
}

fn spans_width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

/// `synced 12s ago`, at the precision the dashboard refreshes at: seconds while it
/// redraws every second anyway (files waiting, catch-up running), else `just now`
/// and minutes, woken once a minute; past an hour the clock time, which never needs
/// a frame to stay true.
pub(super) fn synced_label(app: &App, snapshot: &Snapshot) -> String {
    let Some(at_ns) = snapshot.last_sync_ns else {
        return "never synced".into();
    };
    let age_secs = (app.now_ns.saturating_sub(at_ns) / 1_000_000_000).max(0);
    match age_secs {
        secs if secs < 60 && app.ticks_every_second() => format!("synced {secs}s ago"),
        secs if secs < 60 => "synced just now".into(),
        secs if secs < 3600 => format!("synced {}m ago", secs / 60),
        _ => synced_at(app, at_ns),
    }
}

/// A clock time, not an age: it stays true on a dashboard that does not redraw.
fn synced_at(app: &App, at_ns: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(app.utc_offset_secs)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    let Some(at) = chrono::DateTime::from_timestamp(at_ns.div_euclid(1_000_000_000), 0) else {
        return "synced".into();
    };
    let at = at.with_timezone(&offset);
    let today = chrono::DateTime::from_timestamp(app.now_ns.div_euclid(1_000_000_000), 0)
        .map(|now| now.with_timezone(&offset).date_naive());
    if Some(at.date_naive()) == today {
        format!("synced at {}", at.format("%H:%M"))
    } else {
        format!("synced {}", at.format("%b %-d %H:%M"))
    }
}

/// The engine's freshness verdict, as every front end words it: "in sync" only when it
/// is verified.
pub(super) fn verdict_span<'a>(freshness: &Freshness, theme: Theme) -> Span<'a> {
    match freshness {
        Freshness::Verified { .. } => Span::styled("✓ verified", theme.ok()),
        Freshness::Pending { files, .. } => Span::styled(
            format!("● {} pending", thousands(*files as u64)),
            theme.warning(),
        ),
        Freshness::Unverified { reason, .. } => Span::styled(
            format!("⚠ unverified: {}", reason.describe()),
            theme.warning(),
        ),
    }
}

/// Last sync, watcher, role, catch-up, error and counts in one line: the counts are
/// given up first as the line narrows, then catch-up, the error and the role; the
/// sync age and the watcher stay (cut at the end if they must be).
pub(super) fn health_line<'a>(
    app: &App,
    snapshot: &Snapshot,
    width: usize,
    theme: Theme,
    with_role: bool,
) -> Line<'a> {
    // The verified status word already says when.
    let synced = (!snapshot.freshness.is_verified() || snapshot.error.is_some())
        .then(|| synced_label(app, snapshot));
    // The strategy shows while watches are armed (off, none are), short enough to fit
    // where "watching" did at 80 columns.
    let strategy = match snapshot.watcher.strategy {
        crate::engine::watcher::WatchStrategy::Recursive => "recursive",
        crate::engine::watcher::WatchStrategy::PerDirectory => "per-dir",
    };
    let watcher = match snapshot.watcher.mode {
        WatchMode::Native => (format!("{strategy} watch"), theme.ok()),
        WatchMode::Degraded => (
            format!("{strategy} watch degraded ({})", snapshot.watcher.reason),
            theme.warning(),
        ),
        WatchMode::Disabled => (
            format!("watcher off ({})", snapshot.watcher.reason),
            theme.warning(),
        ),
    };
    let catchup = match &snapshot.catchup {
        Catchup::Running { checked, total } => Some(format!("catch-up {checked}/{total}")),
        Catchup::NotStarted if snapshot.role == Role::Writer => Some("catch-up…".into()),
        Catchup::Failed(why) => Some(format!("catch-up failed: {why}")),
        _ => None,
    };
    // (text, style, how long it stays as the line narrows: higher stays longer).
    let mut segments: Vec<(String, Style, u8)> = Vec::new();
    if let Some(synced) = synced {
        segments.push((synced, Style::new(), 9));
    }
    segments.push((watcher.0, watcher.1, 8));
    if with_role {
        segments.push((role_label(snapshot.role).into(), theme.dim(), 4));
    }
    if let Some(catchup) = catchup {
        segments.push((catchup, theme.warning(), 3));
    }
    if let Some(error) = &snapshot.error {
        segments.push((format!("error: {error}"), theme.error(), 5));
    }
    segments.push((counted(snapshot.stats.files, "file"), Style::new(), 2));
    segments.push((counted(snapshot.stats.symbols, "symbol"), Style::new(), 1));
    let joined = |segments: &[(String, Style, u8)]| {
        segments
            .iter()
            .map(|(text, ..)| text.width())
            .sum::<usize>()
            + 3 * segments.len().saturating_sub(1)
    };
    // Give up the least important segments (below the sync age and the watcher) until
    // the rest fits; what still overflows is cut at the end.
    while joined(&segments) > width {
        let Some(least) = segments
            .iter()
            .enumerate()
            .filter(|(_, (.., keep))| *keep < 8)
            .min_by_key(|(_, (.., keep))| *keep)
            .map(|(i, _)| i)
        else {
            break;
        };
        segments.remove(least);
    }
    let mut spans = Vec::new();
    for (i, (text, style, _)) in segments.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(text, style));
    }
    truncate_spans(spans, width)
}

/// The warning block that cannot be missed: three roots, both branches, the fix.
pub(super) fn render_mismatch(
    frame: &mut Frame,
    app: &App,
    snapshot: &Snapshot,
    area: Rect,
    theme: Theme,
) {
    let Some(m) = &snapshot.worktree_mismatch else {
        return;
    };
    let width = area.width.saturating_sub(2) as usize;
    let branch = |b: &Option<String>| b.clone().unwrap_or_else(|| "detached HEAD".into());
    let main_checkout = if m.main_checkout_root == m.index_root {
        String::new()
    } else {
        format!(" · main checkout {}", show_path(app, &m.main_checkout_root))
    };
    let mut lines = vec![
        Line::styled(
            fit_right(
                &if width >= 60 {
                    format!(
                        "This {} reads another checkout's index: it describes {}.",
                        m.worktree_kind,
                        branch(&m.index_branch)
                    )
                } else {
                    "Reading another checkout's index!".to_string()
                },
                width,
            ),
            theme.warning(),
        ),
        // Paths give way from the left: their tail is what tells two worktrees apart.
        path_line(
            "worktree",
            &branch(&m.worktree_branch),
            &show_path(app, &m.worktree_root),
            width,
        ),
        path_line(
            "index   ",
            &branch(&m.index_branch),
            &format!("{}{main_checkout}", show_path(app, &m.index_root)),
            width,
        ),
    ];
    let fix = Line::from(vec![
        Span::styled("fix: ", theme.title()),
        Span::raw(fit_right(
            "w runs `codelens init -i` here",
            width.saturating_sub(5),
        )),
    ]);
    lines.push(fix);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(theme.warning())
        .title(Span::styled(" ⚠ wrong index ", theme.warning()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `worktree feature · …/app/wt/feature`: the label and branch, then the path cut from
/// the left to what is left of `width`.
fn path_line<'a>(label: &str, branch: &str, path: &str, width: usize) -> Line<'a> {
    let lead = fit_right(&format!("{label} {branch} · "), width);
    let room = width.saturating_sub(lead.width());
    Line::from(format!("{lead}{}", fit_left(path, room)))
}

/// `1 file`, `12,408 files`.
pub(super) fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{} {noun}s", thousands(n)),
    }
}
