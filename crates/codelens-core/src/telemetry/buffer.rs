//! `telemetry-buffer.json`: counts per UTC day not yet sent. At most [`MAX_BYTES`];
//! past that the oldest days are dropped. A corrupt file is replaced, never fatal.
//! Every change happens under an OS file lock (`telemetry.lock`) and lands by rename,
//! so several codelens processes can flush at once and readers never see half a file.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{TelemetryEnv, TelemetryError, io_error, write_atomically};

/// The buffer never grows past this; the oldest days go first.
pub const MAX_BYTES: usize = 256 * 1024;

/// One count: how many times an event happened on a day, with its (fixed-list) context.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub event_type: String,
    pub event_name: String,
    pub language: String,
    pub agent: String,
    pub file_count_bucket: String,
    pub count: u64,
}

impl Row {
    fn key(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.event_type,
            &self.event_name,
            &self.language,
            &self.agent,
            &self.file_count_bucket,
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffer {
    /// The UTC day of the last send attempt: at most one a day, across processes.
    #[serde(default)]
    pub last_send_day: Option<String>,
    /// Day (`YYYY-MM-DD`) → its counts.
    #[serde(default)]
    pub days: BTreeMap<String, Vec<Row>>,
}

impl Buffer {
    /// Parses a buffer, keeping only what the allowlists allow: a hand-edited or damaged
    /// file can never smuggle free text into a payload. Unparsable → `None`.
    pub fn parse(bytes: &[u8]) -> Option<Buffer> {
        let mut buffer: Buffer = serde_json::from_slice(bytes).ok()?;
        buffer.days.retain(|day, rows| {
            rows.retain(|row| row.count > 0 && super::schema::row_is_allowed(row));
            super::schema::is_day(day) && !rows.is_empty()
        });
        if buffer
            .last_send_day
            .as_deref()
            .is_some_and(|day| !super::schema::is_day(day))
        {
            buffer.last_send_day = None;
        }
        Some(buffer)
    }

    /// Adds `rows` to `day`, summing counts of equal keys.
    pub fn add(&mut self, day: &str, rows: impl IntoIterator<Item = Row>) {
        let entry = self.days.entry(day.to_string()).or_default();
        for row in rows {
            match entry.iter_mut().find(|r| r.key() == row.key()) {
                Some(existing) => existing.count = existing.count.saturating_add(row.count),
                None => entry.push(row),
            }
        }
        entry.sort();
        if entry.is_empty() {
            self.days.remove(day);
        }
    }

    /// Serialized, dropping the oldest days until it fits in [`MAX_BYTES`].
    pub fn to_bytes_trimmed(&mut self) -> Vec<u8> {
        loop {
            let bytes = serde_json::to_vec(self).expect("buffer serializes");
            if bytes.len() <= MAX_BYTES || self.days.is_empty() {
                return bytes;
            }
            // Drop roughly the share that is over, at least one day, oldest first.
            let over = bytes.len() - MAX_BYTES;
            let per_day = bytes.len() / self.days.len().max(1);
            let drop = (over / per_day.max(1)).max(1);
            let oldest: Vec<String> = self.days.keys().take(drop).cloned().collect();
            for day in oldest {
                self.days.remove(&day);
            }
        }
    }
}

/// The buffer's size and its days, for `status` (no lock: writes land by rename).
pub fn pending_days(path: &Path) -> (u64, Vec<String>) {
    let Ok(bytes) = std::fs::read(path) else {
        return (0, Vec::new());
    };
    let days = Buffer::parse(&bytes)
        .map(|b| b.days.into_keys().collect())
        .unwrap_or_default();
    (bytes.len() as u64, days)
}

/// Reads the buffer as it is (a missing or corrupt file is an empty buffer).
pub fn read(env: &TelemetryEnv) -> Buffer {
    std::fs::read(env.buffer_path())
        .ok()
        .and_then(|bytes| Buffer::parse(&bytes))
        .unwrap_or_default()
}

/// Runs `change` on the buffer under the file lock and writes the result back (trimmed).
/// `change` returns whether it changed anything; a corrupt file is replaced. Waits at
/// most `wait` for the lock, then gives up with [`TelemetryError::Busy`].
pub fn update<T>(
    env: &TelemetryEnv,
    wait: Duration,
    change: impl FnOnce(&mut Buffer) -> (bool, T),
) -> Result<T, TelemetryError> {
    let home = env.home.as_ref().ok_or(TelemetryError::NoHome)?;
    super::create_private_dir(home)?;
    let _lock = lock(env, wait)?;
    let path = env.buffer_path();
    remove_stale_tmp_files(home, &path);
    let raw = std::fs::read(&path).ok();
    let parsed = raw.as_deref().and_then(Buffer::parse);
    let corrupt = raw.is_some() && parsed.is_none();
    let mut buffer = parsed.unwrap_or_default();
    let (changed, result) = change(&mut buffer);
    if changed || corrupt {
        let bytes = buffer.to_bytes_trimmed();
        write_atomically(&path, &bytes)?;
    }
    Ok(result)
}

/// Temporary buffer files left by a process that ended mid-write (an exit cut short at
/// the 2 s bound). Only called under the lock, when no one is writing one.
fn remove_stale_tmp_files(home: &Path, buffer: &Path) {
    let Some(name) = buffer.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!("{name}{}", crate::fsutil::TMP_INFIX);
    let Ok(entries) = std::fs::read_dir(home) else {
        return;
    };
    for entry in entries.map_while(Result::ok) {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The exclusive lock guarding the buffer, the consent and the machine id, released
/// when the file is dropped. Waits at most `wait` (retrying a non-blocking attempt):
/// an exiting command must never hang on a process that holds it.
pub(crate) fn lock(env: &TelemetryEnv, wait: Duration) -> Result<File, TelemetryError> {
    let path = env.lock_path().ok_or(TelemetryError::NoHome)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => return Err(TelemetryError::Busy),
            Err(TryLockError::Error(error)) => return Err(io_error(&path)(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, count: u64) -> Row {
        Row {
            event_type: "cli_command".into(),
            event_name: name.into(),
            language: "rust".into(),
            agent: "none".into(),
            file_count_bucket: "<100".into(),
            count,
        }
    }

    #[test]
    fn add_sums_equal_keys() {
        let mut buffer = Buffer::default();
        buffer.add("2024-01-01", [row("status", 1), row("sync", 2)]);
        buffer.add("2024-01-01", [row("status", 3)]);
        assert_eq!(
            buffer.days["2024-01-01"],
            vec![row("status", 4), row("sync", 2)]
        );
    }

    #[test]
    fn parse_drops_what_the_allowlists_do_not_allow() {
        let text = r#"{"days":{
            "2024-01-01":[{"event_type":"cli_command","event_name":"status","language":"rust","agent":"none","file_count_bucket":"<100","count":2},
                          {"event_type":"cli_command","event_name":"/home/me/secret","language":"rust","agent":"none","file_count_bucket":"<100","count":1}],
            "not a day":[{"event_type":"cli_command","event_name":"status","language":"rust","agent":"none","file_count_bucket":"<100","count":2}]}}"#;
        let buffer = Buffer::parse(text.as_bytes()).unwrap();
        assert_eq!(buffer.days.len(), 1);
        assert_eq!(buffer.days["2024-01-01"], vec![row("status", 2)]);
        assert!(Buffer::parse(b"\x00garbage").is_none());
    }

    #[test]
    fn trimming_drops_oldest_days_first() {
        let mut buffer = Buffer::default();
        for day in 0..4000 {
            let date =
                chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Days::new(day);
            buffer.add(&date.format("%Y-%m-%d").to_string(), [row("status", 1)]);
        }
        let newest = buffer.days.keys().next_back().cloned().unwrap();
        let bytes = buffer.to_bytes_trimmed();
        assert!(bytes.len() <= MAX_BYTES, "{}", bytes.len());
        assert!(buffer.days.contains_key(&newest));
        assert!(!buffer.days.contains_key("2000-01-01"));
    }
}
