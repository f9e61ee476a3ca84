//! Language detection by file name. Only the languages in [`Lang::has_symbols`] get
//! symbol extraction; the rest are still indexed (size, hash, lines) and counted.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    C,
    Cpp,
    Java,
    Kotlin,
    CSharp,
    Ruby,
    Php,
    Swift,
    Shell,
    Html,
    Css,
    Markdown,
    Json,
    Toml,
    Yaml,
    Sql,
    Text,
}

impl Lang {
    /// Every variant, in declaration order (per-language tables index by `lang as usize`).
    pub const ALL: [Lang; 23] = [
        Lang::Rust,
        Lang::Python,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Go,
        Lang::C,
        Lang::Cpp,
        Lang::Java,
        Lang::Kotlin,
        Lang::CSharp,
        Lang::Ruby,
        Lang::Php,
        Lang::Swift,
        Lang::Shell,
        Lang::Html,
        Lang::Css,
        Lang::Markdown,
        Lang::Json,
        Lang::Toml,
        Lang::Yaml,
        Lang::Sql,
        Lang::Text,
    ];

    /// The stable name stored in the index and shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Go => "go",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Java => "java",
            Lang::Kotlin => "kotlin",
            Lang::CSharp => "csharp",
            Lang::Ruby => "ruby",
            Lang::Php => "php",
            Lang::Swift => "swift",
            Lang::Shell => "shell",
            Lang::Html => "html",
            Lang::Css => "css",
            Lang::Markdown => "markdown",
            Lang::Json => "json",
            Lang::Toml => "toml",
            Lang::Yaml => "yaml",
            Lang::Sql => "sql",
            Lang::Text => "text",
        }
    }

    /// Detects the language from the file name (extension, or a few well-known names).
    /// Unknown text files are `Text`.
    pub fn detect(file_name: &[u8]) -> Lang {
        let ext = match file_name.iter().rposition(|&b| b == b'.') {
            Some(dot) if dot > 0 => &file_name[dot + 1..],
            _ => {
                return match file_name {
                    b"Makefile" | b"Dockerfile" | b"Justfile" => Lang::Shell,
                    _ => Lang::Text,
                };
            }
        };
        match ext {
            b"rs" => Lang::Rust,
            b"py" | b"pyi" | b"pyw" => Lang::Python,
            b"js" | b"mjs" | b"cjs" | b"jsx" => Lang::JavaScript,
            b"ts" | b"mts" | b"cts" => Lang::TypeScript,
            b"tsx" => Lang::Tsx,
            b"go" => Lang::Go,
            b"c" | b"h" => Lang::C,
            b"cc" | b"cpp" | b"cxx" | b"hh" | b"hpp" | b"hxx" => Lang::Cpp,
            b"java" => Lang::Java,
            b"kt" | b"kts" => Lang::Kotlin,
            b"cs" => Lang::CSharp,
            b"rb" => Lang::Ruby,
            b"php" => Lang::Php,
            b"swift" => Lang::Swift,
            b"sh" | b"bash" | b"zsh" | b"fish" => Lang::Shell,
            b"html" | b"htm" => Lang::Html,
            b"css" | b"scss" | b"sass" | b"less" => Lang::Css,
            b"md" | b"markdown" | b"rst" => Lang::Markdown,
            b"json" | b"jsonc" => Lang::Json,
            b"toml" => Lang::Toml,
            b"yml" | b"yaml" => Lang::Yaml,
            b"sql" => Lang::Sql,
            _ => Lang::Text,
        }
    }

    /// Whether codelens extracts symbol definitions for this language.
    pub fn has_symbols(self) -> bool {
        matches!(
            self,
            Lang::Rust | Lang::Python | Lang::JavaScript | Lang::TypeScript | Lang::Tsx | Lang::Go
        )
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_extension_and_name() {
        assert_eq!(Lang::detect(b"lib.rs"), Lang::Rust);
        assert_eq!(Lang::detect(b"app.test.tsx"), Lang::Tsx);
        assert_eq!(Lang::detect(b"index.mjs"), Lang::JavaScript);
        assert_eq!(Lang::detect(b"main.go"), Lang::Go);
        assert_eq!(Lang::detect(b"Makefile"), Lang::Shell);
        assert_eq!(Lang::detect(b".bashrc"), Lang::Text);
        assert_eq!(Lang::detect(b"README"), Lang::Text);
    }

    #[test]
    fn names_are_unique_and_all_is_in_declaration_order() {
        let names: std::collections::HashSet<_> = Lang::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), Lang::ALL.len());
        for (i, lang) in Lang::ALL.into_iter().enumerate() {
            // Per-language tables are indexed by `lang as usize`.
            assert_eq!(lang as usize, i);
        }
    }
}
