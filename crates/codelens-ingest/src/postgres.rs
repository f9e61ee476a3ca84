//! [`Storage`] on PostgreSQL (`--database postgres://…`): the same tables as SQLite, so
//! any number of stateless `codelens-ingest` replicas can share one database behind a
//! load balancer (see TELEMETRY.md for the deployment, the retention job and the
//! indexes).
//!
//! - Writes and reads use two pools of their own: an aggregate waits for a read
//!   connection, never for a writer's, and PostgreSQL's MVCC lets it read while `put`s
//!   commit.
//! - `put` is one transaction that first upserts the machine's row: that row lock
//!   orders two `put`s of one machine (from two replicas, say) one after the other, so
//!   "delete the day, insert its rows" stays idempotent under any interleaving.
//! - The [`Storage`] trait is synchronous (the server calls it on blocking threads);
//!   this backend drives the async driver on a small runtime of its own.

use std::time::Duration;

use deadpool_postgres::{Config, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

use super::{Aggregate, Bucket, Storage, StorageError, Suppression, ValidPayload};

/// Connections for writes, by default: a `put` holds one for one short transaction.
/// The server sizes it to its body slots (see [`PostgresStorage::connect_with`]).
pub const WRITE_CONNECTIONS: usize = 16;
/// Connections for aggregates (the HTTP layer runs one at a time; retention one more).
const READ_CONNECTIONS: usize = 2;
/// How long a call waits for a free connection, or for a new one to open.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The tables and the indexes the queries need. Run under an advisory lock (its key is
/// "codelens" in ASCII), so replicas starting together do not race on `CREATE … IF NOT
/// EXISTS` (which is not atomic in PostgreSQL).
const SCHEMA: &str = "
    BEGIN;
    SELECT pg_advisory_xact_lock(7165064483209180787);
    CREATE TABLE IF NOT EXISTS rollups (
        machine_id uuid NOT NULL,
        day date NOT NULL,
        event_type text NOT NULL,
        event_name text NOT NULL,
        language text NOT NULL,
        agent text NOT NULL,
        file_count_bucket text NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (machine_id, day, event_type, event_name, language, agent, file_count_bucket)
    );
    CREATE INDEX IF NOT EXISTS rollups_day ON rollups (day);
    CREATE TABLE IF NOT EXISTS machines (
        machine_id uuid PRIMARY KEY,
        first_seen date NOT NULL,
        last_seen date NOT NULL,
        days_seen bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS machines_last_seen ON machines (last_seen);
    COMMIT;";

pub struct PostgresStorage {
    /// Drives the pools' connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    write: Pool,
    read: Pool,
}

fn pool(url: &str, size: usize) -> Result<Pool, StorageError> {
    // Parsed here first for the parser's own reason (a bad port, an unknown option),
    // which deadpool's error leaves out.
    if let Err(error) = url.parse::<tokio_postgres::Config>() {
        return Err(StorageError::Url(super::with_causes(&error)));
    }
    let mut config = Config::new();
    config.url = Some(url.to_string());
    config.manager = Some(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    let mut pool = PoolConfig::new(size);
    pool.timeouts = Timeouts {
        wait: Some(POOL_WAIT),
        create: Some(POOL_WAIT),
        recycle: Some(POOL_WAIT),
    };
    config.pool = Some(pool);
    config
        .create_pool(Some(deadpool_postgres::Runtime::Tokio1), NoTls)
        .map_err(|e| match e {
            deadpool_postgres::CreatePoolError::Config(why) => StorageError::Url(why.to_string()),
            other => StorageError::Pool(other.to_string()),
        })
}

fn pool_error(error: deadpool_postgres::PoolError) -> StorageError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => StorageError::Postgres(error),
        other => StorageError::Pool(other.to_string()),
    }
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user@host:port/db`), creating the tables and
    /// indexes if missing, with [`WRITE_CONNECTIONS`] write connections at most.
    pub fn connect(url: &str) -> Result<PostgresStorage, StorageError> {
        PostgresStorage::connect_with(url, WRITE_CONNECTIONS)
    }

    /// As [`connect`](PostgresStorage::connect), with at most `write_connections` write
    /// connections. The server passes its body slots plus two: each `put` runs while
    /// its request holds a body slot, so puts never queue for a connection, and a
    /// `DELETE` or the retention pass still finds one free.
    pub fn connect_with(
        url: &str,
        write_connections: usize,
    ) -> Result<PostgresStorage, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ingest-postgres")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Pool(format!("cannot start a runtime: {e}")))?;
        let storage = PostgresStorage {
            runtime: Some(runtime),
            write: pool(url, write_connections.max(1))?,
            read: pool(url, READ_CONNECTIONS)?,
        };
        storage.block_on(async {
            let client = storage.write.get().await.map_err(pool_error)?;
            client.batch_execute(SCHEMA).await?;
            Ok(())
        })?;
        Ok(storage)
    }

    fn block_on<T>(
        &self,
        work: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        match &self.runtime {
            Some(runtime) => runtime.block_on(work),
            None => Err(StorageError::Pool("shutting down".into())),
        }
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        // May run inside the server's runtime, where a blocking shutdown would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Storage for PostgresStorage {
    fn put(&self, payload: &ValidPayload, arrival_day: &str) -> Result<(), StorageError> {
        let mut days = Vec::with_capacity(payload.days.len());
        let mut columns: [Vec<String>; 6] = Default::default();
        let mut counts: Vec<i64> = Vec::new();
        for (day, rows) in &payload.days {
            days.push(day.clone());
            for row in rows {
                for (column, value) in columns.iter_mut().zip([
                    day,
                    &row.event_type,
                    &row.event_name,
                    &row.language,
                    &row.agent,
                    &row.file_count_bucket,
                ]) {
                    column.push(value.clone());
                }
                counts.push(row.count as i64);
            }
        }
        self.block_on(async {
            let mut client = self.write.get().await.map_err(pool_error)?;
            let tx = client.transaction().await?;
            // First, and holding the machine's row lock to the commit: see the module.
            let seen = tx
                .prepare_cached(
                    "INSERT INTO machines (machine_id, first_seen, last_seen, days_seen)
                     VALUES ($1::text::uuid, $2::text::date, $2::text::date, 1)
                     ON CONFLICT (machine_id) DO UPDATE SET
                         days_seen = machines.days_seen
                             + (EXCLUDED.last_seen > machines.last_seen)::int,
                         last_seen = GREATEST(machines.last_seen, EXCLUDED.last_seen)",
                )
                .await?;
            tx.execute(&seen, &[&payload.machine_id, &arrival_day])
                .await?;
            let clear = tx
                .prepare_cached(
                    "DELETE FROM rollups
                     WHERE machine_id = $1::text::uuid AND day = ANY($2::text[]::date[])",
                )
                .await?;
            tx.execute(&clear, &[&payload.machine_id, &days]).await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO rollups (machine_id, day, event_type, event_name, language,
                                          agent, file_count_bucket, count)
                     SELECT $1::text::uuid, d::date, et, en, la, ag, fb, c
                     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::int8[]) AS t(d, et, en, la, ag, fb, c)",
                )
                .await?;
            let [d, et, en, la, ag, fb] = &columns;
            tx.execute(
                &insert,
                &[&payload.machine_id, d, et, en, la, ag, fb, &counts],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn delete_machine(&self, machine_id: &str) -> Result<u64, StorageError> {
        self.block_on(async {
            let mut client = self.write.get().await.map_err(pool_error)?;
            let tx = client.transaction().await?;
            // The machine's row first: the order `put` takes its locks in.
            tx.execute(
                "DELETE FROM machines WHERE machine_id = $1::text::uuid",
                &[&machine_id],
            )
            .await?;
            let n = tx
                .execute(
                    "DELETE FROM rollups WHERE machine_id = $1::text::uuid",
                    &[&machine_id],
                )
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    fn aggregate(&self, rules: Suppression) -> Result<Aggregate, StorageError> {
        self.block_on(async {
            let client = self.read.get().await.map_err(pool_error)?;
            let statement = client
                .prepare_cached(
                    "SELECT r.day::text, r.event_type, r.event_name, r.language, r.agent,
                            SUM(r.count)::int8, COUNT(DISTINCT r.machine_id)::int8
                     FROM rollups r JOIN machines m ON m.machine_id = r.machine_id
                     WHERE m.days_seen >= $1
                     GROUP BY r.day, r.event_type, r.event_name, r.language, r.agent
                     ORDER BY r.day, r.event_type, r.event_name, r.language, r.agent",
                )
                .await?;
            let rows = client
                .query(&statement, &[&rules.min_days_seen_sql()])
                .await?;
            let buckets = rows.iter().map(|row| {
                Ok(Bucket {
                    day: row.try_get(0)?,
                    event_type: row.try_get(1)?,
                    event_name: row.try_get(2)?,
                    language: row.try_get(3)?,
                    agent: row.try_get(4)?,
                    count: row.try_get::<_, i64>(5)? as u64,
                    machines: row.try_get::<_, i64>(6)? as u64,
                })
            });
            Aggregate::publish(rules, buckets)
        })
    }

    fn prune_before(&self, oldest_kept: &str) -> Result<u64, StorageError> {
        self.block_on(async {
            let mut client = self.write.get().await.map_err(pool_error)?;
            let tx = client.transaction().await?;
            tx.execute(
                "DELETE FROM machines WHERE last_seen < $1::text::date",
                &[&oldest_kept],
            )
            .await?;
            let n = tx
                .execute(
                    "DELETE FROM rollups WHERE day < $1::text::date",
                    &[&oldest_kept],
                )
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }
}
