//! The git-hooks fallback for trees the watcher cannot watch (WSL2 `/mnt`, network
//! file systems): `post-checkout`, `post-merge`, `post-commit` and `post-rewrite` run
//! `codelens sync -q` in the background. Installing is idempotent and keeps whatever a
//! hook already does; uninstalling removes exactly the block it added.

// Path-based access here is to git's hook scripts under .git/hooks, never to the project's content.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use super::{Error, Result};

pub const HOOKS: [&str; 4] = ["post-checkout", "post-merge", "post-commit", "post-rewrite"];
const BEGIN: &str = "# >>> codelens (codelens hooks install) >>>";
const END: &str = "# <<< codelens <<<";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookChange {
    Created,
    Inserted,
    Updated,
    Unchanged,
    Removed,
    /// The file held only our block: deleted.
    Deleted,
    Absent,
}

/// The hooks directory of the repository containing `dir` (`core.hooksPath` if set;
/// linked worktrees share their repository's hooks).
pub fn hooks_dir(dir: &Path) -> Result<PathBuf> {
    let repo = gix::discover(dir)
        .map_err(|e| Error::Git(format!("git hooks need a git repository: {e}")))?;
    let configured = repo
        .config_snapshot()
        .trusted_path("core.hooksPath")
        .ok()
        .flatten();
    Ok(match configured {
        Some(path) if path.is_absolute() => path,
        Some(path) => repo.workdir().unwrap_or(repo.common_dir()).join(path),
        None => repo.common_dir().join("hooks"),
    })
}

fn block(codelens: &Path) -> String {
    let quoted = codelens.display().to_string().replace('\'', r"'\''");
    format!(
        "{BEGIN}\n# Keeps the codelens index in sync where its file watcher is off.\n\
         '{quoted}' sync -q >/dev/null 2>&1 &\n{END}\n"
    )
}

/// Adds (or refreshes) our block in each hook under `hooks_dir`.
pub fn install(hooks_dir: &Path, codelens: &Path) -> Result<Vec<(&'static str, HookChange)>> {
    std::fs::create_dir_all(hooks_dir).map_err(|e| Error::io(hooks_dir, e))?;
    let ours = block(codelens);
    let mut changes = Vec::new();
    for hook in HOOKS {
        let path = hooks_dir.join(hook);
        let change = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_executable(&path, &format!("#!/bin/sh\n{ours}"))?;
                HookChange::Created
            }
            Err(e) => return Err(Error::io(&path, e)),
            Ok(existing) => {
                if let Some(first) = existing.lines().next().filter(|l| l.starts_with("#!"))
                    && !first.contains("sh")
                {
                    return Err(Error::Git(format!(
                        "{} is not a shell script ({first}); add `codelens sync -q &` to it by hand",
                        path.display()
                    )));
                }
                match without_block(&existing) {
                    Some(rest) => {
                        let updated = insert_block(&rest, &ours);
                        if updated == existing {
                            HookChange::Unchanged
                        } else {
                            write_executable(&path, &updated)?;
                            HookChange::Updated
                        }
                    }
                    None => {
                        write_executable(&path, &insert_block(&existing, &ours))?;
                        HookChange::Inserted
                    }
                }
            }
        };
        changes.push((hook, change));
    }
    Ok(changes)
}

/// Removes our block from each hook, deleting hooks that held nothing else.
pub fn uninstall(hooks_dir: &Path) -> Result<Vec<(&'static str, HookChange)>> {
    let mut changes = Vec::new();
    for hook in HOOKS {
        let path = hooks_dir.join(hook);
        let change = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HookChange::Absent,
            Err(e) => return Err(Error::io(&path, e)),
            Ok(existing) => match without_block(&existing) {
                None => HookChange::Absent,
                Some(rest) if rest.trim() == "#!/bin/sh" || rest.trim().is_empty() => {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    HookChange::Deleted
                }
                Some(rest) => {
                    std::fs::write(&path, rest).map_err(|e| Error::io(&path, e))?;
                    HookChange::Removed
                }
            },
        };
        changes.push((hook, change));
    }
    Ok(changes)
}

/// The hook's text without our block, or `None` when it has none.
fn without_block(text: &str) -> Option<String> {
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END)? + start + END.len();
    let end = if text[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some(format!("{}{}", &text[..start], &text[end..]))
}

/// Right after the shebang, not at the end: a hook that ends in `exec …` or `exit`
/// (husky, pre-commit) would never reach a block appended after it.
fn insert_block(text: &str, block: &str) -> String {
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => format!("{first}\n{block}{rest}"),
        None if text.starts_with("#!") => format!("{text}\n{block}"),
        _ => format!("{block}{text}"),
    }
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut permissions = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .permissions();
        permissions.set_mode(permissions.mode() | 0o755);
        std::fs::set_permissions(path, permissions).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_twice_then_uninstall_restores_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let original = "#!/bin/bash\necho 'their own hook'\n";
        std::fs::write(dir.path().join("post-commit"), original).unwrap();
        let bin = Path::new("/opt/code lens/codelens");

        let first = install(dir.path(), bin).unwrap();
        assert!(first.contains(&("post-commit", HookChange::Inserted)));
        assert!(first.contains(&("post-merge", HookChange::Created)));
        let second = install(dir.path(), bin).unwrap();
        assert!(
            second.iter().all(|(_, c)| *c == HookChange::Unchanged),
            "{second:?}"
        );
        let commit_hook = std::fs::read_to_string(dir.path().join("post-commit")).unwrap();
        assert!(
            commit_hook.starts_with("#!/bin/bash\n# >>> codelens"),
            "{commit_hook}"
        );
        assert!(
            commit_hook.ends_with("echo 'their own hook'\n"),
            "{commit_hook}"
        );
        assert_eq!(commit_hook.matches(BEGIN).count(), 1);
        assert!(commit_hook.contains("'/opt/code lens/codelens' sync -q"));

        let removed = uninstall(dir.path()).unwrap();
        assert!(removed.contains(&("post-commit", HookChange::Removed)));
        assert!(removed.contains(&("post-merge", HookChange::Deleted)));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("post-commit")).unwrap(),
            original
        );
        assert!(!dir.path().join("post-merge").exists());
    }

    #[test]
    fn a_hook_in_another_language_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let python = "#!/usr/bin/env python3\nprint('hi')\n";
        std::fs::write(dir.path().join("post-checkout"), python).unwrap();
        assert!(install(dir.path(), Path::new("/bin/codelens")).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("post-checkout")).unwrap(),
            python
        );
    }
}
