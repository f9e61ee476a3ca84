//! The public telemetry ingest server (`codelens-ingest`): what receives the payloads
//! `codelens` sends, so anyone can read exactly what is accepted and kept.
//!
//! - validation: the payload's shape and every value against the same fixed lists the
//!   client records from (`codelens_core::telemetry::schema`); anything else is a 400;
//! - storage: per-day rollups behind [`Storage`], SQLite embedded by default
//!   ([`SqliteStorage`]) or PostgreSQL ([`PostgresStorage`]) for replicas at scale; a day
//!   re-sent replaces itself (idempotent);
//! - privacy: no IP address, header or user agent is read into storage or logged;
//!   `DELETE /v1/machines/<id>` deletes everything sent under an id; aggregates only
//!   count machines seen on at least `min_days_seen` distinct days, and only show
//!   buckets reported by at least `min_machines` of them (see [`Suppression`]).

pub mod http;
mod postgres;
mod sqlite;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use codelens_core::telemetry::buffer::Row;
use codelens_core::telemetry::schema::{self, SCHEMA_VERSION};

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

/// At most this many days in one payload (the client sends the oldest first).
pub const MAX_DAYS: usize = schema::MAX_DAYS_PER_PAYLOAD;
/// At most this many rows in one day of one machine. A day re-sent replaces itself, so
/// this is also the cap on what one (machine, day) can ever hold in storage.
pub const MAX_ROWS_PER_DAY: usize = schema::MAX_ROWS_PER_DAY;
/// A count above this in one day is not a person using a tool.
pub const MAX_COUNT: u64 = schema::MAX_COUNT;

/// A payload as received: every field required, no other field allowed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingPayload {
    pub schema_version: u32,
    pub machine_id: String,
    pub days: Vec<IncomingDay>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingDay {
    pub timestamp: String,
    pub events: Vec<Row>,
}

/// A payload that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPayload {
    pub machine_id: String,
    pub days: Vec<(String, Vec<Row>)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("not a valid payload: {0}")]
    Shape(String),
    #[error("schema_version {0} is not supported (expected {SCHEMA_VERSION})")]
    Version(u32),
    #[error("machine_id is not a UUID v4 in canonical form (lowercase, hyphenated)")]
    MachineId,
    #[error("{0}")]
    Limit(String),
    #[error("timestamp {0:?} is not a YYYY-MM-DD day within the retention window")]
    Day(String),
    #[error("day {0} appears twice")]
    DuplicateDay(String),
    #[error("an event is not on the allowlists, or its count is out of range")]
    Event,
    #[error("an event appears twice in day {0}")]
    DuplicateEvent(String),
}

/// The days a payload may hold: none older than the retention window keeps, none later
/// than tomorrow (clock skew aside, a client only sends completed days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayWindow {
    pub oldest: String,
    pub latest: String,
}

impl DayWindow {
    /// The window on `today` for a server keeping `retention_days` days.
    pub fn on(today: chrono::NaiveDate, retention_days: u64) -> DayWindow {
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let oldest = today
            .checked_sub_days(chrono::Days::new(retention_days))
            .unwrap_or(chrono::NaiveDate::MIN);
        DayWindow {
            oldest: day(oldest),
            latest: day(today + chrono::Days::new(1)),
        }
    }

    fn contains(&self, day: &str) -> bool {
        self.oldest.as_str() <= day && day <= self.latest.as_str()
    }
}

/// The one spelling of a machine id the schema publishes: a UUID v4 (RFC 4122 variant),
/// lowercase and hyphenated. Anything else (upper case, braces, a URN, no hyphens) is
/// refused, so one machine cannot appear under several spellings.
pub fn canonical_machine_id(text: &str) -> Option<&str> {
    let id = uuid::Uuid::try_parse(text).ok()?;
    let canonical = id.hyphenated().to_string();
    (canonical == text && id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122)
        .then_some(text)
}

/// Parses and checks a body: shape, version, a canonical id, every day within `window`,
/// every value on the fixed lists, every limit.
pub fn validate(body: &[u8], window: &DayWindow) -> Result<ValidPayload, ValidationError> {
    let payload: IncomingPayload =
        serde_json::from_slice(body).map_err(|e| ValidationError::Shape(e.to_string()))?;
    if payload.schema_version != SCHEMA_VERSION {
        return Err(ValidationError::Version(payload.schema_version));
    }
    if canonical_machine_id(&payload.machine_id).is_none() {
        return Err(ValidationError::MachineId);
    }
    if payload.days.is_empty() || payload.days.len() > MAX_DAYS {
        return Err(ValidationError::Limit(format!(
            "days must hold 1 to {MAX_DAYS} days"
        )));
    }
    let mut seen_days = BTreeSet::new();
    let mut days = Vec::with_capacity(payload.days.len());
    for day in payload.days {
        if !schema::is_day(&day.timestamp) || !window.contains(&day.timestamp) {
            return Err(ValidationError::Day(day.timestamp));
        }
        if !seen_days.insert(day.timestamp.clone()) {
            return Err(ValidationError::DuplicateDay(day.timestamp));
        }
        if day.events.is_empty() || day.events.len() > MAX_ROWS_PER_DAY {
            return Err(ValidationError::Limit(format!(
                "a day must hold 1 to {MAX_ROWS_PER_DAY} events"
            )));
        }
        let mut keys = BTreeSet::new();
        for row in &day.events {
            if !schema::row_is_allowed(row) || row.count == 0 || row.count > MAX_COUNT {
                return Err(ValidationError::Event);
            }
            let key = (
                &row.event_type,
                &row.event_name,
                &row.language,
                &row.agent,
                &row.file_count_bucket,
            );
            if !keys.insert(key) {
                return Err(ValidationError::DuplicateEvent(day.timestamp.clone()));
            }
        }
        days.push((day.timestamp, day.events));
    }
    Ok(ValidPayload {
        machine_id: payload.machine_id,
        days,
    })
}

/// One aggregate bucket: the total count of an event on a day, over all machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub day: String,
    pub event_type: String,
    pub event_name: String,
    pub language: String,
    pub agent: String,
    pub count: u64,
    pub machines: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Aggregate {
    /// Buckets reported by fewer machines than this are left out.
    pub min_machines: u64,
    /// Only machines that posted on at least this many distinct days are counted.
    pub min_days_seen: u64,
    pub buckets: Vec<Bucket>,
    /// How many buckets were left out for having too few machines.
    pub suppressed: u64,
}

impl Aggregate {
    /// The published aggregate from every bucket of the counted machines: buckets with
    /// fewer than `min_machines` machines are left out, and counted as suppressed.
    pub(crate) fn publish(
        rules: Suppression,
        buckets: impl IntoIterator<Item = Result<Bucket, StorageError>>,
    ) -> Result<Aggregate, StorageError> {
        let mut published = Vec::new();
        let mut suppressed = 0;
        for bucket in buckets {
            let bucket = bucket?;
            if bucket.machines < rules.min_machines {
                suppressed += 1;
            } else {
                published.push(bucket);
            }
        }
        Ok(Aggregate {
            min_machines: rules.min_machines,
            min_days_seen: rules.min_days_seen,
            buckets: published,
            suppressed,
        })
    }
}

/// Who is counted in a published aggregate, against made-up machine ids (sybils; see
/// TELEMETRY.md's threat model): only machines that posted on at least `min_days_seen`
/// distinct UTC days (the server's days of arrival, not the days a payload claims),
/// and only buckets with at least `min_machines` of those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppression {
    pub min_machines: u64,
    pub min_days_seen: u64,
}

impl Suppression {
    /// `min_days_seen` as the databases' signed integer. Saturating: a plain `as i64`
    /// turns a huge `--min-days-seen` negative, which would count every machine.
    pub(crate) fn min_days_seen_sql(&self) -> i64 {
        i64::try_from(self.min_days_seen).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Shown with its causes: the driver's own text is only the kind ("error
    /// connecting to server"), the why ("Connection refused") is in its source.
    #[error("storage: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("not a usable PostgreSQL URL (expected postgres://USER@HOST:PORT/DATABASE): {0}")]
    Url(String),
    #[error("storage: no database connection: {0}")]
    Pool(String),
    #[error("storage: a lock was poisoned by an earlier panic")]
    Poisoned,
}

/// `error` and each of its sources, joined by ": " (one line).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// Where rollups are kept: SQLite embedded by default, PostgreSQL for several replicas.
/// Every call may come from several threads at once; each backend keeps writes and
/// reads apart (a writer connection and a reader, or a pool), so an aggregate never
/// waits for, or holds up, a `put`.
pub trait Storage: Send + Sync {
    /// Stores each day of `payload`, replacing what that machine sent for that day
    /// before (a re-send after a lost reply is not counted twice), and notes that the
    /// machine posted on `arrival_day` (the server's UTC day; see [`Suppression`]).
    fn put(&self, payload: &ValidPayload, arrival_day: &str) -> Result<(), StorageError>;
    /// Deletes everything stored for a machine id; returns how many rollup rows went.
    fn delete_machine(&self, machine_id: &str) -> Result<u64, StorageError>;
    /// Totals per (day, event, language, agent) over the machines `rules` count,
    /// suppressing small buckets.
    fn aggregate(&self, rules: Suppression) -> Result<Aggregate, StorageError>;
    /// Deletes days before `oldest_kept`, and machines not seen since (retention).
    fn prune_before(&self, oldest_kept: &str) -> Result<u64, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f9619ff-8b86-4d11-b42d-00c04fc964ff";

    fn body(extra_row_field: &str, name: &str) -> String {
        format!(
            r#"{{"schema_version":1,"machine_id":"{ID}","days":[{{"timestamp":"2024-05-01","events":[
            {{"event_type":"mcp_tool","event_name":"{name}","language":"rust","agent":"cursor","file_count_bucket":"<100","count":3{extra_row_field}}}]}}]}}"#
        )
    }

    #[test]
    fn accepts_a_good_payload_and_rejects_anything_else() {
        let window = DayWindow {
            oldest: "2024-01-01".into(),
            latest: "2024-05-02".into(),
        };
        let ok = validate(body("", "search_text").as_bytes(), &window).unwrap();
        assert_eq!(ok.machine_id, ID);
        assert_eq!(ok.days[0].1[0].count, 3);
        for (bad, why) in [
            (body(r#","path":"/home/x""#, "search_text"), "unknown field"),
            (body("", "rm -rf"), "unknown name"),
            (body("", "status"), "name of another type"),
            (
                body("", "search_text").replace("2024-05-01", "2024-05-09"),
                "future day",
            ),
            (body("", "search_text").replace(ID, "not-a-uuid"), "bad id"),
            (
                body("", "search_text").replace(r#""count":3"#, r#""count":0"#),
                "zero count",
            ),
            (
                body("", "search_text").replace("\"schema_version\":1", "\"schema_version\":2"),
                "version",
            ),
            (
                body("", "search_text").replace("\"days\"", "\"ip\":\"1.2.3.4\",\"days\""),
                "extra top field",
            ),
            ("[]".to_string(), "not an object"),
            (
                body("", "search_text").replace(ID, &ID.to_uppercase()),
                "upper-case id",
            ),
            (
                body("", "search_text").replace(ID, &format!("{{{ID}}}")),
                "braced id",
            ),
            (
                body("", "search_text").replace(ID, &ID.replace('-', "")),
                "simple id",
            ),
            (
                body("", "search_text").replace(ID, &format!("urn:uuid:{ID}")),
                "URN id",
            ),
            (
                body("", "search_text").replace(ID, "6f9619ff-8b86-1d11-b42d-00c04fc964ff"),
                "version 1 id",
            ),
            (
                body("", "search_text").replace(ID, "6f9619ff-8b86-4d11-742d-00c04fc964ff"),
                "NCS variant id",
            ),
            (
                body("", "search_text").replace("2024-05-01", "2023-12-31"),
                "a day older than the retention window",
            ),
            (
                body("", "search_text").replace(r#""count":3"#, r#""count":10000001"#),
                "a count over the maximum",
            ),
            (
                String::from_utf8_lossy(&[0xff, 0xfe]).into_owned(),
                "garbage",
            ),
        ] {
            assert!(validate(bad.as_bytes(), &window).is_err(), "{why}");
        }
        let too_many_rows: Vec<String> = (0..=MAX_ROWS_PER_DAY)
            .map(|i| {
                format!(
                    r#"{{"event_type":"mcp_tool","event_name":"search_text","language":"rust","agent":"cursor","file_count_bucket":"<100","count":{}}}"#,
                    i + 1
                )
            })
            .collect();
        let body = format!(
            r#"{{"schema_version":1,"machine_id":"{ID}","days":[{{"timestamp":"2024-05-01","events":[{}]}}]}}"#,
            too_many_rows.join(",")
        );
        assert!(matches!(
            validate(body.as_bytes(), &window),
            Err(ValidationError::Limit(_))
        ));
        let day = DayWindow::on(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(), 30);
        assert_eq!(
            (day.oldest.as_str(), day.latest.as_str()),
            ("2024-01-31", "2024-03-02")
        );
    }
}
