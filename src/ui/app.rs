//! The dashboard's state and how it reacts to input, engine snapshots and time. No
//! terminal, no threads and no clock of its own (time comes in with each call), so
//! every behaviour here — including when it asks to be redrawn — is tested directly.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{KeyEvent, KeyEventKind, MouseEvent, MouseEventKind};

use super::keymap::{self, Action};
use crate::engine::banner::PendingState;
use crate::engine::{Catchup, Command, Event, Role, Snapshot};
use crate::telemetry::TelemetryStatus;

/// How many engine events the log keeps.
const EVENT_LOG_LEN: usize = 200;
/// At most ten frames a second: a burst of snapshots (500 new files) is drawn as a few
/// frames, the last of them showing where the burst ended.
const MIN_FRAME_NS: i64 = 100_000_000;
/// Rows moved by one mouse-wheel notch (PageUp/PageDown move by the panel's height).
const WHEEL_ROWS: usize = 3;

/// Syncs closer together than this join one line of the log.
const SYNC_BURST_NS: i64 = 1_000_000_000;

/// Syncs logged as one line: how many, and their added, modified, removed and ms.
#[derive(Debug, Clone)]
struct SyncBurst {
    last_ns: i64,
    syncs: u64,
    counts: [u64; 4],
}

impl SyncBurst {
    fn add(&mut self, counts: [u64; 4], now_ns: i64) {
        self.syncs += 1;
        self.last_ns = now_ns;
        for (total, n) in self.counts.iter_mut().zip(counts) {
            *total += n;
        }
    }

    fn line(&self) -> String {
        let [added, modified, removed, ms] = self.counts;
        let what = match self.syncs {
            1 => String::new(),
            n => format!(" {n} directories"),
        };
        format!("synced{what} +{added} ~{modified} -{removed} in {ms} ms")
    }

    /// A writer's `synced +A ~M -R in D ms`, as it published it.
    fn parse(text: &str) -> Option<[u64; 4]> {
        let rest = text.strip_prefix("synced +")?;
        let (added, rest) = rest.split_once(" ~")?;
        let (modified, rest) = rest.split_once(" -")?;
        let (removed, rest) = rest.split_once(" in ")?;
        let ms = rest.strip_suffix(" ms")?;
        Some([
            added.parse().ok()?,
            modified.parse().ok()?,
            removed.parse().ok()?,
            ms.parse().ok()?,
        ])
    }
}

/// What fills the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// The engine is being started.
    Starting,
    /// No index covers the project: offer to build one.
    NoIndex {
        root: PathBuf,
    },
    /// An index is being built (`what` names it), with progress.
    Building {
        what: String,
        checked: u64,
        total: u64,
    },
    Dashboard,
    /// The engine could not start (a corrupt index …): the reason and the fix.
    Failed(String),
}

/// A box drawn over the dashboard; it takes the keys while open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// Turn telemetry on or off? `y` confirms, anything else cancels.
    ConfirmTelemetry {
        turn_on: bool,
    },
    /// Build this worktree its own index? `y` confirms.
    ConfirmWorktreeIndex,
    /// A message that any key dismisses.
    Notice(String),
}

/// The panels Tab moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Pending,
    Debounce,
    Telemetry,
    Events,
}

impl Panel {
    pub const ALL: [Panel; 4] = [
        Panel::Pending,
        Panel::Debounce,
        Panel::Telemetry,
        Panel::Events,
    ];

    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// What the consent panel shows: the telemetry switch's state and who decided it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TelemetryView {
    pub enabled: bool,
    /// Which switch decided, e.g. `DO_NOT_TRACK=1`, `default (off)`.
    pub decided_by: String,
    /// An environment variable decided: the dashboard cannot override it.
    pub env_locked: bool,
    pub machine_id: Option<String>,
    pub buffer_bytes: u64,
    pub pending_days: usize,
    /// The stored choice, shown under an environment switch that overrides it.
    pub stored_choice: Option<bool>,
}

impl TelemetryView {
    pub fn from_status(status: &TelemetryStatus) -> TelemetryView {
        TelemetryView {
            enabled: status.enabled,
            decided_by: decided_label(&status.decided_by),
            env_locked: status.decided_by.is_env(),
            machine_id: status.machine_id.clone(),
            buffer_bytes: status.buffer_bytes,
            pending_days: status.pending_days.len(),
            stored_choice: status.stored_choice,
        }
    }
}

/// Who decided, as the dashboard says it: a stored choice is the user's, whether it was
/// made with `codelens telemetry on|off` or here (never claim a command was run).
fn decided_label(decider: &crate::telemetry::Decider) -> String {
    use crate::telemetry::Decider;
    match decider {
        Decider::UserOn | Decider::UserOff => "your choice".into(),
        other => other.describe(),
    }
}

/// Whether `new` differs from `old` in more than the debounce countdowns the engine
/// refreshes several times a second: those alone wait for the once-a-second tick, so
/// a dashboard with files waiting still draws at most once a second.
fn visibly_changed(old: &Snapshot, new: &Snapshot) -> bool {
    if old.seq == new.seq && old.catchup == new.catchup && old.freshness == new.freshness {
        return false;
    }
    let same_pending = old.pending.len() == new.pending.len()
        && old.pending.iter().zip(&new.pending).all(|(a, b)| {
            a.path == b.path
                && a.last_edit_ns == b.last_edit_ns
                && match (a.state, b.state) {
                    (PendingState::Waiting { .. }, PendingState::Waiting { .. }) => true,
                    (x, y) => x == y,
                }
        });
    let same_dirs = old.directories.len() == new.directories.len()
        && old
            .directories
            .iter()
            .zip(&new.directories)
            .all(|(a, b)| a.dir == b.dir && a.files == b.files && a.window_ms == b.window_ms);
    !(same_pending
        && same_dirs
        && old.role == new.role
        && old.catchup == new.catchup
        && old.freshness == new.freshness
        && old.stats.files == new.stats.files
        && old.stats.symbols == new.stats.symbols
        && old.last_sync == new.last_sync
        && old.branch == new.branch
        && old.worktree_mismatch == new.worktree_mismatch
        && old.watcher == new.watcher
        && old.telemetry == new.telemetry
        && old.error == new.error)
}

/// A side effect the event loop carries out for the app (which never does I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Engine(Command),
    SetTelemetry(bool),
    BuildIndex,
    BuildWorktreeIndex,
    SetMouseCapture(bool),
    /// Open this file in `$VISUAL`/`$EDITOR`, the dashboard suspended meanwhile.
    OpenInEditor(PathBuf),
    /// Put this text on the terminal's clipboard (OSC 52).
    Copy(String),
}

pub struct App {
    pub screen: Screen,
    pub snapshot: Option<Arc<Snapshot>>,
    /// Set when the engine thread ended by itself: the dashboard must not look live.
    pub engine_stopped: Option<String>,
    pub telemetry: TelemetryView,
    /// `(HH:MM:SS, text)`, newest first.
    pub events: VecDeque<(String, String)>,
    pub focus: Panel,
    /// First visible row of each panel, indexed like [`Panel::ALL`].
    pub scroll: [usize; 4],
    /// Rows each panel showed in the last frame: a page, for PgUp/PgDn.
    pub panel_rows: [usize; 4],
    /// Where each panel was drawn in the last frame (empty: not shown), for the mouse.
    pub panel_areas: [ratatui::layout::Rect; 4],
    /// The selected row of the Pending list (among the files the filter keeps).
    pub pending_cursor: usize,
    /// What `/` filters the Pending list by (a part of the path), and whether it is
    /// being typed.
    pub filter: String,
    pub filter_editing: bool,
    pub overlay: Option<Overlay>,
    /// The overlay's first visible body row, how many it shows, and whether it has
    /// more than that (the view sets the last two as it lays the overlay out).
    pub overlay_scroll: usize,
    pub overlay_rows: usize,
    pub overlay_scrollable: bool,
    pub color: bool,
    pub mouse_capture: bool,
    /// A background job (an index build) is running: keys that would start another wait.
    pub busy: bool,
    /// `$HOME`, to show paths under it as `~/…`.
    pub home: Option<PathBuf>,
    /// Wall clock, Unix ns, as of the last event; ages are measured from it.
    pub now_ns: i64,
    /// The local time zone's offset from UTC, for clock times (tests use UTC).
    pub utc_offset_secs: i32,
    /// Frames drawn (the event loop counts; tests and the benchmark read it).
    pub draws: u64,
    dirty: bool,
    /// The syncs logged as one line so far: a storm of directories is one line.
    sync_burst: Option<SyncBurst>,
    /// When the last frame was drawn (wall clock, ns).
    last_draw_ns: Option<i64>,
    /// The whole second ages were last drawn at.
    drawn_second: i64,
    /// The sync age, in whole minutes, the header last showed (`None`: a clock time).
    drawn_sync_minute: Option<i64>,
    /// The role the engine was attached with, until its first role event.
    started_as: Option<Role>,
    /// Which panels the last frame showed (indexed like [`Panel::ALL`]).
    visible: [bool; 4],
}

impl App {
    pub fn new(color: bool, mouse_capture: bool, now_ns: i64) -> App {
        App {
            screen: Screen::Starting,
            snapshot: None,
            engine_stopped: None,
            telemetry: TelemetryView::default(),
            events: VecDeque::new(),
            focus: Panel::Pending,
            scroll: [0; 4],
            panel_rows: [1; 4],
            panel_areas: [ratatui::layout::Rect::default(); 4],
            pending_cursor: 0,
            filter: String::new(),
            filter_editing: false,
            overlay: None,
            overlay_scroll: 0,
            overlay_rows: 0,
            overlay_scrollable: false,
            color,
            mouse_capture,
            busy: false,
            home: None,
            now_ns,
            utc_offset_secs: 0,
            draws: 0,
            dirty: true,
            last_draw_ns: None,
            sync_burst: None,
            drawn_second: now_ns / 1_000_000_000,
            drawn_sync_minute: None,
            started_as: None,
            visible: [true; 4],
        }
    }

    /// Whether a frame is due, and resets the flag: the loop draws only then.
    pub fn take_redraw(&mut self) -> bool {
        if !self.dirty || self.frame_wait().is_some() {
            return false;
        }
        self.dirty = false;
        self.last_draw_ns = Some(self.now_ns);
        self.drawn_sync_minute = self.sync_minute(self.now_ns);
        true
    }

    /// How long a due frame must wait to keep to ten frames a second.
    fn frame_wait(&self) -> Option<Duration> {
        let since = self.now_ns.saturating_sub(self.last_draw_ns?);
        (since < MIN_FRAME_NS).then(|| Duration::from_nanos((MIN_FRAME_NS - since.max(0)) as u64))
    }

    /// Whether the dashboard redraws every second anyway: then ages are shown to the
    /// second.
    pub fn ticks_every_second(&self) -> bool {
        self.animated()
    }

    /// The header's sync age in whole minutes while it is shown as an age (under an
    /// hour; past that it is a clock time, which never needs a frame).
    fn sync_minute(&self, now_ns: i64) -> Option<i64> {
        if self.screen != Screen::Dashboard || self.engine_stopped.is_some() {
            return None;
        }
        let at = self.snapshot.as_ref()?.last_sync_ns?;
        let age = now_ns.saturating_sub(at).max(0);
        (age < 3600 * 1_000_000_000).then_some(age / 60_000_000_000)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Something on screen changes with time alone: edit ages, debounce countdowns,
    /// build or catch-up progress.
    fn animated(&self) -> bool {
        if matches!(self.screen, Screen::Building { .. }) {
            return true;
        }
        if self.screen != Screen::Dashboard {
            return false;
        }
        self.snapshot.as_ref().is_some_and(|s| {
            !s.pending.is_empty()
                || !s.directories.is_empty()
                || matches!(s.catchup, Catchup::Running { .. })
                // A follower never runs catch-up: its `NotStarted` is not progress.
                || (s.catchup == Catchup::NotStarted && s.role == Role::Writer)
        }) && self.engine_stopped.is_none()
    }

    /// How long the loop may sleep before the next tick matters; `None`: until input
    /// or the engine says something (an idle dashboard never wakes up).
    pub fn next_tick(&self) -> Option<Duration> {
        let held_frame = self.dirty.then(|| self.frame_wait()).flatten();
        match (self.next_clock_tick(), held_frame) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the clock alone next changes what is shown.
    fn next_clock_tick(&self) -> Option<Duration> {
        if !self.animated() {
            // Idle: the header's sync age moves once a minute, for its first hour.
            let at = self.snapshot.as_ref()?.last_sync_ns?;
            let minute = self.sync_minute(self.now_ns)?;
            let next = at.saturating_add((minute + 1) * 60_000_000_000 + 1_000_000);
            return Some(Duration::from_nanos(
                next.saturating_sub(self.now_ns).max(0) as u64,
            ));
        }
        let into_second = self.now_ns.rem_euclid(1_000_000_000) as u64;
        // Just past the next whole second, so the ages shown have moved on.
        Some(Duration::from_nanos(
            1_000_000_000 - into_second + 1_000_000,
        ))
    }

    /// Time passed: redraw when something shown with a one-second resolution moved.
    pub fn on_tick(&mut self, now_ns: i64) {
        self.now_ns = now_ns;
        let second = now_ns / 1_000_000_000;
        if self.animated() && second != self.drawn_second {
            self.drawn_second = second;
            self.dirty = true;
        }
        if self.sync_minute(now_ns) != self.drawn_sync_minute {
            self.dirty = true;
        }
    }

    /// A (new) engine is attached: its snapshots start over, and it is alive.
    pub fn attach(&mut self, at: String, snapshot: Arc<Snapshot>, now_ns: i64) {
        self.snapshot = None;
        self.engine_stopped = None;
        self.screen = Screen::Dashboard;
        self.on_engine_started(at, snapshot.role);
        self.on_snapshot(snapshot, now_ns);
    }

    /// A snapshot from the engine: redraw only when it differs from the one shown.
    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>, now_ns: i64) {
        self.now_ns = now_ns;
        // A tick's fresh read can overtake a forwarded one still queued: never step back.
        if self
            .snapshot
            .as_ref()
            .is_some_and(|shown| snapshot.seq < shown.seq)
        {
            return;
        }
        let changed = match &self.snapshot {
            Some(old) => visibly_changed(old, &snapshot),
            None => true,
        };
        self.telemetry = TelemetryView::from_status(&snapshot.telemetry);
        if self.screen == Screen::Starting {
            self.screen = Screen::Dashboard;
            self.dirty = true;
        }
        // Countdown-only changes are kept and shown by the next once-a-second tick.
        self.snapshot = Some(snapshot);
        if changed {
            self.drawn_second = now_ns / 1_000_000_000;
            self.dirty = true;
        }
    }

    /// An engine was attached: logged once with its role.
    pub fn on_engine_started(&mut self, at: String, role: Role) {
        self.started_as = Some(role);
        let text = match role {
            Role::Writer => "engine started: writer",
            Role::Follower => "engine started: follower (another process writes)",
        };
        self.log(at, text.into());
    }

    /// Syncs within a second of each other (`at_ns`: when the engine that synced
    /// logged it), with nothing logged between them, are one line: `synced 9
    /// directories +50 ~0 -0 in 12 ms`.
    fn log_sync(&mut self, at: String, at_ns: i64, counts: [u64; 4]) {
        let now = at_ns;
        if let Some(burst) = &mut self.sync_burst
            && now.abs_diff(burst.last_ns) < SYNC_BURST_NS.unsigned_abs()
            && self
                .events
                .front()
                .is_some_and(|(_, text)| *text == burst.line())
        {
            burst.add(counts, now);
            let line = burst.line();
            if let Some(front) = self.events.front_mut() {
                front.1 = line;
            }
            self.dirty = true;
            return;
        }
        let burst = SyncBurst {
            last_ns: now,
            syncs: 0,
            counts: [0; 4],
        };
        let burst = self.sync_burst.insert(burst);
        burst.add(counts, now);
        let line = burst.line();
        self.log(at, line);
    }

    pub fn on_engine_event(&mut self, at: String, event: &Event) {
        // A follower gets its writer's past syncs in one read (its last 20 when it
        // starts): they are one line only if the writer made them close together.
        let counts = match event {
            Event::Synced {
                added,
                modified,
                removed,
                duration_ms,
            } => Some(([*added, *modified, *removed, *duration_ms], self.now_ns)),
            Event::FromWriter { text, at_ns } => SyncBurst::parse(text).map(|c| (c, *at_ns)),
            _ => None,
        };
        if let Some((counts, at_ns)) = counts {
            return self.log_sync(at, at_ns, counts);
        }
        // The engine names the stored choice as the CLI would; here it was the user's.
        if let Event::TelemetryChanged {
            enabled,
            decided_by,
        } = event
            && decided_by.starts_with("codelens telemetry")
        {
            let state = if *enabled { "on" } else { "off" };
            return self.log(at, format!("telemetry {state} (your choice)"));
        }
        // The pending list itself shows how many files wait; the log keeps what happened.
        if matches!(event, Event::PendingChanged { .. }) {
            return;
        }
        // The engine announces its first role too; `engine started` already said it.
        if let Event::RoleChanged(role) = event
            && self.started_as.take() == Some(*role)
        {
            return;
        }
        self.log(at, event.to_string());
    }

    pub fn log(&mut self, at: String, text: String) {
        self.events.push_front((at, text));
        self.events.truncate(EVENT_LOG_LEN);
        self.dirty = true;
    }

    pub fn on_telemetry(&mut self, view: TelemetryView) {
        if self.telemetry != view {
            self.telemetry = view;
            self.dirty = true;
        }
    }

    pub fn on_engine_stopped(&mut self, reason: String) {
        if self.engine_stopped.is_none() {
            self.engine_stopped = Some(reason);
            self.dirty = true;
        }
    }

    pub fn on_resize(&mut self) {
        self.dirty = true;
    }

    pub fn set_screen(&mut self, screen: Screen) {
        if self.screen != screen {
            self.screen = screen;
            self.dirty = true;
        }
    }

    /// A click focuses the panel under it (and, in Pending, selects the row); the
    /// wheel scrolls the panel under the pointer, focused or not.
    pub fn on_mouse(&mut self, mouse: MouseEvent) {
        if self.overlay.is_some() || self.screen != Screen::Dashboard {
            return;
        }
        let position = ratatui::layout::Position::new(mouse.column, mouse.row);
        let Some(under) = Panel::ALL
            .into_iter()
            .find(|p| self.panel_areas[p.index()].contains(position))
        else {
            return;
        };
        let rows = match mouse.kind {
            MouseEventKind::ScrollUp => -(WHEEL_ROWS as isize),
            MouseEventKind::ScrollDown => WHEEL_ROWS as isize,
            MouseEventKind::Down(ratatui::crossterm::event::MouseButton::Left) => {
                self.focus = under;
                let area = self.panel_areas[under.index()];
                if under == Panel::Pending && mouse.row > area.y {
                    let row = (mouse.row - area.y - 1) as usize;
                    let first = self.scroll[Panel::Pending.index()];
                    let last = self.pending_rows().len().saturating_sub(1);
                    self.pending_cursor = (first + row).min(last);
                }
                self.dirty = true;
                return;
            }
            _ => return,
        };
        let focus = std::mem::replace(&mut self.focus, under);
        self.move_by(rows);
        self.focus = focus;
    }

    /// A key press: what it changes here, and what the loop must do about it.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if self.filter_editing {
            self.edit_filter(key);
            return None;
        }
        let action = keymap::action_for(&key);
        // An overlay too tall for the pane scrolls; the keys that scroll do not answer.
        if self.overlay.is_some()
            && self.overlay_scrollable
            && let Some(rows) = action.and_then(|a| self.overlay_rows_for(a))
        {
            self.overlay_scroll = self
                .overlay_scroll
                .saturating_add_signed(rows)
                .min(usize::MAX / 2);
            self.dirty = true;
            return None;
        }
        if let Some(overlay) = self.overlay.take() {
            self.dirty = true;
            self.overlay_scroll = 0;
            let confirmed = matches!(
                key.code,
                ratatui::crossterm::event::KeyCode::Char('y' | 'Y')
            );
            // Ctrl-C quits from anywhere; every other key answers the overlay.
            if action == Some(Action::Quit)
                && key.code != ratatui::crossterm::event::KeyCode::Char('q')
            {
                return Some(Effect::Quit);
            }
            return match overlay {
                Overlay::ConfirmTelemetry { turn_on } if confirmed => {
                    Some(Effect::SetTelemetry(turn_on))
                }
                Overlay::ConfirmWorktreeIndex if confirmed => Some(Effect::BuildWorktreeIndex),
                _ => None,
            };
        }
        if let Screen::NoIndex { .. } = self.screen
            && matches!(
                key.code,
                ratatui::crossterm::event::KeyCode::Char('y' | 'Y')
            )
        {
            self.dirty = true;
            return Some(Effect::BuildIndex);
        }
        let action = action?;
        self.dirty = true;
        match action {
            Action::Quit => return Some(Effect::Quit),
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::FocusNext => self.move_focus(1),
            Action::FocusPrev => self.move_focus(Panel::ALL.len() - 1),
            Action::ScrollUp => self.move_by(-1),
            Action::ScrollDown => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Filter if self.screen == Screen::Dashboard => {
                self.focus = Panel::Pending;
                self.filter_editing = true;
            }
            Action::Open | Action::Copy if self.screen != Screen::Dashboard => {}
            // On the Events panel, Enter shows the top line in full.
            Action::Open if self.focus == Panel::Events => {
                let (at, text) = self
                    .events
                    .get(self.scroll[Panel::Events.index()])
                    .or(self.events.back())?;
                self.overlay = Some(Overlay::Notice(format!("{at} {text}")));
            }
            Action::Open => {
                let (path, change) = self.selected_pending()?;
                if change == crate::engine::reconcile::Change::Deleted {
                    self.overlay = Some(Overlay::Notice(format!(
                        "{path} was deleted: there is nothing to open."
                    )));
                    return None;
                }
                let root = self.snapshot.as_ref()?.root.clone();
                return Some(Effect::OpenInEditor(root.join(path)));
            }
            Action::Copy => return Some(Effect::Copy(self.selected_pending()?.0)),
            Action::Filter => {}
            Action::ToggleMouse => {
                self.mouse_capture = !self.mouse_capture;
                let said = if self.mouse_capture {
                    "mouse capture on: a click focuses a panel, the wheel scrolls it"
                } else {
                    "mouse capture off: the terminal selects text again"
                };
                self.log(self.clock_time(), said.into());
                return Some(Effect::SetMouseCapture(self.mouse_capture));
            }
            Action::SyncNow | Action::Rescan if self.screen != Screen::Dashboard => {}
            Action::SyncNow => return Some(Effect::Engine(Command::SyncNow)),
            Action::Rescan => return Some(Effect::Engine(Command::Rescan)),
            Action::Telemetry => {
                self.overlay = Some(if self.telemetry.env_locked {
                    Overlay::Notice(format!(
                        "Telemetry is {}: {}. An environment variable decides, and the dashboard cannot override it.",
                        if self.telemetry.enabled { "on" } else { "off" },
                        self.telemetry.decided_by
                    ))
                } else {
                    Overlay::ConfirmTelemetry {
                        turn_on: !self.telemetry.enabled,
                    }
                });
            }
            Action::InitWorktree => {
                let mismatch = self
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| s.worktree_mismatch.is_some());
                self.overlay = Some(if self.busy {
                    Overlay::Notice("An index build is already running.".into())
                } else if mismatch {
                    Overlay::ConfirmWorktreeIndex
                } else {
                    Overlay::Notice(
                        "This checkout already reads its own index: nothing to build.".into(),
                    )
                });
            }
        }
        None
    }

    /// How far a scrolling key moves an overlay's body, if it is one.
    fn overlay_rows_for(&self, action: Action) -> Option<isize> {
        let page = self.overlay_rows.max(1) as isize;
        Some(match action {
            Action::ScrollUp => -1,
            Action::ScrollDown => 1,
            Action::PageUp => -page,
            Action::PageDown => page,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return None,
        })
    }

    /// The wall clock as `HH:MM:SS` in the local zone, for lines the app logs itself.
    fn clock_time(&self) -> String {
        let offset = chrono::FixedOffset::east_opt(self.utc_offset_secs)
            .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
        chrono::DateTime::from_timestamp_nanos(self.now_ns)
            .with_timezone(&offset)
            .format("%H:%M:%S")
            .to_string()
    }

    /// A page of the focused panel: the rows it showed.
    fn page(&self) -> usize {
        self.panel_rows[self.focus.index()].max(1)
    }

    /// Moves the Pending cursor, or scrolls the other panels, by `rows`.
    fn move_by(&mut self, rows: isize) {
        if self.focus == Panel::Pending {
            let last = self.pending_rows().len().saturating_sub(1);
            self.pending_cursor = self.pending_cursor.saturating_add_signed(rows).min(last);
            self.dirty = true;
        } else {
            self.scroll_by(rows);
        }
    }

    /// The indices (into the snapshot's pending list) of the files the filter keeps.
    pub fn pending_rows(&self) -> Vec<usize> {
        let Some(snapshot) = &self.snapshot else {
            return Vec::new();
        };
        if self.filter.is_empty() {
            return (0..snapshot.pending.len()).collect();
        }
        let needle = self.filter.to_lowercase();
        (snapshot.pending.iter().enumerate())
            .filter(|(_, entry)| entry.path.to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect()
    }

    /// The file under the Pending cursor: its path and change.
    fn selected_pending(&self) -> Option<(String, crate::engine::reconcile::Change)> {
        let snapshot = self.snapshot.as_ref()?;
        let rows = self.pending_rows();
        let entry =
            &snapshot.pending[*rows.get(self.pending_cursor.min(rows.len().checked_sub(1)?))?];
        Some((entry.path.clone(), entry.change))
    }

    /// A key while the filter is typed: characters add to it, Backspace removes, Enter
    /// keeps it, Esc clears it.
    fn edit_filter(&mut self, key: KeyEvent) {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        self.dirty = true;
        match key.code {
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Esc => {
                self.filter_editing = false;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter_editing = false;
                self.filter.clear();
            }
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                self.filter.push(c);
            }
            _ => {}
        }
        self.pending_cursor = 0;
        self.scroll[Panel::Pending.index()] = 0;
    }

    /// The first row the Pending list shows, so that the cursor is in view (and the
    /// cursor kept within the list): stored back for the next frame.
    pub fn first_pending_visible(&mut self, rows: usize, visible: usize) -> usize {
        self.pending_cursor = self.pending_cursor.min(rows.saturating_sub(1));
        let first = &mut self.scroll[Panel::Pending.index()];
        if self.pending_cursor < *first {
            *first = self.pending_cursor;
        } else if visible > 0 && self.pending_cursor >= *first + visible {
            *first = self.pending_cursor + 1 - visible;
        }
        *first = (*first).min(rows.saturating_sub(visible));
        *first
    }

    /// Moves focus `step` panels on (modulo), past panels the layout hides.
    fn move_focus(&mut self, step: usize) {
        let mut next = self.focus.index();
        for _ in 0..Panel::ALL.len() {
            next = (next + step) % Panel::ALL.len();
            if self.visible[next] {
                break;
            }
        }
        self.focus = Panel::ALL[next];
    }

    /// What the last frame showed: focus never stays on a hidden panel.
    pub fn set_visible(&mut self, visible: [bool; 4]) {
        self.visible = visible;
        if !visible[self.focus.index()] {
            self.focus = Panel::Pending;
        }
    }

    /// Scrolls the focused panel; the view clamps the offset to what there is to show.
    fn scroll_by(&mut self, rows: isize) {
        let offset = &mut self.scroll[self.focus.index()];
        *offset = offset.saturating_add_signed(rows).min(usize::MAX / 2);
        self.dirty = true;
    }

    /// The first row the panel shows, clamped so the last page stays full — and stored
    /// back, so scrolling up from past the end responds at once.
    pub fn first_visible(&mut self, panel: Panel, rows: usize, visible: usize) -> usize {
        let offset = &mut self.scroll[panel.index()];
        *offset = (*offset).min(rows.saturating_sub(visible));
        *offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::fixtures as testdata;
    use ratatui::crossterm::event::{KeyCode, KeyEventState, KeyModifiers};

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    const SECOND: i64 = 1_000_000_000;

    /// Drives the app through `seconds` of ticks at the loop's own pace and counts
    /// the frames it asks for.
    fn draws_over(app: &mut App, start: i64, seconds: i64) -> u64 {
        let mut now = start;
        let mut draws = 0;
        let end = start + seconds * SECOND;
        while now < end {
            // An idle app never asks for a tick; the loop then only wakes on input.
            let step = app
                .next_tick()
                .map_or(SECOND / 4, |d| d.as_nanos() as i64)
                .min(SECOND / 4);
            now += step;
            app.on_tick(now);
            if app.take_redraw() {
                draws += 1;
            }
        }
        draws
    }

    /// In sync, with its last sync `ago` before `start`.
    fn synced_before(start: i64, ago: i64) -> Snapshot {
        Snapshot {
            last_sync_ns: Some(start - ago),
            ..testdata::snapshot_in_sync()
        }
    }

    #[test]
    fn idle_dashboard_never_draws_or_wakes() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        app.on_snapshot(Arc::new(synced_before(start, 2 * 3600 * SECOND)), start);
        assert!(app.take_redraw(), "the first snapshot is drawn");
        assert_eq!(app.next_tick(), None, "nothing to animate: no wake-ups");
        assert_eq!(draws_over(&mut app, start, 60), 0);
    }

    #[test]
    fn after_a_sync_the_age_moves_once_a_minute_then_never() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        app.on_snapshot(Arc::new(synced_before(start, 3 * SECOND)), start);
        assert!(app.take_redraw());
        // `synced just now`, then `1m ago` … `59m ago`, then the clock time.
        assert_eq!(draws_over(&mut app, start, 50), 0, "just now");
        let draws = draws_over(&mut app, start + 50 * SECOND, 2 * 3600);
        assert_eq!(draws, 60, "one frame per minute of the first hour");
        assert_eq!(app.next_tick(), None);
        assert_eq!(draws_over(&mut app, start + 3 * 3600 * SECOND, 3600), 0);
    }

    #[test]
    fn a_burst_draws_at_most_ten_frames_a_second_and_ends_drawn() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        let mut snapshot = testdata::snapshot_pending(start);
        app.on_snapshot(Arc::new(snapshot.clone()), start);
        assert!(app.take_redraw());
        // 500 new files in 0.3 s, one snapshot each, as the loop sees them.
        let mut draws = 0;
        let mut now = start;
        for i in 0..500 {
            now += 600_000;
            snapshot.seq += 1;
            snapshot.stats.files += 1;
            snapshot.pending[0].last_edit_ns = now - i;
            app.on_snapshot(Arc::new(snapshot.clone()), now);
            app.on_tick(now);
            if app.take_redraw() {
                draws += 1;
            }
        }
        assert!((2..=3).contains(&draws), "{draws} frames in 0.3 s");
        // The last state is drawn once the frame interval allows.
        let wait = app.next_tick().expect("a frame is held back");
        assert!(wait <= Duration::from_millis(100));
        app.on_tick(now + wait.as_nanos() as i64);
        assert!(app.take_redraw(), "the end of the burst is drawn");
        assert!(!app.take_redraw());
    }

    #[test]
    fn an_idle_follower_never_wakes_either() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        let mut follower = synced_before(start, 2 * 3600 * SECOND);
        follower.role = Role::Follower;
        follower.catchup = Catchup::NotStarted;
        app.on_snapshot(Arc::new(follower), start);
        assert!(app.take_redraw());
        assert_eq!(app.next_tick(), None);
        assert_eq!(draws_over(&mut app, start, 60), 0);
    }

    #[test]
    fn a_new_engine_clears_a_stopped_one() {
        let mut app = App::new(true, true, 0);
        app.on_snapshot(Arc::new(testdata::snapshot_pending(0)), 0);
        app.on_engine_stopped("engine thread ended".into());
        assert_eq!(app.next_tick(), None);
        let mut fresh = testdata::snapshot_pending(0);
        fresh.seq = 1; // a new engine counts from the start again
        app.attach("10:00:00".into(), Arc::new(fresh), 0);
        assert_eq!(app.engine_stopped, None);
        assert_eq!(app.snapshot.as_ref().unwrap().seq, 1);
        assert!(app.next_tick().is_some(), "its pending ages tick again");
    }

    #[test]
    fn focus_skips_panels_the_layout_hides() {
        let mut app = App::new(true, true, 0);
        app.set_visible([true, false, true, true]);
        app.on_key(press(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Telemetry);
        app.on_key(press(KeyCode::BackTab));
        assert_eq!(app.focus, Panel::Pending);
        app.focus = Panel::Debounce;
        app.set_visible([true, false, true, false]);
        assert_eq!(
            app.focus,
            Panel::Pending,
            "focus leaves a panel that went away"
        );
    }

    #[test]
    fn pending_files_redraw_at_most_once_a_second() {
        let start = 1_700_000_000 * SECOND + 300_000_000;
        let mut app = App::new(true, true, start);
        app.on_snapshot(Arc::new(testdata::snapshot_pending(start)), start);
        assert!(app.take_redraw());
        assert!(app.next_tick().is_some());
        let draws = draws_over(&mut app, start, 10);
        assert!((9..=10).contains(&draws), "{draws} draws in 10 s");
    }

    #[test]
    fn an_unchanged_snapshot_is_not_drawn_again() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        let snapshot = Arc::new(testdata::snapshot_in_sync());
        app.on_snapshot(Arc::clone(&snapshot), start);
        assert!(app.take_redraw());
        for i in 0..5 {
            app.on_snapshot(Arc::new((*snapshot).clone()), start + i * SECOND);
            assert!(!app.take_redraw());
        }
        // A new sequence number with nothing visible changed is not drawn either.
        let mut same = (*snapshot).clone();
        same.seq += 1;
        app.on_snapshot(Arc::new(same.clone()), start + 5 * SECOND);
        assert!(!app.take_redraw());
        // Nor is an older snapshot arriving late: it never replaces a newer one.
        let mut older = same.clone();
        older.seq -= 1;
        older.stats.files += 100;
        app.on_snapshot(Arc::new(older), start + 5 * SECOND);
        assert!(!app.take_redraw());
        assert_eq!(
            app.snapshot.as_ref().unwrap().stats.files,
            snapshot.stats.files
        );
        let mut next = same;
        next.seq += 1;
        next.stats.files += 1;
        app.on_snapshot(Arc::new(next), start + 6 * SECOND);
        assert!(app.take_redraw());
    }

    #[test]
    fn countdown_only_changes_wait_for_the_tick() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        let snapshot = testdata::snapshot_pending(start);
        app.on_snapshot(Arc::new(snapshot.clone()), start);
        assert!(app.take_redraw());
        let mut countdown = snapshot.clone();
        countdown.seq += 1;
        countdown.directories[0].reindex_in_ms -= 250;
        countdown.pending[0].state = PendingState::Waiting {
            reindex_in_ms: Some(1350),
        };
        app.on_snapshot(Arc::new(countdown.clone()), start + SECOND / 4);
        assert!(!app.take_redraw(), "a countdown alone is not worth a frame");
        let mut edited = countdown;
        edited.seq += 1;
        edited.pending[0].last_edit_ns += SECOND / 4;
        app.on_snapshot(Arc::new(edited), start + SECOND / 2);
        assert!(app.take_redraw(), "a new edit is drawn at once");
    }

    #[test]
    fn telemetry_needs_confirmation_and_any_other_key_cancels() {
        let mut app = App::new(true, true, 0);
        app.on_snapshot(Arc::new(testdata::snapshot_in_sync()), 0);
        assert_eq!(app.on_key(press(KeyCode::Char('t'))), None);
        assert_eq!(
            app.overlay,
            Some(Overlay::ConfirmTelemetry { turn_on: true })
        );
        assert_eq!(app.on_key(press(KeyCode::Char('n'))), None);
        assert_eq!(app.overlay, None);
        app.on_key(press(KeyCode::Char('t')));
        assert_eq!(
            app.on_key(press(KeyCode::Char('y'))),
            Some(Effect::SetTelemetry(true))
        );
        // Once on, `t` offers to turn it off.
        app.on_telemetry(TelemetryView {
            enabled: true,
            decided_by: "codelens telemetry on".into(),
            ..TelemetryView::default()
        });
        app.on_key(press(KeyCode::Char('t')));
        assert_eq!(
            app.overlay,
            Some(Overlay::ConfirmTelemetry { turn_on: false })
        );
        // q answers the overlay (cancel), it does not quit.
        assert_eq!(app.on_key(press(KeyCode::Char('q'))), None);
        assert_eq!(app.overlay, None);
    }

    #[test]
    fn an_environment_switch_cannot_be_overridden() {
        let mut app = App::new(true, true, 0);
        app.on_telemetry(TelemetryView {
            enabled: false,
            decided_by: "DO_NOT_TRACK=1".into(),
            env_locked: true,
            ..TelemetryView::default()
        });
        app.on_key(press(KeyCode::Char('t')));
        assert!(
            matches!(app.overlay, Some(Overlay::Notice(ref text)) if text.contains("DO_NOT_TRACK=1"))
        );
        assert_eq!(app.on_key(press(KeyCode::Char('y'))), None);
    }

    #[test]
    fn worktree_fix_is_offered_only_on_a_mismatch() {
        let mut app = App::new(true, true, 0);
        app.on_snapshot(Arc::new(testdata::snapshot_in_sync()), 0);
        app.on_key(press(KeyCode::Char('w')));
        assert!(matches!(app.overlay, Some(Overlay::Notice(_))));
        app.on_key(press(KeyCode::Esc));
        let mut snapshot = testdata::snapshot_in_sync();
        snapshot.seq += 1;
        snapshot.worktree_mismatch = Some(testdata::mismatch());
        app.on_snapshot(Arc::new(snapshot), 0);
        app.on_key(press(KeyCode::Char('w')));
        assert_eq!(app.overlay, Some(Overlay::ConfirmWorktreeIndex));
        assert_eq!(
            app.on_key(press(KeyCode::Char('y'))),
            Some(Effect::BuildWorktreeIndex)
        );
    }

    #[test]
    fn keys_drive_focus_scroll_and_engine_commands() {
        let mut app = App::new(true, true, 0);
        app.on_snapshot(Arc::new(testdata::snapshot_in_sync()), 0);
        assert_eq!(
            app.on_key(press(KeyCode::Char('s'))),
            Some(Effect::Engine(Command::SyncNow))
        );
        assert_eq!(
            app.on_key(press(KeyCode::Char('r'))),
            Some(Effect::Engine(Command::Rescan))
        );
        app.on_key(press(KeyCode::Tab));
        assert_eq!(app.focus, Panel::Debounce);
        app.on_key(press(KeyCode::BackTab));
        app.on_key(press(KeyCode::BackTab));
        assert_eq!(app.focus, Panel::Events);
        app.on_key(press(KeyCode::Up));
        assert_eq!(app.scroll[Panel::Events.index()], 0, "saturates at the top");
        app.on_key(press(KeyCode::Char('j')));
        // A page is the rows the panel showed in the last frame.
        app.panel_rows[Panel::Events.index()] = 7;
        app.on_key(press(KeyCode::PageDown));
        assert_eq!(app.scroll[Panel::Events.index()], 8);
        assert_eq!(app.first_visible(Panel::Events, 5, 3), 2);
        assert_eq!(app.scroll[Panel::Events.index()], 2, "stored back");
        assert_eq!(
            app.on_key(press(KeyCode::Char('m'))),
            Some(Effect::SetMouseCapture(false))
        );
        app.on_key(press(KeyCode::Char('?')));
        assert_eq!(app.overlay, Some(Overlay::Help));
        assert_eq!(app.on_key(press(KeyCode::Esc)), None);
        assert_eq!(app.overlay, None);
        assert_eq!(app.on_key(press(KeyCode::Char('q'))), Some(Effect::Quit));
    }

    #[test]
    fn the_first_role_is_logged_once_and_later_changes_always() {
        let mut app = App::new(true, true, 0);
        app.on_engine_started("10:00:00".into(), Role::Writer);
        app.on_engine_event("10:00:00".into(), &Event::RoleChanged(Role::Writer));
        app.on_engine_event("10:00:01".into(), &Event::PendingChanged { count: 2 });
        assert_eq!(app.events.len(), 1, "{:?}", app.events);
        app.on_engine_event("10:05:00".into(), &Event::RoleChanged(Role::Follower));
        app.on_engine_event("10:06:00".into(), &Event::RoleChanged(Role::Writer));
        let texts: Vec<&str> = app.events.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "writer: this engine keeps the index",
                "follower: another engine keeps the index",
                "engine started: writer"
            ]
        );
    }

    #[test]
    fn a_storm_of_syncs_is_one_line_and_enter_shows_an_event_in_full() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        app.on_snapshot(Arc::new(testdata::snapshot_in_sync()), start);
        let synced = |added| Event::Synced {
            added,
            modified: 0,
            removed: 0,
            duration_ms: 1,
        };
        for i in 0..8 {
            app.on_tick(start + i * SECOND / 20);
            app.on_engine_event("10:00:00".into(), &synced(6));
        }
        // A follower's copy of its writer's sync joins the same line.
        app.on_engine_event(
            "10:00:00".into(),
            &Event::FromWriter {
                at_ns: start,
                text: "synced +2 ~0 -0 in 4 ms".into(),
            },
        );
        let texts: Vec<&str> = app.events.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["synced 9 directories +50 ~0 -0 in 12 ms"]);
        // Seconds later, or after another line, a new one starts.
        app.on_tick(start + 5 * SECOND);
        app.on_engine_event("10:00:05".into(), &synced(1));
        app.on_engine_event(
            "10:00:05".into(),
            &Event::Error("disk full: a long message".into()),
        );
        app.on_engine_event("10:00:05".into(), &synced(1));
        let texts: Vec<&str> = app.events.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "synced +1 ~0 -0 in 1 ms",
                "error: disk full: a long message",
                "synced +1 ~0 -0 in 1 ms",
                "synced 9 directories +50 ~0 -0 in 12 ms",
            ]
        );
        app.focus = Panel::Events;
        app.scroll[Panel::Events.index()] = 1;
        app.on_key(press(KeyCode::Enter));
        assert_eq!(
            app.overlay,
            Some(Overlay::Notice(
                "10:00:05 error: disk full: a long message".into()
            ))
        );
    }

    #[test]
    fn a_followers_copies_of_syncs_minutes_apart_stay_apart() {
        let start = 1_700_000_000 * SECOND;
        let mut app = App::new(true, true, start);
        app.on_snapshot(Arc::new(testdata::snapshot_in_sync()), start);
        // Read in one poll (a follower starting): the writer's syncs of the last hour.
        for (minutes_ago, added) in [(50, 1), (20, 2), (0, 3)] {
            app.on_engine_event(
                "10:00:00".into(),
                &Event::FromWriter {
                    at_ns: start - minutes_ago * 60 * SECOND,
                    text: format!("synced +{added} ~0 -0 in 4 ms"),
                },
            );
        }
        let texts: Vec<&str> = app.events.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "synced +3 ~0 -0 in 4 ms",
                "synced +2 ~0 -0 in 4 ms",
                "synced +1 ~0 -0 in 4 ms",
            ]
        );
    }

    #[test]
    fn missing_index_is_built_only_when_asked() {
        let mut app = App::new(true, true, 0);
        app.set_screen(Screen::NoIndex {
            root: PathBuf::from("/src/app"),
        });
        assert_eq!(app.on_key(press(KeyCode::Char('s'))), None);
        assert_eq!(
            app.on_key(press(KeyCode::Char('y'))),
            Some(Effect::BuildIndex)
        );
    }
}
