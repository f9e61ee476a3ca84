//! Language detection by file name, and by content for `.h` headers and scripts. Only
//! the languages in [`Lang::has_symbols`] get symbol extraction; the rest are still
//! indexed (size, hash, lines) and counted.

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
    Scala,
    Lua,
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
    pub const ALL: [Lang; 25] = [
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
        Lang::Scala,
        Lang::Lua,
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
            Lang::Scala => "scala",
            Lang::Lua => "lua",
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
            b"cc" | b"cpp" | b"cxx" | b"c++" | b"hh" | b"hpp" | b"hxx" | b"h++" | b"ipp"
            | b"tpp" => Lang::Cpp,
            b"java" => Lang::Java,
            b"kt" | b"kts" => Lang::Kotlin,
            b"cs" | b"csx" => Lang::CSharp,
            b"rb" | b"rake" | b"gemspec" => Lang::Ruby,
            b"php" | b"phtml" => Lang::Php,
            b"swift" => Lang::Swift,
            b"sh" | b"bash" | b"zsh" | b"ksh" => Lang::Shell,
            b"scala" | b"sc" => Lang::Scala,
            b"lua" => Lang::Lua,
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

    /// Detects the language from the file name and, where the name does not settle it,
    /// the content: a `.h` header is C++ when it uses C++ (see [`looks_like_cpp`]), and
    /// a file without a known extension is the language its `#!` line names.
    pub fn detect_with_content(file_name: &[u8], content: &[u8]) -> Lang {
        match Lang::detect(file_name) {
            Lang::C if file_name.ends_with(b".h") && looks_like_cpp(content) => Lang::Cpp,
            Lang::Text => Lang::from_shebang(content).unwrap_or(Lang::Text),
            lang => lang,
        }
    }

    /// Whether a file of this name may be a language with symbols once its content is
    /// known: by its extension, or a script whose `#!` line has yet to be read.
    pub fn may_have_symbols(file_name: &[u8]) -> bool {
        match Lang::detect(file_name) {
            Lang::Text => true,
            lang => lang.has_symbols(),
        }
    }

    /// The interpreter a `#!` line runs: `#!/bin/sh`, `#!/usr/bin/env -S python3 -u` …
    fn from_shebang(content: &[u8]) -> Option<Lang> {
        let line = content.strip_prefix(b"#!")?;
        let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
        let line = std::str::from_utf8(line).ok()?;
        let mut words = line.split_whitespace();
        let mut program = words.next()?.rsplit('/').next()?;
        if program == "env" {
            program = words.find(|w| !w.starts_with('-'))?;
        }
        // `python3.12`, `ruby2.7`, `lua5.4`: the version is not part of the language.
        let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        Some(match base {
            "sh" | "bash" | "dash" | "ksh" | "zsh" | "ash" => Lang::Shell,
            "python" | "pypy" => Lang::Python,
            "ruby" => Lang::Ruby,
            "node" | "nodejs" | "deno" | "bun" => Lang::JavaScript,
            "php" => Lang::Php,
            "lua" | "luajit" => Lang::Lua,
            "scala" => Lang::Scala,
            "kotlin" => Lang::Kotlin,
            _ => return None,
        })
    }

    /// Whether codelens extracts symbol definitions for this language.
    pub fn has_symbols(self) -> bool {
        !matches!(
            self,
            // Scala's grammar would add 4 MB to a binary that must stay under 45 MB.
            Lang::Scala
                | Lang::Html
                | Lang::Css
                | Lang::Markdown
                | Lang::Json
                | Lang::Toml
                | Lang::Yaml
                | Lang::Sql
                | Lang::Text
        )
    }
}

/// Whether a `.h` header is C++ rather than C: a line (after leading blanks) that
/// starts with a construct C does not have — `class X`, `namespace`, `template <`,
/// `public:`/`private:`/`protected:`, `using namespace` — or a `std::` anywhere.
/// Only the first 64 KiB are read. C headers that guard an `extern "C"` block with
/// `#ifdef __cplusplus` stay C: none of those lines is C++-only.
pub fn looks_like_cpp(content: &[u8]) -> bool {
    let head = &content[..content.len().min(64 * 1024)];
    if memchr::memmem::find(head, b"std::").is_some() {
        return true;
    }
    head.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii_start();
        let keyword = |word: &[u8]| {
            line.strip_prefix(word)
                .is_some_and(|rest| rest.first().is_some_and(|&b| b == b' ' || b == b'\t'))
        };
        keyword(b"class") && !line.ends_with(b";")
            || keyword(b"namespace")
            || line.starts_with(b"template<")
            || keyword(b"template")
            || line.starts_with(b"public:")
            || line.starts_with(b"private:")
            || line.starts_with(b"protected:")
    })
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
        assert_eq!(Lang::detect(b"Main.java"), Lang::Java);
        assert_eq!(Lang::detect(b"app.kts"), Lang::Kotlin);
        assert_eq!(Lang::detect(b"init.lua"), Lang::Lua);
        assert_eq!(Lang::detect(b"Main.scala"), Lang::Scala);
        assert_eq!(Lang::detect(b"x.hpp"), Lang::Cpp);
    }

    #[test]
    fn extension_less_scripts_are_known_by_their_shebang() {
        let detect = |content: &str| Lang::detect_with_content(b"tool", content.as_bytes());
        assert_eq!(detect("#!/usr/bin/env bash\necho"), Lang::Shell);
        assert_eq!(detect("#!/bin/sh -e\n"), Lang::Shell);
        assert_eq!(detect("#!/usr/bin/env python3\n"), Lang::Python);
        assert_eq!(detect("#!/usr/bin/python3.12 -u\n"), Lang::Python);
        assert_eq!(detect("#!/usr/bin/env -S ruby -w\n"), Lang::Ruby);
        assert_eq!(detect("#!/usr/bin/env node\n"), Lang::JavaScript);
        assert_eq!(detect("#!/usr/bin/perl\n"), Lang::Text);
        assert_eq!(detect("echo no shebang\n"), Lang::Text);
        assert_eq!(detect("#!\n"), Lang::Text);
        // A known extension wins over the shebang.
        assert_eq!(
            Lang::detect_with_content(b"x.py", b"#!/bin/sh\n"),
            Lang::Python
        );
        assert!(Lang::may_have_symbols(b"tool"));
        assert!(!Lang::may_have_symbols(b"notes.md"));
    }

    #[test]
    fn a_header_is_cpp_when_it_uses_cpp() {
        let detect = |content: &str| Lang::detect_with_content(b"x.h", content.as_bytes());
        let c_header = "#ifndef X_H\n#define X_H\n#ifdef __cplusplus\nextern \"C\" {\n#endif\nstruct point { int x; };\nint area(struct point *p);\n#ifdef __cplusplus\n}\n#endif\n#endif\n";
        assert_eq!(detect(c_header), Lang::C);
        assert_eq!(
            detect("class Shape {\npublic:\n  virtual ~Shape();\n};\n"),
            Lang::Cpp
        );
        assert_eq!(detect("namespace geo {\nint area();\n}\n"), Lang::Cpp);
        assert_eq!(
            detect("template <typename T>\nT max(T a, T b);\n"),
            Lang::Cpp
        );
        assert_eq!(
            detect("#include <string>\nvoid f(std::string s);\n"),
            Lang::Cpp
        );
        // `class` as a word in a C comment or a forward declaration is not enough.
        assert_eq!(detect("/* the class of\n   errors */\nint e;\n"), Lang::C);
        assert_eq!(detect("#include <x.h>\n"), Lang::C);
        assert_eq!(Lang::detect_with_content(b"x.c", b"class A {};"), Lang::C);
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
