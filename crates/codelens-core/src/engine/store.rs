//! The index store: one SQLite database (`.codelens/index.db`, WAL mode).
//!
//! Every write happens inside one transaction, and a full build goes to a temporary
//! database that replaces the old one only once complete, so a crash or `kill -9` at any
//! moment leaves the previous index intact.

// Path-based access here is to the index database under .codelens/, never to the project's content.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::dircache::{CachedDir, DirCache};
use super::lang::Lang;
use super::scan::{FileStat, IgnoreSource, IndexedFile, Skip};
use super::symbols::Symbol;
use super::{Error, RelPath, Result};

/// The schema this build reads and writes. Bump it on any incompatible change.
/// 2: symbols have a `family` beside the language's own `kind`, and eleven more
/// languages have symbols.
pub const SCHEMA_VERSION: i64 = 2;
pub const DB_FILE_NAME: &str = "index.db";
/// A WAL larger than this is checkpointed and truncated when a writer opens the index.
const WAL_TRUNCATE_BYTES: u64 = 1 << 20;
/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pending set the writer engine publishes. Also created on open, for indexes built
/// before it existed.
macro_rules! pending_table {
    () => {
        "
CREATE TABLE IF NOT EXISTS pending (
    path          BLOB PRIMARY KEY,      -- a file the writer engine knows differs from the index
    change        TEXT NOT NULL,         -- 'added', 'modified' or 'deleted'
    first_edit_ns INTEGER NOT NULL,      -- 0 when unknown (a deleted file)
    last_edit_ns  INTEGER NOT NULL,
    state         TEXT NOT NULL          -- 'waiting', 'indexing', 'failed' …
) WITHOUT ROWID;
"
    };
}

/// The directory cache (see `dircache`): every directory of the tree with its stat when
/// last listed, and the ignore files the walk read. Also created on open, for indexes
/// built before it existed (an empty cache only means one full walk).
macro_rules! dir_cache_tables {
    () => {
        "
CREATE TABLE IF NOT EXISTS dirs (
    path          BLOB PRIMARY KEY,      -- relative to the root; '' is the root
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    ctime_ns      INTEGER NOT NULL,
    inode         INTEGER NOT NULL,
    listed_at_ns  INTEGER NOT NULL,      -- wall clock read before it was listed
    nested        INTEGER NOT NULL       -- 1: a nested repository, not entered
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ignore_sources (
    path          BLOB PRIMARY KEY,      -- absolute
    size          INTEGER,               -- all NULL: the file is absent
    mtime_ns      INTEGER,
    ctime_ns      INTEGER,
    inode         INTEGER
) WITHOUT ROWID;
"
    };
}

const SCHEMA: &str = concat!(
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE files (
    id            INTEGER PRIMARY KEY,
    path          BLOB NOT NULL UNIQUE,  -- relative to the root, '/' separators, raw bytes
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    ctime_ns      INTEGER NOT NULL,
    inode         INTEGER NOT NULL,
    sha256        BLOB,                  -- NULL when too large or unreadable
    language      TEXT,                  -- NULL when skipped
    lines         INTEGER NOT NULL,
    indexed_at_ns INTEGER NOT NULL,      -- wall clock right after the content was read
    skipped       TEXT                   -- NULL, 'binary', 'too_large' or 'unreadable'
);
CREATE TABLE symbols (
    file_id   INTEGER NOT NULL,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,         -- the language's word: 'struct', 'fn', 'def' …
    family    TEXT NOT NULL,         -- one of symbols::Family: 'class', 'function' …
    line      INTEGER NOT NULL,
    col       INTEGER NOT NULL,
    end_line  INTEGER NOT NULL,
    container TEXT
);
",
    pending_table!(),
    dir_cache_tables!()
);
/// Created after a bulk build (faster than maintaining them row by row).
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS symbols_by_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_by_file ON symbols(file_id);
";

/// A TEXT column read in place, without allocating a `String`.
fn text_or_null<'r>(
    row: &'r rusqlite::Row<'_>,
    column: usize,
) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(column)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The range `[low, high)` of the paths below `dir` (all paths for the root): they
/// sort between `dir/` and `dir0` ('0' follows '/'), and every path below a run of 0xFF
/// bytes.
fn paths_below(dir: &RelPath) -> (Vec<u8>, Vec<u8>) {
    match dir.as_bytes() {
        [] => (Vec::new(), vec![0xFF; 8]),
        d => ([d, b"/"].concat(), [d, b"0"].concat()),
    }
}

fn stat_from_row(size: i64, mtime_ns: i64, ctime_ns: i64, inode: i64) -> FileStat {
    FileStat {
        size: size as u64,
        mtime_ns,
        ctime_ns,
        inode: inode as u64,
    }
}

#[cfg(unix)]
fn path_to_bytes(path: &Path) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec()
}

#[cfg(not(unix))]
fn path_to_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// Files' rows, sorted by path (byte order, as SQLite compares blobs).
pub type FileRows = Vec<(RelPath, FileRow)>;

/// What the store holds about a file, for deciding whether it changed.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: i64,
    pub stat: FileStat,
    pub sha256: Option<[u8; 32]>,
    pub indexed_at_ns: i64,
    pub skipped: Option<Skip>,
}

/// Counts shown by `codelens status`.
#[derive(Debug, Clone, Default)]
pub struct IndexStats {
    pub files: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub symbols: u64,
    pub languages: BTreeMap<String, u64>,
    pub db_bytes: u64,
}

/// A row of the `pending` table: what the writer engine publishes for followers and
/// for `codelens status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    pub path: RelPath,
    pub change: String,
    pub first_edit_ns: i64,
    pub last_edit_ns: i64,
    pub state: String,
}

/// One symbol with the file it is defined in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolHit {
    pub path: RelPath,
    pub name: String,
    pub kind: String,
    pub family: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub container: Option<String>,
    pub language: Option<String>,
}

/// How `search_symbols` matches a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    Exact,
    /// Starts with the query, ignoring ASCII case.
    Prefix,
    /// Contains the query, ignoring ASCII case.
    Substring,
}

/// One indexed file, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: RelPath,
    pub language: Option<String>,
    pub size: u64,
    pub skipped: Option<String>,
}

const SYMBOL_COLUMNS: &str =
    "f.path, s.name, s.kind, s.family, s.line, s.col, s.end_line, s.container, f.language";

fn symbol_hit(r: &rusqlite::Row<'_>) -> rusqlite::Result<SymbolHit> {
    Ok(SymbolHit {
        path: RelPath::from_bytes(r.get(0)?),
        name: r.get(1)?,
        kind: r.get(2)?,
        family: r.get(3)?,
        line: r.get(4)?,
        column: r.get(5)?,
        end_line: r.get(6)?,
        container: r.get(7)?,
        language: r.get(8)?,
    })
}

/// `text` with LIKE's wildcards escaped (`\` is the escape character).
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn classify(path: &Path, error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
        _ => Error::Sqlite(error),
    }
}

impl Store {
    /// Opens an existing index for reading and writing, and checks that this build can
    /// read it.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, true)
    }

    /// Opens an existing index read-only (for `status`): no pragma is set, nothing is
    /// written, and a read-only `.codelens/` works as long as SQLite's `-shm` exists.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        Store::open_with(path, false)
    }

    /// How long a statement waits for another connection's lock before it fails with
    /// `DatabaseBusy` (5 s from `open`). The engine, which retries on its own and must
    /// keep reading file events meanwhile, waits less.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// Lets this connection keep up to `kib` KiB of database pages between statements
    /// (SQLite's default is 2,000 KiB). A long-lived reader that answers query after
    /// query needs its working set cached: a symbol search touches a page per matching
    /// row, and re-reading them all from the OS on every call cost most of its time.
    /// The cache grows only as pages are read.
    pub fn set_page_cache_kib(&self, kib: u32) -> Result<()> {
        Ok(self
            .conn
            .pragma_update(None, "cache_size", -i64::from(kib))?)
    }

    fn open_with(path: &Path, writable: bool) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: "index.db is missing".into(),
            });
        }
        let access = if writable {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| classify(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| classify(path, e))?;
        // Ours, and a version we read, before anything is written: a foreign SQLite file
        // or a newer index must leave exactly as it came (no WAL switch, no new table).
        store.check_schema()?;
        if writable {
            store.configure().map_err(|e| classify(path, e))?;
        }
        Ok(store)
    }

    fn configure(&self) -> rusqlite::Result<()> {
        // WAL is persistent in the file; NORMAL sync is durable enough in WAL mode
        // (a power cut can lose the last transaction, never corrupt the database).
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A short-lived writer (`codelens sync`) would otherwise checkpoint the WAL into
        // the database and fsync it on every exit, costing more than a no-change sync
        // itself. Instead the WAL is checkpointed and truncated once it passes a
        // megabyte — after a large write, and here, for one a process left behind: kept
        // small, because every process that opens the index first has to read all of
        // it (the first connection rebuilds SQLite's WAL index).
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        self.truncate_large_wal()?;
        self.conn.execute_batch(pending_table!())?;
        self.conn.execute_batch(dir_cache_tables!())?;
        Ok(())
    }

    fn check_schema(&self) -> Result<()> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| match e {
                // An empty file or some other SQLite database: not an index of ours.
                rusqlite::Error::SqliteFailure(_, Some(ref message))
                    if message.contains("no such table") =>
                {
                    Error::Corrupt {
                        path: self.path.clone(),
                        reason: "it has no meta table (an unfinished build?)".into(),
                    }
                }
                _ => classify(&self.path, e),
            })?;
        let found = found
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                reason: "schema_version is missing".into(),
            })?;
        if found != SCHEMA_VERSION {
            let hint = if found > SCHEMA_VERSION {
                " (or upgrade codelens: a newer version wrote it)"
            } else {
                ""
            };
            return Err(Error::IncompatibleSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
                hint,
            });
        }
        Ok(())
    }

    /// Creates an empty database at `path` for a bulk build: no journal, no fsync, no
    /// secondary indexes until [`Store::finish_build`]. Only ever used on a temporary file
    /// that nobody else reads, so a crash loses nothing but the unfinished build.
    pub fn create_for_build(path: &Path) -> Result<Store> {
        remove_database_files(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "OFF")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "cache_size", -32_768)?; // 32 MiB
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Finishes a bulk build: indexes, WAL mode, data flushed to disk, connection closed.
    pub fn finish_build(self) -> Result<()> {
        self.conn.execute_batch(INDEXES)?;
        self.conn.execute_batch("ANALYZE")?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.close().map_err(|(_, e)| e)?;
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        Ok(())
    }

    /// Checkpoints the WAL into the database and truncates it, when it has grown past
    /// [`WAL_TRUNCATE_BYTES`]. A reader holding part of it leaves it as it is: the next
    /// writer tries again.
    pub fn truncate_large_wal(&self) -> rusqlite::Result<()> {
        let wal_bytes = std::fs::metadata(sidecar(&self.path, "-wal")).map_or(0, |m| m.len());
        if wal_bytes > WAL_TRUNCATE_BYTES {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Checkpoints the whole WAL into the database file, then closes the connection.
    pub fn close(self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Every file row, keyed by path, for reconciliation.
    pub fn file_rows(&self) -> Result<FileRows> {
        self.file_rows_in(&RelPath::from_bytes(Vec::new()), true)
    }

    /// The rows of files in `dir`: all below it, or only its own when not `recursive`.
    pub fn file_rows_in(&self, dir: &RelPath, recursive: bool) -> Result<FileRows> {
        let (low, high) = paths_below(dir);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, path, size, mtime_ns, ctime_ns, inode, sha256, indexed_at_ns, skipped FROM files
             WHERE path >= ?1 AND path < ?2 ORDER BY path",
        )?;
        let prefix_len = low.len();
        let rows = stmt.query_map(params![low, high], |r| {
            let sha: Option<Vec<u8>> = r.get(6)?;
            let skipped: Option<String> = r.get(8)?;
            Ok((
                RelPath::from_bytes(r.get(1)?),
                FileRow {
                    id: r.get(0)?,
                    stat: stat_from_row(r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                    sha256: sha.and_then(|s| s.try_into().ok()),
                    indexed_at_ns: r.get(7)?,
                    skipped: skipped.as_deref().and_then(Skip::from_name),
                },
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (path, row) = row?;
            if recursive || !path.as_bytes()[prefix_len..].contains(&b'/') {
                found.push((path, row));
            }
        }
        Ok(found)
    }

    /// The directory cache; empty when there is none (or the index predates it).
    pub fn dir_cache(&self) -> Result<DirCache> {
        let missing_table = |e: &rusqlite::Error| matches!(e, rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table"));
        let read = || -> rusqlite::Result<DirCache> {
            let mut stmt = self.conn.prepare(
                "SELECT path, size, mtime_ns, ctime_ns, inode, listed_at_ns, nested FROM dirs ORDER BY path",
            )?;
            let dirs = stmt
                .query_map([], |r| {
                    Ok(CachedDir {
                        path: RelPath::from_bytes(r.get(0)?),
                        stat: stat_from_row(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                        listed_at_ns: r.get(5)?,
                        nested: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = self
                .conn
                .prepare("SELECT path, size, mtime_ns, ctime_ns, inode FROM ignore_sources")?;
            let sources = stmt
                .query_map([], |r| {
                    let size: Option<i64> = r.get(1)?;
                    Ok(IgnoreSource {
                        path: path_from_bytes(r.get(0)?),
                        stat: match size {
                            Some(size) => {
                                Some(stat_from_row(size, r.get(2)?, r.get(3)?, r.get(4)?))
                            }
                            None => None,
                        },
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(DirCache { dirs, sources })
        };
        match read() {
            Ok(cache) => Ok(cache),
            Err(e) if missing_table(&e) => Ok(DirCache::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn stats(&self) -> Result<IndexStats> {
        let mut stats = IndexStats::default();
        // The (language, skipped) pairs are few: counted here, where SQLite's GROUP BY
        // would sort every row first (five times slower at 100k files).
        let mut counts: Vec<(Option<String>, Option<String>, u64)> = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT language, skipped FROM files")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (language, skipped) = (text_or_null(row, 0)?, text_or_null(row, 1)?);
            let seen = counts
                .iter_mut()
                .find(|(l, s, _)| l.as_deref() == language && s.as_deref() == skipped);
            match seen {
                Some((_, _, count)) => *count += 1,
                None => counts.push((language.map(Into::into), skipped.map(Into::into), 1)),
            }
        }
        for (language, skipped, count) in counts {
            match skipped.as_deref().and_then(Skip::from_name) {
                Some(skip) => *stats.skipped.entry(skip.name()).or_default() += count,
                None => {
                    stats.files += count;
                    *stats
                        .languages
                        .entry(language.unwrap_or_else(|| "text".into()))
                        .or_default() += count;
                }
            }
        }
        stats.symbols = self
            .conn
            .query_row("SELECT COUNT(*) FROM symbols", [], |r| r.get::<_, i64>(0))?
            as u64;
        stats.db_bytes = [self.path.clone(), sidecar(&self.path, "-wal")]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        Ok(stats)
    }

    /// The pending set the writer engine last published, oldest path first.
    pub fn pending_rows(&self) -> Result<Vec<PendingRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, change, first_edit_ns, last_edit_ns, state FROM pending ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingRow {
                path: RelPath::from_bytes(r.get(0)?),
                change: r.get(1)?,
                first_edit_ns: r.get(2)?,
                last_edit_ns: r.get(3)?,
                state: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The wall-clock time of the last completed full sync.
    pub fn last_sync_ns(&self) -> Result<Option<i64>> {
        Ok(self.meta("last_sync_ns")?.and_then(|v| v.parse().ok()))
    }

    /// A counter every write of files or symbols increases in the same transaction: a
    /// change a process did not make itself means another process wrote.
    pub fn generation(&self) -> Result<u64> {
        Ok(self
            .meta("generation")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The stat key the index recorded for `path`, if it has a row for it.
    pub fn file_stat(&self, path: &RelPath) -> Result<Option<FileStat>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size, mtime_ns, ctime_ns, inode FROM files WHERE path = ?1")?;
        Ok(stmt
            .query_row([path.as_bytes()], |r| {
                Ok(FileStat {
                    size: r.get::<_, i64>(0)? as u64,
                    mtime_ns: r.get(1)?,
                    ctime_ns: r.get(2)?,
                    inode: r.get::<_, i64>(3)? as u64,
                })
            })
            .optional()?)
    }

    /// Whether the index has a row for `path`.
    pub fn has_file(&self, path: &RelPath) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM files WHERE path = ?1")?;
        Ok(stmt.exists([path.as_bytes()])?)
    }

    /// Symbols whose name is exactly `name`.
    pub fn symbols_named(&self, name: &str) -> Result<Vec<SymbolHit>> {
        Ok(self
            .search_symbols(name, NameMatch::Exact, None, None, u32::MAX, 0)?
            .0)
    }

    /// Symbols matching `query`, optionally of one kind (the language's word or the
    /// family) and language: exact matches
    /// first, then shorter names, then by path and line. Returns one page (`limit` from
    /// `offset`) and the total count.
    pub fn search_symbols(
        &self,
        query: &str,
        mode: NameMatch,
        kind: Option<&str>,
        language: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SymbolHit>, u64)> {
        let (condition, pattern) = match mode {
            NameMatch::Exact => ("s.name = ?1", query.to_string()),
            NameMatch::Prefix => (
                "s.name LIKE ?1 ESCAPE '\\'",
                format!("{}%", like_literal(query)),
            ),
            NameMatch::Substring => (
                "s.name LIKE ?1 ESCAPE '\\'",
                format!("%{}%", like_literal(query)),
            ),
        };
        self.page_symbols(condition, &pattern, query, kind, language, limit, offset)
    }

    /// Every distinct symbol name, sorted (a covering scan of the name index).
    pub fn distinct_symbol_names(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT name FROM symbols ORDER BY name")?;
        Ok(stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Symbols whose name is one of `names` (looked up through the name index), ordered
    /// and paged like [`Store::search_symbols`] with `query` ranking exact matches first.
    pub fn symbols_with_names(
        &self,
        names: &[&str],
        query: &str,
        kind: Option<&str>,
        language: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SymbolHit>, u64)> {
        let list = serde_json::to_string(names).unwrap_or_else(|_| "[]".into());
        let condition = "s.name IN (SELECT value FROM json_each(?1))";
        self.page_symbols(condition, &list, query, kind, language, limit, offset)
    }

    /// Symbols whose name satisfies `condition` (on `?1` = `name_param`), of the given
    /// kind and language: the total, and one page with exact matches of `query` first,
    /// then shorter names, then by path and position (a total order, so pages never
    /// overlap).
    #[allow(clippy::too_many_arguments)]
    fn page_symbols(
        &self,
        condition: &str,
        name_param: &str,
        query: &str,
        kind: Option<&str>,
        language: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SymbolHit>, u64)> {
        // A kind filter names either the language's word or the shared family.
        let of_kind = "(?2 IS NULL OR s.kind = ?2 OR s.family = ?2)";
        let filters = format!(
            "FROM symbols s JOIN files f ON f.id = s.file_id
             WHERE {condition} AND {of_kind} AND (?3 IS NULL OR f.language = ?3)"
        );
        // Without a language filter every symbol row has its file (one transaction
        // writes both), so the count needs no join: with no kind filter either, it is
        // answered from the name index alone, without reading a single row.
        let total: i64 = match language {
            None => self
                .conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM symbols s WHERE {condition} AND {of_kind}"
                ))?
                .query_row(params![name_param, kind], |r| r.get(0))?,
            Some(_) => self
                .conn
                .prepare_cached(&format!("SELECT COUNT(*) {filters}"))?
                .query_row(params![name_param, kind, language], |r| r.get(0))?,
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SYMBOL_COLUMNS} {filters}
             ORDER BY s.name <> ?4, length(s.name), f.path, s.line, s.col, s.rowid LIMIT ?5 OFFSET ?6"
        ))?;
        let hits = stmt
            .query_map(
                params![name_param, kind, language, query, limit, offset],
                symbol_hit,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok((hits, total as u64))
    }

    /// The symbols of one file, in source order.
    pub fn file_symbols(&self, path: &RelPath) -> Result<Vec<SymbolHit>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SYMBOL_COLUMNS} FROM symbols s JOIN files f ON f.id = s.file_id
             WHERE f.path = ?1 ORDER BY s.line, s.col"
        ))?;
        Ok(stmt
            .query_map([path.as_bytes()], symbol_hit)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Every indexed file, by path.
    pub fn files(&self) -> Result<Vec<FileEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, language, size, skipped FROM files ORDER BY path")?;
        let rows = stmt.query_map([], |r| {
            Ok(FileEntry {
                path: RelPath::from_bytes(r.get(0)?),
                language: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                skipped: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Starts one write transaction. Nothing is visible to readers until `commit`, and
    /// dropping the batch without committing rolls everything back.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Batch { tx })
    }
}

pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    pub fn insert_file(&self, file: &IndexedFile) -> Result<()> {
        let id = self.write_file_row(None, file)?;
        for symbol in &file.symbols {
            self.insert_symbol(id, symbol)?;
        }
        Ok(())
    }

    /// Writes a file's row — a new one when `id` is `None` — and returns its id.
    fn write_file_row(&self, id: Option<i64>, file: &IndexedFile) -> Result<i64> {
        self.tx
            .prepare_cached(
                "INSERT INTO files (id, path, size, mtime_ns, ctime_ns, inode, sha256, language, lines, indexed_at_ns, skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                 ctime_ns = excluded.ctime_ns, inode = excluded.inode, sha256 = excluded.sha256,
                 language = excluded.language, lines = excluded.lines,
                 indexed_at_ns = excluded.indexed_at_ns, skipped = excluded.skipped",
            )?
            .execute(params![
                id,
                file.path.as_bytes(),
                file.stat.size as i64,
                file.stat.mtime_ns,
                file.stat.ctime_ns,
                file.stat.inode as i64,
                file.sha256.as_ref().map(|s| &s[..]),
                file.language.map(Lang::name),
                file.lines,
                file.indexed_at_ns,
                file.skipped.map(Skip::name),
            ])?;
        Ok(id.unwrap_or_else(|| self.tx.last_insert_rowid()))
    }

    fn insert_symbol(&self, file_id: i64, s: &Symbol) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO symbols (file_id, name, kind, family, line, col, end_line, container) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                file_id,
                s.name,
                s.kind,
                s.family.name(),
                s.line,
                s.column,
                s.end_line,
                s.container
            ])?;
        Ok(())
    }

    /// Replaces what is stored about a file whose content changed, keeping its row.
    /// A symbol that kept its name, kind and container is updated in place, so the
    /// name index — its pages spread over the whole tree's symbols — is only written
    /// for symbols that appeared or went away: an edit mostly moves lines.
    pub fn replace_file(&self, id: i64, file: &IndexedFile) -> Result<()> {
        self.write_file_row(Some(id), file)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT rowid, name, kind, family, container, line, col, end_line FROM symbols WHERE file_id = ?1 ORDER BY rowid",
        )?;
        type Key = (String, String, String, Option<String>);
        let mut before: HashMap<Key, VecDeque<(i64, [u32; 3])>> = HashMap::new();
        let rows = stmt.query_map([id], |r| {
            Ok((
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                (r.get(0)?, [r.get(5)?, r.get(6)?, r.get(7)?]),
            ))
        })?;
        for row in rows {
            let (key, symbol) = row?;
            before.entry(key).or_default().push_back(symbol);
        }
        for symbol in &file.symbols {
            let key = (
                symbol.name.clone(),
                symbol.kind.clone(),
                symbol.family.name().to_string(),
                symbol.container.clone(),
            );
            let place = [symbol.line, symbol.column, symbol.end_line];
            match before.get_mut(&key).and_then(VecDeque::pop_front) {
                Some((_, was)) if was == place => {}
                Some((rowid, _)) => {
                    self.tx
                        .prepare_cached(
                            "UPDATE symbols SET line = ?2, col = ?3, end_line = ?4 WHERE rowid = ?1",
                        )?
                        .execute(params![rowid, place[0], place[1], place[2]])?;
                }
                None => self.insert_symbol(id, symbol)?,
            }
        }
        let mut delete = self
            .tx
            .prepare_cached("DELETE FROM symbols WHERE rowid = ?1")?;
        for (rowid, _) in before.into_values().flatten() {
            delete.execute([rowid])?;
        }
        Ok(())
    }

    /// Records a new stat for a file whose content turned out unchanged.
    pub fn refresh_stat(&self, id: i64, stat: &FileStat, indexed_at_ns: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE files SET size = ?2, mtime_ns = ?3, ctime_ns = ?4, inode = ?5, indexed_at_ns = ?6 WHERE id = ?1",
            )?
            .execute(params![
                id,
                stat.size as i64,
                stat.mtime_ns,
                stat.ctime_ns,
                stat.inode as i64,
                indexed_at_ns
            ])?;
        Ok(())
    }

    pub fn remove_file(&self, id: i64) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM symbols WHERE file_id = ?1")?
            .execute([id])?;
        self.tx
            .prepare_cached("DELETE FROM files WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Increases the write counter (see [`Store::generation`]); returns the new value.
    pub fn bump_generation(&self) -> Result<u64> {
        let current: Option<String> = self
            .tx
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let next = current.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
        self.set_meta("generation", &next.to_string())?;
        Ok(next)
    }

    /// Replaces the directory cache.
    pub fn replace_dir_cache(&self, cache: &DirCache) -> Result<()> {
        self.tx.execute("DELETE FROM dirs", [])?;
        self.tx.execute("DELETE FROM ignore_sources", [])?;
        self.insert_cached_dirs(&cache.dirs)?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO ignore_sources (path, size, mtime_ns, ctime_ns, inode) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for source in &cache.sources {
            let s = source.stat.as_ref();
            stmt.execute(params![
                path_to_bytes(&source.path),
                s.map(|s| s.size as i64),
                s.map(|s| s.mtime_ns),
                s.map(|s| s.ctime_ns),
                s.map(|s| s.inode as i64)
            ])?;
        }
        Ok(())
    }

    /// After the whole subtree of `dir` was re-indexed from a complete listing of it
    /// (`listed`, each stat'ed before it was listed at `listed_at_ns` or later): the
    /// entries below `dir` are replaced by what that listing saw, as a full walk would
    /// record them, so the directories it found new are known at the next start (armed
    /// at once, and not crawled again as if they had just appeared). The parent is
    /// listed again next time, as [`Batch::forget_dir_cache_of`] does.
    pub fn record_dir_cache_of(&self, dir: &RelPath, listed: &[CachedDir]) -> Result<()> {
        self.forget_dir_cache_of(dir, true)?;
        self.insert_cached_dirs(listed)
    }

    /// Writes directory-cache entries (over any with the same path).
    fn insert_cached_dirs(&self, dirs: &[CachedDir]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO dirs (path, size, mtime_ns, ctime_ns, inode, listed_at_ns, nested) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for dir in dirs {
            let s = &dir.stat;
            stmt.execute(params![
                dir.path.as_bytes(),
                s.size as i64,
                s.mtime_ns,
                s.ctime_ns,
                s.inode as i64,
                dir.listed_at_ns,
                dir.nested
            ])?;
        }
        Ok(())
    }

    /// After the rows of `dir` (and, when `recursive`, of everything below it) were
    /// rewritten from a listing of their own rather than by a sync that records the
    /// cache: the cache may no longer describe what those rows were taken from (a
    /// directory that went away took its subtree's rows with it, while the entries
    /// below it kept their stats). So the entries below `dir` go, and `dir` itself — or,
    /// when its whole subtree goes, its parent, where it is found again as new — is
    /// listed again next time (`listed_at_ns` 0 never passes the racy check).
    pub fn forget_dir_cache_of(&self, dir: &RelPath, recursive: bool) -> Result<()> {
        let bytes = dir.as_bytes();
        if !recursive {
            self.tx
                .execute("UPDATE dirs SET listed_at_ns = 0 WHERE path = ?1", [bytes])?;
            return Ok(());
        }
        // For the root, all of it: a full walk records the cache again.
        let (low, high) = paths_below(dir);
        self.tx.execute(
            "DELETE FROM dirs WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
            params![bytes, low, high],
        )?;
        if let Some(parent) = dir.parent() {
            self.tx.execute(
                "UPDATE dirs SET listed_at_ns = 0 WHERE path = ?1",
                [parent.as_bytes()],
            )?;
        }
        Ok(())
    }

    /// Replaces the published pending set.
    pub fn replace_pending(&self, rows: &[PendingRow]) -> Result<()> {
        self.tx.execute("DELETE FROM pending", [])?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO pending (path, change, first_edit_ns, last_edit_ns, state) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for row in rows {
            stmt.execute(params![
                row.path.as_bytes(),
                row.change,
                row.first_edit_ns,
                row.last_edit_ns,
                row.state
            ])?;
        }
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2")?
            .execute([key, value])?;
        Ok(())
    }

    /// Deletes `key` only while it still holds `value` (a row rewritten since stays).
    pub fn delete_meta_if(&self, key: &str, value: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM meta WHERE key = ?1 AND value = ?2")?
            .execute([key, value])?;
        Ok(())
    }

    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute([key])?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

/// Copies the database at `from` to a new file `to` with SQLite's online backup, which
/// gives a consistent copy even while another process reads or writes `from`.
pub fn copy_database(from: &Path, to: &Path) -> Result<()> {
    remove_database_files(to)?;
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| classify(from, e))?;
    source.busy_timeout(BUSY_TIMEOUT)?;
    let mut target = Connection::open(to)?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
    // All pages in one step, under one read transaction: stepping in chunks restarts
    // whenever the source's writer commits, which an active engine does often.
    loop {
        match backup.step(-1).map_err(|e| classify(from, e))? {
            rusqlite::backup::StepResult::Done => break,
            // Busy or locked by a writer at that instant: try again in a moment.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    drop(backup);
    Ok(())
}

/// Removes a database file and its sidecars, if present.
pub fn remove_database_files(db: &Path) -> Result<()> {
    for file in [
        db.to_path_buf(),
        sidecar(db, "-journal"),
        sidecar(db, "-wal"),
        sidecar(db, "-shm"),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(file, e)),
        }
    }
    Ok(())
}

/// `index.db` + suffix: SQLite's `-wal`, `-shm` and `-journal` files.
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves a finished build at `built` over `target` atomically.
///
/// A leftover WAL of the old database must never be replayed onto the new one: the old
/// database is first checkpointed completely and closed (SQLite then deletes its WAL),
/// or, when it is unreadable, its sidecars are removed. The caller holds the exclusive
/// swap lock ([`super::project::Project::lock_for_swap`]), so no codelens reader has the
/// old file open; a checkpoint that still reports a busy reader aborts the swap.
pub fn replace_database(built: &Path, target: &Path) -> Result<()> {
    if sidecar(target, "-wal").exists() {
        match checkpoint_and_close(target) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::io(
                    target,
                    std::io::Error::new(
                        std::io::ErrorKind::ResourceBusy,
                        "another program has the index open; close it and run `codelens init` again",
                    ),
                ));
            }
            // Unreadable or corrupt: nothing in it is worth keeping.
            Err(_) => {
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(sidecar(target, suffix));
                }
            }
        }
    }
    std::fs::rename(built, target).map_err(|e| Error::io(target, e))?;
    if let Some(dir) = target.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        // Make the rename itself durable.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Checkpoints the whole WAL into the database and closes it. `Ok(false)` when a reader
/// kept part of the WAL from being checkpointed.
fn checkpoint_and_close(db: &Path) -> rusqlite::Result<bool> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Columns: busy (1 when blocked), frames in the WAL, frames checkpointed.
    let (busy, log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(busy == 0 && log == done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RelPath {
        RelPath::from_bytes(p.as_bytes().to_vec())
    }

    fn symbol(name: &str, kind: &str, line: u32) -> Symbol {
        Symbol {
            name: name.into(),
            kind: kind.into(),
            family: match kind {
                "struct" => crate::engine::symbols::Family::Struct,
                _ => crate::engine::symbols::Family::Function,
            },
            line,
            column: 1,
            end_line: line + 2,
            container: None,
        }
    }

    fn file(p: &str, language: Lang, symbols: Vec<Symbol>) -> IndexedFile {
        IndexedFile {
            path: path(p),
            stat: FileStat {
                size: 100,
                mtime_ns: 1,
                ctime_ns: 1,
                inode: 7,
            },
            sha256: Some([0; 32]),
            language: Some(language),
            lines: 10,
            symbols,
            skipped: None,
            indexed_at_ns: 1,
        }
    }

    /// A real index on disk, built the way `init` builds one, then opened as every
    /// reader opens it.
    fn store_with(files: Vec<IndexedFile>) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE_NAME);
        let mut building = Store::create_for_build(&db).unwrap();
        let batch = building.batch().unwrap();
        batch
            .set_meta("schema_version", &SCHEMA_VERSION.to_string())
            .unwrap();
        for file in &files {
            batch.insert_file(file).unwrap();
        }
        batch.commit().unwrap();
        building.finish_build().unwrap();
        let store = Store::open(&db).unwrap();
        (dir, store)
    }

    fn names(hits: &[SymbolHit]) -> Vec<&str> {
        hits.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn symbol_search_ranks_exact_then_shorter_and_pages_with_a_total() {
        let (_dir, store) = store_with(vec![
            file(
                "src/store.rs",
                Lang::Rust,
                vec![
                    symbol("StoreBuilder", "struct", 1),
                    symbol("Store", "struct", 5),
                    symbol("open_store", "fn", 9),
                ],
            ),
            file(
                "app/store.py",
                Lang::Python,
                vec![symbol("store", "def", 1)],
            ),
        ]);
        let (hits, total) = store
            .search_symbols("store", NameMatch::Substring, None, None, 10, 0)
            .unwrap();
        assert_eq!(total, 4);
        // Exact (ASCII case aside) first, then shorter names.
        assert_eq!(names(&hits)[0], "store");
        assert_eq!(names(&hits).last(), Some(&"StoreBuilder"));
        let (page, total) = store
            .search_symbols("store", NameMatch::Substring, None, None, 2, 2)
            .unwrap();
        assert_eq!((page.len(), total), (2, 4));
        assert_eq!(names(&page), names(&hits)[2..4].to_vec());
        let (rust_structs, _) = store
            .search_symbols(
                "Store",
                NameMatch::Prefix,
                Some("struct"),
                Some("rust"),
                10,
                0,
            )
            .unwrap();
        assert_eq!(names(&rust_structs), vec!["Store", "StoreBuilder"]);
        // The total counts exactly the rows a search returns, under every filter, a
        // kind in the language's words or a family (the count without a language
        // filter is taken without joining the files).
        for (kind, language, expected) in [
            (None, None, 4),
            (Some("struct"), None, 2),
            (Some("function"), None, 2),
            (Some("fn"), None, 1),
            (Some("def"), None, 1),
            (None, Some("python"), 1),
            (Some("function"), Some("rust"), 1),
            (Some("class"), None, 0),
        ] {
            let (hits, total) = store
                .search_symbols("store", NameMatch::Substring, kind, language, 10, 0)
                .unwrap();
            assert_eq!(
                (hits.len(), total),
                (expected, expected as u64),
                "{kind:?} {language:?}"
            );
            let (hits, total) = store
                .symbols_with_names(
                    &["Store", "StoreBuilder", "open_store", "store"],
                    "store",
                    kind,
                    language,
                    10,
                    0,
                )
                .unwrap();
            assert_eq!(
                (hits.len(), total),
                (expected, expected as u64),
                "{kind:?} {language:?}"
            );
        }
        assert_eq!(names(&store.symbols_named("Store").unwrap()), vec!["Store"]);
        // The in-memory name lookup's path agrees with SQLite's own scan.
        let (by_names, by_names_total) = store
            .symbols_with_names(&["store", "open_store"], "store", None, None, 10, 0)
            .unwrap();
        assert_eq!(by_names_total, 2);
        assert_eq!(names(&by_names), vec!["store", "open_store"]);
    }

    #[test]
    fn a_batch_dropped_without_commit_writes_nothing() {
        let (_dir, mut store) = store_with(vec![file("a.rs", Lang::Rust, Vec::new())]);
        let generation = store.generation().unwrap();
        {
            let batch = store.batch().unwrap();
            batch
                .insert_file(&file("b.rs", Lang::Rust, vec![symbol("b", "function", 1)]))
                .unwrap();
            batch.bump_generation().unwrap();
            batch.set_meta("last_sync", "never").unwrap();
        }
        assert!(!store.has_file(&path("b.rs")).unwrap());
        assert_eq!(store.generation().unwrap(), generation);
        assert_eq!(store.meta("last_sync").unwrap(), None);
        assert_eq!(store.stats().unwrap().files, 1);
    }

    #[test]
    fn the_pending_table_and_meta_read_back_what_was_written() {
        let (_dir, mut store) = store_with(Vec::new());
        let rows = vec![
            PendingRow {
                path: path("src/a.rs"),
                change: "modified".into(),
                first_edit_ns: 1,
                last_edit_ns: 2,
                state: "waiting".into(),
            },
            PendingRow {
                path: RelPath::from_bytes(b"odd/\xff name.rs".to_vec()),
                change: "deleted".into(),
                first_edit_ns: 3,
                last_edit_ns: 3,
                state: "failed".into(),
            },
        ];
        let batch = store.batch().unwrap();
        batch.replace_pending(&rows).unwrap();
        batch.set_meta("watcher_mode", "native").unwrap();
        batch.commit().unwrap();
        let mut read = store.pending_rows().unwrap();
        read.sort_by(|a, b| a.path.cmp(&b.path));
        let mut expected = rows.clone();
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(read, expected, "raw-byte paths survive the round trip");
        assert_eq!(
            store.meta("watcher_mode").unwrap().as_deref(),
            Some("native")
        );
        // Replaced, not appended.
        let batch = store.batch().unwrap();
        batch.replace_pending(&rows[..1]).unwrap();
        batch.commit().unwrap();
        assert_eq!(store.pending_rows().unwrap().len(), 1);
    }

    #[test]
    fn a_foreign_or_future_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.db");
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&foreign).unwrap();
        assert!(matches!(Store::open(&foreign), Err(Error::Corrupt { .. })));
        assert_eq!(std::fs::read(&foreign).unwrap(), before);

        let (_dir, mut store) = store_with(Vec::new());
        let batch = store.batch().unwrap();
        batch.set_meta("schema_version", "99").unwrap();
        batch.commit().unwrap();
        let db = store.path().to_path_buf();
        drop(store);
        assert!(matches!(
            Store::open_read_only(&db),
            Err(Error::IncompatibleSchema { found: 99, .. })
        ));
    }
}
