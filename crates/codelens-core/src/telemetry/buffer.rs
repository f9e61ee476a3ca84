//! `telemetry-buffer.json`: counts per UTC day not yet sent. At most [`MAX_BYTES`];
//! past that the oldest days are dropped. A corrupt file is replaced, never fatal.
//! Every change happens under an OS file lock (`telemetry.lock`) and lands by rename,
//! so several codelens processes can flush at once and readers never see half a file.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{TelemetryEnv, TelemetryError, io_error, write_atomically};

/// The buffer never grows past this; the oldest days go first.
pub const MAX_BYTES: usize = 256 * 1024;
/// The most any reader takes of the file. Our writer keeps it under [`MAX_BYTES`]; a
/// larger file (hand-made, another program's) is read only this far and treated as
/// corrupt, so `status` and `show` stay small whatever lies there. Above `MAX_BYTES` so
/// that a buffer an older, untrimmed version left is still trimmed rather than lost.
pub const READ_LIMIT: u64 = 4 * MAX_BYTES as u64;

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
    /// Days the server refused with a 4xx (a payload it will never accept): dropped
    /// rather than re-sent forever, and counted here for `telemetry status`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_days: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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

/// The buffer file as read, at most [`READ_LIMIT`] bytes of it.
enum RawBuffer {
    Missing,
    /// Larger than any buffer we write: not read, treated as corrupt.
    Oversized(u64),
    Read(Vec<u8>),
}

fn read_bounded(path: &Path) -> RawBuffer {
    let Ok(file) = File::open(path) else {
        return RawBuffer::Missing;
    };
    // The size first: `read_to_end` sizes its buffer by the file (even through `take`,
    // as measured), so an oversized file must not reach it.
    let len = file.metadata().map_or(0, |m| m.len());
    if len > READ_LIMIT {
        return RawBuffer::Oversized(len);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // Still bounded, should the file grow meanwhile.
    if file.take(READ_LIMIT + 1).read_to_end(&mut bytes).is_err() {
        return RawBuffer::Missing;
    }
    if bytes.len() as u64 > READ_LIMIT {
        let len = std::fs::metadata(path).map_or(READ_LIMIT + 1, |m| m.len());
        return RawBuffer::Oversized(len);
    }
    RawBuffer::Read(bytes)
}

/// What `status` shows of the buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    pub bytes: u64,
    pub days: Vec<String>,
    pub rejected_days: u64,
}

/// The buffer's size, its days and how many days the server refused, for `status` (no
/// lock: writes land by rename). Reads at most [`READ_LIMIT`] bytes.
pub fn pending_days(path: &Path) -> Pending {
    match read_bounded(path) {
        RawBuffer::Missing => Pending::default(),
        RawBuffer::Oversized(bytes) => Pending {
            bytes,
            ..Pending::default()
        },
        RawBuffer::Read(raw) => {
            let buffer = Buffer::parse(&raw).unwrap_or_default();
            Pending {
                bytes: raw.len() as u64,
                days: buffer.days.into_keys().collect(),
                rejected_days: buffer.rejected_days,
            }
        }
    }
}

/// Reads the buffer as it is (a missing, corrupt or oversized file is an empty buffer).
pub fn read(env: &TelemetryEnv) -> Buffer {
    match read_bounded(&env.buffer_path()) {
        RawBuffer::Read(raw) => Buffer::parse(&raw).unwrap_or_default(),
        RawBuffer::Missing | RawBuffer::Oversized(_) => Buffer::default(),
    }
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
    let (parsed, corrupt) = match read_bounded(&path) {
        RawBuffer::Missing => (None, false),
        RawBuffer::Oversized(_) => (None, true),
        RawBuffer::Read(raw) => {
            let parsed = Buffer::parse(&raw);
            let corrupt = parsed.is_none();
            (parsed, corrupt)
        }
    };
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
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    // Private like every file under the home (the umask would make it 0644).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(io_error(&path))?;
    #[cfg(unix)]
    {
        // A lock file an older version created with the umask's mode is made private.
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = file.metadata()
            && meta.permissions().mode() & 0o777 != 0o600
        {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
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
