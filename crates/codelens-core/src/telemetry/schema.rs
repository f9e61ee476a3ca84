//! The fixed lists every recorded value comes from. The client records only these; the
//! ingest server accepts only these (`assets/telemetry-schema.json` repeats them, and a
//! test keeps the two in step). Nothing here can hold free text.

use super::buffer::Row;

/// Version of the payload format (`schema_version` in every payload).
pub const SCHEMA_VERSION: u32 = 1;

/// The limits the ingest server enforces, kept here so the client never builds a payload
/// the server would refuse (and then re-send it forever).
/// At most this many days in one payload; a client with more sends the oldest first.
pub const MAX_DAYS_PER_PAYLOAD: usize = 400;
/// At most this many rows (event keys) in one day of one machine. The fixed lists allow
/// about 30,000 keys; real use is a few dozen. The client keeps the largest counts.
pub const MAX_ROWS_PER_DAY: usize = 500;
/// A count above this in one day is not a person using a tool; the client clamps to it.
pub const MAX_COUNT: u64 = 10_000_000;
/// How long the ingest server keeps a day by default; the client does not send older
/// days (the server would refuse them).
pub const RETENTION_DAYS_DEFAULT: u64 = 730;

macro_rules! fixed_list {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const COUNT: usize = $name::ALL.len();

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            pub fn names() -> impl Iterator<Item = &'static str> {
                $name::ALL.iter().map(|v| v.as_str())
            }
        }
    };
}

fixed_list!(
    /// What kind of thing happened.
    EventType {
        McpTool => "mcp_tool",
        CliCommand => "cli_command",
        Lifecycle => "lifecycle",
    }
);

fixed_list!(
    /// What happened: a CLI command, an MCP tool, or a lifecycle moment. Never free text.
    EventName {
        // CLI commands.
        Init => "init",
        Sync => "sync",
        Status => "status",
        Watch => "watch",
        Tui => "tui",
        Mcp => "mcp",
        HooksInstall => "hooks_install",
        HooksUninstall => "hooks_uninstall",
        Install => "install",
        Uninstall => "uninstall",
        // MCP tools.
        SearchSymbols => "search_symbols",
        SymbolDefinition => "symbol_definition",
        FileOutline => "file_outline",
        FindFiles => "find_files",
        SearchText => "search_text",
        IndexStatus => "index_status",
        // Lifecycle.
        McpSessionStart => "mcp_session_start",
        TuiStart => "tui_start",
        EngineStart => "engine_start",
    }
);

impl EventName {
    /// The one event type each name belongs to.
    pub fn event_type(self) -> EventType {
        use EventName::*;
        match self {
            Init | Sync | Status | Watch | Tui | Mcp | HooksInstall | HooksUninstall | Install
            | Uninstall => EventType::CliCommand,
            SearchSymbols | SymbolDefinition | FileOutline | FindFiles | SearchText
            | IndexStatus => EventType::McpTool,
            McpSessionStart | TuiStart | EngineStart => EventType::Lifecycle,
        }
    }

    /// The MCP tool of that name, if it is one.
    pub fn mcp_tool(name: &str) -> Option<EventName> {
        EventName::parse(name).filter(|n| n.event_type() == EventType::McpTool)
    }
}

fixed_list!(
    /// The indexed project's dominant language (the index's own language names), or
    /// `none` when unknown (no index yet, an empty one).
    Language {
        None => "none",
        Rust => "rust",
        Python => "python",
        JavaScript => "javascript",
        TypeScript => "typescript",
        Tsx => "tsx",
        Go => "go",
        C => "c",
        Cpp => "cpp",
        Java => "java",
        Kotlin => "kotlin",
        CSharp => "csharp",
        Ruby => "ruby",
        Php => "php",
        Swift => "swift",
        Shell => "shell",
        Scala => "scala",
        Lua => "lua",
        Html => "html",
        Css => "css",
        Markdown => "markdown",
        Json => "json",
        Toml => "toml",
        Yaml => "yaml",
        Sql => "sql",
        Text => "text",
    }
);

fixed_list!(
    /// The MCP client, mapped from its self-reported name; `none` outside MCP.
    Agent {
        None => "none",
        ClaudeCode => "claude-code",
        ClaudeDesktop => "claude-desktop",
        Cursor => "cursor",
        Codex => "codex",
        Vscode => "vscode",
        Gemini => "gemini",
        Windsurf => "windsurf",
        Opencode => "opencode",
        Zed => "zed",
        Cline => "cline",
        Continue => "continue",
        Goose => "goose",
        Jetbrains => "jetbrains",
        Other => "other",
    }
);

impl Agent {
    /// Maps an MCP client's `clientInfo.name` onto the fixed list. The raw name is never
    /// kept: anything not recognised is `other`.
    pub fn from_client_name(name: &str) -> Agent {
        let name = name.trim().to_ascii_lowercase();
        // Order matters: "claude-code" before "claude", "copilot" is VS Code's.
        const PATTERNS: &[(&str, Agent)] = &[
            ("claude-code", Agent::ClaudeCode),
            ("claude code", Agent::ClaudeCode),
            ("claude-ai", Agent::ClaudeDesktop),
            ("claude", Agent::ClaudeDesktop),
            ("cursor", Agent::Cursor),
            ("codex", Agent::Codex),
            ("visual studio code", Agent::Vscode),
            ("vscode", Agent::Vscode),
            ("copilot", Agent::Vscode),
            ("gemini", Agent::Gemini),
            ("windsurf", Agent::Windsurf),
            ("codeium", Agent::Windsurf),
            ("opencode", Agent::Opencode),
            ("zed", Agent::Zed),
            ("cline", Agent::Cline),
            ("roo", Agent::Cline),
            ("continue", Agent::Continue),
            ("goose", Agent::Goose),
            ("jetbrains", Agent::Jetbrains),
            ("intellij", Agent::Jetbrains),
        ];
        PATTERNS
            .iter()
            .find(|(pattern, _)| name.contains(pattern))
            .map_or(Agent::Other, |(_, agent)| *agent)
    }
}

fixed_list!(
    /// How many files the index holds, coarsely.
    FileCountBucket {
        Unknown => "unknown",
        Under100 => "<100",
        Hundreds => "100-1k",
        Thousands => "1k-10k",
        TenThousandsPlus => "10k+",
    }
);

impl FileCountBucket {
    pub fn of(files: u64) -> FileCountBucket {
        match files {
            0..100 => FileCountBucket::Under100,
            100..1_000 => FileCountBucket::Hundreds,
            1_000..10_000 => FileCountBucket::Thousands,
            _ => FileCountBucket::TenThousandsPlus,
        }
    }
}

/// Whether every field of `row` comes from its list (and the type fits the name).
pub fn row_is_allowed(row: &Row) -> bool {
    let Some(name) = EventName::parse(&row.event_name) else {
        return false;
    };
    EventType::parse(&row.event_type) == Some(name.event_type())
        && Language::parse(&row.language).is_some()
        && Agent::parse(&row.agent).is_some()
        && FileCountBucket::parse(&row.file_count_bucket).is_some()
}

/// A real calendar day written `YYYY-MM-DD`.
pub fn is_day(text: &str) -> bool {
    text.len() == 10 && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_map_onto_the_fixed_list() {
        for (raw, agent) in [
            ("claude-code", Agent::ClaudeCode),
            ("Claude Code", Agent::ClaudeCode),
            ("claude-ai", Agent::ClaudeDesktop),
            ("cursor-vscode", Agent::Cursor),
            ("codex-mcp-client", Agent::Codex),
            ("Visual Studio Code", Agent::Vscode),
            ("GitHub Copilot", Agent::Vscode),
            ("gemini-cli-mcp-client", Agent::Gemini),
            ("windsurf-client", Agent::Windsurf),
            ("opencode", Agent::Opencode),
            ("Zed", Agent::Zed),
            ("my-secret-internal-tool", Agent::Other),
            ("", Agent::Other),
        ] {
            assert_eq!(Agent::from_client_name(raw), agent, "{raw}");
        }
    }

    #[test]
    fn lists_round_trip_and_languages_match_the_index() {
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(*name));
        }
        for lang in crate::engine::lang::Lang::ALL {
            assert!(Language::parse(lang.name()).is_some(), "{}", lang.name());
        }
        assert_eq!(FileCountBucket::of(99), FileCountBucket::Under100);
        assert_eq!(FileCountBucket::of(100), FileCountBucket::Hundreds);
        assert_eq!(
            FileCountBucket::of(10_000),
            FileCountBucket::TenThousandsPlus
        );
        assert!(is_day("2024-02-29") && !is_day("2023-02-29") && !is_day("2024-1-1"));
    }
}
