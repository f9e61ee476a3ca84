//! The public telemetry ingest server (`codelens-ingest`): what receives the payloads
//! `codelens` sends, so anyone can read exactly what is accepted and kept.
//!
//! - validation: the payload's shape and every value against the same fixed lists the
//!   client records from (`codelens_core::telemetry::schema`); anything else is a 400;
//! - storage: per-day rollups behind [`Storage`], SQLite embedded by default
//!   ([`SqliteStorage`]); a day re-sent replaces itself (idempotent);
//! - privacy: no IP address, header or user agent is read into storage or logged;
//!   `DELETE /v1/machines/<id>` deletes everything sent under an id; aggregates only
//!   show buckets reported by at least `min_machines` machines.

pub mod http;
mod sqlite;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use codelens_core::telemetry::buffer::Row;
use codelens_core::telemetry::schema::{self, SCHEMA_VERSION};

pub use sqlite::SqliteStorage;

/// At most this many days in one payload (the client's 256 KB buffer holds fewer).
pub const MAX_DAYS: usize = 400;
/// At most this many rows in one day (the fixed lists allow about 30,000 keys; real
/// use is a handful).
pub const MAX_ROWS_PER_DAY: usize = 5_000;
/// A count above this in one day is not a person using a tool.
pub const MAX_COUNT: u64 = 10_000_000;

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
    #[error("machine_id is not a UUID v4")]
    MachineId,
    #[error("{0}")]
    Limit(&'static str),
    #[error("timestamp {0:?} is not a YYYY-MM-DD day, or is in the future")]
    Day(String),
    #[error("day {0} appears twice")]
    DuplicateDay(String),
    #[error("an event is not on the allowlists, or its count is out of range")]
    Event,
    #[error("an event appears twice in day {0}")]
    DuplicateEvent(String),
}

/// Parses and checks a body. `tomorrow` is the latest day accepted (clock skew aside,
/// a client only sends completed days).
pub fn validate(body: &[u8], tomorrow: &str) -> Result<ValidPayload, ValidationError> {
    let payload: IncomingPayload =
        serde_json::from_slice(body).map_err(|e| ValidationError::Shape(e.to_string()))?;
    if payload.schema_version != SCHEMA_VERSION {
        return Err(ValidationError::Version(payload.schema_version));
    }
    let id = uuid::Uuid::parse_str(&payload.machine_id).map_err(|_| ValidationError::MachineId)?;
    if id.get_version_num() != 4 {
        return Err(ValidationError::MachineId);
    }
    if payload.days.is_empty() || payload.days.len() > MAX_DAYS {
        return Err(ValidationError::Limit("days must hold 1 to 400 days"));
    }
    let mut seen_days = BTreeSet::new();
    let mut days = Vec::with_capacity(payload.days.len());
    for day in payload.days {
        if !schema::is_day(&day.timestamp) || day.timestamp.as_str() > tomorrow {
            return Err(ValidationError::Day(day.timestamp));
        }
        if !seen_days.insert(day.timestamp.clone()) {
            return Err(ValidationError::DuplicateDay(day.timestamp));
        }
        if day.events.is_empty() || day.events.len() > MAX_ROWS_PER_DAY {
            return Err(ValidationError::Limit("a day must hold 1 to 5000 events"));
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
        machine_id: id.hyphenated().to_string(),
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
    pub buckets: Vec<Bucket>,
    /// How many buckets were left out for having too few machines.
    pub suppressed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Where rollups are kept. SQLite is the embedded default; at scale the same four
/// operations map onto PostgreSQL (see TELEMETRY.md).
pub trait Storage: Send {
    /// Stores each day of `payload`, replacing what that machine sent for that day
    /// before (a re-send after a lost reply is not counted twice).
    fn put(&mut self, payload: &ValidPayload) -> Result<(), StorageError>;
    /// Deletes everything stored for a machine id; returns how many rows went.
    fn delete_machine(&mut self, machine_id: &str) -> Result<u64, StorageError>;
    /// Totals per (day, event, language, agent), suppressing small buckets.
    fn aggregate(&self, min_machines: u64) -> Result<Aggregate, StorageError>;
    /// Deletes days before `oldest_kept` (retention).
    fn prune_before(&mut self, oldest_kept: &str) -> Result<u64, StorageError>;
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
        let ok = validate(body("", "search_text").as_bytes(), "2024-05-02").unwrap();
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
                String::from_utf8_lossy(&[0xff, 0xfe]).into_owned(),
                "garbage",
            ),
        ] {
            assert!(validate(bad.as_bytes(), "2024-05-02").is_err(), "{why}");
        }
    }
}
