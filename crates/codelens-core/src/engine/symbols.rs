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
//!
//! The languages added later (C, C++, Java, C#, Ruby, PHP, Kotlin, Swift, Bash and
//! Lua; their tables are in `languages.rs`) use the same walk and tables; their
//! reference is Universal Ctags, which `cargo bench --bench symbols -- --corpus DIR` compares against
//! on real third-party code.
//!
//! Every symbol has a `kind` in its language's own words (`struct`, `fn`, `func`,
//! `typedef` …) and a [`Family`], one normalised set modelled on LSP's `SymbolKind`,
//! for filtering across languages.

mod languages;

use std::sync::OnceLock;

use serde::Serialize;
use tree_sitter::{Language, Node, Parser, Tree};

use super::lang::Lang;

/// One symbol definition. Lines and columns are 1-based; the column counts bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    pub name: String,
    /// The language's own word: `struct`, `fn`, `func`, `def`, `typedef` …
    pub kind: String,
    pub family: Family,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub container: Option<String>,
}

/// The language-independent family of a symbol's kind, modelled on LSP's `SymbolKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Class,
    Interface,
    Struct,
    Enum,
    Function,
    Method,
    Constructor,
    Field,
    Constant,
    Variable,
    Module,
    Namespace,
    Type,
    Macro,
}

impl Family {
    pub const ALL: [Family; 14] = [
        Family::Class,
        Family::Interface,
        Family::Struct,
        Family::Enum,
        Family::Function,
        Family::Method,
        Family::Constructor,
        Family::Field,
        Family::Constant,
        Family::Variable,
        Family::Module,
        Family::Namespace,
        Family::Type,
        Family::Macro,
    ];

    /// The name stored in the index and accepted by `search_symbols`' `kind` filter.
    pub fn name(self) -> &'static str {
        match self {
            Family::Class => "class",
            Family::Interface => "interface",
            Family::Struct => "struct",
            Family::Enum => "enum",
            Family::Function => "function",
            Family::Method => "method",
            Family::Constructor => "constructor",
            Family::Field => "field",
            Family::Constant => "constant",
            Family::Variable => "variable",
            Family::Module => "module",
            Family::Namespace => "namespace",
            Family::Type => "type",
            Family::Macro => "macro",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Families whose members are methods and fields, not functions and variables.
    fn has_members(self) -> bool {
        matches!(
            self,
            Family::Class | Family::Interface | Family::Struct | Family::Enum
        )
    }

    fn is_callable(self) -> bool {
        matches!(
            self,
            Family::Function | Family::Method | Family::Constructor
        )
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A kind: the language's word and its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    word: &'static str,
    family: Family,
}

const fn k(word: &'static str, family: Family) -> Kind {
    Kind { word, family }
}

/// How a node of some kind defines a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A symbol of `kind` named by the node's `name` field (of kind `name_is`, if given).
    Named {
        kind: Kind,
        name_is: Option<&'static str>,
    },
    /// A symbol named by the node's `field` field, of any node kind; a qualified name
    /// (`A::B`, `a.b`) is reduced to its last part.
    NamedBy { kind: Kind, field: &'static str },
    /// A symbol named by the first named child of kind `child`.
    FirstChild { kind: Kind, child: &'static str },
    /// One symbol per declarator of the node (Java and C# fields): every `declarator`
    /// (Java) or `variable_declaration`'s declarators (C#), each named by `name`.
    Declarators(Kind),
    /// A C/C++ `struct`, `union`, `enum` or `class` with a body (not a mere use).
    CSpecifier(Kind),
    /// A C/C++ function definition, declaration, typedef or class member (see
    /// `languages::c_declaration`).
    CDeclaration(languages::CDeclaration),
    /// Other per-language shapes, in `languages.rs`.
    Special(languages::Special),
    /// One symbol per `name` child of a Go `const`/`var` spec at the top of the file.
    TopLevelSpec(Kind),
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
    /// `type T struct{…}` / `interface{…}` / any other type.
    GoType,
}

const fn named(kind: Kind) -> Rule {
    Rule::Named {
        kind,
        name_is: None,
    }
}

const fn named_by(kind: Kind, name_is: &'static str) -> Rule {
    Rule::Named {
        kind,
        name_is: Some(name_is),
    }
}

use Family as F;

const RUST_RULES: Rules = &[
    ("struct_item", named(k("struct", F::Struct))),
    ("enum_item", named(k("enum", F::Enum))),
    ("union_item", named(k("union", F::Struct))),
    ("type_item", named(k("type", F::Type))),
    ("function_item", Rule::RustFunction),
    ("trait_item", named(k("trait", F::Interface))),
    ("mod_item", named(k("mod", F::Module))),
    ("macro_definition", named(k("macro", F::Macro))),
    ("impl_item", Rule::RustImpl),
    ("const_item", named(k("const", F::Constant))),
    ("static_item", named(k("static", F::Constant))),
];

const PYTHON_RULES: Rules = &[
    ("class_definition", named(k("class", F::Class))),
    ("function_definition", named(k("function", F::Function))),
    ("assignment", Rule::PythonModuleAssignment),
];

const JS_FUNCTION: Kind = k("function", F::Function);

const JAVASCRIPT_RULES: Rules = &[
    ("method_definition", Rule::JsMethod),
    ("class", named(k("class", F::Class))),
    ("class_declaration", named(k("class", F::Class))),
    ("function_expression", named_by(JS_FUNCTION, "identifier")),
    ("function_declaration", named_by(JS_FUNCTION, "identifier")),
    ("generator_function", named_by(JS_FUNCTION, "identifier")),
    (
        "generator_function_declaration",
        named_by(JS_FUNCTION, "identifier"),
    ),
    ("variable_declarator", Rule::JsVariableFunction),
    ("assignment_expression", Rule::JsAssignedFunction),
    ("pair", Rule::JsPairFunction),
];

/// TypeScript and TSX: the JavaScript rules plus these.
const TYPESCRIPT_RULES: Rules = &[
    ("function_signature", named_by(JS_FUNCTION, "identifier")),
    (
        "method_signature",
        named_by(k("method", F::Method), "property_identifier"),
    ),
    (
        "abstract_method_signature",
        named_by(k("method", F::Method), "property_identifier"),
    ),
    ("abstract_class_declaration", named(k("class", F::Class))),
    (
        "module",
        named_by(k("namespace", F::Namespace), "identifier"),
    ),
    ("interface_declaration", named(k("interface", F::Interface))),
    ("type_alias_declaration", named(k("type", F::Type))),
    ("enum_declaration", named(k("enum", F::Enum))),
];

const GO_RULES: Rules = &[
    ("function_declaration", named(k("func", F::Function))),
    ("method_declaration", Rule::GoMethod),
    ("type_spec", Rule::GoType),
    ("type_alias", named(k("type", F::Type))),
    ("const_spec", Rule::TopLevelSpec(k("const", F::Constant))),
    ("var_spec", Rule::TopLevelSpec(k("var", F::Variable))),
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
        other => return languages::grammar(other),
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
    kind: Option<Kind>,
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
        let mut found = find_definitions(&tree, source, &table.by_kind);
        if matches!(lang, Lang::C | Lang::Cpp) {
            languages::c_macros(source, &mut found);
        }
        resolve(found)
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
    kind: Option<Kind>,
    container: Option<String>,
    source: &[u8],
) {
    push_named(found, def, name, text(name, source), kind, container);
}

/// [`push`] with a name other than the name node's text (`init`, `Companion` …).
fn push_named(
    found: &mut Vec<Found>,
    def: Node<'_>,
    name: Node<'_>,
    name_text: String,
    kind: Option<Kind>,
    container: Option<String>,
) {
    if name_text.is_empty() {
        return;
    }
    found.push(Found {
        name: name_text,
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
        Rule::NamedBy { kind, field: by } => {
            if let Some(name) = field(by).and_then(languages::last_name_part) {
                push(found, node, name, Some(kind), None, source);
            }
        }
        Rule::FirstChild { kind, child } => {
            let mut cursor = node.walk();
            let name = node.named_children(&mut cursor).find(|c| c.kind() == child);
            if let Some(name) = name {
                push(found, node, name, Some(kind), None, source);
            }
        }
        Rule::Declarators(kind) => languages::declarators(node, kind, source, found),
        Rule::CSpecifier(kind) => {
            if field("body").is_some()
                && let Some(name) = field("name").and_then(languages::last_name_part)
            {
                push(found, node, name, Some(kind), None, source);
            }
        }
        Rule::CDeclaration(what) => languages::c_declaration(what, node, source, found),
        Rule::Special(what) => languages::special(what, node, source, found),
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
                let family = if in_impl { F::Method } else { F::Function };
                push(found, node, name, Some(k("fn", family)), None, source);
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
                let kind = k("constant", F::Constant);
                push(found, node, left, Some(kind), None, source);
            }
        }
        Rule::JsMethod => {
            if let Some(name) = field("name")
                && name.kind() == "property_identifier"
                && &source[name.byte_range()] != b"constructor"
            {
                let kind = k("method", F::Method);
                push(found, node, name, Some(kind), None, source);
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
                push(found, node, name, Some(JS_FUNCTION), None, source);
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
                push(found, node, name, Some(JS_FUNCTION), None, source);
            }
        }
        Rule::JsPairFunction => {
            if let Some(key) = field("key")
                && key.kind() == "property_identifier"
                && is_function_value(field("value"))
            {
                push(found, node, key, Some(JS_FUNCTION), None, source);
            }
        }
        Rule::GoMethod => {
            if let Some(name) = field("name") {
                let receiver = go_receiver_type(node).map(|t| text(t, source));
                let kind = k("method", F::Method);
                push(found, node, name, Some(kind), receiver, source);
            }
        }
        Rule::GoType => {
            if let Some(name) = field("name") {
                let kind = match kind_of(field("type")) {
                    "struct_type" => k("struct", F::Struct),
                    "interface_type" => k("interface", F::Interface),
                    _ => k("type", F::Type),
                };
                push(found, node, name, Some(kind), None, source);
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
        // plain function pattern): keep one entry, preferring a method and a container.
        if let Some(previous) = merged
            .iter_mut()
            .rev()
            .take_while(|p| p.start == item.start)
            .find(|p| p.name_start == item.name_start && p.end == item.end && p.name == item.name)
        {
            if previous.kind.is_none() || item.kind.is_some_and(|k| k.family == F::Method) {
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
    // (start, end) byte range, name and kind of the nodes enclosing the current one.
    let mut open: Vec<((usize, usize), String, Option<Kind>)> = Vec::new();
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
        let enclosing_family = enclosing.and_then(|(_, _, k)| k.map(|k| k.family));
        // A variable or field inside a function's body is a local: not a definition
        // anyone looks up by name (ctags leaves them out too).
        let local = item
            .kind
            .is_some_and(|k| matches!(k.family, F::Variable | F::Field))
            && enclosing_family.is_some_and(Family::is_callable);
        let container = item
            .container
            .or_else(|| enclosing.map(|(_, name, _)| name.clone()));
        if let Some(kind) = item.kind
            && !local
        {
            // Some grammars leave a few kinds to context: a Python `def` in a class is
            // a method, and Rust's `declaration_list` rule also calls a function inside
            // `mod { … }` a method.
            let members = enclosing_family.is_some_and(Family::has_members);
            let (word, family) = match (kind.family, enclosing_family) {
                (F::Function, _) if members => (renamed(kind.word, "method"), F::Method),
                (F::Variable, _) if members => (kind.word, F::Field),
                (F::Method, Some(F::Module)) => (renamed(kind.word, "function"), F::Function),
                _ => (kind.word, kind.family),
            };
            symbols.push(Symbol {
                name: item.name.clone(),
                kind: word.to_string(),
                family,
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

/// A kind's word when context changes its family: the generic words follow the family
/// (`function` → `method`), a language's own (`fn`, `def`, `func`) stays.
fn renamed(word: &'static str, generic: &'static str) -> &'static str {
    match word {
        "function" | "method" => generic,
        own => own,
    }
}

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
    (type_alias name: (type_identifier) @name) @definition.type
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
            let kind = kind.as_deref().map(|k| {
                let family = Family::from_name(k).unwrap_or_else(|| panic!("kind {k}"));
                super::k(family.name(), family)
            });
            push(&mut found, def, name, kind, container, source);
        }
        resolve(found)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Each symbol as (name, kind, line, container), the kind written `word/family`
    /// (just `word` when both are the same: `struct`, `method`).
    pub(super) fn extract(lang: Lang, source: &str) -> Vec<(String, String, u32, Option<String>)> {
        SymbolExtractor::new()
            .extract(lang, source.as_bytes())
            .into_iter()
            .map(|s| {
                let kind = match s.family.name() {
                    family if family == s.kind => s.kind,
                    family => format!("{}/{family}", s.kind),
                };
                (s.name, kind, s.line, s.container)
            })
            .collect()
    }

    pub(super) fn sym(
        name: &str,
        kind: &str,
        line: u32,
        container: Option<&str>,
    ) -> (String, String, u32, Option<String>) {
        (name.into(), kind.into(), line, container.map(Into::into))
    }

    #[test]
    fn every_rule_names_a_node_kind_and_every_query_compiles() {
        for lang in Lang::ALL.into_iter().filter(|l| l.has_symbols()) {
            let (language, rule_sets) = grammar(lang).unwrap();
            for (kind, _) in rule_sets.iter().flat_map(|rules| rules.iter()) {
                assert_ne!(
                    language.id_for_node_kind(kind, true),
                    0,
                    "{lang} has no node kind {kind}"
                );
            }
            let Some((language, sources)) = tags_oracle::query_sources(lang) else {
                continue;
            };
            tags_oracle::LangQuery::compile(language, &sources)
                .unwrap_or_else(|e| panic!("{lang}: {e}"));
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

    /// Where a definition is, without its kind: the tags queries name kinds in their
    /// own coarse set (a Rust `struct` is a `class` there); kinds are tested below.
    fn placed(symbols: Vec<Symbol>) -> Vec<(String, u32, u32, u32, Option<String>)> {
        symbols
            .into_iter()
            .map(|s| (s.name, s.line, s.column, s.end_line, s.container))
            .collect()
    }

    #[test]
    fn the_walk_finds_exactly_what_the_grammars_tags_queries_find() {
        for (lang, source) in PARITY_SOURCES {
            let walked = SymbolExtractor::new().extract(*lang, source.as_bytes());
            let queried = tags_oracle::extract(*lang, source.as_bytes());
            assert_eq!(placed(walked.clone()), placed(queried), "{lang}");
            assert!(
                walked.len() >= 5,
                "{lang}: too few definitions to mean anything: {walked:?}"
            );
        }
        // And on the snippets of the tests below.
        for (lang, source) in [(Lang::Rust, RUST_SAMPLE), (Lang::Go, GO_SAMPLE)] {
            assert_eq!(
                placed(SymbolExtractor::new().extract(lang, source.as_bytes())),
                placed(tags_oracle::extract(lang, source.as_bytes()))
            );
        }
    }

    #[test]
    fn every_name_of_a_multi_name_go_spec_is_a_symbol() {
        let src = "package p\n\nconst A, B = 1, 2\n\nvar (\n\tW, X = 1, 2\n)\n";
        assert_eq!(
            extract(Lang::Go, src),
            vec![
                sym("A", "const/constant", 3, None),
                sym("B", "const/constant", 3, None),
                sym("W", "var/variable", 6, None),
                sym("X", "var/variable", 6, None),
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
                sym("Store", "struct", 1, None),
                sym("open", "fn/method", 3, Some("Store")),
                sym("MAX", "const/constant", 5, None),
                sym("inner", "mod/module", 6, None),
                sym("helper", "fn/function", 7, Some("inner")),
                sym("m", "macro", 9, None),
                sym("Shape", "trait/interface", 10, None),
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
                sym("Server", "struct", 3, None),
                sym("Start", "method", 5, Some("Server")),
                sym("main", "func/function", 7, None),
                sym("Version", "const/constant", 9, None),
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
