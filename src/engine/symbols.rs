//! Symbol definitions extracted with tree-sitter, using each grammar's own `tags.scm`
//! query (the same definitions GitHub's code navigation uses) plus a few extra patterns
//! for what those queries leave out (Rust consts, Go receivers, TypeScript type aliases).
//!
//! Reference patterns (`@reference.*`) are disabled before matching: the index stores
//! definitions only, and matching call sites would roughly double the parse cost.

use std::sync::OnceLock;

use serde::Serialize;
use tree_sitter::{Language, Parser, Query, QueryCursor, StreamingIterator};

use super::lang::Lang;

/// One symbol definition. Lines and columns are 1-based; the column counts bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    pub name: String,
    pub kind: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub container: Option<String>,
}

const RUST_EXTRA: &str = r#"
(impl_item type: (_) @name) @scope.impl
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
"#;

const GO_EXTRA: &str = r#"
(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: [
        (type_identifier) @container
        (pointer_type (type_identifier) @container)
        (generic_type type: (type_identifier) @container)
        (pointer_type (generic_type type: (type_identifier) @container))
      ]))
  name: (field_identifier) @name) @definition.method
(source_file (const_declaration (const_spec name: (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.variable))
"#;

const TYPESCRIPT_EXTRA: &str = r#"
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
"#;

/// What a capture of a compiled query means to us.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// The definition's node; the string is its kind (`function`, `class` …).
    Definition(String),
    /// A node that contains definitions without being one (a Rust `impl` block).
    Scope,
    /// The identifier naming the definition or scope.
    Name,
    /// Overrides the container (a Go method's receiver type).
    Container,
    Ignored,
}

struct LangQuery {
    query: Query,
    roles: Vec<Role>,
}

impl LangQuery {
    fn compile(language: Language, sources: &[&str]) -> Result<LangQuery, String> {
        let source = sources.join("\n");
        let mut query = Query::new(&language, &source).map_err(|e| e.to_string())?;
        for pattern in 0..query.pattern_count() {
            let text =
                &source[query.start_byte_for_pattern(pattern)..query.end_byte_for_pattern(pattern)];
            let defines = text.contains("@definition.") || text.contains("@scope.");
            if !defines || text.contains("@reference.") {
                query.disable_pattern(pattern);
            }
        }
        let roles = query
            .capture_names()
            .iter()
            .map(|name| match *name {
                "name" => Role::Name,
                "container" => Role::Container,
                n if n.starts_with("definition.") => {
                    Role::Definition(n["definition.".len()..].to_string())
                }
                n if n.starts_with("scope.") => Role::Scope,
                _ => Role::Ignored,
            })
            .collect();
        Ok(LangQuery { query, roles })
    }
}

fn grammar(lang: Lang) -> Option<(Language, Vec<&'static str>)> {
    let js_tags = tree_sitter_javascript::TAGS_QUERY;
    let ts_tags = tree_sitter_typescript::TAGS_QUERY;
    Some(match lang {
        Lang::Rust => (
            tree_sitter_rust::LANGUAGE.into(),
            vec![tree_sitter_rust::TAGS_QUERY, RUST_EXTRA],
        ),
        Lang::Python => (
            tree_sitter_python::LANGUAGE.into(),
            vec![tree_sitter_python::TAGS_QUERY],
        ),
        Lang::JavaScript => (tree_sitter_javascript::LANGUAGE.into(), vec![js_tags]),
        Lang::TypeScript => (
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            vec![js_tags, ts_tags, TYPESCRIPT_EXTRA],
        ),
        Lang::Tsx => (
            tree_sitter_typescript::LANGUAGE_TSX.into(),
            vec![js_tags, ts_tags, TYPESCRIPT_EXTRA],
        ),
        Lang::Go => (
            tree_sitter_go::LANGUAGE.into(),
            vec![tree_sitter_go::TAGS_QUERY, GO_EXTRA],
        ),
        _ => return None,
    })
}

/// Compiled once per process, on first use of each language; the queries ship with the
/// grammar crates, so a failure here is a build defect (caught by the unit tests),
/// reported once on stderr.
static QUERIES: [OnceLock<Option<(Language, LangQuery)>>; Lang::ALL.len()] =
    [const { OnceLock::new() }; Lang::ALL.len()];

fn compiled(lang: Lang) -> Option<&'static (Language, LangQuery)> {
    QUERIES[lang as usize]
        .get_or_init(|| {
            let (language, sources) = grammar(lang)?;
            match LangQuery::compile(language.clone(), &sources) {
                Ok(query) => Some((language, query)),
                Err(error) => {
                    eprintln!(
                        "codelens: internal error: {lang} symbol query does not compile: {error}"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Parsing allocates a node per token: tree-sitter's C side gets mimalloc too (the
/// binary's Rust side uses it as the global allocator). Must run before any parser,
/// tree or query exists (memory from one allocator must not be freed by the other), so
/// the binary calls it first thing in `main`.
pub fn use_fast_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: called once, before any tree-sitter object exists (see above), with a
        // matching set of allocation functions.
        unsafe {
            tree_sitter::set_allocator(
                Some(libmimalloc_sys::mi_malloc),
                Some(libmimalloc_sys::mi_calloc),
                Some(libmimalloc_sys::mi_realloc),
                Some(libmimalloc_sys::mi_free),
            )
        }
    });
}

/// A definition found in one match, before containers are resolved.
struct Found {
    name: String,
    kind: Option<String>,
    name_start: usize,
    start: usize,
    end: usize,
    line: u32,
    column: u32,
    end_line: u32,
    container: Option<String>,
}

/// Reusable per-thread parser state.
#[derive(Default)]
pub struct SymbolExtractor {
    parser: Parser,
    cursor: QueryCursor,
    current: Option<Lang>,
}

impl SymbolExtractor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The definitions in `source`, in source order, each with its innermost container.
    /// Returns nothing for languages without a grammar or text that does not parse.
    pub fn extract(&mut self, lang: Lang, source: &[u8]) -> Vec<Symbol> {
        let Some((language, lang_query)) = compiled(lang) else {
            return Vec::new();
        };
        if self.current != Some(lang) {
            if self.parser.set_language(language).is_err() {
                return Vec::new();
            }
            self.current = Some(lang);
        }
        let Some(tree) = self.parser.parse(source, None) else {
            return Vec::new();
        };
        let mut found: Vec<Found> = Vec::new();
        let mut matches = self
            .cursor
            .matches(&lang_query.query, tree.root_node(), source);
        while let Some(m) = matches.next() {
            let mut def_node = None;
            let mut kind = None;
            let mut name_node = None;
            let mut container = None;
            for capture in m.captures {
                match &lang_query.roles[capture.index as usize] {
                    Role::Definition(k) => {
                        def_node = Some(capture.node);
                        kind = Some(k.clone());
                    }
                    Role::Scope => def_node = Some(capture.node),
                    Role::Name => name_node = Some(capture.node),
                    Role::Container => {
                        container = Some(
                            String::from_utf8_lossy(&source[capture.node.byte_range()])
                                .into_owned(),
                        )
                    }
                    Role::Ignored => {}
                }
            }
            let (Some(def), Some(name)) = (def_node, name_node) else {
                continue;
            };
            let text = String::from_utf8_lossy(&source[name.byte_range()]);
            found.push(Found {
                name: text.into_owned(),
                kind,
                name_start: name.start_byte(),
                start: def.start_byte(),
                end: def.end_byte(),
                line: name.start_position().row as u32 + 1,
                column: name.start_position().column as u32 + 1,
                end_line: def.end_position().row as u32 + 1,
                container,
            });
        }
        resolve(found)
    }
}

/// Merges duplicate matches of one definition, then gives each its innermost container.
fn resolve(mut found: Vec<Found>) -> Vec<Symbol> {
    // Outer nodes first, so a stack of open nodes yields the innermost container.
    found.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.name_start.cmp(&b.name_start))
    });
    let mut merged: Vec<Found> = Vec::with_capacity(found.len());
    for item in found {
        // Two patterns can match one definition (Rust and Go methods also match the
        // plain function pattern): keep one entry, preferring `method` and a container.
        if let Some(previous) = merged
            .iter_mut()
            .rev()
            .take_while(|p| p.start == item.start)
            .find(|p| p.name_start == item.name_start && p.end == item.end)
        {
            if previous.kind.is_none() || item.kind.as_deref() == Some("method") {
                previous.kind = item.kind.or(previous.kind.take());
            }
            if previous.container.is_none() {
                previous.container = item.container;
            }
            continue;
        }
        merged.push(item);
    }

    let mut symbols = Vec::with_capacity(merged.len());
    // (end byte, name, kind) of the nodes enclosing the current one.
    let mut open: Vec<(usize, String, Option<String>)> = Vec::new();
    for item in merged {
        while open.last().is_some_and(|(end, _, _)| *end <= item.start) {
            open.pop();
        }
        let enclosing = open.last();
        let container = item
            .container
            .or_else(|| enclosing.map(|(_, name, _)| name.clone()));
        if let Some(kind) = &item.kind {
            // The grammars' queries leave a few kinds to context: a Python `def` in a
            // class is a method, and Rust's `declaration_list` rule also calls a
            // function inside `mod { … }` a method.
            let enclosing_kind = enclosing.and_then(|(_, _, k)| k.as_deref());
            let kind = match (kind.as_str(), enclosing_kind) {
                ("function", Some("class" | "interface")) => "method".to_string(),
                ("method", Some("module")) => "function".to_string(),
                _ => kind.clone(),
            };
            symbols.push(Symbol {
                name: item.name.clone(),
                kind,
                line: item.line,
                column: item.column,
                end_line: item.end_line,
                container,
            });
        }
        open.push((item.end, item.name, item.kind));
    }
    symbols
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(lang: Lang, source: &str) -> Vec<(String, String, u32, Option<String>)> {
        SymbolExtractor::new()
            .extract(lang, source.as_bytes())
            .into_iter()
            .map(|s| (s.name, s.kind, s.line, s.container))
            .collect()
    }

    fn sym(
        name: &str,
        kind: &str,
        line: u32,
        container: Option<&str>,
    ) -> (String, String, u32, Option<String>) {
        (name.into(), kind.into(), line, container.map(Into::into))
    }

    #[test]
    fn every_query_compiles() {
        for lang in Lang::ALL.into_iter().filter(|l| l.has_symbols()) {
            let (language, sources) = grammar(lang).unwrap();
            LangQuery::compile(language, &sources).unwrap_or_else(|e| panic!("{lang}: {e}"));
        }
    }

    #[test]
    fn rust_definitions_with_containers() {
        let src = "struct Store { x: u8 }\nimpl Store {\n    fn open() -> Self { todo!() }\n}\nconst MAX: u32 = 3;\nmod inner {\n    pub fn helper() {}\n}\nmacro_rules! m { () => {} }\ntrait Shape { fn area(&self) -> f64; }\n";
        assert_eq!(
            extract(Lang::Rust, src),
            vec![
                sym("Store", "class", 1, None),
                sym("open", "method", 3, Some("Store")),
                sym("MAX", "constant", 5, None),
                sym("inner", "module", 6, None),
                sym("helper", "function", 7, Some("inner")),
                sym("m", "macro", 9, None),
                sym("Shape", "interface", 10, None),
            ]
        );
    }

    #[test]
    fn python_methods_are_methods() {
        let src = "import os\n\nclass Repo:\n    def sync(self):\n        pass\n\ndef main():\n    pass\n";
        assert_eq!(
            extract(Lang::Python, src),
            vec![
                sym("Repo", "class", 3, None),
                sym("sync", "method", 4, Some("Repo")),
                sym("main", "function", 7, None),
            ]
        );
    }

    #[test]
    fn typescript_and_javascript() {
        let ts = "export interface Shape { area(): number }\nexport class Circle {\n  area() { return 1; }\n}\nexport function make(): Circle { return new Circle(); }\ntype Id = string;\nconst handler = () => 1;\n";
        assert_eq!(
            extract(Lang::TypeScript, ts),
            vec![
                sym("Shape", "interface", 1, None),
                sym("area", "method", 1, Some("Shape")),
                sym("Circle", "class", 2, None),
                sym("area", "method", 3, Some("Circle")),
                sym("make", "function", 5, None),
                sym("Id", "type", 6, None),
                sym("handler", "function", 7, None),
            ]
        );
        let js = "class A { run() {} }\nfunction b() {}\n";
        assert_eq!(
            extract(Lang::JavaScript, js),
            vec![
                sym("A", "class", 1, None),
                sym("run", "method", 1, Some("A")),
                sym("b", "function", 2, None)
            ]
        );
        let tsx = "export function App() { return <div/>; }\n";
        assert_eq!(
            extract(Lang::Tsx, tsx),
            vec![sym("App", "function", 1, None)]
        );
    }

    #[test]
    fn go_methods_take_their_receiver_as_container() {
        let src = "package main\n\ntype Server struct{}\n\nfunc (s *Server) Start() error { return nil }\n\nfunc main() {}\n\nconst Version = \"1\"\n";
        assert_eq!(
            extract(Lang::Go, src),
            vec![
                sym("Server", "type", 3, None),
                sym("Start", "method", 5, Some("Server")),
                sym("main", "function", 7, None),
                sym("Version", "constant", 9, None),
            ]
        );
    }

    #[test]
    fn no_grammar_or_garbage_yields_nothing_and_no_panic() {
        assert!(extract(Lang::Markdown, "# fn main() {}").is_empty());
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        SymbolExtractor::new().extract(Lang::Rust, &garbage);
    }
}
