//! The engine: everything that knows about the file system, git and the index store.
//! Front ends (CLI, and later the TUI and MCP server) call into it and never touch
//! SQLite or the walker themselves.

// Every file of the project is opened, listed and stat'ed through `contain::Tree`.
#![deny(clippy::disallowed_methods)]

pub mod banner;
pub mod contain;
pub mod dircache;
pub mod freshness;
pub mod git;
pub mod hooks;
pub mod lang;
pub mod progress;
pub mod project;
pub mod read;
pub mod reconcile;
pub mod rules;
pub mod runner;
pub mod scan;
pub mod status;
pub mod store;
pub mod symbols;
pub mod watch_actor;
pub mod watcher;
pub mod worktree;

pub use freshness::{Freshness, Unverified};
pub use runner::{Catchup, Command, Engine, EngineOptions, Event, Role, Snapshot};

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Errors the engine reports. Each maps to one documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no index found in {} or any parent directory; run `codelens init` first", start.display())]
    NoIndex { start: PathBuf },
    #[error("the index at {} is corrupt ({reason}); rebuild it with `codelens init`", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "the index at {} has schema version {found} but this codelens reads version {supported}; rebuild it with `codelens init`{hint}",
        path.display()
    )]
    IncompatibleSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
        hint: &'static str,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Git(String),
    #[error("index database error: {0}{hint}", hint = if is_corruption(.0) { "; rebuild it with `codelens init`" } else { "" })]
    Sqlite(#[from] rusqlite::Error),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error (see the README): 3 no index,
    /// 4 corrupt or incompatible index, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NoIndex { .. } => 3,
            Error::Corrupt { .. } | Error::IncompatibleSchema { .. } => 4,
            // Corruption can also surface after a successful open, mid-query.
            Error::Sqlite(e) if is_corruption(e) => 4,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether SQLite says the file is damaged or not a database at all.
pub fn is_corruption(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// A path relative to the project root, as raw bytes with `/` separators: file names
/// need not be UTF-8, and the index must still track them exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    pub fn from_bytes(bytes: Vec<u8>) -> RelPath {
        RelPath(bytes)
    }

    /// `path` relative to `root`, or `None` when it is not under `root`.
    pub fn from_path(root: &Path, path: &Path) -> Option<RelPath> {
        // The walker's paths are `root` joined with names: a byte prefix check is the
        // common case, and much cheaper than comparing component by component.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let (root_bytes, bytes) = (root.as_os_str().as_bytes(), path.as_os_str().as_bytes());
            if let Some(rest) = bytes.strip_prefix(root_bytes)
                && let Some(rest) = rest.strip_prefix(b"/")
                && !rest.is_empty()
                && !rest.starts_with(b"/")
                && !root_bytes.ends_with(b"/")
            {
                return Some(RelPath(rest.to_vec()));
            }
        }
        let relative = path.strip_prefix(root).ok()?;
        #[cfg(unix)]
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(relative.as_os_str()).to_vec();
        #[cfg(not(unix))]
        let bytes = relative.to_string_lossy().replace('\\', "/").into_bytes();
        Some(RelPath(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this path is `ancestor` itself or lies under it (the empty path is the
    /// root, which holds everything).
    pub fn is_within(&self, ancestor: &RelPath) -> bool {
        let prefix = ancestor.as_bytes();
        prefix.is_empty()
            || self.0 == prefix
            || (self.0.starts_with(prefix) && self.0.get(prefix.len()) == Some(&b'/'))
    }

    /// The directory holding this path (the empty path for a top-level entry), or
    /// `None` for the root itself.
    pub fn parent(&self) -> Option<RelPath> {
        if self.0.is_empty() {
            return None;
        }
        let end = self.0.iter().rposition(|&b| b == b'/').unwrap_or(0);
        Some(RelPath(self.0[..end].to_vec()))
    }

    /// The file name: the part after the last `/`.
    pub fn file_name(&self) -> &[u8] {
        let start = self.0.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        &self.0[start..]
    }

    /// For display and JSON: invalid UTF-8 shows as U+FFFD.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    pub fn to_path(&self, root: &Path) -> PathBuf {
        #[cfg(unix)]
        let relative = std::path::PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&self.0),
        );
        #[cfg(not(unix))]
        let relative = PathBuf::from(self.to_string_lossy().into_owned());
        root.join(relative)
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// Current wall-clock time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_by_byte_prefix_agree_with_strip_prefix() {
        let rel = |root: &str, path: &str| {
            RelPath::from_path(Path::new(root), Path::new(path)).map(|r| r.to_string())
        };
        assert_eq!(
            rel("/src/app", "/src/app/lib/a.rs").as_deref(),
            Some("lib/a.rs")
        );
        // A sibling sharing the prefix is outside.
        assert_eq!(rel("/src/app", "/src/app-evil/a.rs"), None);
        assert_eq!(rel("/src/app", "/src/other/a.rs"), None);
        // The root itself, and roots written with a trailing slash or as `/`.
        assert_eq!(rel("/src/app", "/src/app").as_deref(), Some(""));
        assert_eq!(rel("/src/app/", "/src/app/a.rs").as_deref(), Some("a.rs"));
        assert_eq!(rel("/", "/etc/hosts").as_deref(), Some("etc/hosts"));
        assert_eq!(rel("/src/app", "/src/app//a.rs").as_deref(), Some("a.rs"));
    }

    #[test]
    fn parents_end_at_the_root() {
        let parent = |p: &str| {
            RelPath::from_bytes(p.into())
                .parent()
                .map(|p| p.to_string())
        };
        assert_eq!(parent("a/b/c.rs").as_deref(), Some("a/b"));
        assert_eq!(parent("c.rs").as_deref(), Some(""));
        assert_eq!(parent(""), None);
    }
}
