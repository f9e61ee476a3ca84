//! Every environment variable codelens reads, parsed in one place, each with its default
//! and its bounds written beside it. A bad value is never fatal: it produces a warning
//! (returned to the caller, which prints it on stderr) and the default.

use std::time::Duration;

/// How long a query waits for the engine's start-up catch-up before answering from the
/// index as it is (with the staleness banner).
pub const CATCHUP_TIMEOUT_VAR: &str = "CODELENS_CATCHUP_TIMEOUT_MS";
pub const CATCHUP_TIMEOUT_DEFAULT_MS: u64 = 5_000;
/// 0 means "never wait"; more than a minute would look like a hang to any client.
pub const CATCHUP_TIMEOUT_MAX_MS: u64 = 60_000;

/// The watcher's per-directory quiet window before re-indexing.
pub const WATCH_DEBOUNCE_VAR: &str = "CODELENS_WATCH_DEBOUNCE_MS";
pub const WATCH_DEBOUNCE_DEFAULT_MS: u64 = 2_000;
/// Under 100 ms an editor's save sequence is indexed half-done; over a minute the index
/// lags edits for longer than anyone would call "live".
pub const WATCH_DEBOUNCE_BOUNDS_MS: (u64, u64) = (100, 60_000);
/// `1` turns the watcher off (catch-up and `codelens sync` still work).
pub const NO_WATCH_VAR: &str = "CODELENS_NO_WATCH";
/// `1` turns the watcher on where it would be turned off (WSL2 `/mnt`, network file systems).
pub const FORCE_WATCH_VAR: &str = "CODELENS_FORCE_WATCH";
/// At most this many directory watches (default: half of the kernel's
/// `max_user_watches`, leaving the rest to other programs). Past it, the remaining
/// directories are re-checked by periodic reconciliation.
pub const MAX_DIR_WATCHES_VAR: &str = "CODELENS_MAX_DIR_WATCHES";
/// `recursive` or `per-directory`: how the watcher arms its watches (default
/// [`WatchStrategy::platform_default`]).
pub const WATCH_STRATEGY_VAR: &str = "CODELENS_WATCH_STRATEGY";

/// How the watcher covers the tree. A runtime choice on every platform: only the
/// default differs, so Linux's tests run both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStrategy {
    /// One recursive watch on the project root (one FSEvents stream on macOS, one
    /// `ReadDirectoryChangesW` handle on Windows; on Linux notify's inotify backend
    /// still adds one kernel watch per directory, ignored trees included). Events
    /// outside the index are dropped by a path-prefix test.
    Recursive,
    /// One non-recursive watch per directory the index covers, and on `.codelens/`.
    PerDirectory,
}

impl WatchStrategy {
    /// `recursive` on macOS and Windows, whose backends give one handle for a whole tree
    /// (and where notify's FSEvents backend restarts its stream for every path added);
    /// `per-directory` elsewhere, where inotify needs one watch per directory anyway and
    /// watching only the indexed ones keeps ignored trees out of the kernel's limit.
    pub fn platform_default() -> WatchStrategy {
        if cfg!(any(target_os = "macos", target_os = "windows")) {
            WatchStrategy::Recursive
        } else {
            WatchStrategy::PerDirectory
        }
    }

    /// The value of [`WATCH_STRATEGY_VAR`] and of `status --json`'s `watcher.strategy`.
    pub fn name(self) -> &'static str {
        match self {
            WatchStrategy::Recursive => "recursive",
            WatchStrategy::PerDirectory => "per-directory",
        }
    }

    /// The strategy `raw` names (surrounding blanks and case ignored).
    pub fn parse(raw: &str) -> Option<WatchStrategy> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "recursive" => Some(WatchStrategy::Recursive),
            "per-directory" => Some(WatchStrategy::PerDirectory),
            _ => None,
        }
    }
}

/// Where codelens keeps per-user state (telemetry consent, machine id, buffer).
/// Default: `$HOME/.codelens`. Tests point it at a temp directory.
pub const HOME_VAR: &str = "CODELENS_HOME";
/// The de-facto cross-tool opt-out (<https://consoledonottrack.com>): set to anything
/// but empty or `0`, telemetry is off, whatever else says otherwise.
pub const DO_NOT_TRACK_VAR: &str = "DO_NOT_TRACK";
/// `0` forces telemetry off, `1` forces it on (the explicit opt-in that also works in CI).
pub const TELEMETRY_VAR: &str = "CODELENS_TELEMETRY";
/// Where payloads are POSTed (default [`TELEMETRY_URL_DEFAULT`]).
pub const TELEMETRY_URL_VAR: &str = "CODELENS_TELEMETRY_URL";
pub const TELEMETRY_URL_DEFAULT: &str = "https://telemetry.codelens.dev/v1/events";
/// `1`: print each payload on stderr instead of sending it.
pub const TELEMETRY_DEBUG_VAR: &str = "CODELENS_TELEMETRY_DEBUG";
/// `YYYY-MM-DD`: the UTC day telemetry believes it is. Honoured only by debug builds, so
/// tests can make "yesterday" complete without waiting for midnight; release builds
/// ignore it (a user cannot backdate or postdate what is sent).
pub const TELEMETRY_NOW_VAR: &str = "CODELENS_TELEMETRY_NOW";
/// Set (non-empty, not `0`/`false`) by CI services; any of them turns telemetry off unless
/// `CODELENS_TELEMETRY=1` opts in explicitly. Machines of CI are not people.
pub const CI_VARS: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "TF_BUILD",
    "TEAMCITY_VERSION",
    "BITBUCKET_BUILD_NUMBER",
    "APPVEYOR",
    "DRONE",
    "CODEBUILD_BUILD_ID",
    "BUILD_ID",
    "CONTINUOUS_INTEGRATION",
];

/// The telemetry switches, parsed; `crate::telemetry::TelemetryEnv` is this struct (its
/// methods are in `telemetry/mod.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryVars {
    /// `DO_NOT_TRACK` is set to something other than empty or `0`.
    pub do_not_track: bool,
    /// `CODELENS_TELEMETRY`: `Some(false)` for 0, `Some(true)` for 1, `None` unset or bad.
    pub forced: Option<bool>,
    /// The first CI variable found set, if any.
    pub ci: Option<&'static str>,
    /// `$CODELENS_HOME`, else `$HOME/.codelens`; `None` when neither is known.
    pub home: Option<std::path::PathBuf>,
    pub url: String,
    pub debug: bool,
    /// [`TELEMETRY_NOW_VAR`], debug builds only.
    pub today_override: Option<String>,
    /// Problems with the switches, to show whatever telemetry's state. A bad URL is not
    /// among them: see [`TelemetryVars::url_problem`], shown only when it would be used.
    pub warnings: Vec<String>,
}

impl TelemetryVars {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> TelemetryVars {
        let mut warnings = Vec::new();
        let set = |name: &str| {
            lookup(name).is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                !(v.is_empty() || v == "0" || v == "false")
            })
        };
        let do_not_track = lookup(DO_NOT_TRACK_VAR).is_some_and(|v| {
            let v = v.trim();
            !(v.is_empty() || v == "0")
        });
        let forced =
            lookup(TELEMETRY_VAR).and_then(|raw| match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Some(true),
                "0" | "false" | "no" | "off" => Some(false),
                "" => None,
                _ => {
                    warnings.push(format!(
                        "{TELEMETRY_VAR}={raw:?} is not 1 or 0; ignoring it"
                    ));
                    None
                }
            });
        let ci = CI_VARS.iter().copied().find(|name| set(name));
        let home = match lookup(HOME_VAR).filter(|v| !v.trim().is_empty()) {
            Some(dir) => Some(std::path::PathBuf::from(dir)),
            None => lookup("HOME")
                .filter(|v| !v.trim().is_empty())
                .map(|home| std::path::Path::new(&home).join(".codelens")),
        };
        let url = lookup(TELEMETRY_URL_VAR)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| TELEMETRY_URL_DEFAULT.to_string());
        let debug = flag(&lookup, TELEMETRY_DEBUG_VAR, &mut warnings);
        let today_override = if cfg!(debug_assertions) {
            lookup(TELEMETRY_NOW_VAR)
                .filter(|v| chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").is_ok())
        } else {
            None
        };
        TelemetryVars {
            do_not_track,
            forced,
            ci,
            home,
            url,
            debug,
            today_override: today_override.map(|v| v.trim().to_string()),
            warnings,
        }
    }
}

impl TelemetryVars {
    /// What is wrong with [`TELEMETRY_URL_VAR`], if anything. Only worth a warning when
    /// telemetry is on (or `forget` asks the server): while off the URL is never used.
    pub fn url_problem(&self) -> Option<String> {
        (!(self.url.starts_with("http://") || self.url.starts_with("https://"))).then(|| {
            format!(
                "{TELEMETRY_URL_VAR}={:?} is not an http(s) URL; nothing will be sent",
                self.url
            )
        })
    }
}

/// Where `codelens install` looks for agents' configuration: the standard variables an
/// agent itself reads (`HOME`, `XDG_CONFIG_HOME`, `PATH`), read here like every other one
/// so tests can point them at temporary directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentEnv {
    /// `HOME`; `None` when unset or empty (user-scope files are then unavailable).
    pub home: Option<std::path::PathBuf>,
    /// `XDG_CONFIG_HOME`; VS Code and opencode default to `$HOME/.config` without it.
    pub xdg_config_home: Option<std::path::PathBuf>,
    /// The directories of `PATH`, in order (empty entries dropped).
    pub path: Vec<std::path::PathBuf>,
}

impl AgentEnv {
    pub fn from_env() -> AgentEnv {
        AgentEnv::from_lookup(|name| std::env::var_os(name))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> AgentEnv {
        let dir = |name| lookup(name).filter(|v| !v.is_empty()).map(Into::into);
        AgentEnv {
            home: dir("HOME"),
            xdg_config_home: dir("XDG_CONFIG_HOME"),
            path: lookup("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .filter(|d| !d.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What to log on stderr, as a `tracing` filter: `info`, `debug`, `trace`, or per
/// module (`codelens=debug,rmcp=info`). Unset: nothing is logged.
pub const LOG_VAR: &str = "CODELENS_LOG";

/// A file `codelens tui` keeps its frame count in (rewritten after each frame): how
/// tests and the benchmark check, in a real terminal, that an idle dashboard does not
/// draw.
pub const TUI_STATS_VAR: &str = "CODELENS_TUI_STATS";

/// The informal standard (no-color.org): set and not empty turns colours off.
pub const NO_COLOR_VAR: &str = "NO_COLOR";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub catchup_timeout: Duration,
    pub watch_debounce: Duration,
    pub no_watch: bool,
    pub force_watch: bool,
    /// `None`: derived from the kernel's limit when the watcher starts.
    pub max_dir_watches: Option<u64>,
    /// `CODELENS_WATCH_STRATEGY`, else the platform's default.
    pub watch_strategy: WatchStrategy,
    /// `NO_COLOR` set and not empty (no-color.org): the dashboard draws without colours.
    pub no_color: bool,
    /// `CODELENS_LOG`: the log filter, when logging is asked for.
    pub log: Option<String>,
    /// `CODELENS_TUI_STATS`: where the dashboard keeps its frame count.
    pub tui_stats: Option<std::path::PathBuf>,
    /// `VISUAL`, else `EDITOR`: the command the dashboard opens a file with.
    pub editor: Option<String>,
    /// One line per ignored or clamped value, for stderr.
    pub warnings: Vec<String>,
    /// The telemetry switches and paths (their warnings are in `telemetry.warnings`).
    pub telemetry: TelemetryVars,
    /// `HOME`, `XDG_CONFIG_HOME`, `PATH`: where agents keep their configs.
    pub agents: AgentEnv,
}

impl Config {
    /// Reads the process environment: once, at start (every front end then takes its
    /// settings from this value).
    pub fn from_env() -> Config {
        Config {
            agents: AgentEnv::from_env(),
            ..Config::from_lookup(|name| std::env::var(name).ok())
        }
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let catchup_ms = millis(
            &lookup,
            CATCHUP_TIMEOUT_VAR,
            CATCHUP_TIMEOUT_DEFAULT_MS,
            (0, CATCHUP_TIMEOUT_MAX_MS),
            &mut warnings,
        );
        let debounce_ms = millis(
            &lookup,
            WATCH_DEBOUNCE_VAR,
            WATCH_DEBOUNCE_DEFAULT_MS,
            WATCH_DEBOUNCE_BOUNDS_MS,
            &mut warnings,
        );
        let no_watch = flag(&lookup, NO_WATCH_VAR, &mut warnings);
        let force_watch = flag(&lookup, FORCE_WATCH_VAR, &mut warnings);
        let max_dir_watches =
            lookup(MAX_DIR_WATCHES_VAR).and_then(|raw| match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    warnings.push(format!(
                        "{MAX_DIR_WATCHES_VAR}={raw:?} is not a positive number; using the default"
                    ));
                    None
                }
            });
        let watch_strategy = match lookup(WATCH_STRATEGY_VAR) {
            None => WatchStrategy::platform_default(),
            Some(raw) => WatchStrategy::parse(&raw).unwrap_or_else(|| {
                let default = WatchStrategy::platform_default();
                warnings.push(format!(
                    "{WATCH_STRATEGY_VAR}={raw:?} is not `recursive` or `per-directory`; using {} (this platform's default)",
                    default.name()
                ));
                default
            }),
        };
        Config {
            catchup_timeout: Duration::from_millis(catchup_ms),
            watch_debounce: Duration::from_millis(debounce_ms),
            no_watch,
            force_watch,
            max_dir_watches,
            watch_strategy,
            no_color: lookup(NO_COLOR_VAR).is_some_and(|v| !v.is_empty()),
            log: lookup(LOG_VAR).filter(|v| !v.trim().is_empty()),
            tui_stats: lookup(TUI_STATS_VAR)
                .filter(|v| !v.is_empty())
                .map(Into::into),
            editor: ["VISUAL", "EDITOR"]
                .into_iter()
                .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty())),
            warnings,
            telemetry: TelemetryVars::from_lookup(&lookup),
            agents: AgentEnv::from_lookup(|name| lookup(name).map(Into::into)),
        }
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case); unset is off.
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str, warnings: &mut Vec<String>) -> bool {
    let Some(raw) = lookup(name) else {
        return false;
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => true,
        "0" | "false" | "no" | "off" | "" => false,
        _ => {
            warnings.push(format!("{name}={raw:?} is not 1 or 0; treating it as 0"));
            false
        }
    }
}

/// A whole number of milliseconds within `bounds`: out of bounds is clamped (with a
/// warning), anything unparsable is the default (with a warning).
fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    (low, high): (u64, u64),
    warnings: &mut Vec<String>,
) -> u64 {
    let Some(raw) = lookup(name) else {
        return default;
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if (low..=high).contains(&value) => value,
        Ok(value) => {
            let clamped = value.clamp(low, high);
            warnings.push(format!(
                "{name}={value} is outside [{low}, {high}]; using {clamped}"
            ));
            clamped
        }
        Err(_) => {
            warnings.push(format!(
                "{name}={raw:?} is not a number of milliseconds; using {default}"
            ));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Config {
        Config::from_lookup(|name| (name == CATCHUP_TIMEOUT_VAR).then(|| value.to_string()))
    }

    #[test]
    fn default_when_unset() {
        let config = Config::from_lookup(|_| None);
        assert_eq!(config.catchup_timeout, Duration::from_millis(5_000));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn valid_value_is_taken() {
        assert_eq!(with("250").catchup_timeout, Duration::from_millis(250));
        assert_eq!(with(" 0 ").catchup_timeout, Duration::ZERO);
    }

    #[test]
    fn out_of_range_is_clamped_with_a_warning() {
        let config = with("999999");
        assert_eq!(config.catchup_timeout, Duration::from_millis(60_000));
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("outside"));
    }

    #[test]
    fn watcher_settings() {
        let config = Config::from_lookup(|name| match name {
            WATCH_DEBOUNCE_VAR => Some("50".into()),
            NO_WATCH_VAR => Some("1".into()),
            FORCE_WATCH_VAR => Some("maybe".into()),
            MAX_DIR_WATCHES_VAR => Some("1000".into()),
            _ => None,
        });
        assert_eq!(
            config.watch_debounce,
            Duration::from_millis(100),
            "clamped up"
        );
        assert!(config.no_watch);
        assert!(!config.force_watch);
        assert_eq!(config.max_dir_watches, Some(1000));
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        let defaults = Config::from_lookup(|_| None);
        assert_eq!(defaults.watch_debounce, Duration::from_millis(2_000));
        assert!(!defaults.no_watch && !defaults.force_watch && defaults.max_dir_watches.is_none());
    }

    #[test]
    fn watch_strategy_is_either_name_and_anything_else_is_one_warning() {
        let with_strategy = |raw: &str| {
            Config::from_lookup(|name| (name == WATCH_STRATEGY_VAR).then(|| raw.to_string()))
        };
        assert_eq!(
            with_strategy("recursive").watch_strategy,
            WatchStrategy::Recursive
        );
        assert_eq!(
            with_strategy(" Per-Directory ").watch_strategy,
            WatchStrategy::PerDirectory
        );
        assert!(with_strategy("recursive").warnings.is_empty());
        let default = Config::from_lookup(|_| None).watch_strategy;
        assert_eq!(default, WatchStrategy::platform_default());
        for bad in [
            "",
            "fsevents",
            "per_directory",
            "recursive;rm -rf /",
            "\u{0}",
        ] {
            let config = with_strategy(bad);
            assert_eq!(config.watch_strategy, default, "{bad:?}");
            assert_eq!(config.warnings.len(), 1, "{bad:?}");
            let warning = &config.warnings[0];
            assert!(!warning.contains('\n'), "one line: {warning}");
            assert!(
                warning.starts_with(WATCH_STRATEGY_VAR) && warning.contains("per-directory"),
                "{warning}"
            );
        }
    }

    #[test]
    fn garbage_is_the_default_with_a_warning() {
        for bad in ["soon", "-5", "1.5", ""] {
            let config = with(bad);
            assert_eq!(
                config.catchup_timeout,
                Duration::from_millis(5_000),
                "{bad}"
            );
            assert_eq!(config.warnings.len(), 1, "{bad}");
        }
    }
}
