//! The embedded default [`Storage`]: one SQLite file, one row per (machine, day, event
//! key), and one row per machine (the days it was seen on, for [`Suppression`]). Only
//! what the payload held is stored, and the UTC day of a machine's first and latest
//! post: no address, header or finer time.
//!
//! Writes go through one connection (SQLite has one writer anyway); aggregates read on
//! a second one. In WAL mode a reader neither waits for the writer nor holds it up, so a
//! slow `GET /v1/aggregate` never delays a `POST`.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::{Aggregate, Bucket, Storage, StorageError, Suppression, ValidPayload};

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    /// `None` in memory, where a second connection would be a second database.
    reader: Option<Mutex<Connection>>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS rollups (
        machine_id TEXT NOT NULL,
        day TEXT NOT NULL,
        event_type TEXT NOT NULL,
        event_name TEXT NOT NULL,
        language TEXT NOT NULL,
        agent TEXT NOT NULL,
        file_count_bucket TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (machine_id, day, event_type, event_name, language, agent, file_count_bucket)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS rollups_day ON rollups (day);
    CREATE TABLE IF NOT EXISTS machines (
        machine_id TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        days_seen INTEGER NOT NULL
    ) WITHOUT ROWID;";

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let writer = Connection::open(path)?;
        configure(&writer)?;
        writer.execute_batch(SCHEMA)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(SqliteStorage {
            writer: Mutex::new(writer),
            reader: Some(Mutex::new(reader)),
        })
    }

    pub fn in_memory() -> Result<SqliteStorage, StorageError> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStorage {
            writer: Mutex::new(conn),
            reader: None,
        })
    }
}

fn configure(conn: &Connection) -> Result<(), StorageError> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(())
}

fn locked(conn: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>, StorageError> {
    conn.lock().map_err(|_| StorageError::Poisoned)
}

impl Storage for SqliteStorage {
    fn put(&self, payload: &ValidPayload, arrival_day: &str) -> Result<(), StorageError> {
        let mut conn = locked(&self.writer)?;
        let tx = conn.transaction()?;
        {
            // A machine's distinct days of arrival: a later day than the last one seen
            // counts one more (the server's clock only moves forward).
            tx.execute(
                "INSERT INTO machines (machine_id, first_seen, last_seen, days_seen)
                 VALUES (?1, ?2, ?2, 1)
                 ON CONFLICT (machine_id) DO UPDATE SET
                     days_seen = days_seen + (excluded.last_seen > last_seen),
                     last_seen = max(last_seen, excluded.last_seen)",
                params![payload.machine_id, arrival_day],
            )?;
            let mut clear = tx.prepare("DELETE FROM rollups WHERE machine_id = ?1 AND day = ?2")?;
            let mut insert = tx.prepare(
                "INSERT INTO rollups (machine_id, day, event_type, event_name, language, agent,
                                      file_count_bucket, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (day, rows) in &payload.days {
                clear.execute(params![payload.machine_id, day])?;
                for row in rows {
                    insert.execute(params![
                        payload.machine_id,
                        day,
                        row.event_type,
                        row.event_name,
                        row.language,
                        row.agent,
                        row.file_count_bucket,
                        row.count as i64,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_machine(&self, machine_id: &str) -> Result<u64, StorageError> {
        let mut conn = locked(&self.writer)?;
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM rollups WHERE machine_id = ?1", [machine_id])?;
        tx.execute("DELETE FROM machines WHERE machine_id = ?1", [machine_id])?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn aggregate(&self, rules: Suppression) -> Result<Aggregate, StorageError> {
        let conn = locked(self.reader.as_ref().unwrap_or(&self.writer))?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.day, r.event_type, r.event_name, r.language, r.agent,
                    SUM(r.count), COUNT(DISTINCT r.machine_id)
             FROM rollups r JOIN machines m ON m.machine_id = r.machine_id
             WHERE m.days_seen >= ?1
             GROUP BY r.day, r.event_type, r.event_name, r.language, r.agent
             ORDER BY r.day, r.event_type, r.event_name, r.language, r.agent",
        )?;
        let buckets = stmt.query_map([rules.min_days_seen_sql()], |row| {
            Ok(Bucket {
                day: row.get(0)?,
                event_type: row.get(1)?,
                event_name: row.get(2)?,
                language: row.get(3)?,
                agent: row.get(4)?,
                count: row.get::<_, i64>(5)? as u64,
                machines: row.get::<_, i64>(6)? as u64,
            })
        })?;
        Aggregate::publish(rules, buckets.map(|b| b.map_err(StorageError::from)))
    }

    fn prune_before(&self, oldest_kept: &str) -> Result<u64, StorageError> {
        let mut conn = locked(&self.writer)?;
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM rollups WHERE day < ?1", [oldest_kept])?;
        tx.execute("DELETE FROM machines WHERE last_seen < ?1", [oldest_kept])?;
        tx.commit()?;
        Ok(n as u64)
    }
}
