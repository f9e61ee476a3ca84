//! The one keymap: it decides what a key does, and the help overlay and the key-hint
//! bar are both drawn from it, so neither can drift from what the keys really do.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    Bottom,
    SyncNow,
    Telemetry,
    InitWorktree,
    Rescan,
    ToggleMouse,
    /// Filter the Pending list (`/`).
    Filter,
    /// Open the selected pending file in the editor.
    Open,
    /// Copy the selected pending file's path (OSC 52).
    Copy,
}

pub struct Binding {
    /// How the keys are written in the help overlay.
    pub keys: &'static str,
    /// The key-hint bar's entry, in the bar's priority order; `None`: help only.
    pub hint: Option<(u8, &'static str)>,
    pub help: &'static str,
    pub action: Action,
    pub matches: fn(&KeyEvent) -> bool,
}

fn plain(key: &KeyEvent, code: KeyCode) -> bool {
    key.code == code
        && !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "q  Ctrl-C",
        hint: Some((0, "q quit")),
        help: "quit (Esc closes an overlay)",
        action: Action::Quit,
        matches: |k| {
            plain(k, KeyCode::Char('q'))
                || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL))
        },
    },
    Binding {
        keys: "?",
        hint: Some((1, "? help")),
        help: "this help",
        action: Action::Help,
        matches: |k| plain(k, KeyCode::Char('?')),
    },
    Binding {
        keys: "s",
        hint: Some((2, "s sync")),
        help: "sync now: re-index every pending file",
        action: Action::SyncNow,
        matches: |k| plain(k, KeyCode::Char('s')),
    },
    Binding {
        keys: "t",
        hint: Some((3, "t telemetry")),
        help: "telemetry consent (asks first; same as `codelens telemetry on|off`)",
        action: Action::Telemetry,
        matches: |k| plain(k, KeyCode::Char('t')),
    },
    Binding {
        keys: "r",
        hint: Some((4, "r rescan")),
        help: "full rescan: compare the whole tree with the index",
        action: Action::Rescan,
        matches: |k| plain(k, KeyCode::Char('r')),
    },
    Binding {
        keys: "w",
        hint: None,
        help: "build this worktree its own index (`codelens init -i`)",
        action: Action::InitWorktree,
        matches: |k| plain(k, KeyCode::Char('w')),
    },
    Binding {
        keys: "Tab  Shift-Tab",
        hint: Some((5, "Tab focus")),
        help: "move focus between panels",
        action: Action::FocusNext,
        matches: |k| k.code == KeyCode::Tab && !k.modifiers.contains(KeyModifiers::SHIFT),
    },
    Binding {
        keys: "",
        hint: None,
        help: "",
        action: Action::FocusPrev,
        matches: |k| {
            k.code == KeyCode::BackTab
                || (k.code == KeyCode::Tab && k.modifiers.contains(KeyModifiers::SHIFT))
        },
    },
    Binding {
        keys: "↑ ↓  j k",
        hint: Some((6, "↑↓ scroll")),
        help: "scroll the focused panel (also the mouse wheel)",
        action: Action::ScrollUp,
        matches: |k| plain(k, KeyCode::Up) || plain(k, KeyCode::Char('k')),
    },
    Binding {
        keys: "",
        hint: None,
        help: "",
        action: Action::ScrollDown,
        matches: |k| plain(k, KeyCode::Down) || plain(k, KeyCode::Char('j')),
    },
    Binding {
        keys: "PgUp PgDn",
        hint: None,
        help: "scroll by a page",
        action: Action::PageUp,
        matches: |k| plain(k, KeyCode::PageUp),
    },
    Binding {
        keys: "",
        hint: None,
        help: "",
        action: Action::PageDown,
        matches: |k| plain(k, KeyCode::PageDown),
    },
    Binding {
        keys: "Home End  g G",
        hint: None,
        help: "first / last line",
        action: Action::Top,
        matches: |k| plain(k, KeyCode::Home) || plain(k, KeyCode::Char('g')),
    },
    Binding {
        keys: "",
        hint: None,
        help: "",
        action: Action::Bottom,
        matches: |k| {
            plain(k, KeyCode::End)
                || (k.code == KeyCode::Char('G')
                    && !k
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT))
        },
    },
    Binding {
        keys: "Enter",
        hint: Some((7, "⏎ open")),
        help: "open the selected pending file in $VISUAL or $EDITOR (Events: the line in full)",
        action: Action::Open,
        matches: |k| plain(k, KeyCode::Enter),
    },
    Binding {
        keys: "/",
        hint: Some((8, "/ filter")),
        help: "filter the pending files (Enter keeps it, Esc clears it)",
        action: Action::Filter,
        matches: |k| plain(k, KeyCode::Char('/')),
    },
    Binding {
        keys: "c",
        hint: None,
        help: "copy the selected pending file's path (OSC 52: the terminal's clipboard)",
        action: Action::Copy,
        matches: |k| plain(k, KeyCode::Char('c')),
    },
    Binding {
        keys: "m",
        hint: None,
        help: "mouse capture on/off (off: the terminal's own text selection works)",
        action: Action::ToggleMouse,
        matches: |k| plain(k, KeyCode::Char('m')),
    },
];

/// What `key` asks for, if anything.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .find(|binding| (binding.matches)(key))
        .map(|binding| binding.action)
}

/// The help overlay's lines: keys and what they do (continuation bindings, which share
/// the line above them, are left out).
pub fn help_lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|binding| !binding.keys.is_empty())
        .map(|binding| (binding.keys, binding.help))
}

/// The key-hint bar: as many hints as fit in `width` columns, most important first,
/// joined by ` · `.
pub fn hint_line(width: usize) -> String {
    let mut hints: Vec<(u8, &str)> = BINDINGS.iter().filter_map(|b| b.hint).collect();
    hints.sort_by_key(|(priority, _)| *priority);
    let mut line = String::new();
    for (_, hint) in hints {
        let extra = if line.is_empty() { 0 } else { 3 } + hint.chars().count();
        if line.chars().count() + extra > width {
            break;
        }
        if !line.is_empty() {
            line.push_str(" · ");
        }
        line.push_str(hint);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventKind;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: ratatui::crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn every_documented_key_reaches_its_action() {
        let cases = [
            (KeyCode::Char('q'), KeyModifiers::NONE, Action::Quit),
            (KeyCode::Char('c'), KeyModifiers::CONTROL, Action::Quit),
            (KeyCode::Char('?'), KeyModifiers::SHIFT, Action::Help),
            (KeyCode::Tab, KeyModifiers::NONE, Action::FocusNext),
            (KeyCode::BackTab, KeyModifiers::SHIFT, Action::FocusPrev),
            (KeyCode::Char('j'), KeyModifiers::NONE, Action::ScrollDown),
            (KeyCode::Up, KeyModifiers::NONE, Action::ScrollUp),
            (KeyCode::Char('s'), KeyModifiers::NONE, Action::SyncNow),
            (KeyCode::Char('t'), KeyModifiers::NONE, Action::Telemetry),
            (KeyCode::Char('w'), KeyModifiers::NONE, Action::InitWorktree),
            (KeyCode::Char('r'), KeyModifiers::NONE, Action::Rescan),
            (KeyCode::Char('G'), KeyModifiers::SHIFT, Action::Bottom),
            (KeyCode::Enter, KeyModifiers::NONE, Action::Open),
            (KeyCode::Char('/'), KeyModifiers::NONE, Action::Filter),
            // Copying is `c`, never the `y` that confirms a dialog.
            (KeyCode::Char('c'), KeyModifiers::NONE, Action::Copy),
        ];
        for (code, modifiers, action) in cases {
            assert_eq!(action_for(&key(code, modifiers)), Some(action), "{code:?}");
        }
        for free in ['x', 'y'] {
            assert_eq!(
                action_for(&key(KeyCode::Char(free), KeyModifiers::NONE)),
                None
            );
        }
        assert_eq!(
            action_for(&key(KeyCode::Char('s'), KeyModifiers::CONTROL)),
            None
        );
    }

    #[test]
    fn hint_bar_fits_and_keeps_priority() {
        assert_eq!(hint_line(6), "q quit");
        assert_eq!(hint_line(15), "q quit · ? help");
        let wide = hint_line(200);
        assert!(wide.starts_with("q quit · ? help · s sync · t telemetry · r rescan"));
        for width in 0..80 {
            assert!(hint_line(width).chars().count() <= width);
        }
    }

    #[test]
    fn help_lists_every_hinted_key() {
        let help: Vec<&str> = help_lines().map(|(keys, _)| keys).collect();
        for binding in BINDINGS.iter().filter(|b| b.hint.is_some()) {
            assert!(help.contains(&binding.keys), "{}", binding.keys);
        }
    }
}
