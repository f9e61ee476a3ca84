//! The engine's read API: every question a front end asks of the index and of the
//! project's files — symbols, outlines, definitions, files, text — answered through one
//! read-only SQLite connection and the [`Tree`]. Front ends (the MCP server, the CLI)
//! never open SQLite themselves: they call this, and only turn its answers into text.
//!
//! Freshness is part of every answer: a file the snapshot names as pending, or whose
//! stat no longer matches its row, is parsed as it is on disk now rather than served
//! from the index (line numbers are never stale), and
//! [`Reader::with_unreported_edits`] names referenced files whose edit no watcher has
//! reported yet.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::banner::{PendingEntry, PendingState};
use super::contain::{self, EntryKind, Tree};
use super::lang::Lang;
use super::project::Project;
use super::reconcile::Change;
use super::runner::Snapshot;
use super::scan;
use super::store::{FileEntry, IndexStats, NameMatch, Store, SymbolHit};
use super::symbols::{Symbol, SymbolExtractor};
use super::{Error, RelPath, Result, now_ns};

/// The reader's SQLite page cache: enough for a broad search's rows and their files
/// to stay cached from one call to the next (at 100k files, a search matching a
/// thousand symbols touches about 7 MB of pages).
const READER_PAGE_CACHE_KIB: u32 = 16 * 1024;
/// Past this many matching names a search is broad anyway: SQLite's scan is as good.
const MAX_NAMES_IN_LOOKUP: usize = 2_000;
/// A definition's source is cut past this many lines…
pub const MAX_DEFINITION_LINES: usize = 200;
/// …and this many characters (a minified line …).
const MAX_SOURCE_CHARS: usize = 8_000;
/// [`Reader::definitions`] parses at most this many pending files (newest first)
/// looking for a definition the index does not know yet.
const MAX_PENDING_PARSED: usize = 200;
/// A matching line is cut to this many characters.
const MAX_MATCH_CHARS: usize = 300;

/// Why a read could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request names something that cannot be answered for (a path that does not
    /// exist, lies behind a symlink, is not indexed …): the message says which.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Index(#[from] Error),
}

/// The read side of an engine: see the module docs.
pub struct Reader {
    /// The project's files, held open at the root: every read goes through it.
    tree: Tree,
    /// A read-only connection of its own: SQLite in WAL mode lets it read while the
    /// engine writes.
    store: Mutex<Store>,
    /// Distinct symbol names, lower-cased, as of an index write counter: a substring
    /// search scans these in memory instead of every symbol row in SQLite.
    names: Mutex<Option<NameList>>,
    /// The indexed files as of an index write counter.
    files: Mutex<Option<(u64, Arc<Vec<FileEntry>>)>>,
}

/// A file's definitions, from the index or parsed from the file as it is now.
#[derive(Debug)]
pub enum Outline {
    Symbols {
        hits: Vec<SymbolHit>,
        /// The file changed since the last sync: parsed as it is on disk now.
        reparsed: bool,
    },
    /// Indexed, and deleted since the last sync.
    Deleted,
}

/// A definition with its source lines as the file is on disk now.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub kind: String,
    pub family: String,
    pub path: RelPath,
    pub line: u32,
    pub end_line: u32,
    pub container: Option<String>,
    pub source: String,
    /// The file changed since the last sync and the definition was found again by
    /// parsing it now.
    pub reparsed: bool,
}

/// A compiled text query: the same pattern matched per line, and (when that finds the
/// same lines) over whole buffers first.
pub struct TextQuery {
    buffer_regex: Option<regex::bytes::Regex>,
    line_regex: regex::bytes::Regex,
    /// Lines shown before and after each matching line (as `rg -C`).
    context: usize,
}

/// How a text query reads its pattern.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// The pattern is a literal string, not a regular expression.
    pub fixed_strings: bool,
    pub case_insensitive: bool,
    /// Lines of context before and after each matching line.
    pub context: usize,
}

/// At most this many context lines on each side of a match.
pub const MAX_CONTEXT: usize = 10;

impl TextQuery {
    /// Compiles `pattern` (Rust `regex` syntax, or a literal, escaped first) as `options`
    /// say; the error is the regex crate's.
    pub fn new(
        pattern: &str,
        options: TextOptions,
    ) -> std::result::Result<TextQuery, regex::Error> {
        let escaped;
        let pattern = if options.fixed_strings {
            escaped = regex::escape(pattern);
            escaped.as_str()
        } else {
            pattern
        };
        // Matched line by line, but searched over the whole file: one scan finds the
        // candidate lines (in multi-line, CRLF-aware mode `^`, `$` and `\b` behave at a
        // line's edges as they do on the line alone), and each candidate line is then
        // checked on its own, so a match spanning lines never counts.
        let build = |multi_line: bool| {
            regex::bytes::RegexBuilder::new(pattern)
                .size_limit(1 << 22)
                .multi_line(multi_line)
                .case_insensitive(options.case_insensitive)
                .build()
        };
        let buffer_regex = build(true)?;
        let line_regex = build(false)?;
        Ok(TextQuery {
            buffer_regex: searchable_as_buffer(pattern).then_some(buffer_regex),
            line_regex,
            context: options.context.min(MAX_CONTEXT),
        })
    }
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextHit {
    pub path: RelPath,
    pub line: u32,
    pub text: String,
    /// Up to the query's `context` lines before and after it, in file order.
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// The first matches of a text search, in path and line order.
#[derive(Debug)]
pub struct TextSearch {
    pub hits: Vec<TextHit>,
    /// Every file was read: `hits` holds every match there is (else at least `wanted`).
    pub complete: bool,
}

/// The index's statistics, for a process that runs no engine (`codelens init`'s
/// summary, telemetry's project facts): one read-only connection, closed at once.
pub fn index_stats(project: &Project) -> Result<IndexStats> {
    Store::open_read_only(&project.db_path())?.stats()
}

impl Reader {
    pub fn open(project: &Project) -> Result<Reader> {
        let store = Store::open_read_only(&project.db_path())?;
        store.set_page_cache_kib(READER_PAGE_CACHE_KIB)?;
        Ok(Reader {
            tree: project.tree()?,
            store: Mutex::new(store),
            names: Mutex::new(None),
            files: Mutex::new(None),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> Result<IndexStats> {
        self.store().stats()
    }

    /// Symbols whose name matches `query`, a page of them and how many in all.
    pub fn search_symbols(
        &self,
        query: &str,
        mode: NameMatch,
        kind: Option<&str>,
        language: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<SymbolHit>, u64)> {
        let store = self.store();
        let matching = match mode {
            NameMatch::Exact => None,
            _ => self.matching_names(&store, query, mode),
        };
        match matching {
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                store.symbols_with_names(&names, query, kind, language, limit, offset)
            }
            None => store.search_symbols(query, mode, kind, language, limit, offset),
        }
    }

    /// The distinct names a prefix or substring query matches (ASCII case-insensitive),
    /// from the in-memory name list, reloaded when the index changed; `None` when too
    /// many match for a lookup by name to pay off.
    fn matching_names(&self, store: &Store, query: &str, mode: NameMatch) -> Option<Vec<String>> {
        if query.is_empty() || query.contains('\n') {
            return None;
        }
        let generation = store.generation().ok()?;
        let mut cache = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if cache
            .as_ref()
            .is_none_or(|list| list.generation != generation)
        {
            *cache = Some(NameList::new(
                generation,
                store.distinct_symbol_names().ok()?,
            ));
        }
        let list = cache.as_ref()?;
        let needle = query.to_ascii_lowercase();
        let indexes = list.matching(
            needle.as_bytes(),
            mode == NameMatch::Prefix,
            MAX_NAMES_IN_LOOKUP,
        )?;
        Some(indexes.into_iter().map(|i| list.names[i].clone()).collect())
    }

    /// The indexed files, from memory unless the index changed since they were read.
    pub fn files(&self) -> Result<Arc<Vec<FileEntry>>> {
        let store = self.store();
        let generation = store.generation()?;
        let mut cache = self.files.lock().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some((g, files)) if *g == generation => Ok(Arc::clone(files)),
            _ => {
                let files = Arc::new(store.files()?);
                *cache = Some((generation, Arc::clone(&files)));
                Ok(files)
            }
        }
    }

    /// Whether `rel` is pending in `snapshot`, or no longer what the index recorded
    /// for it (or cannot be trusted: not a regular file, no row): then line numbers
    /// must come from parsing the file now, even when no watcher reported the edit
    /// (watcher off, a follower between polls, a settle that timed out).
    pub fn is_stale(&self, snapshot: &Snapshot, rel: &RelPath) -> bool {
        let path = rel.to_string();
        if snapshot.pending.iter().any(|p| p.path == path) {
            return true;
        }
        let Ok(Some(now)) = self.tree.file_stat(rel) else {
            return true;
        };
        (self.store().file_stat(rel).ok().flatten()).is_none_or(|indexed| indexed != now)
    }

    fn is_indexed(&self, rel: &RelPath) -> bool {
        self.store().has_file(rel).unwrap_or(false)
    }

    /// The content of a regular file inside the project, through the tree (never
    /// through a symlink) and never past the index's size cap.
    pub fn read_regular(&self, rel: &RelPath) -> Option<Vec<u8>> {
        self.tree.read_file(rel, scan::MAX_FILE_BYTES).ok()?.content
    }

    /// Why `rel`, which the index does not hold and which cannot be read now, is not
    /// answered for: it does not exist, or is (or lies behind) a symlink.
    pub fn not_readable(&self, rel: &RelPath) -> String {
        match self.tree.lstat(rel) {
            Ok((EntryKind::Symlink, _)) => {
                format!("{rel} is a symlink; codelens never follows symlinks")
            }
            Ok((EntryKind::Dir, _)) => format!("{rel} is a directory"),
            Ok(_) => format!("{rel} is not a regular file codelens can read"),
            Err(error)
                if error.kind() != std::io::ErrorKind::NotFound && contain::is_absent(&error) =>
            {
                format!("{rel} lies behind a symlink; codelens never follows symlinks")
            }
            Err(_) => format!("{rel} does not exist and is not in the index"),
        }
    }

    /// The definitions of one file, in source order: from the index, or, when the file
    /// is stale, parsed from the file as it is now.
    pub fn outline(
        &self,
        snapshot: &Snapshot,
        rel: &RelPath,
    ) -> std::result::Result<Outline, ReadError> {
        if !self.is_stale(snapshot, rel) {
            let store = self.store();
            return match store.has_file(rel)? {
                true => Ok(Outline::Symbols {
                    hits: store.file_symbols(rel)?,
                    reparsed: false,
                }),
                false => Err(ReadError::Refused(format!(
                    "{rel} is not in the index (ignored, or not a file)"
                ))),
            };
        }
        // Never serve stale line numbers as current: parse the file as it is now.
        let Some(content) = self.read_regular(rel) else {
            if !self.is_indexed(rel) {
                return Err(ReadError::Refused(self.not_readable(rel)));
            }
            return Ok(Outline::Deleted);
        };
        let lang = Lang::detect_with_content(rel.file_name(), &content);
        let hits = SymbolExtractor::new()
            .extract(lang, &content)
            .into_iter()
            .map(|s| parsed_hit(rel, lang, s))
            .collect();
        Ok(Outline::Symbols {
            hits,
            reparsed: true,
        })
    }

    /// Every definition of `name` (optionally only in `only`), with its source as the
    /// file is now. A stale file's indexed lines may point at another symbol: it is
    /// parsed again. A definition may also have moved to a file the index has not seen
    /// yet (a new file, or one that did not define it at the last sync): pending files
    /// are parsed too, so the answer never says "not found" while the definition sits
    /// in a file the banner would name.
    pub fn definitions(
        &self,
        snapshot: &Snapshot,
        name: &str,
        only: Option<&RelPath>,
    ) -> std::result::Result<Vec<Definition>, ReadError> {
        let hits: Vec<SymbolHit> = (self.store().symbols_named(name)?)
            .into_iter()
            .filter(|h| only.is_none_or(|p| &h.path == p))
            .collect();
        let mut paths: Vec<RelPath> = hits.iter().map(|h| h.path.clone()).collect();
        paths.dedup();
        let mut candidates: Vec<RelPath> = snapshot
            .pending
            .iter()
            .take(MAX_PENDING_PARSED)
            .map(|p| RelPath::from_bytes(p.path.as_bytes().to_vec()))
            .filter(|p| only.is_none_or(|o| o == p))
            .filter(|p| !paths.contains(p))
            .filter(|p| Lang::may_have_symbols(p.file_name()))
            .collect();
        candidates.sort();
        paths.extend(candidates);
        if let Some(only) = only
            && paths.is_empty()
            && !self.tree.exists(only)
            && !self.is_indexed(only)
        {
            return Err(ReadError::Refused(self.not_readable(only)));
        }
        let mut definitions = Vec::new();
        for path in paths {
            let Some(content) = self.read_regular(&path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&content);
            let lines: Vec<&str> = text.lines().collect();
            let reparsed = self.is_stale(snapshot, &path);
            let found: Vec<SymbolHit> = if reparsed {
                let lang = Lang::detect_with_content(path.file_name(), &content);
                SymbolExtractor::new()
                    .extract(lang, &content)
                    .into_iter()
                    .filter(|s| s.name == name)
                    .map(|s| parsed_hit(&path, lang, s))
                    .collect()
            } else {
                (hits.iter().filter(|h| h.path == path)).cloned().collect()
            };
            for hit in found {
                let start = (hit.line as usize).saturating_sub(1).min(lines.len());
                let end = (hit.end_line as usize)
                    .min(lines.len())
                    .min(start + MAX_DEFINITION_LINES)
                    .max(start);
                definitions.push(Definition {
                    name: hit.name,
                    kind: hit.kind,
                    family: hit.family,
                    path: path.clone(),
                    line: hit.line,
                    end_line: hit.end_line,
                    container: hit.container,
                    source: cut_source(lines[start..end].join("\n")),
                    reparsed,
                });
            }
        }
        Ok(definitions)
    }

    /// The first `wanted` lines matching `query` in the indexed text files that
    /// `include` accepts, in path and line order, read as they are on disk now.
    pub fn search_text(
        &self,
        query: &TextQuery,
        include: impl Fn(&RelPath) -> bool,
        wanted: usize,
    ) -> Result<TextSearch> {
        let files: Vec<RelPath> = (self.files()?.iter())
            .filter(|f| f.skipped.is_none() && include(&f.path))
            .map(|f| f.path.clone())
            .collect();
        // Files in parallel, each worker stopping once the limit is reached anywhere.
        let found = Mutex::new(Vec::<TextHit>::new());
        let next = AtomicUsize::new(0);
        let stopped_early = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..scan::worker_count() {
                scope.spawn(|| {
                    loop {
                        // Checked before claiming a file: every claimed file is read, so
                        // the files read are always a prefix of the list (in path order)
                        // and the first `wanted` matches found are the first in order.
                        if found.lock().map(|f| f.len() >= wanted).unwrap_or(true) {
                            if next.load(Ordering::Relaxed) < files.len() {
                                // Files left unread: whatever was found is not the total.
                                stopped_early.store(true, Ordering::Relaxed);
                            }
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let Some(content) = self.read_regular(path) else {
                            continue;
                        };
                        let matched = matching_lines(
                            &content,
                            query.buffer_regex.as_ref(),
                            &query.line_regex,
                        );
                        // Only a file with a match is split into lines, for its context.
                        let lines: Vec<&[u8]> = if query.context > 0 && !matched.is_empty() {
                            content_lines(&content).collect()
                        } else {
                            Vec::new()
                        };
                        let shown = |range: std::ops::Range<usize>| -> Vec<String> {
                            lines[range].iter().map(|l| cut_line(l)).collect()
                        };
                        let local: Vec<TextHit> = matched
                            .into_iter()
                            .map(|(line, text)| {
                                let at = (line as usize - 1).min(lines.len());
                                let (before, after) = if lines.is_empty() {
                                    (Vec::new(), Vec::new())
                                } else {
                                    let end = (at + 1 + query.context).min(lines.len());
                                    (
                                        shown(at.saturating_sub(query.context)..at),
                                        shown((at + 1).min(end)..end),
                                    )
                                };
                                TextHit {
                                    path: path.clone(),
                                    line,
                                    text: cut_line(text),
                                    before,
                                    after,
                                }
                            })
                            .collect();
                        if !local.is_empty()
                            && let Ok(mut all) = found.lock()
                        {
                            all.extend(local);
                        }
                    }
                });
            }
        });
        let mut hits = found.into_inner().unwrap_or_default();
        hits.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
        Ok(TextSearch {
            hits,
            complete: !stopped_early.into_inner(),
        })
    }

    /// The snapshot with the referenced files that differ from their index row but that
    /// no watcher reported (auto-sync off or degraded, a follower between its scans)
    /// added as `unsynced`, or `None` when there are none. A file whose stat changed
    /// counts, as in `codelens status` before hashing: an answer that may quote stale
    /// lines says so. With a native watcher the pending set is complete (the answer
    /// settled first) and nothing is looked at.
    pub fn with_unreported_edits(
        &self,
        snapshot: &Snapshot,
        referenced: &[String],
    ) -> Option<Snapshot> {
        // Only a verdict that vouches for the pending set makes the check needless (a
        // follower whose writer does not answer still has a native watcher mode).
        snapshot.freshness.unverified()?;
        // Known pending files, then each path once (a search names a file per hit).
        let mut looked_at: HashSet<&str> =
            snapshot.pending.iter().map(|p| p.path.as_str()).collect();
        let store = self.store();
        let mut unreported = Vec::new();
        for path in referenced {
            if !looked_at.insert(path) {
                continue;
            }
            let rel = RelPath::from_bytes(path.as_bytes().to_vec());
            let Ok(Some(indexed)) = store.file_stat(&rel) else {
                continue;
            };
            let (edited_ns, change) = match self.tree.file_stat(&rel) {
                Ok(Some(now)) if now == indexed => continue,
                Ok(Some(now)) => (now.mtime_ns, Change::Modified),
                // Deleted since (or no longer a file, or behind a symlink): seen gone now.
                Ok(None) | Err(_) => (now_ns(), Change::Deleted),
            };
            unreported.push(PendingEntry {
                path: path.clone(),
                first_edit_ns: edited_ns,
                last_edit_ns: edited_ns,
                state: PendingState::Unsynced,
                change,
            });
        }
        if unreported.is_empty() {
            return None;
        }
        let mut snapshot = snapshot.clone();
        snapshot.pending.extend(unreported);
        Some(snapshot)
    }
}

/// A line as an answer shows it: lossy UTF-8, cut past [`MAX_MATCH_CHARS`].
fn cut_line(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .take(MAX_MATCH_CHARS)
        .collect()
}

/// A definition's source, cut past [`MAX_SOURCE_CHARS`] on a character boundary.
fn cut_source(mut source: String) -> String {
    if source.len() > MAX_SOURCE_CHARS {
        let cut = (0..=MAX_SOURCE_CHARS)
            .rev()
            .find(|&i| source.is_char_boundary(i))
            .unwrap_or(0);
        source.truncate(cut);
        source.push_str("\n… (cut: the definition is longer)");
    }
    source
}

/// Distinct symbol names as of an index write counter, laid out for a fast substring
/// scan: all lower-cased names in one buffer, each followed by `\n`.
struct NameList {
    generation: u64,
    names: Vec<String>,
    /// `lowered[starts[i]..starts[i + 1] - 1]` is `names[i]` lower-cased.
    lowered: Vec<u8>,
    starts: Vec<usize>,
}

impl NameList {
    fn new(generation: u64, names: Vec<String>) -> NameList {
        let mut lowered = Vec::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        let mut starts = Vec::with_capacity(names.len() + 1);
        for name in &names {
            starts.push(lowered.len());
            lowered.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            lowered.push(b'\n');
        }
        starts.push(lowered.len());
        NameList {
            generation,
            names,
            lowered,
            starts,
        }
    }

    /// Indexes of the names containing (or starting with) `needle`, lower-cased; `None`
    /// past `max` of them.
    fn matching(&self, needle: &[u8], prefix_only: bool, max: usize) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        let mut last = usize::MAX;
        // One SIMD pass over all names; a name's own `\n` keeps matches inside it.
        for at in memchr::memmem::find_iter(&self.lowered, needle) {
            let index = self.starts.partition_point(|&s| s <= at) - 1;
            if index == last || (prefix_only && self.starts[index] != at) {
                continue;
            }
            last = index;
            if found.len() == max {
                return None;
            }
            found.push(index);
        }
        Some(found)
    }
}

/// The lines of `content` that `line_regex` matches, with their 1-based numbers and
/// without their line ending. `buffer_regex` (the same pattern in multi-line mode)
/// finds the candidates in one pass over the whole buffer, so a file without a match
/// costs one scan instead of one search per line.
fn matching_lines<'a>(
    content: &'a [u8],
    buffer_regex: Option<&regex::bytes::Regex>,
    line_regex: &regex::bytes::Regex,
) -> Vec<(u32, &'a [u8])> {
    // A carriage return changes what `.` and `$` see across the whole buffer: such files
    // (and patterns the caller found mode-dependent) are searched line by line.
    let Some(buffer_regex) = buffer_regex.filter(|_| memchr::memchr(b'\r', content).is_none())
    else {
        return content_lines(content)
            .enumerate()
            .filter(|(_, line)| line_regex.is_match(line))
            .map(|(n, line)| (n as u32 + 1, line))
            .collect();
    };
    let mut found = Vec::new();
    let mut line_number = 1u32;
    let mut counted_to = 0;
    let mut from = 0;
    while from <= content.len() {
        let Some(hit) = buffer_regex.find_at(content, from) else {
            break;
        };
        let start = content[..hit.start()]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Past the last line ending there is no line (as `str::lines` sees it).
        if start == content.len() && (content.is_empty() || content.ends_with(b"\n")) {
            break;
        }
        let end = memchr::memchr(b'\n', &content[hit.start()..])
            .map_or(content.len(), |i| hit.start() + i);
        line_number += memchr::memchr_iter(b'\n', &content[counted_to..start]).count() as u32;
        counted_to = start;
        let line = &content[start..end];
        if line_regex.is_match(line) {
            found.push((line_number, line));
        }
        // On to the next line (an empty match at the very end stops the loop).
        from = end + 1;
    }
    found
}

/// Whether `pattern` matches the same lines searched over a whole buffer in multi-line
/// mode: text anchors (`\A`, `\z`) and inline flags (`(?-m)` …) mean something else
/// there, so those patterns are matched line by line.
fn searchable_as_buffer(pattern: &str) -> bool {
    !["\\A", "\\z", "(?"]
        .iter()
        .any(|mode_dependent| pattern.contains(mode_dependent))
}

/// The lines of `content` as `str::lines` makes them: split at `\n`, a trailing `\r`
/// dropped, no empty line after a final line ending.
fn content_lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    body.split(|&b| b == b'\n')
        .filter(move |_| !content.is_empty())
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// A symbol found by parsing a file now, as the index would store it.
fn parsed_hit(path: &RelPath, lang: Lang, symbol: Symbol) -> SymbolHit {
    SymbolHit {
        path: path.clone(),
        name: symbol.name,
        kind: symbol.kind,
        family: symbol.family.name().to_string(),
        line: symbol.line,
        column: symbol.column,
        end_line: symbol.end_line,
        container: symbol.container,
        language: Some(lang.name().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> NameList {
        NameList::new(1, names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn names_match_by_substring_and_prefix_ignoring_ascii_case() {
        let names = list(&["IndexStore", "open", "openStore", "storeStore", "Zebra"]);
        let found = |needle: &str, prefix| {
            names
                .matching(needle.as_bytes(), prefix, 10)
                .unwrap()
                .into_iter()
                .map(|i| names.names[i].as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found("store", false),
            vec!["IndexStore", "openStore", "storeStore"]
        );
        assert_eq!(found("store", true), vec!["storeStore"]);
        assert_eq!(found("open", true), vec!["open", "openStore"]);
        // A match never spans two names.
        assert!(found("ezebra", false).is_empty());
        assert!(
            names.matching(b"o", false, 2).is_none(),
            "past the cap: let SQLite scan"
        );
    }

    #[test]
    fn whole_buffer_search_finds_exactly_the_lines_a_per_line_search_finds() {
        let contents: [&[u8]; 8] = [
            b"a\rb\nlone carriage return\n",
            b"",
            b"fn main() {}\n",
            b"alpha\nbeta\n\ngamma beta\nlast without newline",
            b"crlf line\r\nbeta\r\n\r\nend\r\n",
            b"a\nb\na b\n  \n\tindented beta\n",
            b"\n\n\n",
            b"word\nwordy\nsword\nword",
        ];
        let patterns = [
            "beta",
            "^beta$",
            "^$",
            "a\\sb",
            "a\\nb",
            "\\bword\\b",
            "^\\s+",
            "e$",
            ".",
            "x^",
            "^",
            "a.b",
            "\\Aalpha",
            "beta\\z",
            "(?-m)^beta$",
            "(?s)a.b",
        ];
        for pattern in patterns {
            let multi = regex::bytes::RegexBuilder::new(pattern)
                .multi_line(true)
                .build()
                .unwrap();
            let multi = searchable_as_buffer(pattern).then_some(&multi);
            let single = regex::bytes::Regex::new(pattern).unwrap();
            let per_line = regex::Regex::new(pattern).unwrap();
            for content in contents {
                let text = std::str::from_utf8(content).unwrap();
                let expected: Vec<(u32, String)> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, line)| per_line.is_match(line))
                    .map(|(n, line)| (n as u32 + 1, line.to_string()))
                    .collect();
                let found: Vec<(u32, String)> = matching_lines(content, multi, &single)
                    .into_iter()
                    .map(|(n, line)| (n, String::from_utf8_lossy(line).into_owned()))
                    .collect();
                assert_eq!(found, expected, "pattern {pattern:?} in {text:?}");
            }
        }
    }
}
