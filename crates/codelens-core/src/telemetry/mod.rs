//! Anonymous, opt-in usage telemetry. Off by default; what it collects, and how to verify
//! it, is in `TELEMETRY.md` and `assets/telemetry-schema.json`.
//!
//! The parts, in the order data flows:
//! - consent (this file): which switch decides, the user's stored choice, the machine id;
//! - the recorder: fixed arrays of atomic counters, so recording is one relaxed load when
//!   off and an atomic add when on (no allocation, lock or system call on the hot path);
//! - the buffer: counters merged per UTC day into `telemetry-buffer.json` under a file
//!   lock, off the hot path (process exit and a background thread);
//! - the uploader: completed days only, one POST at most once a day, removed after a 2xx.
//!
//! Everything here fails silent: a telemetry problem never changes what a command does,
//! prints on stdout, or how it exits.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::TelemetryVars;

/// The telemetry switches and paths, read once from the environment: one struct with
/// `config.rs`'s parse (`TelemetryEnv::from_lookup` is `TelemetryVars::from_lookup`).
pub type TelemetryEnv = TelemetryVars;

impl TelemetryVars {
    /// Today's UTC day, `YYYY-MM-DD` — the finest time telemetry ever keeps.
    pub fn today(&self) -> String {
        match &self.today_override {
            Some(day) => day.clone(),
            None => chrono::Utc::now()
                .date_naive()
                .format("%Y-%m-%d")
                .to_string(),
        }
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|home| home.join(name))
    }

    pub fn consent_path(&self) -> Option<PathBuf> {
        self.file(CONSENT_FILE)
    }

    pub fn machine_id_path(&self) -> Option<PathBuf> {
        self.file(MACHINE_ID_FILE)
    }

    /// Where the unsent per-day counts are kept. Without a home directory this is the
    /// documented default spelled out, for display only (nothing is ever written there).
    pub fn buffer_path(&self) -> PathBuf {
        self.file(BUFFER_FILE)
            .unwrap_or_else(|| PathBuf::from("~/.codelens").join(BUFFER_FILE))
    }

    pub(crate) fn lock_path(&self) -> Option<PathBuf> {
        self.file(LOCK_FILE)
    }
}

const CONSENT_FILE: &str = "telemetry.json";
const MACHINE_ID_FILE: &str = "machine_id";
const BUFFER_FILE: &str = "telemetry-buffer.json";
const LOCK_FILE: &str = "telemetry.lock";

/// Which switch decided whether telemetry is on, strongest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    DoNotTrack,
    EnvOff,
    EnvOn,
    Ci { var: &'static str },
    UserOn,
    UserOff,
    Default,
}

impl Decider {
    /// True when an environment variable decided: a stored choice (the TUI's key,
    /// `codelens telemetry on|off`) cannot override it.
    pub fn is_env(&self) -> bool {
        matches!(
            self,
            Decider::DoNotTrack | Decider::EnvOff | Decider::EnvOn | Decider::Ci { .. }
        )
    }

    pub fn describe(&self) -> String {
        match self {
            Decider::DoNotTrack => "DO_NOT_TRACK=1".into(),
            Decider::EnvOff => "CODELENS_TELEMETRY=0".into(),
            Decider::EnvOn => "CODELENS_TELEMETRY=1".into(),
            Decider::Ci { var } => format!("CI detected ({var})"),
            Decider::UserOn => "codelens telemetry on".into(),
            Decider::UserOff => "codelens telemetry off".into(),
            Decider::Default => "default (off)".into(),
        }
    }

    pub fn enabled(&self) -> bool {
        matches!(self, Decider::EnvOn | Decider::UserOn)
    }
}

/// What `codelens telemetry status`, `status --json` and the TUI show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryStatus {
    pub enabled: bool,
    pub decided_by: Decider,
    pub machine_id: Option<String>,
    pub buffer_path: PathBuf,
    pub buffer_bytes: u64,
    /// `YYYY-MM-DD` days buffered, not yet sent.
    pub pending_days: Vec<String>,
    /// Days the server refused (a 4xx) and that were dropped rather than re-sent.
    pub rejected_days: u64,
    /// The choice stored by `codelens telemetry on|off` (or the dashboard), whatever
    /// decides now: an environment switch may override it.
    pub stored_choice: Option<bool>,
}

impl TelemetryStatus {
    /// The `telemetry` object of `codelens status --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "enabled": self.enabled,
            "decided_by": self.decided_by.describe(),
            "machine_id": self.machine_id,
            "buffer_path": self.buffer_path.to_string_lossy(),
            "buffer_bytes": self.buffer_bytes,
            "pending_days": self.pending_days,
            "rejected_days": self.rejected_days,
        })
    }

    /// What an agent may see (MCP `index_status`): whether it is on and why, and what
    /// is buffered — not the machine id (all it takes to delete or overwrite this
    /// machine's data at the server) nor the buffer's path under the user's home. An
    /// agent's transcript is no place for either.
    pub fn to_agent_json(&self) -> serde_json::Value {
        serde_json::json!({
            "enabled": self.enabled,
            "decided_by": self.decided_by.describe(),
            "buffer_bytes": self.buffer_bytes,
            "pending_days": self.pending_days,
        })
    }

    /// One line for humans: `on · codelens telemetry on · 2 days buffered (1.2 KB)`.
    pub fn summary(&self) -> String {
        let state = if self.enabled { "on" } else { "off" };
        let buffered = match self.pending_days.len() {
            0 => "nothing buffered".to_string(),
            1 => format!("1 day buffered ({} B)", self.buffer_bytes),
            n => format!("{n} days buffered ({} B)", self.buffer_bytes),
        };
        format!("{state} · {} · {buffered}", self.decided_by.describe())
    }
}

/// One short line per field collected (see `TELEMETRY.md`).
pub const COLLECTED: &[&str] = &[
    "event_type: mcp_tool, cli_command or lifecycle",
    "event_name: a tool or command name from a fixed list",
    "language: the project's dominant language, from a fixed list",
    "agent: the MCP client (claude-code, cursor, codex, …, else other)",
    "file_count_bucket: <100, 100-1k, 1k-10k or 10k+",
    "count: how many times, per UTC day",
    "schema_version: the payload format's version",
    "machine_id: a random UUID made when you opt in",
    "timestamp: the UTC day (YYYY-MM-DD), never a finer time",
];

/// What is never collected, in any field.
pub const NEVER_COLLECTED: &[&str] = &[
    "code",
    "paths or file names",
    "symbol names",
    "queries",
    "IP addresses",
    "user or host names",
];

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("no home directory: set CODELENS_HOME or HOME")]
    NoHome,
    #[error("the telemetry buffer is locked by another codelens process; try again")]
    Busy,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TelemetryError + '_ {
    move |source| TelemetryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `telemetry.json`: the user's stored choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub enabled: bool,
    /// The UTC day of the opt-in: nothing recorded before it is ever sent.
    #[serde(default)]
    pub opt_in_date: Option<String>,
    /// The UTC day of the last change, for the user's own records.
    #[serde(default)]
    pub changed_on: Option<String>,
    /// Incremented by every `set_consent`. A running process notes it when it starts and
    /// drops its in-memory counts, rather than writing them, when it finds it changed
    /// (an off then on the same day must not let counts from before the off through:
    /// the opt-in day alone cannot tell them apart).
    #[serde(default)]
    pub generation: u64,
}

/// The stored choice; a missing or unreadable file is no choice (which means off).
pub(crate) fn read_consent(env: &TelemetryEnv) -> Option<Consent> {
    let text = std::fs::read(env.consent_path()?).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Which switch decides, strongest first: DO_NOT_TRACK, CODELENS_TELEMETRY=0,
/// CODELENS_TELEMETRY=1, CI, the stored choice, the default (off).
pub fn decide(env: &TelemetryEnv, consent: Option<&Consent>) -> Decider {
    if env.do_not_track {
        return Decider::DoNotTrack;
    }
    match env.forced {
        Some(false) => return Decider::EnvOff,
        Some(true) => return Decider::EnvOn,
        None => {}
    }
    if let Some(var) = env.ci {
        return Decider::Ci { var };
    }
    // Without a home there is nowhere to keep counts or an id: off, whatever is stored.
    if env.home.is_none() {
        return Decider::Default;
    }
    match consent {
        Some(Consent { enabled: true, .. }) => Decider::UserOn,
        Some(Consent { enabled: false, .. }) => Decider::UserOff,
        None => Decider::Default,
    }
}

/// A stored machine id, if it is a well-formed UUID (anything else is ignored, and
/// replaced on the next opt-in).
pub(crate) fn read_machine_id(env: &TelemetryEnv) -> Option<String> {
    let text = std::fs::read_to_string(env.machine_id_path()?).ok()?;
    let id = uuid::Uuid::parse_str(text.trim()).ok()?;
    Some(id.hyphenated().to_string())
}

/// The current state. Cheap: reads the consent, the machine id and the buffer (at most
/// [`buffer::READ_LIMIT`] bytes of it); never creates anything.
pub fn status(env: &TelemetryEnv) -> TelemetryStatus {
    let consent = read_consent(env);
    let decided_by = decide(env, consent.as_ref());
    let buffer_path = env.buffer_path();
    let pending = match env.home {
        Some(_) => buffer::pending_days(&buffer_path),
        None => buffer::Pending::default(),
    };
    TelemetryStatus {
        enabled: decided_by.enabled(),
        decided_by,
        machine_id: read_machine_id(env),
        buffer_path,
        buffer_bytes: pending.bytes,
        pending_days: pending.days,
        rejected_days: pending.rejected_days,
        stored_choice: consent.map(|c| c.enabled),
    }
}

/// The warnings about the telemetry switches that apply now: the switches' own, and a
/// bad endpoint URL only while telemetry is on (the only time it would be used).
pub fn warnings_in_force(env: &TelemetryEnv) -> Vec<String> {
    let mut warnings = env.warnings.clone();
    if let Some(problem) = env.url_problem()
        && status_decision(env).enabled()
    {
        warnings.push(problem);
    }
    warnings
}

/// Stores the user's choice (what `codelens telemetry on|off` and the TUI's consent key
/// call). On: records the opt-in day and creates the machine id, if telemetry is then
/// actually on (an environment switch may still hold it off: then no id is made).
/// Off: deletes the unsent buffer, so nothing recorded so far is ever sent.
pub fn set_consent(env: &TelemetryEnv, on: bool) -> Result<TelemetryStatus, TelemetryError> {
    let home = env.home.as_ref().ok_or(TelemetryError::NoHome)?;
    create_private_dir(home)?;
    let today = env.today();
    // Under the buffer's lock: a flush in another process re-reads the consent under
    // it, so it sees either the old choice (and its write is then deleted below) or
    // the new one (and its generation), never a buffer deleted under its feet.
    let consent = {
        let _lock = buffer::lock(env, CONSENT_LOCK_WAIT)?;
        let previous = read_consent(env);
        let opt_in_date = match (&previous, on) {
            // Already on: the original opt-in day still bounds what may be sent.
            (
                Some(Consent {
                    enabled: true,
                    opt_in_date: Some(day),
                    ..
                }),
                true,
            ) => Some(day.clone()),
            (_, true) => Some(today.clone()),
            (_, false) => None,
        };
        let consent = Consent {
            enabled: on,
            opt_in_date,
            changed_on: Some(today),
            generation: previous.map_or(0, |c| c.generation).wrapping_add(1),
        };
        let path = home.join(CONSENT_FILE);
        let mut text = serde_json::to_vec_pretty(&consent).expect("consent serializes");
        text.push(b'\n');
        write_atomically(&path, &text)?;
        if on {
            if decide(env, Some(&consent)).enabled() {
                ensure_machine_id_locked(env)?;
            }
        } else {
            remove_if_exists(&env.buffer_path())?;
        }
        consent
    };
    let status = status(env);
    session::consent_changed(status.enabled, consent.generation);
    Ok(status)
}

/// How long `telemetry on|off` waits for a flush in another process to let go of the
/// buffer (a user's command: longer than an exiting command ever waits).
const CONSENT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `codelens telemetry forget`: turns telemetry off and deletes the buffer and the
/// machine id. Returns the id that was deleted (the caller asks the server to delete
/// its data).
pub fn forget_local(env: &TelemetryEnv) -> Result<Option<String>, TelemetryError> {
    let id = read_machine_id(env);
    if env.home.is_some() {
        set_consent(env, false)?;
        if let Some(path) = env.machine_id_path() {
            remove_if_exists(&path)?;
        }
    }
    Ok(id)
}

/// The machine id, made on first need: a random UUID v4, nothing derived from the
/// machine. Only with the buffer's lock held (see [`buffer::lock`]): two processes
/// making one at once would otherwise each send under an id the other replaced.
pub(crate) fn ensure_machine_id_locked(env: &TelemetryEnv) -> Result<String, TelemetryError> {
    if let Some(id) = read_machine_id(env) {
        return Ok(id);
    }
    let home = env.home.as_ref().ok_or(TelemetryError::NoHome)?;
    create_private_dir(home)?;
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    write_atomically(&home.join(MACHINE_ID_FILE), format!("{id}\n").as_bytes())?;
    Ok(id)
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), TelemetryError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))
}

/// Private (0600) and atomic: see [`crate::fsutil::write_atomically`].
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TelemetryError> {
    crate::fsutil::write_atomically(path, bytes, 0o600).map_err(io_error(path))
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), TelemetryError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(error)),
        _ => Ok(()),
    }
}

pub mod buffer;
pub mod recorder;
pub mod schema;
pub mod session;

pub use recorder::{is_enabled, record, record_event, set_agent, set_project};
pub use schema::{Agent, EventName, EventType, FileCountBucket, Language};
pub use session::{Session, start};

/// The decision alone (reads only the consent file): what the recorder and flushes use.
pub(crate) fn status_decision(env: &TelemetryEnv) -> Decider {
    decide(env, read_consent(env).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_with(home: &Path, vars: &[(&str, &str)]) -> TelemetryEnv {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("CODELENS_HOME".into(), home.to_string_lossy().into_owned());
        TelemetryEnv::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn default_is_off_and_status_creates_nothing() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with(&home.path().join("state"), &[]);
        let status = status(&env);
        assert!(!status.enabled);
        assert_eq!(status.decided_by, Decider::Default);
        assert_eq!(status.machine_id, None);
        assert_eq!(status.buffer_bytes, 0);
        assert!(status.pending_days.is_empty());
        assert!(!home.path().join("state").exists(), "status created files");
    }

    #[test]
    fn decision_order_strongest_first() {
        let home = tempfile::tempdir().unwrap();
        let on = Consent {
            enabled: true,
            opt_in_date: Some("2024-01-01".into()),
            changed_on: None,
            generation: 1,
        };
        let cases: &[(&[(&str, &str)], Decider)] = &[
            (
                &[("DO_NOT_TRACK", "1"), ("CODELENS_TELEMETRY", "1")],
                Decider::DoNotTrack,
            ),
            (&[("DO_NOT_TRACK", "true")], Decider::DoNotTrack),
            (&[("DO_NOT_TRACK", "0")], Decider::UserOn),
            (&[("DO_NOT_TRACK", "")], Decider::UserOn),
            (
                &[("CODELENS_TELEMETRY", "0"), ("CI", "true")],
                Decider::EnvOff,
            ),
            (
                &[("CODELENS_TELEMETRY", "1"), ("CI", "true")],
                Decider::EnvOn,
            ),
            (
                &[("GITHUB_ACTIONS", "true")],
                Decider::Ci {
                    var: "GITHUB_ACTIONS",
                },
            ),
            (
                &[("JENKINS_URL", "http://ci")],
                Decider::Ci { var: "JENKINS_URL" },
            ),
            (&[("CI", "false")], Decider::UserOn),
            (&[("CODELENS_TELEMETRY", "maybe")], Decider::UserOn),
        ];
        for (vars, expected) in cases {
            let env = env_with(home.path(), vars);
            assert_eq!(&decide(&env, Some(&on)), expected, "{vars:?}");
        }
        let env = env_with(home.path(), &[]);
        assert_eq!(decide(&env, None), Decider::Default);
        let off = Consent {
            enabled: false,
            ..on
        };
        assert_eq!(decide(&env, Some(&off)), Decider::UserOff);
        assert_eq!(
            env_with(home.path(), &[("CODELENS_TELEMETRY", "maybe")])
                .warnings
                .len(),
            1
        );
    }

    #[test]
    fn describe_and_is_env() {
        assert_eq!(Decider::DoNotTrack.describe(), "DO_NOT_TRACK=1");
        assert_eq!(Decider::EnvOff.describe(), "CODELENS_TELEMETRY=0");
        assert_eq!(
            Decider::Ci {
                var: "GITHUB_ACTIONS"
            }
            .describe(),
            "CI detected (GITHUB_ACTIONS)"
        );
        assert_eq!(Decider::UserOn.describe(), "codelens telemetry on");
        assert_eq!(Decider::Default.describe(), "default (off)");
        assert!(Decider::Ci { var: "CI" }.is_env() && Decider::EnvOn.is_env());
        assert!(!Decider::UserOn.is_env() && !Decider::Default.is_env());
    }

    #[test]
    fn opt_in_creates_the_machine_id_and_opt_out_deletes_the_buffer() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with(home.path(), &[("CODELENS_TELEMETRY_NOW", "2024-03-05")]);
        let on = set_consent(&env, true).unwrap();
        assert!(on.enabled);
        assert_eq!(on.decided_by, Decider::UserOn);
        let id = on.machine_id.clone().expect("machine id");
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        let consent = read_consent(&env).unwrap();
        assert_eq!(consent.opt_in_date.as_deref(), Some("2024-03-05"));
        // Turning it on again keeps the id and the original opt-in day.
        let later = env_with(home.path(), &[("CODELENS_TELEMETRY_NOW", "2024-04-01")]);
        assert_eq!(set_consent(&later, true).unwrap().machine_id, Some(id));
        assert_eq!(
            read_consent(&later).unwrap().opt_in_date.as_deref(),
            Some("2024-03-05")
        );
        std::fs::write(env.buffer_path(), b"{}").unwrap();
        let off = set_consent(&env, false).unwrap();
        assert!(!off.enabled);
        assert_eq!(off.decided_by, Decider::UserOff);
        assert!(!env.buffer_path().exists(), "opt-out deletes the buffer");
    }

    #[test]
    fn an_env_switch_beats_the_stored_choice_and_no_id_is_made() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with(home.path(), &[("DO_NOT_TRACK", "1")]);
        let status = set_consent(&env, true).unwrap();
        assert!(!status.enabled);
        assert_eq!(status.decided_by, Decider::DoNotTrack);
        assert_eq!(status.machine_id, None);
        assert!(!home.path().join("machine_id").exists());
    }

    #[test]
    fn corrupt_files_mean_no_choice_and_no_id() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with(home.path(), &[]);
        std::fs::write(home.path().join("telemetry.json"), b"{not json").unwrap();
        std::fs::write(home.path().join("machine_id"), b"hello").unwrap();
        let status = status(&env);
        assert_eq!(status.decided_by, Decider::Default);
        assert_eq!(status.machine_id, None);
        // Opting in replaces the bad id with a good one.
        let on = set_consent(&env, true).unwrap();
        assert!(on.machine_id.is_some());
    }

    #[test]
    fn forget_deletes_id_and_buffer_and_turns_off() {
        let home = tempfile::tempdir().unwrap();
        let env = env_with(home.path(), &[]);
        let id = set_consent(&env, true).unwrap().machine_id;
        std::fs::write(env.buffer_path(), b"{}").unwrap();
        assert_eq!(forget_local(&env).unwrap(), id);
        let status = status(&env);
        assert!(!status.enabled && status.machine_id.is_none());
        assert!(!env.buffer_path().exists());
    }

    #[test]
    fn no_home_is_off_and_set_consent_says_why() {
        let env = TelemetryEnv::from_lookup(|_| None);
        assert_eq!(status(&env).decided_by, Decider::Default);
        assert!(matches!(
            set_consent(&env, true),
            Err(TelemetryError::NoHome)
        ));
    }
}
