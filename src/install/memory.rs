//! The optional note for an agent's memory file (`CLAUDE.md`, `AGENTS.md` …): what the
//! staleness banner means, appended once between markers and removed by `uninstall`.

pub(super) const BEGIN: &str =
    "<!-- codelens:begin (written by `codelens install`; `codelens uninstall` removes it) -->";
pub(super) const END: &str = "<!-- codelens:end -->";

const BODY: &str = "\
## codelens
The `codelens` MCP server answers code questions (symbols, outlines, file lists, text
search) from this project's index. When an answer starts with \"⚠️ Some files referenced
below were edited since the last index sync\", the files it lists have changed since they
were indexed: read those files directly for their exact content; the rest of the answer
is fresh. A warning that this worktree reads another checkout's index means answers may
describe another branch: run the `codelens init -i` it suggests.";

/// `text` with the note appended (after one blank line), or unchanged when a note is
/// already there.
pub(super) fn add(text: &str) -> String {
    if text.contains(BEGIN) {
        return text.to_string();
    }
    let mut out = text.to_string();
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(BEGIN);
    out.push('\n');
    out.push_str(BODY);
    out.push('\n');
    out.push_str(END);
    out.push('\n');
    out
}

/// `text` without the note (and the blank line `add` put before it).
pub(super) fn remove(text: &str) -> String {
    let Some(start) = text.find(BEGIN) else {
        return text.to_string();
    };
    let Some(end_at) = text[start..].find(END).map(|i| start + i + END.len()) else {
        // A begin marker without its end: someone edited it; leave it to them.
        return text.to_string();
    };
    let end = if text[end_at..].starts_with('\n') {
        end_at + 1
    } else {
        end_at
    };
    let mut head = &text[..start];
    if head.ends_with("\n\n") {
        head = &head[..head.len() - 1];
    }
    format!("{head}{}", &text[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_once_and_removed_exactly() {
        for original in ["", "# Project notes\n\nBe kind.\n"] {
            let added = add(original);
            assert_eq!(add(&added), added);
            assert_eq!(added.matches(BEGIN).count(), 1);
            assert_eq!(remove(&added), original);
        }
    }
}
