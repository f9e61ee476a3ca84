//! Symbol definitions extracted with tree-sitter.
//!
//! Which syntax nodes define which kind of symbol follows each grammar's own `tags.scm`
//! query (the definitions GitHub's code navigation uses), plus a few those queries
//! lack: Rust consts/statics and `impl` containers, Go method receivers and top-level
//! consts/vars, TypeScript type aliases and enums. Running the queries through
//! tree-sitter's generic query cursor cost about a quarter of `init`'s CPU time, so the
//! same rules are applied by one walk of the syntax tree against a per-language table
//! of node kinds. A unit test runs the grammars' real tags queries beside the walk on
//! the same sources and asserts that both find the same definitions.

use std::sync::OnceLock;

use serde::Serialize;
use tree_sitter::{Language, Node, Parser, Tree};

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

/// How a node of some kind defines a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A symbol of `kind` named by the node's `name` field (of kind `name_is`, if given).
    Named {
        kind: &'static str,
        name_is: Option<&'static str>,
    },
    /// One symbol per `name` child of a Go `const`/`var` spec at the top of the file.
    TopLevelSpec(&'static str),
    /// `fn`: a method inside `impl`/`trait`, else a function.
    RustFunction,
    /// An `impl` block: no symbol itself, but the container of its methods.
    RustImpl,
    /// `NAME = …` at the top of a Python module: a constant.
    PythonModuleAssignment,
    /// A JS/TS class method (not the constructor).
    JsMethod,
    /// `const f = () => …` / `var f = function () …`.
    JsVariableFunction,
    /// `f = () => …` / `obj.f = function () …`.
    JsAssignedFunction,
    /// `{ f: () => … }`.
    JsPairFunction,
    /// `func (r *Recv) Name()`: a method whose container is the receiver type.
    GoMethod,
}

const fn named(kind: &'static str) -> Rule {
    Rule::Named {
        kind,
        name_is: None,
    }
}

const fn named_by(kind: &'static str, name_is: &'static str) -> Rule {
    Rule::Named {
        kind,
        name_is: Some(name_is),
    }
}

const RUST_RULES: Rules = &[
    ("struct_item", named("class")),
    ("enum_item", named("class")),
    ("union_item", named("class")),
    ("type_item", named("class")),
    ("function_item", Rule::RustFunction),
    ("trait_item", named("interface")),
    ("mod_item", named("module")),
    ("macro_definition", named("macro")),
    ("impl_item", Rule::RustImpl),
    ("const_item", named("constant")),
    ("static_item", named("constant")),
];

const PYTHON_RULES: Rules = &[
    ("class_definition", named("class")),
    ("function_definition", named("function")),
    ("assignment", Rule::PythonModuleAssignment),
];

const JAVASCRIPT_RULES: Rules = &[
    ("method_definition", Rule::JsMethod),
    ("class", named("class")),
    ("class_declaration", named("class")),
    ("function_expression", named_by("function", "identifier")),
    ("function_declaration", named_by("function", "identifier")),
    ("generator_function", named_by("function", "identifier")),
    (
        "generator_function_declaration",
        named_by("function", "identifier"),
    ),
    ("variable_declarator", Rule::JsVariableFunction),
    ("assignment_expression", Rule::JsAssignedFunction),
    ("pair", Rule::JsPairFunction),
];

/// TypeScript and TSX: the JavaScript rules plus these.
const TYPESCRIPT_RULES: Rules = &[
    ("function_signature", named_by("function", "identifier")),
    (
        "method_signature",
        named_by("method", "property_identifier"),
    ),
    (
        "abstract_method_signature",
        named_by("method", "property_identifier"),
    ),
    ("abstract_class_declaration", named("class")),
    ("module", named_by("module", "identifier")),
    ("interface_declaration", named("interface")),
    ("type_alias_declaration", named("type")),
    ("enum_declaration", named("enum")),
];

const GO_RULES: Rules = &[
    ("function_declaration", named("function")),
    ("method_declaration", Rule::GoMethod),
    ("type_spec", named("type")),
    ("const_spec", Rule::TopLevelSpec("constant")),
    ("var_spec", Rule::TopLevelSpec("variable")),
];

/// Node kind → rule, for one language or a shared part of several.
type Rules = &'static [(&'static str, Rule)];

fn grammar(lang: Lang) -> Option<(Language, Vec<Rules>)> {
    Some(match lang {
        Lang::Rust => (tree_sitter_rust::LANGUAGE.into(), vec![RUST_RULES]),
        Lang::Python => (tree_sitter_python::LANGUAGE.into(), vec![PYTHON_RULES]),
        Lang::JavaScript => (
            tree_sitter_javascript::LANGUAGE.into(),
            vec![JAVASCRIPT_RULES],
        ),
        Lang::TypeScript => (
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            vec![JAVASCRIPT_RULES, TYPESCRIPT_RULES],
        ),
        Lang::Tsx => (
            tree_sitter_typescript::LANGUAGE_TSX.into(),
            vec![JAVASCRIPT_RULES, TYPESCRIPT_RULES],
        ),
        Lang::Go => (tree_sitter_go::LANGUAGE.into(), vec![GO_RULES]),
        _ => return None,
    })
}

/// A language's grammar and its rules indexed by node kind id. Every id whose name
/// matches gets the rule, so aliased kinds (several ids, one name) are covered too.
struct RuleTable {
    language: Language,
    by_kind: Vec<Option<Rule>>,
}

static TABLES: [OnceLock<Option<RuleTable>>; Lang::ALL.len()] =
    [const { OnceLock::new() }; Lang::ALL.len()];

fn table(lang: Lang) -> Option<&'static RuleTable> {
    TABLES[lang as usize]
        .get_or_init(|| {
            let (language, rule_sets) = grammar(lang)?;
            let by_kind = (0..language.node_kind_count() as u16)
                .map(|id| {
                    let name = language.node_kind_for_id(id)?;
                    if !language.node_kind_is_named(id) {
                        return None;
                    }
                    rule_sets
                        .iter()
                        .flat_map(|rules| rules.iter())
                        .find(|(kind, _)| *kind == name)
                        .map(|(_, rule)| *rule)
                })
                .collect();
            Some(RuleTable { language, by_kind })
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
    current: Option<Lang>,
}

impl SymbolExtractor {
    pub fn new() -> Self {
        Self::default()
    }

    /// The definitions in `source`, in source order, each with its innermost container.
    /// Returns nothing for languages without a grammar or text that does not parse.
    pub fn extract(&mut self, lang: Lang, source: &[u8]) -> Vec<Symbol> {
        let Some(table) = table(lang) else {
            return Vec::new();
        };
        let Some(tree) = self.parse(lang, &table.language, source) else {
            return Vec::new();
        };
        resolve(find_definitions(&tree, source, &table.by_kind))
    }

    fn parse(&mut self, lang: Lang, language: &Language, source: &[u8]) -> Option<Tree> {
        if self.current != Some(lang) {
            self.parser.set_language(language).ok()?;
            self.current = Some(lang);
        }
        self.parser.parse(source, None)
    }
}

/// Visits every node once, in document order, applying the rule of its kind.
fn find_definitions(tree: &Tree, source: &[u8], rules: &[Option<Rule>]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        if let Some(Some(rule)) = rules.get(node.kind_id() as usize) {
            apply(*rule, node, source, &mut found);
        }
        if cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return found;
            }
        }
    }
}

fn text(node: Node<'_>, source: &[u8]) -> String {
    String::from_utf8_lossy(&source[node.byte_range()]).into_owned()
}

fn kind_of(node: Option<Node<'_>>) -> &'static str {
    node.map_or("", |n| n.kind())
}

fn is_function_value(node: Option<Node<'_>>) -> bool {
    matches!(kind_of(node), "arrow_function" | "function_expression")
}

fn push(
    found: &mut Vec<Found>,
    def: Node<'_>,
    name: Node<'_>,
    kind: Option<&str>,
    container: Option<String>,
    source: &[u8],
) {
    found.push(Found {
        name: text(name, source),
        kind: kind.map(str::to_string),
        name_start: name.start_byte(),
        start: def.start_byte(),
        end: def.end_byte(),
        line: name.start_position().row as u32 + 1,
        column: name.start_position().column as u32 + 1,
        end_line: def.end_position().row as u32 + 1,
        container,
    });
}

fn apply(rule: Rule, node: Node<'_>, source: &[u8], found: &mut Vec<Found>) {
    let field = |name: &str| node.child_by_field_name(name);
    match rule {
        Rule::Named { kind, name_is } => {
            if let Some(name) = field("name")
                && name_is.is_none_or(|k| name.kind() == k)
            {
                push(found, node, name, Some(kind), None, source);
            }
        }
        Rule::TopLevelSpec(kind) => {
            // `const X`, `const ( X … )`, `var ( X … )` (a `var_spec_list`) at file level.
            let declaration = node.parent().and_then(|p| {
                if p.kind() == "var_spec_list" {
                    p.parent()
                } else {
                    Some(p)
                }
            });
            let top_level = kind_of(declaration.and_then(|d| d.parent())) == "source_file";
            if top_level {
                // Every name of `const A, B = 1, 2` (the tags query reports only the
                // first); the commas carry the `name` field too, hence the kind check.
                let mut cursor = node.walk();
                for name in node.children_by_field_name("name", &mut cursor) {
                    if name.kind() == "identifier" {
                        push(found, node, name, Some(kind), None, source);
                    }
                }
            }
        }
        Rule::RustFunction => {
            if let Some(name) = field("name") {
                let parent = node.parent().filter(|p| p.kind() == "declaration_list");
                let in_impl = matches!(
                    kind_of(parent.and_then(|p| p.parent())),
                    "impl_item" | "trait_item"
                );
                push(
                    found,
                    node,
                    name,
                    Some(if in_impl { "method" } else { "function" }),
                    None,
                    source,
                );
            }
        }
        Rule::RustImpl => {
            if let Some(name) = field("type") {
                push(found, node, name, None, None, source);
            }
        }
        Rule::PythonModuleAssignment => {
            let statement = node.parent().filter(|p| p.kind() == "expression_statement");
            let at_module_level = kind_of(statement.and_then(|s| s.parent())) == "module";
            if let Some(left) = field("left")
                && at_module_level
                && left.kind() == "identifier"
            {
                push(found, node, left, Some("constant"), None, source);
            }
        }
        Rule::JsMethod => {
            if let Some(name) = field("name")
                && name.kind() == "property_identifier"
                && &source[name.byte_range()] != b"constructor"
            {
                push(found, node, name, Some("method"), None, source);
            }
        }
        Rule::JsVariableFunction => {
            let declared = matches!(
                kind_of(node.parent()),
                "lexical_declaration" | "variable_declaration"
            );
            if let Some(name) = field("name")
                && declared
                && name.kind() == "identifier"
                && is_function_value(field("value"))
            {
                push(found, node, name, Some("function"), None, source);
            }
        }
        Rule::JsAssignedFunction => {
            let name = match field("left") {
                Some(left) if left.kind() == "identifier" => Some(left),
                Some(left) if left.kind() == "member_expression" => left
                    .child_by_field_name("property")
                    .filter(|p| p.kind() == "property_identifier"),
                _ => None,
            };
            if let Some(name) = name
                && is_function_value(field("right"))
            {
                push(found, node, name, Some("function"), None, source);
            }
        }
        Rule::JsPairFunction => {
            if let Some(key) = field("key")
                && key.kind() == "property_identifier"
                && is_function_value(field("value"))
            {
                push(found, node, key, Some("function"), None, source);
            }
        }
        Rule::GoMethod => {
            if let Some(name) = field("name") {
                let receiver = go_receiver_type(node).map(|t| text(t, source));
                push(found, node, name, Some("method"), receiver, source);
            }
        }
    }
}

/// The type name in a Go method's receiver: `T`, `*T`, `T[K]` or `*T[K]`.
fn go_receiver_type(method: Node<'_>) -> Option<Node<'_>> {
    let receiver = method.child_by_field_name("receiver")?;
    let mut cursor = receiver.walk();
    let parameter = receiver
        .named_children(&mut cursor)
        .find(|c| c.kind() == "parameter_declaration")?;
    let mut ty = parameter.child_by_field_name("type")?;
    if ty.kind() == "pointer_type" {
        ty = ty.named_child(0)?;
    }
    if ty.kind() == "generic_type" {
        ty = ty.child_by_field_name("type")?;
    }
    (ty.kind() == "type_identifier").then_some(ty)
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
    // (start, end) byte range, name and kind of the nodes enclosing the current one.
    let mut open: Vec<((usize, usize), String, Option<String>)> = Vec::new();
    for item in merged {
        while open
            .last()
            .is_some_and(|((_, end), _, _)| *end <= item.start)
        {
            open.pop();
        }
        // Names sharing one node (`const A, B = …`) are siblings, not containers.
        let enclosing = open
            .iter()
            .rev()
            .find(|(range, _, _)| *range != (item.start, item.end));
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
        open.push(((item.start, item.end), item.name, item.kind));
    }
    symbols
}

/// The grammars' real tags queries, run through tree-sitter's query cursor: the
/// reference the table-driven walk must agree with.
#[cfg(test)]
mod tags_oracle {
    use super::*;
    use tree_sitter::{Query, QueryCursor, StreamingIterator};

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

    pub(super) struct LangQuery {
        query: Query,
        roles: Vec<Role>,
    }

    impl LangQuery {
        pub(super) fn compile(language: Language, sources: &[&str]) -> Result<LangQuery, String> {
            let source = sources.join("\n");
            let mut query = Query::new(&language, &source).map_err(|e| e.to_string())?;
            for pattern in 0..query.pattern_count() {
                let text = &source
                    [query.start_byte_for_pattern(pattern)..query.end_byte_for_pattern(pattern)];
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

    pub(super) fn query_sources(lang: Lang) -> Option<(Language, Vec<&'static str>)> {
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

    /// Definitions found by the tags queries, resolved like the walk's.
    pub fn extract(lang: Lang, source: &[u8]) -> Vec<Symbol> {
        let (language, sources) = query_sources(lang).expect("a grammar");
        let lang_query = LangQuery::compile(language.clone(), &sources).expect("query compiles");
        let mut parser = Parser::new();
        parser.set_language(&language).unwrap();
        let tree = parser.parse(source, None).unwrap();
        let mut cursor = QueryCursor::new();
        let mut found: Vec<Found> = Vec::new();
        let mut matches = cursor.matches(&lang_query.query, tree.root_node(), source);
        while let Some(m) = matches.next() {
            let (mut def_node, mut kind, mut name_node, mut container) = (None, None, None, None);
            for capture in m.captures {
                match &lang_query.roles[capture.index as usize] {
                    Role::Definition(k) => {
                        def_node = Some(capture.node);
                        kind = Some(k.clone());
                    }
                    Role::Scope => def_node = Some(capture.node),
                    Role::Name => name_node = Some(capture.node),
                    Role::Container => container = Some(text(capture.node, source)),
                    Role::Ignored => {}
                }
            }
            let (Some(def), Some(name)) = (def_node, name_node) else {
                continue;
            };
            push(&mut found, def, name, kind.as_deref(), container, source);
        }
        resolve(found)
    }
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
    fn every_query_compiles_and_every_rule_names_a_node_kind() {
        for lang in Lang::ALL.into_iter().filter(|l| l.has_symbols()) {
            let (language, sources) = tags_oracle::query_sources(lang).unwrap();
            tags_oracle::LangQuery::compile(language.clone(), &sources)
                .unwrap_or_else(|e| panic!("{lang}: {e}"));
            let (_, rule_sets) = grammar(lang).unwrap();
            for (kind, _) in rule_sets.iter().flat_map(|rules| rules.iter()) {
                assert_ne!(
                    language.id_for_node_kind(kind, true),
                    0,
                    "{lang} has no node kind {kind}"
                );
            }
        }
    }

    /// Sources exercising every rule, including the shapes a rule must reject.
    const PARITY_SOURCES: &[(Lang, &str)] = &[
        (
            Lang::Rust,
            "pub struct A;\nenum E { X }\nunion U { a: u8 }\ntype T = u8;\nimpl A { fn m(&self) {} pub fn n() {} }\nimpl<K> Tr for Vec<K> { fn t() {} }\ntrait Tr { fn t(); fn d() {} }\nmod m { fn f() {} mod n { const C: u8 = 1; } }\nmacro_rules! mac { () => {} }\nstatic S: u8 = 0;\nfn outer() { fn inner() {} let c = || 1; }\nextern \"C\" { fn ext(); }\n",
        ),
        (
            Lang::Python,
            "X = 1\nY: int = 2\na, b = 1, 2\nclass C:\n    Z = 3\n    def m(self):\n        W = 4\n        def inner(): pass\n    @staticmethod\n    def s(): pass\n    class N:\n        def deep(self): pass\n@decorator\ndef top():\n    lambda: 1\nasync def coro(): pass\nif True:\n    V = 5\n",
        ),
        (
            Lang::JavaScript,
            "class A { constructor() {} m() {} static s() {} get g() { return 1 } #p() {} }\nconst K = class Named { x() {} };\nfunction f() { function g() {} }\nfunction* gen() {}\nconst h = () => 1, i = function j() {}, n = 5;\nvar v = function () {};\nlet w = async () => {};\nexports.e = function () {};\nmodule.exports.q = () => {};\nx = () => 0;\nobj.a.b = function named() {};\nconst o = { p: () => 1, r: function () {}, s() {}, 't': () => 2, [u]: () => 3, n: 5 };\nsetTimeout(function cb() {}, 1);\nexport default function () {}\nexport const ex = () => {};\n",
        ),
        (
            Lang::TypeScript,
            "interface I { m(): void; p: number; }\ntype T<K> = K[];\nenum E { A }\nabstract class B { abstract am(): void; c(): void {} }\nmodule M { export function mf(): void {} }\ndeclare module \"lib\" { function df(): void; }\nnamespace NS { const z = () => 1; }\nfunction over(a: string): void;\nfunction over(a: any) {}\nexport class C<T> implements I { m(): void {} private q = (x: T) => x; }\nconst typed: (x: number) => number = (x) => x;\n",
        ),
        (
            Lang::Tsx,
            "export function App(): JSX.Element { const h = () => <div/>; return <App2 render={() => <b/>} />; }\nexport const App2 = ({ render }: Props) => render();\ninterface Props { render(): JSX.Element }\n",
        ),
        (
            Lang::Go,
            "package p\n\nimport \"fmt\"\n\nconst A = 1\nconst (\n\tC = iota\n\tD\n)\nvar V int\ntype T struct{}\ntype (\n\tI interface{ M() }\n\tG[K any] struct{}\n)\ntype Alias = T\nfunc (t T) Val() {}\nfunc (t *T) Ptr() {}\nfunc (g G[K]) Gen() {}\nfunc (g *G[K]) GenPtr() {}\nfunc (T) Anon() {}\nfunc F() {\n\tconst local = 1\n\tvar lv = 2\n\tfmt.Println(local, lv)\n}\n",
        ),
    ];

    #[test]
    fn the_walk_finds_exactly_what_the_grammars_tags_queries_find() {
        for (lang, source) in PARITY_SOURCES {
            let walked = SymbolExtractor::new().extract(*lang, source.as_bytes());
            let queried = tags_oracle::extract(*lang, source.as_bytes());
            assert_eq!(walked, queried, "{lang}");
            assert!(
                walked.len() >= 5,
                "{lang}: too few definitions to mean anything: {walked:?}"
            );
        }
        // And on the snippets of the tests below.
        for (lang, source) in [(Lang::Rust, RUST_SAMPLE), (Lang::Go, GO_SAMPLE)] {
            assert_eq!(
                SymbolExtractor::new().extract(lang, source.as_bytes()),
                tags_oracle::extract(lang, source.as_bytes())
            );
        }
    }

    #[test]
    fn every_name_of_a_multi_name_go_spec_is_a_symbol() {
        let src = "package p\n\nconst A, B = 1, 2\n\nvar (\n\tW, X = 1, 2\n)\n";
        assert_eq!(
            extract(Lang::Go, src),
            vec![
                sym("A", "constant", 3, None),
                sym("B", "constant", 3, None),
                sym("W", "variable", 6, None),
                sym("X", "variable", 6, None),
            ]
        );
    }

    const RUST_SAMPLE: &str = "struct Store { x: u8 }\nimpl Store {\n    fn open() -> Self { todo!() }\n}\nconst MAX: u32 = 3;\nmod inner {\n    pub fn helper() {}\n}\nmacro_rules! m { () => {} }\ntrait Shape { fn area(&self) -> f64; }\n";
    const GO_SAMPLE: &str = "package main\n\ntype Server struct{}\n\nfunc (s *Server) Start() error { return nil }\n\nfunc main() {}\n\nconst Version = \"1\"\n";

    #[test]
    fn rust_definitions_with_containers() {
        let src = RUST_SAMPLE;
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
        let src = GO_SAMPLE;
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
