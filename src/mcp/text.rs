//! Text tools: `search_text`.

use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchTextArgs {
    /// A regular expression (Rust `regex` syntax), matched line by line.
    pub pattern: String,
    /// Only files matching this glob: without `/` it matches file names at any depth
    /// (`*.rs`), with `/` paths from the project root (`src/**/*.ts`).
    #[serde(default)]
    pub path_glob: Option<String>,
    /// The pattern is a literal string, not a regular expression (default false).
    #[serde(default)]
    pub fixed_strings: Option<bool>,
    /// Match regardless of case (default false).
    #[serde(default)]
    pub case_insensitive: Option<bool>,
    /// Lines of context shown before and after each matching line, as `rg -C` (default
    /// 0, at most 10).
    #[serde(default)]
    pub context: Option<u32>,
    /// At most this many matching lines (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to page on.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TextMatch {
    pub path: String,
    pub line: u32,
    pub text: String,
    /// With `context`: the lines before and after, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

#[tool_router(router = text_tools, vis = "pub(super)")]
impl CodelensServer {
    #[tool(
        description = "Lines matching a regular expression (or, with `fixed_strings`, a literal; `case_insensitive` \
                       ignores case) in the indexed text files, optionally only files matching `path_glob` (without `/` \
                       it matches file names at any depth: `*.rs`; with `/` paths: `src/**/*.ts`). The text answer is \
                       grouped by file: the path, then `line:text` for each match and, with `context` (lines before \
                       and after, as `rg -C`), `line-text` for its context, `--` between runs. At most `limit` \
                       (default 50, max 500) matching lines.",
        annotations(read_only_hint = true),
        output_schema = rmcp::handler::server::common::schema_for_output::<ReadAnswer<TextMatch>>()
    )]
    async fn search_text(
        &self,
        Parameters(args): Parameters<SearchTextArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.answer_read(EventName::SearchText, &context, move |server, progress| {
            server.search_text_now(args, progress)
        })
        .await
    }
}

impl CodelensServer {
    fn search_text_now(&self, args: SearchTextArgs, progress: &CatchupProgress) -> CallToolResult {
        let backend = match self.backend() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let options = TextOptions {
            fixed_strings: args.fixed_strings.unwrap_or(false),
            case_insensitive: args.case_insensitive.unwrap_or(false),
            context: args.context.unwrap_or(0) as usize,
        };
        let query = match TextQuery::new(&args.pattern, options) {
            Ok(query) => query,
            Err(error) => return tool_error(format!("invalid regular expression: {error}")),
        };
        let glob = match args.path_glob.as_deref().map(PathGlob::new) {
            Some(Ok(glob)) => Some(glob),
            Some(Err(why)) => return tool_error(why),
            None => None,
        };
        let (limit, offset) = match page(args.limit, &args.cursor) {
            Ok(p) => (p.0 as usize, p.1 as usize),
            Err(e) => return e,
        };
        // Matches are gathered in path order up to the end of this page (and one more,
        // to know whether another page follows): the same cursor always pages the same.
        let wanted = offset.saturating_add(limit).saturating_add(1);
        let snapshot = Self::fresh_snapshot(backend, progress);
        let include = |path: &RelPath| glob.as_ref().is_none_or(|g| g.is_match(path));
        let search = match backend.engine.read().search_text(&query, include, wanted) {
            Ok(search) => search,
            Err(error) => return tool_error(format!("codelens: {error}")),
        };
        let mut matches: Vec<TextMatch> = (search.hits.into_iter())
            .map(|hit| TextMatch {
                path: hit.path.to_string(),
                line: hit.line,
                text: hit.text,
                before: hit.before,
                after: hit.after,
            })
            .collect();
        // Every file was read: the count is exact; otherwise it is a lower bound.
        let complete = search.complete;
        let found_total = matches.len();
        // Whole files past the page's end were read too; only the first `wanted` in path
        // order count (files are taken in path order, so those are exact).
        matches.truncate(wanted);
        let more_after_page = matches.len() > offset + limit;
        let offset = offset.min(matches.len());
        matches.drain(..offset);
        matches.truncate(limit);
        // Grouped by file, which costs an agent fewer tokens than a path per line.
        let mut taken = matches.len();
        let mut text = grouped(&matches[..taken]);
        while taken > 1 && text.len() > ANSWER_BUDGET - 2_000 {
            taken -= 1;
            text = grouped(&matches[..taken]);
        }
        matches.truncate(taken);
        let cursor = (taken < limit.min(found_total.saturating_sub(offset)) || more_after_page)
            .then(|| (offset + taken).to_string());
        if matches.is_empty() {
            text = if offset > 0 {
                "No more matching lines.".to_string()
            } else {
                format!("No line matches {:?}.", args.pattern)
            };
        } else if let Some(cursor) = &cursor {
            text.push_str(&format!(
                "… more matches: call again with cursor {cursor:?}, or narrow the pattern or path_glob"
            ));
        }
        let total = if complete {
            found_total
        } else {
            found_total.max(offset + taken + 1)
        } as u64;
        let mut referenced: Vec<String> = matches.iter().map(|m| m.path.clone()).collect();
        referenced.dedup();
        let body = ReadAnswer::new(matches, total, cursor.is_some(), cursor);
        Self::answer(backend, &snapshot, &referenced, text, body)
    }
}

/// Matches as the text answer shows them: per file, the path on a line of its own,
/// then `line:text` for a match and `line-text` for context (as `rg` prints them), each
/// line once, with `--` where lines are skipped.
fn grouped(matches: &[TextMatch]) -> String {
    let mut text = String::new();
    let mut file: Option<&str> = None;
    // The last line number printed in the current file.
    let mut printed: u32 = 0;
    // `--` marks skipped lines only where context is shown, as `rg` does.
    let context = matches
        .iter()
        .any(|m| !m.before.is_empty() || !m.after.is_empty());
    for (i, m) in matches.iter().enumerate() {
        if file != Some(m.path.as_str()) {
            if file.is_some() {
                text.push('\n');
            }
            text.push_str(&m.path);
            text.push('\n');
            file = Some(&m.path);
            printed = 0;
        }
        let first = m.line.saturating_sub(m.before.len() as u32);
        if context && printed > 0 && first > printed + 1 {
            text.push_str("--\n");
        }
        for (n, line) in (first..).zip(&m.before) {
            if n > printed {
                text.push_str(&format!("{n}-{line}\n"));
                printed = n;
            }
        }
        if m.line > printed {
            text.push_str(&format!("{}:{}\n", m.line, m.text));
            printed = m.line;
        }
        // Context after stops short of the next match in the same file (it prints
        // itself, as a match).
        let next_match = matches
            .get(i + 1)
            .filter(|next| next.path == m.path)
            .map(|next| next.line);
        for (n, line) in (m.line + 1..).zip(&m.after) {
            if next_match.is_some_and(|next| n >= next) {
                break;
            }
            if n > printed {
                text.push_str(&format!("{n}-{line}\n"));
                printed = n;
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, line: u32, text: &str, before: &[&str], after: &[&str]) -> TextMatch {
        TextMatch {
            path: path.into(),
            line,
            text: text.into(),
            before: before.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn matches_group_by_file_and_context_prints_each_line_once() {
        let plain = [
            hit("a.rs", 3, "fn a()", &[], &[]),
            hit("a.rs", 9, "fn b()", &[], &[]),
            hit("b.rs", 1, "fn c()", &[], &[]),
        ];
        assert_eq!(
            grouped(&plain),
            "a.rs\n3:fn a()\n9:fn b()\n\nb.rs\n1:fn c()\n"
        );
        // Context: overlapping windows print once, runs apart get `--`.
        let with_context = [
            hit("a.rs", 3, "m3", &["c2"], &["c4"]),
            hit("a.rs", 5, "m5", &["c4"], &["c6"]),
            hit("a.rs", 9, "m9", &["c8"], &["c10"]),
        ];
        assert_eq!(
            grouped(&with_context),
            "a.rs\n2-c2\n3:m3\n4-c4\n5:m5\n6-c6\n--\n8-c8\n9:m9\n10-c10\n"
        );
        // A match inside the previous one's context is printed as a match.
        let adjacent = [
            hit("a.rs", 1, "m1", &[], &["m2"]),
            hit("a.rs", 2, "m2", &["m1"], &[]),
        ];
        assert_eq!(grouped(&adjacent), "a.rs\n1:m1\n2:m2\n");
    }
}
