//! `codelens tui`: the index-health dashboard for a side pane.
//!
//! One event loop over one typed event enum ([`UiEvent`]): key and mouse input, engine
//! snapshots and events, background jobs, signals, and ticks — which come only while
//! something on screen changes with time, so an idle dashboard sleeps. The engine runs
//! on its own thread; the loop never touches disk, SQLite or the network (index builds
//! and engine start-up run on threads of their own and report back here).

pub mod app;
#[doc(hidden)]
pub mod fixtures;
pub mod keymap;
pub mod view;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::progress::Progress;
use anyhow::Context;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self as term_event, DisableMouseCapture, EnableMouseCapture, Event as TermEvent,
};
use ratatui::crossterm::terminal::{
    self, BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};

use crate::config::Config;
use crate::engine::project::Project;
use crate::engine::{self, Engine, EngineOptions, Snapshot, now_ns, reconcile};
use crate::telemetry;
use app::{App, Effect, Screen, TelemetryView};

pub struct TuiOptions {
    pub mouse_capture: bool,
}

/// Everything the loop reacts to.
enum UiEvent {
    Key(term_event::KeyEvent),
    Mouse(term_event::MouseEvent),
    Resize,
    Snapshot(Arc<Snapshot>),
    Engine(engine::Event),
    EngineStopped(String),
    /// An engine started (or could not) for the project the dashboard shows, with its
    /// events subscribed from its first moment.
    Attached(Result<Box<(Engine, Receiver<engine::Event>)>, AttachError>),
    /// An index build finished: the project to attach to, or why not.
    Built(Result<(Project, PathBuf), String>),
    /// Telemetry consent as read or set without an engine.
    Telemetry(Box<telemetry::TelemetryStatus>),
    /// SIGTERM, SIGHUP or SIGINT.
    Signal,
}

enum AttachError {
    NoIndex(PathBuf),
    Other(String),
}

/// Panics on other threads while the dashboard owns the terminal: printed after it is
/// restored (printing them at once would scribble over the screen).
static DEFERRED_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn run(start: &Path, options: TuiOptions, config: &Config) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        // After the `codelens: ` every error line starts with: the command, not again.
        anyhow::bail!("the dashboard (`tui`) needs a terminal; use `codelens status` in scripts");
    }
    let start = start
        .canonicalize()
        .with_context(|| format!("{}", start.display()))?;
    let mut engine_options = EngineOptions::from_config(config);
    engine_options.start_dir = Some(start.clone());
    let mut app = App::new(!config.no_color, options.mouse_capture, now_ns());
    app.home = config.agents.home.clone();
    app.utc_offset_secs = chrono::Local::now().offset().local_minus_utc();
    let time = || chrono::Local::now().format("%H:%M:%S").to_string();
    for warning in config
        .warnings
        .iter()
        .chain(&telemetry::warnings_in_force(&engine_options.telemetry))
    {
        app.log(time(), format!("warning: {warning}"));
    }

    // The dashboard writes to a terminal, never to a pipe; and signal-hook wakes its
    // listener through a socket, which must not kill the process with SIGPIPE once the
    // listener is gone (`main` restores SIGPIPE's default for `status | head`).
    #[cfg(unix)]
    // SAFETY: setting a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Signals first: a SIGTERM from here on ends the loop, and the guard restores.
    let (tx, rx) = mpsc::channel::<UiEvent>();
    let input = InputGate::default();
    let signals = spawn_signal_listener(tx.clone(), input.clone())?;
    install_panic_hook();
    let guard = TerminalGuard::enter(options.mouse_capture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    spawn_input_reader(tx.clone(), input.clone());
    // The consent panel is right before any engine exists (the no-index screen too).
    spawn_telemetry_status(&tx, engine_options.telemetry.clone());
    attach(&tx, Project::find(&start), engine_options.clone());

    let mut engine: Option<Arc<Engine>> = None;
    let mut watching: Option<Arc<AtomicBool>> = None;
    let mut build_progress: Option<Progress> = None;
    let mut counted_start = false;
    let result = loop {
        if app.take_redraw() {
            if let Err(error) = draw(&mut terminal, &mut app) {
                break Err(error);
            }
            if let Some(path) = &config.tui_stats {
                // Diagnostics for tests and the benchmark: frames drawn so far.
                let _ = std::fs::write(path, format!("draws {}\n", app.draws));
            }
        }
        let event = match app.next_tick() {
            Some(wait) => match rx.recv_timeout(wait) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break Ok(()),
            },
            None => match rx.recv() {
                Ok(event) => Some(event),
                Err(_) => break Ok(()),
            },
        };
        let now = now_ns();
        let Some(event) = event else {
            // A tick: live catch-up progress and build progress are read, not pushed.
            if let Some(engine) = &engine {
                app.on_snapshot(engine.snapshot(), now);
            }
            if let (Some(progress), Screen::Building { what, .. }) =
                (&build_progress, app.screen.clone())
            {
                app.set_screen(Screen::Building {
                    what,
                    checked: progress.position(),
                    total: progress.length(),
                });
            }
            app.on_tick(now);
            continue;
        };
        let effect = match event {
            UiEvent::Key(key) => app.on_key(key),
            UiEvent::Mouse(mouse) => {
                app.on_mouse(mouse);
                None
            }
            UiEvent::Resize => {
                app.on_resize();
                None
            }
            UiEvent::Snapshot(snapshot) => {
                app.on_snapshot(snapshot, now);
                None
            }
            UiEvent::Engine(event) => {
                // Its time decides whether a sync joins the line of the one before.
                app.on_tick(now);
                // The writer's own events carry the moment it logged them.
                let at = match &event {
                    engine::Event::FromWriter { at_ns, .. } => {
                        chrono::DateTime::from_timestamp_nanos(*at_ns)
                            .with_timezone(&chrono::Local)
                            .format("%H:%M:%S")
                            .to_string()
                    }
                    _ => time(),
                };
                app.on_engine_event(at, &event);
                None
            }
            UiEvent::EngineStopped(reason) => {
                app.on_engine_stopped(reason);
                None
            }
            UiEvent::Attached(Ok(started)) => {
                let (started, events) = *started;
                let started = Arc::new(started);
                if let Some(stop) = watching.replace(follow_engine(&started, events, &tx)) {
                    stop.store(true, Ordering::Relaxed);
                }
                if let Some(old) = engine.replace(Arc::clone(&started)) {
                    // Its forwarder is stopped above; woken, it lets go at once.
                    old.wake_waiters();
                    // Stopping an engine joins its thread: not on the loop's time.
                    std::thread::spawn(move || drop(old));
                }
                let snapshot = started.snapshot();
                app.attach(time(), Arc::clone(&snapshot), now);
                // The counts this dashboard records carry the project's language and
                // size bucket (from the snapshot in memory: no disk).
                telemetry::set_project(&snapshot.stats.languages, snapshot.stats.files);
                if !counted_start {
                    counted_start = true;
                    telemetry::record_event(telemetry::EventName::TuiStart);
                }
                None
            }
            UiEvent::Attached(Err(AttachError::NoIndex(root))) => {
                app.set_screen(Screen::NoIndex { root });
                None
            }
            UiEvent::Attached(Err(AttachError::Other(reason))) => {
                app.set_screen(Screen::Failed(reason));
                None
            }
            UiEvent::Built(result) => {
                app.busy = false;
                build_progress = None;
                match result {
                    Ok((project, start_dir)) => {
                        app.log(time(), format!("index built at {}", project.root.display()));
                        let mut options = engine_options.clone();
                        options.start_dir = Some(start_dir);
                        attach(&tx, Ok(project), options);
                        app.set_screen(Screen::Starting);
                    }
                    Err(reason) => {
                        app.log(time(), format!("error: index build failed: {reason}"));
                        app.set_screen(match &engine {
                            Some(_) => Screen::Dashboard,
                            None => Screen::Failed(format!("index build failed: {reason}")),
                        });
                    }
                }
                None
            }
            UiEvent::Telemetry(status) => {
                app.on_telemetry(TelemetryView::from_status(&status));
                // Turned on here: from now on the counts carry the project's facts.
                if let Some(snapshot) = &app.snapshot {
                    telemetry::set_project(&snapshot.stats.languages, snapshot.stats.files);
                }
                None
            }
            UiEvent::Signal => break Ok(()),
        };
        // Ages move with the clock whatever woke the loop (a stream of snapshots must
        // not hold them back).
        app.on_tick(now);
        match effect {
            None => {}
            Some(Effect::Quit) => break Ok(()),
            // A follower's engine passes `s` and `r` on to its writer, and says so.
            Some(Effect::Engine(command)) => {
                if let Some(engine) = &engine {
                    engine.send(command);
                }
            }
            Some(Effect::SetTelemetry(on)) => match &engine {
                Some(engine) if engine.is_running() => {
                    engine.send(engine::Command::SetTelemetry(on))
                }
                // No live engine (no index yet, or it stopped): the same API, on a
                // thread of its own.
                _ => {
                    let tx = tx.clone();
                    let env = engine_options.telemetry.clone();
                    std::thread::spawn(move || {
                        let event = match telemetry::set_consent(&env, on) {
                            Ok(status) => UiEvent::Telemetry(Box::new(status)),
                            Err(error) => {
                                UiEvent::Engine(engine::Event::Error(format!("telemetry: {error}")))
                            }
                        };
                        let _ = tx.send(event);
                    });
                }
            },
            Some(Effect::OpenInEditor(path)) => match &config.editor {
                None => app.log(
                    time(),
                    "set $VISUAL or $EDITOR to open files from the dashboard".into(),
                ),
                // An editor given a missing file would make one: say so instead.
                Some(_) if std::fs::symlink_metadata(&path).is_err() => app.log(
                    time(),
                    format!(
                        "{} is not on disk (removed since, or its name is not UTF-8)",
                        path.display()
                    ),
                ),
                Some(editor) => {
                    input.pause();
                    let opened = open_in_editor(editor, &path, app.mouse_capture);
                    input.resume();
                    let _ = terminal.clear();
                    app.mark_dirty();
                    if let Err(error) = opened {
                        app.log(time(), format!("error: {editor}: {error}"));
                    }
                }
            },
            Some(Effect::Copy(text)) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
                let mut out = std::io::stdout();
                let _ = write!(out, "\x1b]52;c;{encoded}\x07");
                let _ = out.flush();
                app.log(time(), format!("copied {text} (OSC 52)"));
            }
            Some(Effect::SetMouseCapture(on)) => {
                let mut out = std::io::stdout();
                let _ = if on {
                    execute!(out, EnableMouseCapture)
                } else {
                    execute!(out, DisableMouseCapture)
                };
            }
            Some(Effect::BuildIndex) => {
                let progress = Progress::new();
                build_progress = Some(progress.clone());
                app.busy = true;
                let what = match &app.screen {
                    Screen::NoIndex { root } => format!("Indexing {}", root.display()),
                    _ => "Indexing".into(),
                };
                app.set_screen(Screen::Building {
                    what,
                    checked: 0,
                    total: 0,
                });
                spawn_build(&tx, start.clone(), false, progress);
            }
            Some(Effect::BuildWorktreeIndex) => {
                let worktree = engine
                    .as_ref()
                    .and_then(|e| e.snapshot().worktree_mismatch.clone())
                    .map(|m| m.worktree_root);
                if let Some(worktree) = worktree {
                    let progress = Progress::new();
                    build_progress = Some(progress.clone());
                    app.busy = true;
                    app.log(time(), format!("codelens init -i {}", worktree.display()));
                    app.set_screen(Screen::Building {
                        what: format!(
                            "Building this worktree its own index: {}",
                            worktree.display()
                        ),
                        checked: 0,
                        total: 0,
                    });
                    spawn_build(&tx, worktree, true, progress);
                }
            }
        }
    };
    // The shell gets its terminal back first; the engine is stopped after (a second
    // SIGTERM meanwhile still finds the listener, and is ignored: we are leaving).
    drop(terminal);
    drop(guard);
    if let Some(stop) = watching {
        stop.store(true, Ordering::Relaxed);
    }
    if let Some(engine) = engine {
        engine.wake_waiters();
        stop_engine(engine);
    }
    signals.close();
    for message in DEFERRED_PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        eprintln!("codelens: {message}");
    }
    result
}

/// Stops the engine cleanly (its locks released, its cookie files removed), waiting a
/// bounded time: the forwarding threads let go of it within their next wait.
fn stop_engine(mut engine: Arc<Engine>) {
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    loop {
        match Arc::try_unwrap(engine) {
            Ok(engine) => {
                engine.shutdown(Duration::from_secs(1));
                return;
            }
            Err(shared) if std::time::Instant::now() < deadline => {
                engine = shared;
                std::thread::sleep(Duration::from_millis(20));
            }
            // Still shared: the process exit ends it (an interrupted sync rolls back).
            Err(_) => return,
        }
    }
}

fn spawn_telemetry_status(tx: &Sender<UiEvent>, env: telemetry::TelemetryEnv) {
    let tx = tx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(UiEvent::Telemetry(Box::new(telemetry::status(&env))));
    });
}

/// One frame, wrapped in synchronized output so a pane never shows half of it.
fn draw(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    app: &mut App,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    // Terminals without synchronized output ignore the sequence.
    let _ = execute!(out, BeginSynchronizedUpdate);
    let drawn = terminal.draw(|frame| view::render(frame, app));
    let _ = execute!(out, EndSynchronizedUpdate);
    let _ = out.flush();
    drawn.context("cannot draw the dashboard")?;
    app.draws += 1;
    Ok(())
}

/// Starts an engine for `project` on a thread and reports it as [`UiEvent::Attached`].
fn attach(tx: &Sender<UiEvent>, project: engine::Result<Project>, options: EngineOptions) {
    let tx = tx.clone();
    let start_dir = options.start_dir.clone();
    std::thread::spawn(move || {
        let started = project.and_then(|project| Engine::start_subscribed(project, options));
        let result = match started {
            Ok(started) => Ok(Box::new(started)),
            Err(engine::Error::NoIndex { start }) => {
                let root = start_dir
                    .as_deref()
                    .and_then(|dir| Project::for_init(dir, false).ok())
                    .map_or(start, |p| p.root);
                Err(AttachError::NoIndex(root))
            }
            Err(error) => Err(AttachError::Other(error.to_string())),
        };
        let _ = tx.send(UiEvent::Attached(result));
    });
}

/// Forwards the engine's snapshots and events to the loop until `stop` is set; says so
/// when the engine thread ends by itself.
fn follow_engine(
    engine: &Arc<Engine>,
    events: Receiver<engine::Event>,
    tx: &Sender<UiEvent>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let forward = tx.clone();
    let stopped = Arc::clone(&stop);
    std::thread::spawn(move || {
        for event in events.iter() {
            if stopped.load(Ordering::Relaxed) || forward.send(UiEvent::Engine(event)).is_err() {
                break;
            }
        }
    });
    let engine = Arc::downgrade(engine);
    let stopped = Arc::clone(&stop);
    let tx = tx.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        while !stopped.load(Ordering::Relaxed) {
            // Weak: this thread must not keep a replaced engine alive.
            let Some(engine) = engine.upgrade() else {
                break;
            };
            if !engine.is_running() {
                let reason = DEFERRED_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "the engine thread ended".into());
                let _ = tx.send(UiEvent::EngineStopped(reason));
                break;
            }
            // Long waits (an idle dashboard's process sleeps): quitting sets `stop` and
            // wakes the waiters, so the engine is let go at once all the same.
            if let Some(snapshot) = engine.wait_until(Duration::from_secs(5), |s| {
                s.seq != seen || stopped.load(Ordering::Relaxed)
            }) {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                seen = snapshot.seq;
                if tx.send(UiEvent::Snapshot(snapshot)).is_err() {
                    break;
                }
            }
        }
    });
    stop
}

/// Builds an index on a thread, as `codelens init [-i]` does, with live progress.
fn spawn_build(tx: &Sender<UiEvent>, dir: PathBuf, own_worktree: bool, progress: Progress) {
    let tx = tx.clone();
    std::thread::spawn(move || {
        let built = (|| -> engine::Result<Project> {
            let project = Project::for_init(&dir, own_worktree)?;
            project.ensure_no_engine()?;
            let _lock = project.lock_for_writing()?;
            reconcile::build_index(&project, &progress)?;
            Ok(project)
        })();
        let _ = tx.send(UiEvent::Built(
            built
                .map(|project| (project, dir))
                .map_err(|e| e.to_string()),
        ));
    });
}

/// Lets the input reader stand aside while an editor has the terminal: it must not
/// read (and so take) the editor's keys.
#[derive(Clone, Default)]
struct InputGate {
    paused: Arc<AtomicBool>,
    /// The reader has seen the pause and reads nothing until it is lifted.
    standing_aside: Arc<AtomicBool>,
}

impl InputGate {
    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        // The reader polls at most 50 ms at a time.
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while !self.standing_aside.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        // Cleared first: a pause right after must wait for the reader to see it.
        self.standing_aside.store(false, Ordering::SeqCst);
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Leaves the dashboard's terminal modes, runs `editor` on `path` until it exits, and
/// enters them again.
fn open_in_editor(editor: &str, path: &Path, mouse_capture: bool) -> anyhow::Result<()> {
    restore_terminal();
    // `$EDITOR` may carry arguments and quotes (`code --wait`, `"/opt/my editor/ed"`):
    // the shell reads it, as git does, and the path goes as an argument of its own
    // (never through the shell's parsing, so any name is passed as it is).
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(editor)
        .arg(path)
        .status();
    terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
    enter_screen_modes(mouse_capture)?;
    let status = status.context("cannot run sh")?;
    anyhow::ensure!(status.success(), "exited with {status}");
    Ok(())
}

fn spawn_input_reader(tx: Sender<UiEvent>, gate: InputGate) {
    std::thread::spawn(move || {
        loop {
            if gate.paused.load(Ordering::SeqCst) {
                gate.standing_aside.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            gate.standing_aside.store(false, Ordering::SeqCst);
            match term_event::poll(Duration::from_millis(50)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => {
                    let _ = tx.send(UiEvent::Signal);
                    break;
                }
            }
            let event = match term_event::read() {
                Ok(TermEvent::Key(key)) => UiEvent::Key(key),
                Ok(TermEvent::Mouse(mouse)) => UiEvent::Mouse(mouse),
                Ok(TermEvent::Resize(..)) => UiEvent::Resize,
                Ok(_) => continue,
                // The terminal went away (the pane closed): quit like SIGHUP.
                Err(_) => UiEvent::Signal,
            };
            let quit = matches!(event, UiEvent::Signal);
            if tx.send(event).is_err() || quit {
                break;
            }
        }
    });
}

fn spawn_signal_listener(
    tx: Sender<UiEvent>,
    editor: InputGate,
) -> anyhow::Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])
        .context("cannot listen for signals")?;
    let handle = signals.handle();
    // Listens until closed: a second SIGTERM during shutdown finds a reader too.
    std::thread::spawn(move || {
        for signal in signals.forever() {
            // Ctrl-C while an editor has the (cooked) terminal is meant for the
            // editor, which shares our process group: as git does, it does not end
            // the dashboard waiting behind it.
            if signal == SIGINT && editor.paused.load(Ordering::SeqCst) {
                continue;
            }
            let _ = tx.send(UiEvent::Signal);
        }
    });
    Ok(handle)
}

/// Owns the terminal's modes: entering sets them, dropping (on quit, on error, or
/// while unwinding) restores them all (mouse capture too, whichever way `m` left it).
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse_capture: bool) -> anyhow::Result<TerminalGuard> {
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        // From here on a failure restores the terminal (the guard's drop).
        let guard = TerminalGuard;
        enter_screen_modes(mouse_capture)?;
        Ok(guard)
    }
}

/// The alternate screen, no cursor, and mouse capture if on (after raw mode).
fn enter_screen_modes(mouse_capture: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen, cursor::Hide)?;
    if mouse_capture {
        execute!(out, EnableMouseCapture)?;
    }
    Ok(())
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves every mode the dashboard set; harmless when called twice.
fn restore_terminal() {
    let mut out = std::io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// A panic on the dashboard's thread restores the terminal before the message is
/// printed; a panic on another thread (the engine) is kept for after the dashboard
/// ends, and the dashboard says the engine stopped.
fn install_panic_hook() {
    let ui_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            restore_terminal();
            previous(info);
        } else {
            let thread = std::thread::current()
                .name()
                .unwrap_or("a background thread")
                .to_string();
            DEFERRED_PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{thread} panicked: {info}"));
        }
    }));
}
