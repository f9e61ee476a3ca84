//! The embedded default [`Storage`]: one SQLite file, one row per (machine, day, event
//! key). Only what the payload held is stored: no address, header or arrival time.

use std::path::Path;

use rusqlite::{Connection, params};

use super::{Aggregate, Bucket, Storage, StorageError, ValidPayload};

pub struct SqliteStorage {
    conn: Connection,
}

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::with(Connection::open(path)?)
    }

    pub fn in_memory() -> Result<SqliteStorage, StorageError> {
        SqliteStorage::with(Connection::open_in_memory()?)
    }

    fn with(conn: Connection) -> Result<SqliteStorage, StorageError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
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
             CREATE INDEX IF NOT EXISTS rollups_day ON rollups (day);",
        )?;
        Ok(SqliteStorage { conn })
    }
}

impl Storage for SqliteStorage {
    fn put(&mut self, payload: &ValidPayload) -> Result<(), StorageError> {
        let tx = self.conn.transaction()?;
        {
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

    fn delete_machine(&mut self, machine_id: &str) -> Result<u64, StorageError> {
        let n = self
            .conn
            .execute("DELETE FROM rollups WHERE machine_id = ?1", [machine_id])?;
        Ok(n as u64)
    }

    fn aggregate(&self, min_machines: u64) -> Result<Aggregate, StorageError> {
        let mut stmt = self.conn.prepare(
            "SELECT day, event_type, event_name, language, agent,
                    SUM(count), COUNT(DISTINCT machine_id)
             FROM rollups
             GROUP BY day, event_type, event_name, language, agent
             ORDER BY day, event_type, event_name, language, agent",
        )?;
        let mut rows = stmt.query([])?;
        let mut buckets = Vec::new();
        let mut suppressed = 0;
        while let Some(row) = rows.next()? {
            let machines = row.get::<_, i64>(6)? as u64;
            if machines < min_machines {
                suppressed += 1;
                continue;
            }
            buckets.push(Bucket {
                day: row.get(0)?,
                event_type: row.get(1)?,
                event_name: row.get(2)?,
                language: row.get(3)?,
                agent: row.get(4)?,
                count: row.get::<_, i64>(5)? as u64,
                machines,
            });
        }
        Ok(Aggregate {
            min_machines,
            buckets,
            suppressed,
        })
    }

    fn prune_before(&mut self, oldest_kept: &str) -> Result<u64, StorageError> {
        let n = self
            .conn
            .execute("DELETE FROM rollups WHERE day < ?1", [oldest_kept])?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codelens_core::telemetry::buffer::Row;

    fn payload(id: &str, day: &str, count: u64) -> ValidPayload {
        ValidPayload {
            machine_id: id.into(),
            days: vec![(
                day.into(),
                vec![Row {
                    event_type: "cli_command".into(),
                    event_name: "sync".into(),
                    language: "go".into(),
                    agent: "none".into(),
                    file_count_bucket: "<100".into(),
                    count,
                }],
            )],
        }
    }

    #[test]
    fn resend_replaces_delete_removes_and_small_buckets_hide() {
        let mut store = SqliteStorage::in_memory().unwrap();
        store.put(&payload("a", "2024-01-01", 2)).unwrap();
        store.put(&payload("a", "2024-01-01", 2)).unwrap();
        let one = store.aggregate(1).unwrap();
        assert_eq!(one.buckets[0].count, 2, "a re-send is not counted twice");
        store.put(&payload("b", "2024-01-01", 5)).unwrap();
        assert_eq!(store.aggregate(3).unwrap().buckets.len(), 0);
        assert_eq!(store.aggregate(3).unwrap().suppressed, 1);
        let two = store.aggregate(2).unwrap();
        assert_eq!((two.buckets[0].count, two.buckets[0].machines), (7, 2));
        assert_eq!(store.delete_machine("a").unwrap(), 1);
        assert_eq!(store.aggregate(1).unwrap().buckets[0].count, 5);
        assert_eq!(store.prune_before("2024-01-02").unwrap(), 1);
    }
}
