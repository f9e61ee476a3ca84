//! The ignore rules: which paths the index leaves out. One implementation for the walk
//! and the watcher, with the `ignore` crate's precedence: each directory's
//! `.codelensignore`, then `.ignore`, then `.gitignore` (for each kind the deepest
//! directory that has a say decides), then the repository's `info/exclude`, then the
//! global git excludes. Hidden files are not special; `.gitignore` applies outside git.
//!
//! The per-directory files are read through the [`Tree`](super::contain::Tree) like
//! every other file of the project, never through a symlink (git does not follow one
//! for `.gitignore` either). The two global files live outside the tree's content: in
//! git's own directory and in the user's configuration.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rustix::fs::OFlags;

use super::contain::{self, Tree};
use super::scan::{FileStat, IgnoreSource};
use super::{RelPath, git};

/// The per-directory files whose rules the walk honours, in the order they are looked
/// for.
pub const IGNORE_FILE_NAMES: [&str; 3] = [".gitignore", ".ignore", ".codelensignore"];
/// How large an ignore file may be before it is read no further (git has no limit; a
/// multi-megabyte `.gitignore` is hostile or a mistake).
const MAX_IGNORE_FILE_BYTES: u64 = 1 << 20;

/// One directory's rules, by precedence: `.codelensignore`, `.ignore`, `.gitignore`.
#[derive(Debug, Default)]
pub struct DirRules {
    by_precedence: [Option<Gitignore>; 3],
}

/// The precedence slot of an ignore file name.
fn precedence(name: &str) -> usize {
    match name {
        ".codelensignore" => 0,
        ".ignore" => 1,
        _ => 2,
    }
}

impl DirRules {
    /// Reads the ignore files of the open directory `dir` (at `dir_path`), each with the
    /// stat of the descriptor read. `None` when it has none.
    pub fn read(dir: BorrowedFd<'_>, dir_path: &Path) -> (Option<DirRules>, Vec<IgnoreSource>) {
        let mut rules = DirRules::default();
        let mut sources = Vec::new();
        for name in IGNORE_FILE_NAMES {
            let Ok(fd) =
                contain::open_child(dir, name.as_bytes(), OFlags::RDONLY | OFlags::NONBLOCK)
            else {
                continue;
            };
            let Ok(stat) = rustix::fs::fstat(&fd) else {
                continue;
            };
            if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                != rustix::fs::FileType::RegularFile
            {
                continue;
            }
            let stat = FileStat::from_stat(&stat);
            let path = dir_path.join(name);
            let read =
                contain::read_open_file(std::fs::File::from(fd), stat, MAX_IGNORE_FILE_BYTES);
            let content = read.ok().and_then(|r| r.content).unwrap_or_default();
            rules.by_precedence[precedence(name)] = matcher(dir_path, &path, &content);
            sources.push(IgnoreSource {
                path,
                stat: Some(stat),
            });
        }
        let any = rules.by_precedence.iter().any(Option::is_some);
        (any.then_some(rules), sources)
    }

    /// The rules of directory `dir` read through `tree` (`None` when it has none or
    /// cannot be opened without following a symlink).
    pub fn read_in(tree: &Tree, dir: &RelPath) -> Option<DirRules> {
        let fd = tree.open_dir(dir).ok()?;
        DirRules::read(std::os::fd::AsFd::as_fd(&fd), &tree.display_path(dir)).0
    }
}

/// The rules of a directory and of all above it: a persistent list, shared by the
/// directories below.
#[derive(Debug, Default)]
pub struct RuleChain {
    rules: Option<DirRules>,
    parent: Option<Arc<RuleChain>>,
}

impl RuleChain {
    pub fn root() -> Arc<RuleChain> {
        Arc::new(RuleChain::default())
    }

    /// `parent` with one more directory's rules below it.
    pub fn push(parent: &Arc<RuleChain>, rules: Option<DirRules>) -> Arc<RuleChain> {
        if rules.is_none() {
            return Arc::clone(parent);
        }
        Arc::new(RuleChain {
            rules,
            parent: Some(Arc::clone(parent)),
        })
    }

    /// The rules from the deepest directory up.
    fn deepest_first(&self) -> impl Iterator<Item = &DirRules> {
        std::iter::successors(Some(self), |chain| chain.parent.as_deref())
            .filter_map(|chain| chain.rules.as_ref())
    }

    /// Whether `path` (absolute: the root joined with its relative path) is ignored.
    pub fn is_ignored(&self, globals: &GlobalRules, path: &Path, is_dir: bool) -> bool {
        is_ignored(self.deepest_first(), globals, path, is_dir)
    }
}

/// The rules that do not live in the tree's directories: the repository's
/// `info/exclude` and the global excludes file, both rooted at the project root.
#[derive(Debug)]
pub struct GlobalRules {
    rules: Vec<Gitignore>,
}

impl GlobalRules {
    /// Reads them (by path: they are git's and the user's files, not the project's).
    pub fn load(root: &Path) -> GlobalRules {
        let mut rules = Vec::new();
        // Precedence: info/exclude over the global file.
        for path in global_source_paths(root).into_iter().rev() {
            #[allow(clippy::disallowed_methods)] // outside the project's content
            let Ok(content) = std::fs::read(&path) else {
                continue;
            };
            rules.extend(matcher(root, &path, &content));
        }
        GlobalRules { rules }
    }

    pub fn none() -> GlobalRules {
        GlobalRules { rules: Vec::new() }
    }
}

/// Whether `path` is ignored by `chain` (deepest directory first) and the globals.
pub fn is_ignored<'a>(
    chain: impl Iterator<Item = &'a DirRules>,
    globals: &GlobalRules,
    path: &Path,
    is_dir: bool,
) -> bool {
    let mut found: [Match<()>; 3] = [Match::None, Match::None, Match::None];
    for rules in chain {
        for (slot, matcher) in found.iter_mut().zip(&rules.by_precedence) {
            if slot.is_none()
                && let Some(matcher) = matcher
            {
                *slot = matcher.matched(path, is_dir).map(|_| ());
            }
        }
        if found.iter().all(|m| !m.is_none()) {
            break;
        }
    }
    let decided = found.into_iter().find(|m| !m.is_none()).or_else(|| {
        globals
            .rules
            .iter()
            .map(|g| g.matched(path, is_dir).map(|_| ()))
            .find(|m| !m.is_none())
    });
    decided.is_some_and(|m| m.is_ignore())
}

/// A matcher for the lines of one ignore file, rooted at `dir`; `None` when it has no
/// rule. Lines are read as git does: a BOM at the start is dropped, CRLF is a line end,
/// and reading stops at the first line that is not UTF-8 (as the `ignore` crate does).
fn matcher(dir: &Path, file: &Path, content: &[u8]) -> Option<Gitignore> {
    let mut builder = GitignoreBuilder::new(dir);
    let text = content
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(content);
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            break;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A bad glob is skipped, as git skips it; the others still apply.
        let _ = builder.add_line(Some(file.to_path_buf()), line);
    }
    builder.build().ok().filter(|g| !g.is_empty())
}

/// The ignore files outside the tree's own directories that the walk honours: the
/// global excludes file and the repository's `info/exclude`.
pub fn global_source_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ignore::gitignore::gitconfig_excludes_path()
        .into_iter()
        .collect();
    if let Some(git_dir) = git::common_dir_of(root) {
        paths.push(git_dir.join("info").join("exclude"));
    }
    paths
}

impl IgnoreSource {
    /// The ignore file at `path` as it is now: through the tree when it lies in the
    /// project, by path when it is one of the global ones.
    pub fn read(tree: &Tree, path: PathBuf) -> IgnoreSource {
        let stat = match tree.relative(&path) {
            Some(rel) => tree.file_stat(&rel).ok().flatten(),
            None => {
                #[allow(clippy::disallowed_methods)] // outside the project's content
                let meta = path.symlink_metadata();
                meta.ok().map(|m| FileStat::from_metadata(&m))
            }
        };
        IgnoreSource { path, stat }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(files: &[(&str, &str)]) -> DirRules {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        DirRules::read(std::os::fd::AsFd::as_fd(&fd), Path::new("/p"))
            .0
            .unwrap()
    }

    #[test]
    fn codelensignore_beats_ignore_beats_gitignore_and_deeper_beats_shallower() {
        let top = rules(&[
            (".gitignore", "*.log\nbuild/\n"),
            (".codelensignore", "!keep.log\n"),
        ]);
        let globals = GlobalRules::none();
        let only_top = || std::iter::once(&top);
        assert!(is_ignored(
            only_top(),
            &globals,
            Path::new("/p/a.log"),
            false
        ));
        assert!(!is_ignored(
            only_top(),
            &globals,
            Path::new("/p/keep.log"),
            false
        ));
        assert!(is_ignored(
            only_top(),
            &globals,
            Path::new("/p/build"),
            true
        ));
        assert!(!is_ignored(
            only_top(),
            &globals,
            Path::new("/p/build"),
            false
        ));
        // A deeper `.gitignore` re-includes what a shallower one ignored.
        let sub = rules(&[(".gitignore", "!b.log\n")]);
        let both = [&sub, &top].into_iter();
        assert!(!is_ignored(both, &globals, Path::new("/p/b.log"), false));
        // `.ignore` at the top beats `.gitignore` deeper.
        let top = rules(&[(".ignore", "c.txt\n")]);
        let sub = rules(&[(".gitignore", "!c.txt\n")]);
        let chain = [&sub, &top].into_iter();
        assert!(is_ignored(chain, &globals, Path::new("/p/c.txt"), false));
    }

    #[test]
    fn bom_crlf_and_a_symlinked_ignore_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "\u{feff}a.txt\r\nb.txt\r\n").unwrap();
        std::fs::write(dir.path().join("elsewhere"), "c.txt\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join(".ignore"))
            .unwrap();
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let (rules, sources) = DirRules::read(std::os::fd::AsFd::as_fd(&fd), Path::new("/p"));
        let rules = rules.unwrap();
        // The symlinked `.ignore` is not followed, as git does not follow one.
        assert_eq!(sources.len(), 1);
        let globals = GlobalRules::none();
        let ignored = |p: &str| is_ignored(std::iter::once(&rules), &globals, Path::new(p), false);
        assert!(ignored("/p/a.txt"));
        assert!(ignored("/p/b.txt"));
        assert!(!ignored("/p/c.txt"));
    }
}
